"""The append-only event log is a hash chain: each row's hash covers its content and the hash
of the row before it, so editing, deleting or inserting a row outside the server shows."""

from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from pydantic import BaseModel

from study.tasks.records import canonical_json

GENESIS = "0" * 64


def event_hash(prev_hash: str, *, event_id: int, occurred_at: dt.datetime, kind: str,
               actor: str | None, attempt_id: str | None, payload: str) -> str:
    body = canonical_json([event_id, occurred_at.astimezone(dt.UTC).isoformat(), kind, actor,
                           attempt_id, payload])
    return hashlib.sha256(f"{prev_hash}|{body}".encode()).hexdigest()


class ChainReport(BaseModel):
    events: int
    ok: bool
    broken_at: int | None = None
    problem: str | None = None


def verify_chain(rows: list[dict[str, Any]]) -> ChainReport:
    """Rows in id order; the first row whose link or content does not check out is reported."""
    prev = GENESIS
    for row in rows:
        if row["prev_hash"] != prev:
            return ChainReport(events=len(rows), ok=False, broken_at=row["id"],
                               problem="its link to the previous event does not match: an "
                                       "event before it was deleted, inserted or edited")
        expected = event_hash(prev, event_id=row["id"], occurred_at=row["occurred_at"],
                              kind=row["kind"], actor=row["actor"], attempt_id=row["attempt_id"],
                              payload=row["payload"])
        if row["hash"] != expected:
            return ChainReport(events=len(rows), ok=False, broken_at=row["id"],
                               problem="its content does not match its hash: the row was edited")
        prev = row["hash"]
    return ChainReport(events=len(rows), ok=True)
