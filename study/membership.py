"""Which test items are public: decided by a secret salt made when the study is created.

The salt used to be the task's content hash, which is also in the bundle folder's name, and item
uids are hashes of inputs every method can read: a method recomputed the split exactly and
could then spend its probes on public items only (and pad them with free private flips). The
salt is now 256 random bits kept in the study file and nowhere else: not in an export, a bundle,
a response, or any path a method can see.
"""

from __future__ import annotations

import logging
import secrets

from study.store import Database

log = logging.getLogger("w2s_arena.membership")


def ensure_membership_salt(db: Database, *, new_study: bool = False) -> str:
    """The study's salt, made now if it has none: at creation, or for a study created before
    salts existed (then attempts already scored used the old split, which is logged)."""
    with db.transaction() as cur:
        row = cur.execute("SELECT membership_salt FROM study WHERE id = 1").fetchone()
        if row is None:
            raise LookupError("the database holds no study")
        if row[0]:
            return row[0]
        salt = secrets.token_hex(32)
        cur.execute("UPDATE study SET membership_salt = ? WHERE id = 1", [salt])
    if not new_study:
        log.warning("the study had no membership salt; made one now (public/private "
                    "membership of attempts scored before this differs from what is recorded)")
    return salt
