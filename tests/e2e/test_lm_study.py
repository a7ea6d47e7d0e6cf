"""The language-model testbed end to end on CPU: the tiny-lm pair and a synthetic task in the
AAR layout. `arena prepare --protocol` builds the task, fine-tunes the LoRA teachers and
ceilings and caches activations; a real server scores `lora_vanilla.py` and `vanilla.py` through
the submit path; a second study on the same cache scores `lora_logconf.py` and recomputes
nothing."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from study.cli import app
from study.records import AttemptStatus
from tests.conftest import REPO
from tests.e2e.conftest import make_server
from tests.lm_data import write_keyword_task

PROTOCOL = """
name = "tiny lm study"
model_pair = "tiny-lm"
seeds_per_attempt = 2

[tasks]
hill_climb = ["keywords"]

[[datasets]]
name = "keywords"
kind = "classify"
folder = "{folder}"
description = "Is the keyword in this text a positive (1) or a negative (0) one?"
label_names = ["negative", "positive"]

[lm]
baseline_seeds = 2
epochs = 3
lr = 3e-3
batch_size = 16
max_length = 32

[[arms]]
name = "human"

[budgets.default]
attempts_per_day = 10
compute_seconds_per_day = 3600
concurrent_attempts = 1

[limits]
attempt_seconds = 300
memory_mb = 4096
"""


def _cache_files(root):
    """Every cached file but the per-teacher bundles (a new seed may draw a new teacher)."""
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*")
            if p.is_file() and p.relative_to(root).parts[0] in
            ("tasks", "models", "features", "baselines")}


def _score(server, name: str, sources: list[str]) -> list:
    client = server.participant(name)
    views = [client.submit((REPO / "baselines" / s).read_text(), "keywords") for s in sources]
    return [client.wait(v.id, timeout=900, poll=0.5) for v in views]


@pytest.mark.slow
def test_tiny_lm_study_prepares_scores_lora_and_probe_methods_and_reuses_caches(
        tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    monkeypatch.setenv("ARENA_CACHE_DIR", str(cache))  # the servers inherit it
    folder = write_keyword_task(tmp_path / "data")
    protocol = tmp_path / "tiny-lm.toml"
    protocol.write_text(PROTOCOL.format(folder=folder))

    prepared = CliRunner().invoke(app, ["prepare", "--protocol", str(protocol)],
                                  env={"COLUMNS": "200"})
    assert prepared.exit_code == 0, prepared.output
    assert "keywords" in prepared.output and "tiny-qwen2 → tiny-qwen3" in prepared.output
    (record,) = [json.loads(p.read_text()) for p in (cache / "baselines").rglob("baselines.json")]
    assert record["seeds"] == [1000, 1001] and len(record["weak_acc"]) == 2
    # 40 noisy gold items teach the small LM less than 240 teach the larger one.
    assert min(record["ceiling_acc"]) > max(record["weak_acc"])
    teachers = list((cache / "baselines").rglob("teacher_soft_labels.npy"))
    assert len(teachers) == 1
    features = sorted(p.name for p in (cache / "features").rglob("*.npy"))
    assert len(features) == 4  # weak and strong × train and test: the activation cache

    before = _cache_files(cache)
    server = make_server(tmp_path / "one", protocol)
    server.start(timeout=300)
    try:
        lora, probe = _score(server, "alice", ["lora_vanilla.py", "vanilla.py"])
    finally:
        server.stop()
    for done in (lora, probe):
        assert done.status is AttemptStatus.SCORED, (done.error, done.traceback)
        assert done.public is not None and done.public.pgr is not None
    assert any(m.get("name") == "loss" for m in lora.metrics)  # finetune logs its loss
    assert _cache_files(cache) == before  # the server used what prepare froze

    again = make_server(tmp_path / "two", protocol)
    again.start(timeout=300)
    try:
        (rerun,) = _score(again, "bob", ["lora_logconf.py"])
    finally:
        again.stop()
    assert rerun.status is AttemptStatus.SCORED, rerun.error
    assert _cache_files(cache) == before  # nothing rebuilt, retrained or re-encoded
