"""Experiments through the real door: an asynchronous job in the method sandbox on the
participant bundle, returning stdout, ctx.log metrics and small files, logged like attempts,
under its own budget — and blind to gold labels."""

import ast
import io
import json
import tarfile
import time

import pandas as pd
import pytest

from participants.sdk import ArenaAPIError
from tests.e2e.conftest import SMALL, make_server

PLOT = '''
import struct, zlib
import numpy as np


def png(width, height, rows):
    def chunk(kind, data):
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    raw = b"".join(b"\\x00" + bytes(r) for r in rows)
    return (b"\\x89PNG\\r\\n\\x1a\\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height,
            8, 0, 0, 0, 0)) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def run(ctx):
    y = ctx.weak_soft_labels
    counts, _ = np.histogram(y, bins=10, range=(0, 1))
    print("train", len(y), "held out", ctx.task.sizes["test"])
    for step, c in enumerate(counts):
        ctx.log("histogram", float(c), step=step)
    height = 20
    rows = [[255 if counts[x // 4] * height / counts.max() > height - r else 0
             for x in range(40)] for r in range(height)]
    (ctx.files_dir / "teacher_hist.png").write_bytes(png(40, height, rows))
    (ctx.files_dir / "counts.csv").write_text("bin,count\\n" + "".join(
        f"{i},{c}\\n" for i, c in enumerate(counts)))
    X = ctx.strong_features("train")
    head = ctx.lib.train_head(X, y, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))
'''

SNOOP = '''
import os


def run(ctx):
    bundle = str(ctx._bundle)
    print("bundle:", sorted(os.listdir(bundle)))
    print("features:", sorted(os.listdir(os.path.join(bundle, "features"))))
    print("sizes:", ctx.task.sizes)
    found = []
    for root in ("/w2s", "/tmp", "/root", "/home", "/work", "/var", "/srv", "/mnt"):
        for dirpath, _, files in os.walk(root):
            found += [os.path.join(dirpath, f) for f in files
                      if f in ("test.jsonl", "weak_train.jsonl") or f.endswith(".duckdb")]
            if len(found) > 5:
                break
    print("gold files found:", found)
'''

SLEEP = "import time\n\ndef run(ctx):\n    time.sleep(8)\n"


@pytest.fixture
def exp_server(tmp_path, rt_task):
    protocol = tmp_path / "experiments.toml"
    protocol.write_text(SMALL.read_text()
                        + "\n[experiments]\nper_day = 3\nconcurrent = 1\nseconds = 120\n")
    live = make_server(tmp_path, protocol)
    live.start()
    yield live
    live.stop()


def test_an_experiment_plots_logs_and_measures_against_the_teacher(exp_server):
    alice = exp_server.participant("alice")
    queued = alice.experiment(PLOT, "rt_sentiment", note="teacher histogram",
                              idempotency_key="hist-1")
    assert queued.status in ("queued", "running", "finished")
    again = alice.experiment(PLOT, "rt_sentiment", idempotency_key="hist-1")
    assert again.id == queued.id  # a re-sent request is the same experiment
    done = alice.wait_experiment(queued.id, timeout=600)
    assert done.status == "finished", (done.error, done.traceback, done.stdout)
    assert "train 2400 held out 600" in done.stdout
    histogram = [m for m in done.metrics if m["name"] == "histogram"]
    assert [m["step"] for m in histogram] == list(range(10))
    assert sum(m["value"] for m in histogram) == 2400
    assert {f.name: f.media_type for f in done.files} == {
        "counts.csv": "text/csv", "teacher_hist.png": "image/png"}
    assert alice.experiment_file(done.id, "teacher_hist.png").startswith(b"\x89PNG")
    assert alice.experiment_file(done.id, "counts.csv").decode().startswith("bin,count")
    ev = done.teacher_eval
    assert ev["n_items"] == 600 and 0.5 < ev["teacher_agreement"] <= 1.0
    assert alice.quota().attempts_used == 0  # not an attempt

    bob = exp_server.participant("bob")
    with pytest.raises(ArenaAPIError) as hidden:
        bob.get_experiment(done.id)
    assert hidden.value.status == 404
    with exp_server.admin() as admin:
        (listed,) = admin.experiments(everyone=True)
        frame = pd.read_parquet(io.BytesIO(admin.export("experiments")))
    assert listed.id == done.id and listed.stdout is None  # lists leave output out
    assert frame.loc[0, "display_name"] == "alice" and frame.loc[0, "status"] == "finished"
    assert json.loads(frame.loc[0, "teacher_eval"])["n_items"] == 600


