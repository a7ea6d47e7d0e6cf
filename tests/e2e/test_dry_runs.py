"""Dry runs are stored: an idempotency key keeps its run across a server restart (a harness
that resumes after both crashed is not charged twice), a key reused with another request is a
409, a run the server lost to a kill -9 says so and is not run again, and analysts get each dry
run's cpu and slot seconds in the `dry_runs` export."""

from __future__ import annotations

import contextlib
import io
import threading

import pandas as pd
import pytest

from participants.sdk import ArenaAPIError, ArenaClient
from tests.e2e.conftest import SLEEPY, wait_for
from tests.e2e.test_crash_recovery import method_pids

QUICK = SLEEPY.format(seconds=0)


def _exported(server) -> pd.DataFrame:
    with server.admin() as admin:
        return pd.read_parquet(io.BytesIO(admin.export("dry_runs")))


def test_a_dry_run_key_outlives_a_restart_and_its_compute_is_stored(server):
    client = server.participant("keeper", arm="ai", kind="agent")
    first = client.dry_run(QUICK, "rt_sentiment", idempotency_key="turn-7:toolu_1")
    assert first.ok and first.cpu_seconds is not None and first.cpu_seconds > 0
    server.stop()
    server.start()
    client = ArenaClient(server.url, client.token)
    again = client.dry_run(QUICK, "rt_sentiment", idempotency_key="turn-7:toolu_1")
    assert again == first  # the stored answer, not a second run
    with pytest.raises(ArenaAPIError) as reused:
        client.dry_run(SLEEPY.format(seconds=1), "rt_sentiment",
                       idempotency_key="turn-7:toolu_1")
    assert reused.value.status == 409 and "different request" in reused.value.message
    (row,) = _exported(server).itertuples()
    assert (row.status, row.idempotency_key, row.arm, row.task) == (
        "ok", "turn-7:toolu_1", "ai", "rt_sentiment")
    assert row.cpu_seconds == pytest.approx(first.cpu_seconds)
    assert row.slot_seconds == pytest.approx(first.wall_seconds)
    assert row.created_at <= row.finished_at
    assert client.dry_run(QUICK, "rt_sentiment").ok  # 2 of 3 a day: the resend was free
    assert client.dry_run(QUICK, "rt_sentiment").ok
    with pytest.raises(ArenaAPIError) as capped:
        client.dry_run(QUICK, "rt_sentiment")
    assert capped.value.status == 429 and "3 of 3" in capped.value.message


def test_a_dry_run_the_server_lost_says_so_and_is_not_run_again(server):
    client = server.participant("unlucky", arm="ai", kind="agent")
    quiet = ArenaClient(server.url, client.token, retries=0)
    caller = threading.Thread(target=lambda: _ignore_errors(
        quiet.dry_run, SLEEPY.format(seconds=60), "rt_sentiment", idempotency_key="lost-1"),
        daemon=True)
    caller.start()
    wait_for(lambda: _exported(server).status.tolist() == ["running"])
    wait_for(method_pids)  # machine-wide (other sessions' runs too): a best effort
    server.kill()
    server.start()
    client = ArenaClient(server.url, client.token)
    view = client.dry_run(SLEEPY.format(seconds=60), "rt_sentiment", idempotency_key="lost-1")
    assert not view.ok and "server stopped while this dry run ran" in view.error
    (row,) = _exported(server).itertuples()  # answered from the record: no second run
    assert row.status == "lost" and pd.isna(row.cpu_seconds) and row.finished_at is not None


def _ignore_errors(fn, *args, **kwargs) -> None:
    with contextlib.suppress(Exception):  # the server is killed under this call, on purpose
        fn(*args, **kwargs)
