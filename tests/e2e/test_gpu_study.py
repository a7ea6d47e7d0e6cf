"""A GPU study through the real door, on a fake GPU machine (a fake nvidia-smi on PATH and a
fake /dev): one worker slot per GPU, each method on its own GPU, GPU-seconds charged to the
daily compute and shown, and a GPU that vanishes mid-attempt costs the participant nothing."""

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from analysis.data import from_exports
from analysis.report import build_tables
from participants.workspace.errors import format_seconds
from study.records import AttemptStatus
from study.server import db_path
from tests.conftest import REPO
from tests.e2e.conftest import SMALL, make_server
from tests.e2e.test_crash_recovery import events, wait_for
from tests.fakes.gpus import make_fake_gpus
from tests.participants.conftest import APP

ON_ITS_GPU = """
import os

def run(ctx):
    nodes = sorted(n for n in os.listdir("/dev") if n[6:].isdigit() and n.startswith("nvidia"))
    if ctx.device != "cuda" or len(nodes) != 1 or not os.environ["CUDA_VISIBLE_DEVICES"]:
        raise AssertionError(f"not on one GPU: {ctx.device} {nodes}")
    head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))
"""

# No CUDA here: the method stands in for torch once it has its predictions, so the child's own
# GPU report (torch.cuda.max_memory_allocated, read after run returns) travels to the attempt.
REPORTS_ITS_PEAK = ON_ITS_GPU.replace("return head.predict_proba",
                                      "probs = head.predict_proba") + """
    import sys, types
    cuda = types.SimpleNamespace(is_initialized=lambda: True, device_count=lambda: 1,
                                 max_memory_allocated=lambda i=0: 1234 * 2**20,
                                 get_device_name=lambda i=0: "NVIDIA H100 80GB HBM3")
    sys.modules["torch"] = types.SimpleNamespace(cuda=cuda)
    return probs
"""

# The fake GPU "falls off the bus" when the test unlinks its node on the host; inside the
# sandbox the bound node then has no links left, which the method takes for a CUDA error.
FRAGILE = """
import os, time

def run(ctx):
    (node,) = [n for n in os.listdir("/dev") if n[6:].isdigit() and n.startswith("nvidia")]
    for _ in range(40):
        if os.stat(f"/dev/{node}").st_nlink == 0:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        time.sleep(0.1)
    head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))
"""


@pytest.fixture
def gpu_server(tmp_path, rt_task):
    fake = make_fake_gpus(tmp_path / "machine", 2)
    protocol = tmp_path / "gpu.toml"
    protocol.write_text(SMALL.read_text() + '\n[runner]\ngpus = "all"\n')
    live = make_server(tmp_path, protocol)
    live.start(env=fake.env())
    yield live, fake
    live.stop()