def test_an_experiment_sees_no_gold_label_and_no_test_split(exp_server):
    eve = exp_server.participant("eve")
    done = eve.wait_experiment(eve.experiment(SNOOP, "rt_sentiment").id, timeout=600)
    assert done.status == "finished", (done.error, done.stdout)
    assert "gold files found: []" in done.stdout
    listing = {line.split(": ", 1)[0]: line.split(": ", 1)[1]
               for line in done.stdout.splitlines() if ": " in line}
    assert ast.literal_eval(listing["bundle"]) == [
        "features", "inputs_test.jsonl", "inputs_train.jsonl", "models.json", "task.json",
        "texts_test.json", "texts_train.json", "weak_soft_labels.npy"]  # no label file but
    # the teacher's own; features of the weak and strong model on train and the held slice
    assert ast.literal_eval(listing["features"]) == [
        "strong_test.npy", "strong_train.npy", "weak_test.npy", "weak_train.npy"]
    assert "'test': 600" in done.stdout  # its `test` is the held-out slice of train
    assert done.teacher_eval is None  # it returned nothing: nothing to compare


def test_experiment_budgets_and_concurrency_hold(exp_server):
    carl = exp_server.participant("carl")
    first = carl.experiment(SLEEP, "rt_sentiment")
    with pytest.raises(ArenaAPIError) as busy:
        carl.experiment(SLEEP, "rt_sentiment")
    assert busy.value.status == 429 and "at once" in busy.value.message
    carl.wait_experiment(first.id, timeout=600)
    second = carl.experiment(SLEEP, "rt_sentiment")
    carl.cancel_experiment(second.id)  # a queued one can be cancelled; it still counts
    carl.wait_experiment(second.id, timeout=600)
    third = carl.wait_experiment(carl.experiment(SLEEP, "rt_sentiment").id, timeout=600)
    assert third.status == "finished"
    with pytest.raises(ArenaAPIError) as daily:
        carl.experiment(SLEEP, "rt_sentiment")
    assert daily.value.status == 429 and "3 of 3" in daily.value.message
    with pytest.raises(ArenaAPIError) as unknown:
        carl.experiment(SLEEP, "no_such_task")
    assert unknown.value.status == 404


def test_the_participant_bundle_download_holds_train_only(exp_server, rt_task):
    ann = exp_server.participant("ann")
    data = ann.participant_bundle("rt_sentiment")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        names = sorted(m.name for m in tar.getmembers())
        meta = json.load(tar.extractfile("bundle/task.json"))
        texts = json.load(tar.extractfile("bundle/texts_train.json"))
    assert "bundle/weak_soft_labels.npy" in names and meta["sizes"]["test"] == 0
    assert texts == [ex.inputs["text"] for ex in rt_task.splits["train"]][:len(texts)]
    train = {ex.inputs["text"] for ex in rt_task.splits["train"]}
    assert not any(ex.inputs["text"].encode() in data for ex in rt_task.splits["test"][:200]
                   if ex.inputs["text"] not in train)
    with pytest.raises(ArenaAPIError) as unknown:
        ann.participant_bundle("no_such_task")
    assert unknown.value.status == 404


def test_an_experiment_lost_with_its_server_is_failed_uncharged_at_restart(exp_server):
    dora = exp_server.participant("dora")
    lost = dora.experiment("import time\n\ndef run(ctx):\n    time.sleep(60)\n", "rt_sentiment")
    deadline = time.monotonic() + 120
    while dora.get_experiment(lost.id).status != "running":
        assert time.monotonic() < deadline, "the experiment never started"
        time.sleep(0.5)
    exp_server.kill()
    exp_server.start()
    after = dora.get_experiment(lost.id)
    assert after.status == "failed" and "server stopped" in after.error
    assert after.wall_seconds == 0
    again = dora.wait_experiment(dora.experiment(SLEEP, "rt_sentiment").id, timeout=600)
    assert again.status == "finished"  # the lost one holds nothing
