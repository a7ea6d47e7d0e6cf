"""A log that proves the scores: the chain is keyed (HMAC, key file apart from the DuckDB file),
every scored outcome is a chained event, and `arena audit verify` recomputes the scores and the
leaderboard from the events and names any `attempts` row that disagrees. An edited score, edited
predictions, and an edited event whose later hashes were recomputed are all caught; the server
refuses to start on such a study unless told to."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys

import duckdb
import pytest

from runner.attempt import run_attempt
from runner.method import Budget
from study.audit import GENESIS, KEY_NAME, event_hash, verify_chain
from study.protocol import load_protocol
from study.records import ParticipantSpec, SubmitSpec
from study.server import ChainBrokenError, create_study, db_path, open_platform
from study.service import ArenaService
from study.store import Database, Store
from tests.conftest import REPO

SMALL = REPO / "tests" / "protocols" / "small.toml"
VANILLA = (REPO / "baselines" / "vanilla.py").read_text()


@pytest.fixture(scope="module")
def vanilla_result(tmp_path_factory, rt_task, small_pair):
    """One real sandboxed run of the vanilla baseline (2 seeds, like small.toml)."""
    path = tmp_path_factory.mktemp("method") / "method.py"
    path.write_text(VANILLA)
    result = run_attempt(path, rt_task, seeds=[3, 4], pair=small_pair,
                         budget=Budget(seconds=120, memory_mb=2048))
    assert result.status == "scored", result.error
    return result


def _scored_study(tmp_path, result):
    """A study with one attempt, scored through the service as the runner scores it."""
    data_dir = tmp_path / "study"
    protocol = load_protocol(SMALL)
    create_study(data_dir, protocol)
    db = Database(db_path(data_dir))
    try:
        service = ArenaService(Store(db), protocol)
        issued = service.add_participant(ParticipantSpec(display_name="ann", arm="human"),
                                         actor=None)
        view, _ = service.submit(issued.participant, SubmitSpec(task="rt_sentiment",
                                                                source=VANILLA))
        job = service.claim()
        assert job is not None and job.attempt_id == view.id
        # The server's seeds drive the run; the stored run used its own: relabel them.
        outcomes = [o.model_copy(update={"seed": s}) for o, s in zip(result.outcomes, job.seeds,
                                                                      strict=True)]
        service.finish(job, result.model_copy(update={"seeds": job.seeds,
                                                      "outcomes": outcomes}), None)
        assert service.get_attempt(issued.participant, view.id).status.value == "scored"
    finally:
        db.close()
    return data_dir, view.id


def verify(data_dir, *extra):
    return subprocess.run([sys.executable, "-m", "study.cli", "audit", "verify", "--data-dir",
                           str(data_dir), *extra], capture_output=True, text=True, cwd=REPO,
                          check=False, timeout=120)


def _edit(data_dir, sql, params=()):
    con = duckdb.connect(str(db_path(data_dir)))
    con.execute(sql, list(params))
    con.close()


def test_a_scored_study_verifies_and_its_leaderboard_comes_from_the_chain(tmp_path,
                                                                          vanilla_result):
    data_dir, _ = _scored_study(tmp_path, vanilla_result)
    assert (data_dir / KEY_NAME).stat().st_mode & 0o077 == 0  # the key: owner only
    proc = verify(data_dir)
    assert proc.returncode == 0, proc.stdout
    assert "hmac-sha256" in proc.stdout and "1 attempts agree" in proc.stdout
    pgr = vanilla_result.scores["public"].pgr
    assert f"{pgr:.4f}" in proc.stdout  # the leaderboard line, rebuilt from events


def test_an_edited_score_is_named_and_the_server_refuses_to_start(tmp_path, vanilla_result):
    data_dir, attempt_id = _scored_study(tmp_path, vanilla_result)
    _edit(data_dir, "UPDATE attempts SET public_pgr = 0.99 WHERE id = ?", [attempt_id])
    proc = verify(data_dir)
    assert proc.returncode == 1
    assert f"attempts row {attempt_id} disagrees with the chain on public_pgr" in proc.stdout
    assert "chain intact" in proc.stdout  # the chain itself was not touched
    with pytest.raises(ChainBrokenError, match="public_pgr"):
        open_platform(data_dir, start_workers=False)
    platform = open_platform(data_dir, start_workers=False, allow_broken_chain=True)
    platform.close()


def test_edited_predictions_are_named(tmp_path, vanilla_result):
    data_dir, attempt_id = _scored_study(tmp_path, vanilla_result)
    flipped = (1 - __import__("numpy").frombuffer(
        bytes(duckdb.connect(str(db_path(data_dir)), read_only=True).execute(
            "SELECT probs FROM seed_results WHERE attempt_id = ? ORDER BY seed LIMIT 1",
            [attempt_id]).fetchone()[0]), dtype="float32")).astype("float32").tobytes()
    _edit(data_dir, "UPDATE seed_results SET probs = ? WHERE attempt_id = ? AND seed = "
                    "(SELECT min(seed) FROM seed_results WHERE attempt_id = ?)",
          [flipped, attempt_id, attempt_id])
    proc = verify(data_dir)
    assert proc.returncode == 1 and "on predictions" in proc.stdout


def _rewrite_chain(data_dir, edit, *, key=None) -> list[dict]:
    """Edit event payloads (`edit(id, kind, attempt_id, payload)` → new payload) and recompute
    every hash after them — with the key if given — as a forger would. Returns the rows."""
    con = duckdb.connect(str(db_path(data_dir)))
    rows = con.execute("SELECT id, occurred_at, kind, actor, attempt_id, payload FROM events "
                       "ORDER BY id").fetchall()
    prev = GENESIS
    for event_id, at, kind, actor, att, payload in rows:
        payload = edit(event_id, kind, att, payload)
        digest = event_hash(prev, event_id=event_id, occurred_at=at, kind=kind, actor=actor,
                            attempt_id=att, payload=payload, key=key)
        con.execute("UPDATE events SET payload = ?, prev_hash = ?, hash = ? WHERE id = ?",
                    [payload, prev, digest, event_id])
        prev = digest
    cur = con.execute("SELECT * FROM events ORDER BY id")
    names = [d[0] for d in cur.description]
    out = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    con.close()
    return out


def _raise_score(attempt_id):
    def edit(event_id, kind, att, payload):
        if kind != "attempt_scored" or att != attempt_id:
            return payload
        body = json.loads(payload)
        body["scores"]["public"]["pgr"] = body["public_pgr"] = 0.99
        return json.dumps(body, sort_keys=True)
    return edit


def test_an_edited_event_with_recomputed_hashes_is_caught(tmp_path, vanilla_result):
    data_dir, attempt_id = _scored_study(tmp_path, vanilla_result)
    # Someone with the DuckDB file but not the key: the score in the table and in the chain.
    _edit(data_dir, "UPDATE attempts SET public_pgr = 0.99 WHERE id = ?", [attempt_id])
    rows = _rewrite_chain(data_dir, _raise_score(attempt_id))
    assert verify_chain(rows).ok  # an unkeyed chain would have been fooled
    proc = verify(data_dir)
    assert proc.returncode == 1 and "broken at event 1" in proc.stdout
    assert "without the key" in proc.stdout


def test_a_missing_key_file_is_an_error_not_a_downgrade(tmp_path, vanilla_result):
    data_dir, _ = _scored_study(tmp_path, vanilla_result)
    (data_dir / KEY_NAME).rename(tmp_path / "elsewhere.key")
    proc = verify(data_dir)
    assert proc.returncode == 2 and "key file is missing" in proc.stdout


def test_the_head_anchors_history(tmp_path, vanilla_result):
    data_dir, _ = _scored_study(tmp_path, vanilla_result)
    head = json.loads(subprocess.run(
        [sys.executable, "-m", "study.cli", "audit", "head", "--data-dir", str(data_dir)],
        capture_output=True, text=True, cwd=REPO, check=True, timeout=120).stdout)
    assert head["scheme"] == "hmac-sha256" and len(head["head_hash"]) == 64
    anchor = f"{head['head_id']}:{head['head_hash']}"
    assert verify(data_dir, "--anchor", anchor).returncode == 0
    # Even the key's holder cannot rewrite what was anchored: rehash with the real key.
    key = bytes.fromhex((data_dir / KEY_NAME).read_text().strip())
    forged = json.dumps({"protocol_hash": hashlib.sha256(b"x").hexdigest()})
    _rewrite_chain(data_dir, lambda i, kind, att, payload: forged if i == 1 else payload,
                   key=key)
    assert verify(data_dir).returncode == 0  # the key's holder fools the chain alone ...
    proc = verify(data_dir, "--anchor", anchor)
    # ... but not the anchor:
    assert proc.returncode == 1 and "no longer carries the anchored hash" in proc.stdout
