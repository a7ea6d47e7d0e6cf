"""Fair-share order, concurrency caps, quota exhaustion with a clear 429, and refunds."""

import time

import pytest

from participants.sdk import ArenaAPIError
from study.records import AttemptStatus
from tests.e2e.conftest import SLEEPY


def test_fair_share_runs_the_least_served_participant_next(server):
    a, b, c = (server.participant(n) for n in ("ann", "ben", "cat"))
    first = a.submit(SLEEPY.format(seconds=2), "rt_sentiment")
    while a.attempt(first.id).status is not AttemptStatus.RUNNING:
        time.sleep(0.05)
    a_second = a.submit(SLEEPY.format(seconds=0), "rt_sentiment")
    b_first = b.submit(SLEEPY.format(seconds=0), "rt_sentiment")
    c_first = c.submit(SLEEPY.format(seconds=0), "rt_sentiment")
    views = {v.id: v for v in (client.wait(x.id, poll=0.1) for client, x in
                               ((a, a_second), (b, b_first), (c, c_first)))}
    order = sorted(views, key=lambda i: views[i].started_at)
    # ann already used compute, so ben and cat (none yet) run before ann's second attempt,
    # although ann queued first.
    assert order[-1] == a_second.id
    assert set(order[:2]) == {b_first.id, c_first.id}
    assert views[b_first.id].started_at < views[c_first.id].started_at  # then queue order


def test_quota_exhaustion_gives_429_with_when_and_cancel_refunds(server):
    eve = server.participant("eve")
    slow = [eve.submit(SLEEPY.format(seconds=30), "rt_sentiment") for _ in range(5)]
    quota = eve.quota()
    assert quota.attempts_left == 0 and quota.next_attempt_at is not None
    with pytest.raises(ArenaAPIError) as info:
        eve.submit(SLEEPY.format(seconds=0), "rt_sentiment")
    err = info.value
    assert err.status == 429 and err.code == "quota_exceeded"
    assert "5 of 5 attempts" in err.message and "returns at" in err.message
    assert err.retry_after is not None and 86000 < err.retry_after <= 86400
    eve.cancel(slow[-1].id)  # a cancelled attempt gives its quota back
    assert eve.quota().attempts_left == 1
    again = eve.submit(SLEEPY.format(seconds=0), "rt_sentiment")
    assert again.status is AttemptStatus.QUEUED
    for view in [*slow[:-1], again]:
        eve.cancel(view.id)


def test_concurrency_cap_with_two_worker_slots(tmp_path, rt_task):
    """Two slots, a cap of one running attempt per participant: fay's three attempts run one
    at a time while gus's attempt takes the other slot."""
    from tests.e2e.conftest import make_server

    live = make_server(tmp_path)
    live.start(slots=2)
    try:
        fay, gus = live.participant("fay"), live.participant("gus")
        ids = [fay.submit(SLEEPY.format(seconds=1), "rt_sentiment").id for _ in range(3)]
        gus_id = gus.submit(SLEEPY.format(seconds=1), "rt_sentiment").id
        fay_running, both = 0, False
        while any(fay.attempt(i).status is not AttemptStatus.SCORED for i in ids):
            states = [fay.attempt(i).status for i in ids]
            fay_running = max(fay_running, states.count(AttemptStatus.RUNNING))
            both |= (AttemptStatus.RUNNING in states
                     and gus.attempt(gus_id).status is AttemptStatus.RUNNING)
            time.sleep(0.05)
        assert fay_running == 1
        assert both  # the second slot served gus meanwhile
    finally:
        live.stop()
