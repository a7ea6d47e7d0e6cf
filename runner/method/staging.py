"""What a method process sees of its files, laid out so that no path or file betrays the run.

Inside the sandbox every run looks the same: the bundle at /w2s/bundle, the method and its run
description at /w2s/method, a size-capped tmpfs at /tmp for everything writable. No task hash,
task folder or audit variant (a teacher ablation's permuted labels) appears in a path — not in
the mount points and not in /proc/self/mountinfo, which names a bind mount's *source* folder:
so the source is a per-run copy under the run's own folder, never the shared bundle. The copy
hard-links the large feature files (the same inodes in every variant) and writes every other
file afresh, so sizes, link counts and times look alike too.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runner.method.sandbox import SCRATCH

BUNDLE_AT = "/w2s/bundle"
METHOD_AT = "/w2s/method"
WORK_AT = "/tmp"  # the run's working directory: on the sandbox's own tmpfs
SCRATCH_AT = SCRATCH  # ctx.scratch: on the same tmpfs
OUT_AT = "/tmp/out"
SKIP = {"ready"}  # the bundle builder's own marker


def _link_or_copy(src: Path, dest: Path) -> None:
    try:
        os.link(src, dest)
    except OSError:
        shutil.copyfile(src, dest)


def stage_bundle(bundle: Path, dest: Path) -> None:
    """A per-run view of `bundle` at `dest`: features hard-linked, the rest copied afresh."""
    dest.mkdir(parents=True)
    for src in sorted(bundle.rglob("*")):
        rel = src.relative_to(bundle)
        target = dest / rel
        if src.is_symlink() or rel.name in SKIP:
            continue
        if src.is_dir():
            target.mkdir(mode=0o755, exist_ok=True)
        elif rel.parts[0] == "features":
            _link_or_copy(src, target)
        else:
            shutil.copyfile(src, target)
            target.chmod(0o644)
    dest.chmod(0o755)


@dataclass(frozen=True)
class RunLayout:
    """Where a run's files are on the host, and where the method process sees them."""

    host: Path  # the run's folder on the host (not visible to the method)
    sandboxed: bool

    @property
    def bundle(self) -> Path:
        return self.host / "bundle"

    @property
    def stage(self) -> Path:
        return self.host / "method"

    def inside(self, what: str) -> str:
        """A path as the method process sees it."""
        if self.sandboxed:
            return {"bundle": BUNDLE_AT, "method": f"{METHOD_AT}/method.py",
                    "run": f"{METHOD_AT}/run.json", "scratch": SCRATCH_AT, "out": OUT_AT,
                    "cwd": WORK_AT}[what]
        return str({"bundle": self.bundle, "method": self.stage / "method.py",
                    "run": self.stage / "run.json", "scratch": self.host / "scratch",
                    "out": self.host / "out", "cwd": self.host}[what])

    def placed(self) -> tuple[tuple[Path, str], ...]:
        """Read-only binds (host folder, fixed place inside)."""
        return ((self.bundle, BUNDLE_AT), (self.stage, METHOD_AT))


def stage_run(method: Path, bundle: Path, host: Path, *, sandboxed: bool) -> RunLayout:
    layout = RunLayout(host=host, sandboxed=sandboxed)
    host.mkdir(parents=True, exist_ok=True)
    stage_bundle(bundle, layout.bundle)
    layout.stage.mkdir(mode=0o755)
    shutil.copyfile(method, layout.stage / "method.py")
    return layout


def write_run_file(layout: RunLayout, run: dict[str, Any]) -> None:
    path = layout.stage / "run.json"
    path.write_text(json.dumps({**run, "bundle": layout.inside("bundle"),
                                "method": layout.inside("method"),
                                "scratch": layout.inside("scratch"),
                                "out": layout.inside("out")}))
    path.chmod(0o644)
