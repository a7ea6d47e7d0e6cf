"""The status poll's remembered reads (study.read_cache) never show what is no longer true: an
attempt read from memory reflects every write that has committed, a write not yet committed
(or rolled back) is never remembered, and a remembered credential stops working the moment its
token is revoked, its session ended, or it expires. Real service, real DuckDB file."""

from __future__ import annotations

import datetime as dt

import pytest

from study.errors import AuthError
from study.protocol import load_protocol
from study.records import AttemptStatus, ParticipantSpec, Role, SubmitSpec
from study.server import create_study, open_platform
from study.service import hash_token
from tests.conftest import REPO

SMALL = REPO / "tests" / "protocols" / "small.toml"
VANILLA = (REPO / "baselines" / "vanilla.py").read_text()


@pytest.fixture
def service(tmp_path, rt_task):
    data_dir = tmp_path / "study"
    create_study(data_dir, load_protocol(SMALL))
    live = open_platform(data_dir, start_workers=False)
    yield live.service
    live.close()


def _participant(service, name: str, hours: float | None = None):
    issued = service.add_participant(ParticipantSpec(display_name=name, arm="human"),
                                     actor=None)
    if hours is None:
        return issued.participant, issued.token
    token = service.issue_token(issued.participant.id, hours=hours, actor=None)
    return issued.participant, token


def _submit(service, who, note: str) -> str:
    view, _ = service.submit(who, SubmitSpec(task="rt_sentiment", source=VANILLA, note=note))
    return view.id


def test_a_remembered_attempt_shows_every_committed_change(service):
    ann, _ = _participant(service, "ann")
    bob, _ = _participant(service, "bob")
    first, second = _submit(service, ann, "first"), _submit(service, bob, "second")
    for _ in range(2):  # the second read of each comes from memory
        assert service.get_attempt(ann, first).queue_position == 1
        assert service.get_attempt(bob, second).queue_position == 2
    service.cancel(ann, first)  # the queue moves: bob's remembered position must too
    assert service.get_attempt(ann, first).status is AttemptStatus.CANCELLED
    assert service.get_attempt(bob, second).queue_position == 1
    job = service.claim()  # a worker takes bob's attempt (a write outside any request)
    assert job is not None
    running = service.get_attempt(bob, second)
    assert running.status is AttemptStatus.RUNNING and running.queue_position is None
    admin = service.add_participant(ParticipantSpec(display_name="ada", role=Role.ADMIN),
                                    actor=None).participant
    service.disqualify(admin, second, reason="test")
    assert service.get_attempt(bob, second).disqualified
    # The list and the single view agree on positions (the list asks for all in one query).
    third, fourth = _submit(service, ann, "third"), _submit(service, ann, "fourth")
    listed = {v.id: v.queue_position for v in service.list_attempts(ann)}
    assert listed[third] == service.get_attempt(ann, third).queue_position == 1
    assert listed[fourth] == service.get_attempt(ann, fourth).queue_position == 2


def test_uncommitted_and_rolled_back_writes_are_never_remembered(service):
    cy, _ = _participant(service, "cy")
    attempt_id = _submit(service, cy, "kept")
    assert service.get_attempt(cy, attempt_id).note == "kept"
    db = service.store.db
    with pytest.raises(RuntimeError), db.transaction() as cur:
        cur.execute("UPDATE attempts SET note = 'never committed' WHERE id = ?", [attempt_id])
        # This thread sees its own uncommitted write; it must not be kept for others.
        assert service.get_attempt(cy, attempt_id).note == "never committed"
        raise RuntimeError("roll it back")
    assert service.get_attempt(cy, attempt_id).note == "kept"
    with db.transaction() as cur:
        cur.execute("UPDATE attempts SET note = 'edited' WHERE id = ?", [attempt_id])
    assert service.get_attempt(cy, attempt_id).note == "edited"


def test_a_transaction_that_only_reads_keeps_what_is_remembered(service):
    """An idle worker's claim (a transaction that finds nothing) runs four times a second; it
    must not empty the cache, while any write must."""
    dan, _ = _participant(service, "dan")
    attempt_id = _submit(service, dan, "one")
    service.claim()  # takes it: a write
    before = service.store.db.commits
    assert service.claim() is None  # nothing left to claim: reads only
    with service.store.db.transaction() as cur:
        cur.execute("SELECT count(*) FROM attempts").fetchall()
    assert service.store.db.commits == before
    with service.store.db.transaction() as cur:
        cur.execute("select 1; UPDATE attempts SET note = 'two' WHERE id = ?", [attempt_id])
    assert service.store.db.commits == before + 1
    assert service.get_attempt(dan, attempt_id).note == "two"


def test_a_remembered_token_dies_when_revoked(service):
    dee, token = _participant(service, "dee", hours=24)
    assert service.authenticate(token.token).id == dee.id
    assert service.known_principal(token.token) is not None  # remembered: no query
    service.revoke_token(token.token_id, actor=None)
    assert service.known_principal(token.token) is None
    with pytest.raises(AuthError, match="revoked"):
        service.authenticate(token.token)


def test_a_remembered_token_is_refused_once_it_expires(service):
    eve, token = _participant(service, "eve", hours=1)
    assert service.authenticate(token.token).id == eve.id
    assert service.known_principal(token.token) is not None
    later = dt.datetime.now(dt.UTC) + dt.timedelta(hours=2)
    service.clock = lambda: later
    assert service.known_principal(token.token) is None
    with pytest.raises(AuthError, match="expired"):
        service.authenticate(token.token)


def test_a_remembered_session_dies_when_ended_or_its_token_revoked(service):
    fay, token = _participant(service, "fay", hours=24)
    ended = service.open_web_session(token.token).session
    assert service.authenticate(ended).id == fay.id
    service.end_web_session(ended)
    with pytest.raises(AuthError, match="ended"):
        service.authenticate(ended)
    orphaned = service.open_web_session(token.token).session
    assert service.authenticate(orphaned).id == fay.id
    service.revoke_token(token.token_id, actor=None)
    with pytest.raises(AuthError, match="revoked"):
        service.authenticate(orphaned)


def test_a_credential_read_before_a_revocation_is_not_kept(service):
    """A request that read the token just before the revocation committed finishes after it:
    what it read must not be remembered for the next request."""
    _, token = _participant(service, "gus", hours=24)
    epoch = service.credentials.epoch
    principal, ends = service._token_principal(hash_token(token.token))  # read, then...
    service.revoke_token(token.token_id, actor=None)  # ...the revocation commits
    service.credentials.put(hash_token(token.token), epoch, principal, ends)  # read lands
    assert service.known_principal(token.token) is None
    with pytest.raises(AuthError, match="revoked"):
        service.authenticate(token.token)


def test_a_write_outside_a_transaction_also_makes_remembered_reads_stale(service):
    ann, _ = _participant(service, "ann")
    first = _submit(service, ann, "first")
    for _ in range(2):
        assert service.get_attempt(ann, first).note == "first"
    # An autocommit write (no transaction()): the cache trusts the commit count alone.
    service.store.db.rows("UPDATE attempts SET note = ? WHERE id = ?", ["edited", first])
    assert service.get_attempt(ann, first).note == "edited"
