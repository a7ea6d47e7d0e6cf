"""Feedback policy and review flags applied when an attempt is scored: the Ladder, the probe
detector, the static scan. Each writes inside the caller's transaction."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from study.feedback import coarse_public_pgr
from study.protocol import Feedback
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


def _public_diff(cur, other_id: str, mine: np.ndarray, public: np.ndarray) -> int | None:
    other = _stored_probs(cur, other_id)
    if not other or len(other[0]) != len(mine):
        return None
    return int((hard_predictions(other)[public] != mine[public]).sum())


def flag_probing(store: Store, cur, *, row: dict[str, Any], probs: list[np.ndarray],
                 feedback: Feedback, public: np.ndarray | None) -> None:
    """The probe detector, on *public* items only (private flips are free padding).

    A pair of one participant's attempts differing on 1..probe_max_diff public items is
    flagged `probing`: flipping single predictions to read labels off the public score. An
    attempt within probe_chain_items public items of its author's nearest earlier attempt is a
    small step; the probe_chain_length-th small step and every one after it is flagged
    `probing_chain`, which catches a campaign that pads each probe past probe_max_diff.
    """
    if not probs:
        return
    mine = hard_predictions(probs)
    if public is None or len(public) != len(mine):
        public = np.ones(len(mine), dtype=bool)  # no split known: compare every item
    earlier = cur.execute(
        "SELECT id FROM attempts WHERE participant_id = ? AND task = ? AND status = 'scored' "
        "AND id <> ? ORDER BY finished_at, id",
        [row["participant_id"], row["task"], row["id"]]).fetchall()
    nearest: tuple[int, str] | None = None
    for (other_id,) in earlier:
        differing = _public_diff(cur, other_id, mine, public)
        if not differing:
            continue  # identical public predictions, or none stored: nothing to learn
        if differing <= feedback.probe_max_diff:
            add_flag(store, cur, attempt_id=row["id"], participant_id=row["participant_id"],
                     kind="probing", other_attempt=other_id, differing_items=differing)
        if nearest is None or differing < nearest[0]:
            nearest = (differing, other_id)
    if nearest is not None and nearest[0] <= feedback.probe_chain_items:
        _small_step(store, cur, row=row, nearest=nearest, chain_length=feedback.probe_chain_length)


def _small_step(store: Store, cur, *, row: dict[str, Any], nearest: tuple[int, str],
                chain_length: int) -> None:
    cur.execute("INSERT INTO probe_steps VALUES (?, ?, ?, ?, ?, ?)",
                [row["id"], row["participant_id"], row["task"], nearest[1], nearest[0],
                 utcnow()])
    steps = cur.execute("SELECT count(*) FROM probe_steps WHERE participant_id = ? AND "
                        "task = ?", [row["participant_id"], row["task"]]).fetchone()[0]
    if steps >= chain_length:
        add_flag(store, cur, attempt_id=row["id"], participant_id=row["participant_id"],
                 kind="probing_chain", small_steps=int(steps), nearest_attempt=nearest[1],
                 differing_public_items=nearest[0])


def ladder_release(cur, *, row: dict[str, Any], scores_json: str | None,
                   feedback: Feedback) -> bool:
    """Blum & Hardt's Ladder: release a new public score only if it beats the participant's
    best released one by `ladder_margin`; without a margin every score is released. Both
    sides are the coarse scores participants see (study.feedback), so the release bit is no
    finer than the display."""
    step = feedback.public_step_items
    mine = coarse_public_pgr(scores_json, step)
    if feedback.ladder_margin is None or mine is None:
        return True
    released = cur.execute(
        "SELECT scores_json FROM attempts WHERE participant_id = ? AND task = ? AND "
        "status = 'scored' AND released AND id <> ?",
        [row["participant_id"], row["task"], row["id"]]).fetchall()
    best = max((v for (js,) in released if (v := coarse_public_pgr(js, step)) is not None),
               default=None)
    return best is None or mine > best + feedback.ladder_margin + 1e-12
