"""The `arena` command, run as a user runs it: a real process on the small pair."""

import subprocess
import sys

from tests.conftest import REPO


def arena(*args, timeout=600):
    return subprocess.run([sys.executable, "-m", "study.cli", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, check=False,
                          env={**__import__("os").environ, "COLUMNS": "200"})


def test_baselines_prints_mean_and_sd(rt_task):
    proc = arena("baselines", "rt_sentiment", "--pair", "small")
    assert proc.returncode == 0, proc.stderr
    assert "rt_sentiment" in proc.stdout and "±" in proc.stdout and "16" in proc.stdout


def test_run_prints_pgr_per_part(rt_task):
    proc = arena("run", "baselines/vanilla.py", "--task", "rt_sentiment", "--pair", "small",
                 "--seed", "1", "--seed", "2")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for word in ("public", "private", "all", "PGR ± SE", "seed 1: ok", "seed 2: ok"):
        assert word in proc.stdout, proc.stdout


def test_run_of_a_broken_method_exits_1_with_the_error(rt_task, tmp_path):
    broken = tmp_path / "broken.py"
    broken.write_text("def run(ctx):\n    return 1 / 0\n")
    proc = arena("run", str(broken), "--task", "rt_sentiment", "--pair", "small", "--seed", "3")
    assert proc.returncode == 1
    assert "ZeroDivisionError" in proc.stdout


def test_unknown_task_is_a_clear_error(rt_task):
    proc = arena("run", "baselines/vanilla.py", "--task", "nope", "--pair", "small")
    assert proc.returncode == 2
    assert "unknown task 'nope'" in proc.stdout


def test_a_server_that_cannot_be_reached_is_a_message_not_a_traceback():
    from tests.e2e.conftest import free_port

    proc = arena("submit", "baselines/vanilla.py", "--url", f"http://127.0.0.1:{free_port()}",
                 "--token", "w2s_x", timeout=60)
    assert proc.returncode == 1
    assert "cannot reach the study server" in proc.stdout
    assert "Traceback" not in proc.stdout + proc.stderr
