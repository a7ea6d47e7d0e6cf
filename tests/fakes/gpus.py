"""A fake GPU machine for CPU tests: an `nvidia-smi` executable that prints a fixed device list,
and a /dev folder whose NVIDIA nodes are plain files (bubblewrap binds them like the real ones).
The runner finds both the way it finds real ones: nvidia-smi on PATH, nodes under
ARENA_GPU_DEV_ROOT."""

from __future__ import annotations

import os
import stat
from dataclasses import dataclass
from pathlib import Path

from runner.gpu import CONTROL_NODES


@dataclass
class FakeGpus:
    bin_dir: Path
    dev_root: Path
    count: int

    def uuid(self, index: int) -> str:
        return f"GPU-fake-{index:04d}"

    def env(self) -> dict[str, str]:
        """For a server process: finds the fake nvidia-smi first and the fake nodes."""
        return {"PATH": f"{self.bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
                "ARENA_GPU_DEV_ROOT": str(self.dev_root)}

    def lose(self, index: int) -> None:
        """The GPU falls off the bus: its device node disappears."""
        (self.dev_root / f"nvidia{index}").unlink()


def make_fake_gpus(root: Path, count: int = 2, *, memory_mb: int = 81559) -> FakeGpus:
    dev, bin_dir = root / "dev", root / "bin"
    dev.mkdir(parents=True)
    bin_dir.mkdir(parents=True)
    for name in (*CONTROL_NODES, *(f"nvidia{i}" for i in range(count)), "nvidia-modeset"):
        (dev / name).write_text("")
    fake = FakeGpus(bin_dir, dev, count)
    rows = "\\n".join(f"{i}, {fake.uuid(i)}, NVIDIA H100 80GB HBM3, {memory_mb}"
                      for i in range(count))
    smi = bin_dir / "nvidia-smi"
    smi.write_text(f"#!/bin/sh\nprintf '{rows}\\n'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IXUSR)
    return fake
