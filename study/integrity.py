"""Feedback policy and review flags applied when an attempt is scored: the Ladder, the probe
detector, the static scan. Each writes inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from study.static_scan import scan_source
from study.store import utcnow
from study.store.queries import Store, new_id


def add_flag(store: Store, cur, *, attempt_id: str, participant_id: str, kind: str,
             **detail: Any) -> None:
    cur.execute("INSERT INTO flags VALUES (?, ?, ?, ?, ?, ?)",
                [new_id("flag"), attempt_id, participant_id, kind,
                 json.dumps(detail, default=str), utcnow()])
    store.append_event(cur, "attempt_flagged", attempt_id=attempt_id, flag=kind, **detail)


def flag_static_scan(store: Store, cur, *, attempt_id: str, participant_id: str,
                     source: str) -> None:
    findings = scan_source(source)
    if findings:
        add_flag(store, cur, attempt_id=attempt_id, participant_id=participant_id,
                 kind="static_scan", findings=[f.model_dump() for f in findings])


def hard_predictions(probs: list[np.ndarray]) -> np.ndarray:
    return np.mean(np.stack(probs), axis=0) >= 0.5


def _stored_probs(cur, attempt_id: str) -> list[np.ndarray]:
    rows = cur.execute("SELECT probs FROM seed_results WHERE attempt_id = ? AND probs IS NOT "
                       "NULL ORDER BY seed", [attempt_id]).fetchall()
    return [np.frombuffer(r[0], dtype=np.float32) for r in rows]


def flag_probing(store: Store, cur, *, row: dict[str, Any], probs: list[np.ndarray],
                 max_diff: int) -> None:
    """Flag pairs of one participant's attempts whose predictions differ on 1..max_diff items:
    the signature of flipping single predictions to read labels off the public score."""
    if max_diff <= 0 or not probs:
        return
    mine = hard_predictions(probs)
    earlier = cur.execute(
        "SELECT id FROM attempts WHERE participant_id = ? AND task = ? AND status = 'scored' "
        "AND id <> ?", [row["participant_id"], row["task"], row["id"]]).fetchall()
    for (other_id,) in earlier:
        other = _stored_probs(cur, other_id)
        if not other or len(other[0]) != len(mine):
            continue
        differing = int((hard_predictions(other) != mine).sum())
        if 0 < differing <= max_diff:
            add_flag(store, cur, attempt_id=row["id"], participant_id=row["participant_id"],
                     kind="probing", other_attempt=other_id, differing_items=differing)


def ladder_release(cur, *, row: dict[str, Any], public_pgr: float | None,
                   margin: float | None) -> bool:
    """Blum & Hardt's Ladder: release a new public score only if it beats the participant's
    best released one by `margin`; without a margin every score is released."""
    if margin is None or public_pgr is None:
        return True
    best = cur.execute(
        "SELECT max(public_pgr) FROM attempts WHERE participant_id = ? AND task = ? AND "
        "status = 'scored' AND released AND id <> ?",
        [row["participant_id"], row["task"], row["id"]]).fetchone()[0]
    return best is None or public_pgr > best + margin
