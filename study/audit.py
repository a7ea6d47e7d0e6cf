"""The append-only event log is a keyed hash chain: each row's hash is an HMAC (with a secret
made at study creation and kept in a file apart from the DuckDB file) over its content and the
hash of the row before it. Editing, deleting or inserting a row shows — and so does editing a
row and recomputing every later hash, which a plain sha256 chain could not catch: without the
key nobody can compute a valid hash. Studies made before keys existed keep a plain sha256 chain.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import os
import secrets
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from study.errors import ArenaError
from study.tasks.records import canonical_json

GENESIS = "0" * 64
KEY_NAME = "audit.key"
KEY_ENV = "ARENA_AUDIT_KEY_FILE"  # put the key on another disk, or in a secrets mount
SCHEMES = ("sha256", "hmac-sha256")


class ChainKeyError(ArenaError):
    """The study's chain is keyed but its key file is missing or unreadable."""

    code = "chain_key"


def key_path(data_dir: Path) -> Path:
    configured = os.environ.get(KEY_ENV)
    return Path(configured) if configured else Path(data_dir) / KEY_NAME


def make_key(data_dir: Path) -> Path:
    """A fresh 256-bit secret, readable by the server's user only. Never overwrites one."""
    path = key_path(data_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(secrets.token_hex(32) + "\n")
    return path


def load_key(data_dir: Path) -> bytes | None:
    path = key_path(data_dir)
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ChainKeyError(f"cannot read the audit key {path}: {exc}") from None
    try:
        return bytes.fromhex(text)
    except ValueError:
        raise ChainKeyError(f"the audit key {path} is not hex") from None


def event_hash(prev_hash: str, *, event_id: int, occurred_at: dt.datetime, kind: str,
               actor: str | None, attempt_id: str | None, payload: str,
               key: bytes | None = None) -> str:
    body = canonical_json([event_id, occurred_at.astimezone(dt.UTC).isoformat(), kind, actor,
                           attempt_id, payload])
    message = f"{prev_hash}|{body}".encode()
    if key is None:
        return hashlib.sha256(message).hexdigest()
    return hmac.new(key, message, hashlib.sha256).hexdigest()


class ChainReport(BaseModel):
    events: int
    ok: bool
    scheme: str = "sha256"
    head_id: int | None = None
    head_hash: str | None = None
    broken_at: int | None = None
    problem: str | None = None


class ChainHead(BaseModel):
    """What to anchor outside the study (a ticket, a mail, a public log): with it, even the
    holder of the key cannot later rewrite history before this event unnoticed."""

    scheme: str
    events: int
    head_id: int | None
    head_hash: str
    occurred_at: dt.datetime | None


def chain_key(scheme: str, key: bytes | None) -> bytes | None:
    """The key to verify with. A key file always wins: deleting the scheme's row cannot turn
    a keyed chain into a plain one that anyone can recompute."""
    if key is None and scheme == "hmac-sha256":
        raise ChainKeyError(f"this study's chain is keyed but its key file is missing "
                            f"(set {KEY_ENV} if it lives elsewhere)")
    return key


def verify_chain(rows: list[dict[str, Any]], *, key: bytes | None = None,
                 scheme: str = "sha256") -> ChainReport:
    """Rows in id order; the first row whose link or content does not check out is reported."""
    prev = GENESIS
    used = "hmac-sha256" if key is not None else scheme
    for row in rows:
        if row["prev_hash"] != prev:
            return ChainReport(events=len(rows), ok=False, scheme=used, broken_at=row["id"],
                               problem="its link to the previous event does not match: an "
                                       "event before it was deleted, inserted or edited")
        expected = event_hash(prev, event_id=row["id"], occurred_at=row["occurred_at"],
                              kind=row["kind"], actor=row["actor"], attempt_id=row["attempt_id"],
                              payload=row["payload"], key=key)
        if not hmac.compare_digest(row["hash"] or "", expected):
            return ChainReport(events=len(rows), ok=False, scheme=used, broken_at=row["id"],
                               problem="its content does not match its hash: the row was "
                                       "edited, or the chain was recomputed without the key")
        prev = row["hash"]
    return ChainReport(events=len(rows), ok=True, scheme=used,
                       head_id=rows[-1]["id"] if rows else None, head_hash=prev)


def chain_head(rows: list[dict[str, Any]], scheme: str) -> ChainHead:
    last = rows[-1] if rows else None
    return ChainHead(scheme=scheme, events=len(rows), head_id=last["id"] if last else None,
                     head_hash=last["hash"] if last else GENESIS,
                     occurred_at=last["occurred_at"] if last else None)


def check_anchor(rows: list[dict[str, Any]], anchor: str) -> str | None:
    """`ID:HASH` from an earlier `arena audit head`: None if that event still carries that
    hash, else the problem."""
    event_id, _, digest = anchor.partition(":")
    if not event_id.isdigit() or not digest:
        return f"an anchor is ID:HASH, got {anchor!r}"
    row = next((r for r in rows if r["id"] == int(event_id)), None)
    if row is None:
        return f"event {event_id} of the anchor is missing"
    if not hmac.compare_digest(row["hash"] or "", digest):
        return f"event {event_id} no longer carries the anchored hash: history was rewritten"
    return None
