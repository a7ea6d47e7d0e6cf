"""Without bubblewrap the runner refuses to run methods, unless told so explicitly."""

import os
import subprocess
import sys

from tests.conftest import REPO
from tests.e2e.conftest import make_server

NO_BWRAP = {"PATH": "/nonexistent"}  # bwrap is found through PATH; nothing else needs it


def test_the_server_refuses_a_sandboxed_study_without_bubblewrap(tmp_path, rt_task):
    server = make_server(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "study.cli", "serve", "--data-dir", str(server.data_dir),
         "--port", str(server.port)], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, **NO_BWRAP}, check=False)
    assert proc.returncode != 0
    assert "bubblewrap (bwrap) is not installed" in proc.stdout + proc.stderr
    assert "sandbox = false" in proc.stdout + proc.stderr


def test_arena_run_needs_an_explicit_no_sandbox(rt_task):
    # rt_task's cached features: the default task (the 8,000-item tweets) would embed for 90 s.
    base = [sys.executable, "-m", "study.cli", "run", "baselines/vanilla.py", "--pair", "small",
            "--task", rt_task.name, "--seed", "1"]
    env = {**os.environ, **NO_BWRAP}
    refused = subprocess.run(base, cwd=REPO, capture_output=True, text=True, env=env,
                             timeout=120, check=False)
    assert refused.returncode == 2 and "not installed" in refused.stdout
    allowed = subprocess.run([*base, "--no-sandbox"], cwd=REPO, capture_output=True, text=True,
                             env=env, timeout=120, check=False)
    assert allowed.returncode == 0, allowed.stdout + allowed.stderr
    assert "unsandboxed" in allowed.stdout
