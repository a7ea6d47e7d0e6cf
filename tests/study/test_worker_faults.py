"""Workers that never die silently: a store that fails while recording an outcome is retried
with backoff (the attempt is scored, the worker lives on); an outcome that cannot be recorded
at all leaves the attempt to the stale-heartbeat sweep, which requeues it — never lost.

The faults are injected into the real service (real DuckDB file, real sandboxed runs) by a thin
JobSource that fails `finish` a given number of times before passing it on."""

from __future__ import annotations

import time

import duckdb
import pytest

from runner.scheduler import Scheduler
from study.protocol import load_protocol
from study.records import AttemptStatus, ParticipantSpec, SubmitSpec
from study.server import create_study, open_platform
from tests.conftest import REPO

SMALL = REPO / "tests" / "protocols" / "small.toml"
VANILLA = (REPO / "baselines" / "vanilla.py").read_text()


class FailingFinish:
    """The real service as the scheduler's JobSource, except that `finish` raises the error
    DuckDB raises on a full disk its first `failures` times."""

    def __init__(self, service, failures: int) -> None:
        self.service, self.failures, self.finish_calls = service, failures, 0

    def claim(self):
        return self.service.claim()

    def heartbeat(self, job):
        return self.service.heartbeat(job)

    def requeue_stale(self, older_than_s):
        return self.service.requeue_stale(older_than_s)

    def finish(self, job, result, infra_error):
        self.finish_calls += 1
        if self.finish_calls <= self.failures:
            raise duckdb.IOException('Could not write file "study.duckdb.wal": No space left')
        self.service.finish(job, result, infra_error)


@pytest.fixture
def platform(tmp_path, rt_task):
    data_dir = tmp_path / "study"
    create_study(data_dir, load_protocol(SMALL))
    live = open_platform(data_dir, start_workers=False)
    yield live
    live.close()


def _submit(platform) -> tuple[object, str]:
    issued = platform.service.add_participant(
        ParticipantSpec(display_name="wes", arm="human"), actor=None)
    view, _ = platform.service.submit(issued.participant,
                                      SubmitSpec(task="rt_sentiment", source=VANILLA))
    return issued.participant, view.id


def _wait(predicate, timeout=180.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError("timed out")


def test_a_store_failing_on_finish_twice_then_recovering(platform):
    who, attempt_id = _submit(platform)
    source = FailingFinish(platform.service, failures=2)
    scheduler = Scheduler(source, platform.execute, slots=1)
    scheduler.start()
    try:
        _wait(lambda: platform.service.get_attempt(who, attempt_id).status
              is AttemptStatus.SCORED)
        assert source.finish_calls == 3
        worker = scheduler.workers[0]
        assert scheduler.alive() == [True] and worker.errors == 2
        assert "No space left" in worker.last_error
        # The worker goes on: the next attempt is claimed and scored too.
        second, _ = platform.service.submit(who, SubmitSpec(task="rt_sentiment",
                                                            source=VANILLA, note="next"))
        _wait(lambda: platform.service.get_attempt(who, second.id).status
              is AttemptStatus.SCORED)
    finally:
        scheduler.stop()
    view = platform.service.get_attempt(who, attempt_id)
    assert view.tries == 1  # recorded on a retry of `finish`, not by running it again


def test_an_outcome_that_cannot_be_recorded_is_requeued_never_lost(platform):
    who, attempt_id = _submit(platform)
    # finish fails on every try of the first run; the sweep finds the stale heartbeat,
    # requeues the attempt, and its second run is recorded.
    source = FailingFinish(platform.service, failures=2)
    scheduler = Scheduler(source, platform.execute, slots=1, finish_tries=2,
                          stale_after_s=1.0, sweep_seconds=0.2)
    scheduler.start()
    try:
        _wait(lambda: platform.service.get_attempt(who, attempt_id).status
              is AttemptStatus.SCORED)
    finally:
        scheduler.stop()
    view = platform.service.get_attempt(who, attempt_id)
    assert view.tries == 2 and scheduler.alive() == [False]  # stopped by us, not by a fault
    kinds = [e["kind"] for e in platform.service.store.events()
             if e["attempt_id"] == attempt_id and e["kind"].startswith("attempt_")]
    assert kinds == ["attempt_submitted", "attempt_started", "attempt_requeued",
                     "attempt_started", "attempt_scored"]
    assert platform.service.quota(who).attempts_used == 1