def gpu_of_running_method(fake) -> list[int]:
    """Which fake GPU a running sandbox holds ([] while none runs), from bubblewrap's argv."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().decode().split("\0")
        except OSError:
            continue
        for i, arg in enumerate(argv[:-1]):
            if arg == "--dev-bind" and argv[i + 1].startswith(f"{fake.dev_root}/nvidia"):
                tail = argv[i + 1].rsplit("nvidia", 1)[1]
                if tail.isdigit():
                    return [int(tail)]
    return []


def test_gpu_seconds_are_charged_and_shown(gpu_server, monkeypatch):
    server, _ = gpu_server
    pat = server.participant("pat")
    done = pat.wait(pat.submit(REPORTS_ITS_PEAK, "rt_sentiment").id, poll=0.1, timeout=180)
    assert done.status is AttemptStatus.SCORED, (done.error, done.log_tail)
    # One GPU per slot: GPU-seconds are the seeds' wall time, measured by the runner.
    assert done.gpu_seconds == pytest.approx(done.wall_seconds, rel=1e-6)
    assert done.peak_gpu_mb == pytest.approx(1234.0)  # the child's report, on the attempt
    quota = pat.quota()
    assert quota.compute_unit == "GPU-seconds"
    assert quota.compute_seconds_used == pytest.approx(done.gpu_seconds, abs=0.02)
    shown = subprocess.run(
        [sys.executable, "-m", "study.cli", "status", done.id, "--url", server.url,
         "--token", pat.token], cwd=REPO, capture_output=True, text=True, timeout=60,
        env={**os.environ, "COLUMNS": "200"})
    assert "GPU time" in shown.stdout, shown.stdout + shown.stderr
    listing = subprocess.run(
        [sys.executable, "-m", "study.cli", "status", "--url", server.url, "--token", pat.token],
        cwd=REPO, capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"})
    assert "GPU-s left today" in listing.stdout, listing.stdout + listing.stderr
    assert "GPU time" in listing.stdout  # the attempts table gains the column
    assert_the_analysis_shows_gpu_hours(server, done.participant_id, done)
    assert_the_workspace_shows_gpu_time(server, pat, done, monkeypatch)
    server.stop()  # DuckDB has one writer: read the per-seed rows once the server is down
    con = duckdb.connect(str(db_path(server.data_dir)), read_only=True)
    try:
        seeds = con.execute("SELECT gpu_seconds, wall_seconds, peak_gpu_mb FROM seed_results "
                            "WHERE attempt_id = ?", [done.id]).fetchall()
    finally:
        con.close()
    assert len(seeds) == len(done.seeds)
    assert all(g == pytest.approx(w) and p == pytest.approx(1234.0) for g, w, p in seeds)
    assert sum(g for g, _, _ in seeds) == pytest.approx(done.gpu_seconds)


def assert_the_analysis_shows_gpu_hours(server, participant_id, done) -> None:
    with server.admin() as admin:
        study = admin.study()
        data = from_exports(admin.export, study_start=pd.Timestamp(study.starts_at),
                            study_end=pd.Timestamp(study.ends_at), plan=study.analysis,
                            arms=study.arms, hill_climb=study.tasks.get("hill_climb", []))
    _, tables, _, _ = build_tables(data, as_of=pd.Timestamp.now(tz="UTC"))
    row = tables["participants"].set_index("participant_id").loc[participant_id]
    assert row["gpu_hours"] == pytest.approx(done.gpu_seconds / 3600)
    assert row["compute_hours"] == pytest.approx(row["gpu_hours"])  # GPU time is what counts


def assert_the_workspace_shows_gpu_time(server, client, done, monkeypatch) -> None:
    monkeypatch.setenv("ARENA_URL", server.url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="signin_token").input(client.token)
    at.button(key="signin_submit").click().run()
    at.switch_page("app_pages/editor.py").run()
    assert not at.exception, at.exception
    assert "GPU time left today" in [m.label for m in at.metric]
    at.switch_page("app_pages/attempts.py").run()
    assert not at.exception, at.exception
    shown = {m.label: m.value for m in at.metric}
    assert shown["GPU time (wall × GPUs)"] == format_seconds(done.gpu_seconds), shown
    assert shown["Peak GPU memory"] == "1234 MB", shown


def test_a_gpu_lost_mid_attempt_requeues_it_once_on_another_gpu(gpu_server):
    server, fake = gpu_server
    quinn = server.participant("quinn")
    view = quinn.submit(FRAGILE, "rt_sentiment")
    (lost,) = wait_for(lambda: gpu_of_running_method(fake), timeout=120)
    fake.lose(lost)
    done = quinn.wait(view.id, poll=0.1, timeout=180)
    assert done.status is AttemptStatus.SCORED, (done.error, done.log_tail)
    assert done.tries == 2
    assert quinn.quota().attempts_used == 1  # charged once, for the run that finished
    server.stop()
    requeued = [p for k, p in events(server.data_dir, view.id) if k == "attempt_requeued"]
    assert len(requeued) == 1 and f"GPU {lost}" in requeued[0]["reason"]
    assert f"slot {lost}: GPU {lost}" in server.log_tail()  # that worker retired


def test_serve_gpus_turns_a_cpu_protocol_into_a_gpu_study(tmp_path, rt_task):
    fake = make_fake_gpus(tmp_path / "machine", 2)
    server = make_server(tmp_path)  # the protocol says nothing of GPUs
    server.start(env=fake.env(), args=("--gpus", "1"))
    try:
        pat = server.participant("pat")
        assert pat.quota().compute_unit == "GPU-seconds"
        done = pat.wait(pat.submit(ON_ITS_GPU, "rt_sentiment").id, poll=0.1, timeout=180)
        assert done.status is AttemptStatus.SCORED, (done.error, done.log_tail)
        assert done.gpu_seconds == pytest.approx(done.wall_seconds, rel=1e-6)
        assert "slot 0: GPU 1 (NVIDIA H100 80GB HBM3" in server.log_tail()  # only GPU 1
    finally:
        server.stop()
