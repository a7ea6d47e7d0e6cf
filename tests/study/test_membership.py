"""Which test items are public is decided by a secret made with the study, not by anything a
method can read (the task's content hash is in no path a method sees any more, and no longer
decides membership either)."""

import re

import numpy as np

from study.membership import ensure_membership_salt
from study.protocol import load_protocol
from study.scoring import public_mask
from study.server import create_study, db_path
from study.store import Database
from tests.conftest import REPO


def test_the_salt_is_secret_random_and_stable(tmp_path, rt_task):
    create_study(tmp_path / "a", load_protocol(REPO / "tests" / "protocols" / "small.toml"))
    create_study(tmp_path / "b", load_protocol(REPO / "tests" / "protocols" / "small.toml"))
    salts = []
    for name in ("a", "b"):
        db = Database(db_path(tmp_path / name))
        try:
            salts.append(ensure_membership_salt(db))
            assert ensure_membership_salt(db) == salts[-1]  # made once, then kept
        finally:
            db.close()
    assert all(re.fullmatch(r"[0-9a-f]{64}", s) for s in salts) and salts[0] != salts[1]
    assert rt_task.info.content_hash not in salts


def test_the_old_recomputation_agrees_only_by_chance(rt_task):
    """The attack of the issue: the mask recomputed from the task hash matched 2,000 of 2,000
    items. Against a secret salt it matches about half, as a coin would."""
    uids = [ex.uid for ex in rt_task.splits["test"]]
    server = public_mask(uids, "ab" * 32, 0.5)
    attacker = public_mask(uids, rt_task.info.content_hash, 0.5)
    agreement = float((server == attacker).mean())
    assert 0.45 < agreement < 0.55, agreement
    assert 0.45 < server.mean() < 0.55
    assert not np.array_equal(server, attacker)
