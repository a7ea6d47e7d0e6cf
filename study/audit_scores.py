"""Scores proved by the chain: every scored outcome is an event (code hash, seeds, per-part PGR
and accuracy, the predictions' hash), so the leaderboard and every figure built on `attempts`
can be recomputed from the chained events alone, and any row that disagrees is named.

An edit to a score in `attempts` (or to the stored predictions) leaves the chain intact but
disagrees with it; an edit to the chain itself breaks the keyed hashes (study.audit).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from study.audit import ChainReport, verify_chain

PARTS = ("public", "private", "all")
FIGURES = ("pgr", "pgr_se", "accuracy", "n")
# Events that set an attempt's status, and the status each leaves it in.
STATUS_EVENTS = {"attempt_submitted": "queued", "attempt_started": "running",
                 "attempt_requeued": "queued", "attempt_scored": "scored",
                 "attempt_failed": "failed", "attempt_timed_out": "timed_out",
                 "attempt_cancelled": "cancelled", "attempt_failed_infrastructure": "failed"}
COLUMNS = {("public", "pgr"): "public_pgr", ("public", "pgr_se"): "public_pgr_se",
           ("public", "accuracy"): "public_accuracy", ("private", "pgr"): "private_pgr",
           ("private", "pgr_se"): "private_pgr_se", ("private", "accuracy"): "private_accuracy"}


def probs_digest(blobs: Iterable[bytes | None]) -> str:
    """sha256 over the per-seed float32 predictions, in seed order, length-prefixed."""
    digest = hashlib.sha256()
    for blob in blobs:
        data = blob or b""
        digest.update(len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def score_record(scores: dict[str, dict[str, Any]], *, probs_sha256: str | None,
                 code_sha256: str | None = None, seeds: list[int] | None = None) -> dict:
    """The payload of a scored (or re-scored) event: what the leaderboard is built from."""
    return {"code_sha256": code_sha256, "seeds": seeds, "probs_sha256": probs_sha256,
            "scores": {part: {k: scores[part].get(k) for k in FIGURES}
                       for part in PARTS if part in scores}}


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, float | int) and isinstance(b, float | int):
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return a == b


@dataclass
class Proved:
    """What the chain says of one attempt."""

    participant_id: str | None = None
    task: str | None = None
    code_sha256: str | None = None
    status: str | None = None
    record: dict | None = None  # the last score record (scored or re-scored)
    released: bool = True
    disqualified: bool = False
    scored_at: Any = None


@dataclass
class Replay:
    attempts: dict[str, Proved] = field(default_factory=dict)

    def apply(self, event: dict[str, Any]) -> None:
        attempt_id, kind = event["attempt_id"], event["kind"]
        if attempt_id is None:
            return
        payload = json.loads(event["payload"])
        proved = self.attempts.setdefault(attempt_id, Proved())
        if kind == "attempt_submitted":
            proved.participant_id, proved.task = event["actor"], payload.get("task")
            proved.code_sha256 = payload.get("code_sha256")
        elif kind == "attempt_imported":
            proved.participant_id, proved.task = payload.get("participant"), payload.get("task")
            proved.code_sha256 = payload.get("code_sha256")
        if kind in STATUS_EVENTS:
            proved.status = STATUS_EVENTS[kind]
        scoring = ("attempt_scored", "attempt_imported", "attempt_rescored")
        if kind in scoring and "scores" in payload:
            proved.record = payload
            if kind != "attempt_rescored":
                proved.status, proved.scored_at = "scored", event["occurred_at"]
        elif kind == "score_withheld":
            proved.released = False
        elif kind == "attempt_disqualified":
            proved.disqualified = True


class Disagreement(BaseModel):
    attempt_id: str
    field: str
    table: Any = None
    chain: Any = None


class ScoreReport(BaseModel):
    attempts_checked: int
    ok: bool
    disagreements: list[Disagreement] = []
    leaderboards: dict[str, list[dict[str, Any]]] = {}  # recomputed from the chain, per task


def _compare_row(row: dict[str, Any], proved: Proved | None,
                 digest: str | None) -> list[Disagreement]:
    attempt_id = row["id"]
    if proved is None or proved.status is None:
        return [Disagreement(attempt_id=attempt_id, field="(row)", table=row["status"],
                             chain="no event of this attempt")]
    out = []

    def check(name: str, table: Any, chain: Any) -> None:
        if not _same(table, chain):
            out.append(Disagreement(attempt_id=attempt_id, field=name, table=table,
                                    chain=chain))

    check("status", row["status"], proved.status)
    check("participant_id", row["participant_id"], proved.participant_id)
    check("code_sha256", row["code_sha256"], proved.code_sha256)
    check("released", row.get("released") is not False, proved.released)
    check("disqualified", bool(row.get("disqualified")), proved.disqualified)
    record = proved.record if proved.status == "scored" else None
    if proved.status == "scored" and record is None:
        out.append(Disagreement(attempt_id=attempt_id, field="scores", table="scored",
                                chain="no score record"))
        return out
    scores = (record or {}).get("scores", {})
    for (part, figure), column in COLUMNS.items():
        check(column, row.get(column), scores.get(part, {}).get(figure))
    if record is not None:
        table_scores = json.loads(row["scores_json"]) if row.get("scores_json") else {}
        for part in PARTS:
            for figure in FIGURES:
                check(f"scores_json.{part}.{figure}", table_scores.get(part, {}).get(figure),
                      scores.get(part, {}).get(figure))
        if record.get("seeds") is not None:
            check("seeds", json.loads(row["seeds"]), record["seeds"])
        if record.get("probs_sha256") is not None:  # None: imported, no predictions
            check("predictions", digest, record["probs_sha256"])
    return out


def leaderboard(replay: Replay, task: str) -> list[dict[str, Any]]:
    """Best released, not disqualified, public PGR per participant — from the chain alone."""
    best: dict[str, tuple[float, Any, str]] = {}
    for attempt_id, p in replay.attempts.items():
        pgr = ((p.record or {}).get("scores", {}).get("public", {}) or {}).get("pgr")
        if (p.task != task or p.status != "scored" or pgr is None or not p.released
                or p.disqualified or p.participant_id is None):
            continue
        current = best.get(p.participant_id)
        if current is None or (pgr, -p.scored_at.timestamp()) > (
                current[0], -current[1].timestamp()):
            best[p.participant_id] = (pgr, p.scored_at, attempt_id)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1][0], kv[1][1]))
    return [{"rank": i, "participant_id": pid, "attempt_id": aid, "best_pgr": pgr}
            for i, (pid, (pgr, _, aid)) in enumerate(ranked, 1)]


def verify_scores(events: list[dict[str, Any]], attempts: list[dict[str, Any]],
                  digests: dict[str, str], tasks: list[str]) -> ScoreReport:
    """Replay the chain, then hold every `attempts` row (and its stored predictions' hash,
    `digests`) against it. Rows of attempts the chain does not know are named too."""
    replay = Replay()
    for event in events:
        replay.apply(event)
    found: list[Disagreement] = []
    for row in attempts:
        found += _compare_row(row, replay.attempts.get(row["id"]), digests.get(row["id"]))
    boards = {task: leaderboard(replay, task) for task in tasks}
    return ScoreReport(attempts_checked=len(attempts), ok=not found, disagreements=found,
                       leaderboards=boards)


class AuditReport(BaseModel):
    """`arena audit verify` and GET /v1/admin/audit: the chain, then the scores it proves."""

    ok: bool
    chain: ChainReport
    scores: ScoreReport | None = None  # not checked when the chain itself is broken


def verify_study(store, tasks: list[str]) -> AuditReport:
    """The whole check over one study's store (a study.store.Store)."""
    events = store.events()
    chain = verify_chain(events, key=store.chain_key, scheme=store.chain_scheme)
    if not chain.ok:
        return AuditReport(ok=False, chain=chain)
    digests: dict[str, list[bytes | None]] = {}
    for row in store.db.rows("SELECT attempt_id, probs FROM seed_results "
                             "ORDER BY attempt_id, seed"):
        digests.setdefault(row["attempt_id"], []).append(row["probs"])
    attempts = store.db.rows("SELECT * FROM attempts ORDER BY submitted_at, id")
    scores = verify_scores(events, attempts,
                           {row["id"]: probs_digest(digests.get(row["id"], []))
                            for row in attempts}, tasks)
    return AuditReport(ok=scores.ok, chain=chain, scores=scores)
