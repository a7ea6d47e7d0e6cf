"""A real study server in its own process, on loopback, over a real DuckDB file."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from participants.sdk import ArenaClient
from study.protocol import load_protocol
from study.server import create_study
from tests.conftest import REPO

SMALL = REPO / "tests" / "protocols" / "small.toml"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class LiveServer:
    data_dir: Path
    port: int
    admin_token: str
    proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 120, slots: int = 1,
              env: dict[str, str] | None = None, args: tuple[str, ...] = ()) -> None:
        log = (self.data_dir / "server.log").open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "study.cli", "serve", "--data-dir", str(self.data_dir),
             "--port", str(self.port), "--slots", str(slots), *args], cwd=REPO, stdout=log,
            stderr=subprocess.STDOUT, start_new_session=True, env={**os.environ, **(env or {})})
        deadline = time.monotonic() + timeout
        with ArenaClient(self.url, retries=0, timeout=2) as probe:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise RuntimeError(f"server exited: {self.log_tail()}")
                try:  # up: it answers its health check, healthy (200) or not (503)
                    if probe.health_report().get("status") in ("ok", "unhealthy"):
                        return
                except Exception:
                    time.sleep(0.2)
        raise RuntimeError(f"server did not come up: {self.log_tail()}")

    def kill(self) -> None:
        """kill -9, as a crash would."""
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()

    def log_tail(self) -> str:
        path = self.data_dir / "server.log"
        return path.read_text(errors="replace")[-3000:] if path.exists() else ""

    def admin(self) -> ArenaClient:
        return ArenaClient(self.url, self.admin_token)

    def participant(self, name: str, *, arm: str = "human", kind: str = "human",
                    role: str = "participant", hours: float | None = None) -> ArenaClient:
        with self.admin() as admin:
            issued = admin.add_participant(name, arm=arm if role == "participant" else None,
                                           kind=kind, role=role, token_hours=hours)
        client = ArenaClient(self.url, issued.token)
        client.participant_id = issued.participant.id  # type: ignore[attr-defined]
        client.token_id = issued.token_id  # type: ignore[attr-defined]
        return client


def make_server(tmp_path: Path, protocol: Path = SMALL) -> LiveServer:
    data_dir = tmp_path / "study"
    issued = create_study(data_dir, load_protocol(protocol))
    return LiveServer(data_dir=data_dir, port=free_port(), admin_token=issued.token)


@contextmanager
def running_server(tmp_path: Path, protocol: Path = SMALL) -> Iterator[LiveServer]:
    """A new study's server, started, and stopped however the block ends."""
    live = make_server(tmp_path, protocol)
    live.start()
    try:
        yield live
    finally:
        live.stop()


@pytest.fixture
def server(tmp_path, rt_task):
    with running_server(tmp_path) as live:
        yield live


SLEEPY = """
import time
def run(ctx):
    time.sleep({seconds})
    head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))
"""

VANILLA = (REPO / "baselines" / "vanilla.py").read_text()


def wait_for(predicate, timeout: float = 120.0, poll: float = 0.2):
    """The predicate's first truthy value, polled until `timeout`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    raise TimeoutError("condition not met in time")
