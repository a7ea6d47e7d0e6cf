"""A real local Ray cluster for the tests: a head started with `ray start`, reached as a client.

The study server connects as a Ray client (see runner/ray_backend.py), so the tests do too;
`ray.init(num_cpus=2)` inside the test process would make the test itself the cluster.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.e2e.conftest import free_port

RAY = Path(sys.executable).with_name("ray")


@dataclass
class RayHead:
    port: int
    client_port: int
    temp_dir: Path
    gpus: int = 0  # GPUs the head declares (a fake GPU machine's, on a CPU host)
    env: dict[str, str] = field(default_factory=dict)  # its workers inherit it (fake nvidia-smi)

    @property
    def address(self) -> str:
        return f"ray://127.0.0.1:{self.client_port}"

    def start(self) -> None:
        # The nodes read the same cache as the server: one machine, one shared cache path.
        subprocess.run(
            [str(RAY), "start", "--head", "--num-cpus=2", f"--num-gpus={self.gpus}",
             f"--port={self.port}", f"--ray-client-server-port={self.client_port}",
             "--include-dashboard=false", "--disable-usage-stats",
             f"--temp-dir={self.temp_dir}", "--min-worker-port=31000", "--max-worker-port=31999"],
            check=True, capture_output=True, timeout=120,
            # Ray turns token authentication on by itself once ~/.ray/auth_token exists, and
            # its client does not send the token: a loopback test cluster runs without it.
            env={**os.environ, **self.env, "RAY_AUTH_MODE": "disabled"})

    def stop(self) -> None:
        subprocess.run([str(RAY), "stop", "--force"], capture_output=True, timeout=120)

    def worker_pids(self, function: str = "run_on_node") -> list[int]:
        """Ray workers currently executing `function` (their title is `ray::function`)."""
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if cmd.startswith(f"ray::{function}".encode()):
                found.append(int(entry.name))
        return found


def start_head(tmp_path: Path, *, gpus: int = 0, env: dict[str, str] | None = None) -> RayHead:
    # Ray's session folder lives in a short path: its sockets must fit in 107 bytes.
    temp = Path("/tmp") / f"ray-{os.getpid()}-{time.monotonic_ns() % 10**6}"
    head = RayHead(port=free_port(), client_port=free_port(), temp_dir=temp, gpus=gpus,
                   env=env or {})
    head.start()
    return head
