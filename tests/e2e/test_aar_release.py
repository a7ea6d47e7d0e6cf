"""`arena import-aar cache_results/` through the real door: the release layout becomes one
attempt per (dataset, idea, hyper-parameter key), one imported participant per dataset, with the
per-seed PGRs stored; skipped files are reported and the rest is imported."""

import os
import subprocess
import sys

import pytest

from tests.analysis.test_aar_import import STRONG, WEAK, release  # noqa: F401 (fixture)
from tests.conftest import REPO


def test_the_release_folder_imports_per_dataset_with_per_seed_pgrs(server, release):  # noqa: F811
    root, transfers = release
    env = {**os.environ, "ARENA_URL": server.url, "ARENA_TOKEN": server.admin_token,
           "COLUMNS": "1000"}  # rich wraps at the terminal's width: keep each message whole
    proc = subprocess.run([sys.executable, "-m", "study.cli", "import-aar", str(root),
                           "--label", "AAR release"], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout
    assert "imported 4 attempt(s)" in out
    assert "seed_43.json: cannot be read as JSON" in out
    assert "train_ceiling" in out and "states no PGR" in out
    with server.admin() as admin:
        views = [v for v in admin.attempts(everyone=True) if v.task in ("chat-0115", "math-0115")]
    by = {(v.task, v.note.split(" · ")[0]): v for v in views}
    assert set(by) == {("chat-0115", "vanilla_w2s"), ("chat-0115", "ue_zeroshot"),
                       ("chat-0115", "critic"), ("math-0115", "vanilla_w2s")}
    # One imported participant per dataset: chat and math never share a curve.
    owners = {task: {v.participant_id for v in views if v.task == task}
              for task in ("chat-0115", "math-0115")}
    assert len(owners["chat-0115"]) == 1 and owners["chat-0115"] != owners["math-0115"]
    vanilla = by[("chat-0115", "vanilla_w2s")]
    assert vanilla.seeds == [42, 43, 44]
    want = [(t - WEAK) / (STRONG - WEAK) for t in transfers.values()]
    assert vanilla.private.pgr_per_seed == pytest.approx(want)
