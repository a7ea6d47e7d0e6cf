"""Operations through the real door: health that reports, long-polls that answer on a change,
HTTP hygiene (409 for a reused key, Retry-After rounded up, errors in the OpenAPI spec, body
limits from the source limit), the disk floor (507), compute reserved at submit and settled in
slot time, dry runs admitted onto their own lane, amendments that reach the workers."""

from __future__ import annotations

import concurrent.futures as cf
import datetime as dt
import os
import subprocess
import sys
import time

import httpx
import pytest

from participants.sdk import ArenaAPIError
from study.api import error_response
from study.errors import QuotaError
from study.records import AttemptStatus
from tests.conftest import REPO
from tests.e2e.conftest import SLEEPY, SMALL, VANILLA, make_server, wait_for
from tests.study.test_workspace_api import WATCHED  # reports progress every 0.4 s

QUICK = "def run(ctx):\n    return [0.5] * 2000\n"


def raw(server, method, path, token=None, **kwargs):
    headers = kwargs.pop("headers", {})
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.request(method, server.url + path, headers=headers, timeout=30, **kwargs)


def _server_with(tmp_path, replacements: dict[str, str]):
    text = SMALL.read_text()
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "protocol.toml"
    path.write_text(text)
    return make_server(tmp_path, path)


def test_health_reports_the_database_workers_queue_and_disk(server):
    report = raw(server, "GET", "/v1/health")
    assert report.status_code == 200
    body = report.json()
    assert body["status"] == "ok" and body["problems"] == []
    assert body["database"]["ok"] and body["disk"]["free_mb"] > body["disk"]["min_free_mb"]
    assert [w["alive"] for w in body["workers"]] == [True]
    assert body["workers"][0]["last_beat_s"] < 60
    assert body["queue"]["oldest_queued_s"] is None  # nothing waits
    with server.participant("sid") as sid:
        shown = subprocess.run([sys.executable, "-m", "study.cli", "status"], cwd=REPO,
                               capture_output=True, text=True, timeout=120, check=False,
                               env={**os.environ, "ARENA_URL": server.url,
                                    "ARENA_TOKEN": sid.token})
    assert shown.returncode == 0 and "server: ok (1 worker(s))" in shown.stdout, shown.stdout


def test_a_long_poll_answers_when_the_status_changes(server):
    ann = server.participant("ann")
    view = ann.submit(SLEEPY.format(seconds=3), "rt_sentiment")
    seen = [view.status]
    while seen[-1] not in (AttemptStatus.SCORED, AttemptStatus.FAILED):
        asked = time.monotonic()
        got = ann.attempt(view.id, wait=60, since=seen[-1])
        assert got.status != seen[-1], "a long-poll answered without a change"
        assert time.monotonic() - asked < 55  # it answered on the change, not at the deadline
        seen.append(got.status)
    assert seen == [AttemptStatus.QUEUED, AttemptStatus.RUNNING, AttemptStatus.SCORED]
    # A finished attempt answers at once; someone else's reads as missing, waiting or not.
    assert ann.attempt(view.id, wait=30).status is AttemptStatus.SCORED
    with server.participant("bob") as bob, pytest.raises(ArenaAPIError) as info:
        bob.attempt(view.id, wait=5)
    assert info.value.status == 404
    too_long = raw(server, "GET", f"/v1/attempts/{view.id}?wait=3600", ann.token)
    assert too_long.status_code == 422 and too_long.json()["code"] == "invalid"


def test_a_long_poll_answers_when_the_queue_position_moves(server):
    # One worker slot: the first attempt runs, the next two wait, one behind the other.
    first, second, third = (server.participant(n) for n in ("q1", "q2", "q3"))
    running = first.submit(SLEEPY.format(seconds=4), "rt_sentiment")
    wait_for(lambda: first.attempt(running.id).status is AttemptStatus.RUNNING)
    ahead = second.submit(VANILLA, "rt_sentiment")
    behind = third.submit(VANILLA, "rt_sentiment")
    assert behind.queue_position == ahead.queue_position + 1
    asked = time.monotonic()
    got = third.attempt(behind.id, wait=50, since=AttemptStatus.QUEUED,
                        since_position=behind.queue_position)
    assert time.monotonic() - asked < 45  # answered on the move, not at the deadline
    # Either it moved up while still queued, or (a fast runner) it already left the queue.
    assert ((got.status is AttemptStatus.QUEUED and got.queue_position < behind.queue_position)
            or got.status is not AttemptStatus.QUEUED)
    seen = []
    third.wait(behind.id, on_update=lambda v: seen.append((v.status, v.queue_position)))
    assert seen[-1][0] is AttemptStatus.SCORED


def test_a_long_poll_with_since_live_answers_on_each_live_report(server):
    """The workspace's attempt page: progress and logs arrive through the long-poll too."""
    ann = server.participant("ann-live")
    view = ann.submit(WATCHED, "rt_sentiment")
    running = wait_for(lambda: (v := ann.attempt(view.id)).status is AttemptStatus.RUNNING
                       and v.live_version and v)
    versions = [running.live_version]
    for _ in range(3):
        asked = time.monotonic()
        got = ann.attempt(view.id, wait=50, since=AttemptStatus.RUNNING,
                          since_live=versions[-1])
        assert time.monotonic() - asked < 45  # answered on a report, not at the deadline
        if got.status is not AttemptStatus.RUNNING:
            break  # finished meanwhile: answered on the status
        assert got.live_version > versions[-1] and got.seed_runs
        versions.append(got.live_version)
    assert len(versions) >= 2, "no live report arrived through the long-poll"
    # Only a running attempt carries a live version.
    assert all(v.live_version is None for v in ann.attempts() if v.status is not
               AttemptStatus.RUNNING)


def test_a_reused_idempotency_key_with_another_body_is_a_conflict(server):
    cy = server.participant("cy")
    first = cy.submit(VANILLA, "rt_sentiment", idempotency_key="k-1")
    assert cy.submit(VANILLA, "rt_sentiment", idempotency_key="k-1").id == first.id
    with pytest.raises(ArenaAPIError) as info:
        cy.submit(VANILLA + "\n# changed\n", "rt_sentiment", idempotency_key="k-1")
    assert info.value.status == 409 and first.id in info.value.message
    assert len(cy.attempts()) == 1


def test_retry_after_is_rounded_up(server):
    dee = server.participant("dee")
    for i in range(5):  # small.toml: 5 attempts a day
        dee.submit(QUICK, "rt_sentiment", note=str(i))
    refused = raw(server, "POST", "/v1/attempts", dee.token,
                  json={"task": "rt_sentiment", "source": QUICK})
    assert refused.status_code == 429 and refused.json()["code"] == "quota_exceeded"
    left = (dee.quota().next_attempt_at - dt.datetime.now(dt.UTC)).total_seconds()
    assert int(refused.headers["Retry-After"]) >= left  # coming back then finds the quota
    # The rounding itself, where a fraction decides: up, never down.
    for seconds, header in ((0.2, "1"), (59.01, "60"), (60.0, "60")):
        response = error_response(QuotaError("over", retry_after=seconds))
        assert response.headers["Retry-After"] == header


def test_every_route_documents_its_errors(server):
    spec = raw(server, "GET", "/openapi.json").json()
    assert "ErrorBody" in spec["components"]["schemas"]
    for path, operations in spec["paths"].items():
        for method, op in operations.items():
            codes = set(op["responses"])
            assert {"500"} <= codes, (method, path)
            if path != "/v1/health":
                assert {"401", "404", "422", "429"} <= codes, (method, path)
            if method in ("post", "put") and path != "/v1/health":
                assert "507" in codes, (method, path)


def test_the_body_limit_follows_the_source_limit(server):
    eve = server.participant("eve")
    limit = 6 * 20_000 + 64 * 1024  # small.toml: max_source_bytes = 20000
    over = raw(server, "POST", "/v1/attempts", eve.token, content=b"x" * (limit + 1),
               headers={"Content-Type": "application/json"})
    assert over.status_code == 413 and over.json()["code"] == "payload_too_large"
    # The largest legal source, written as the worst JSON escaping, still gets through.
    source = QUICK + "#" + "\x01" * (20_000 - len(QUICK) - 2) + "\n"
    body = ('{"task": "rt_sentiment", "source": "' + source.replace("\n", "\\n").replace(
        "\x01", "\\u0001") + '"}').encode()
    assert len(body) > 100_000
    ok = raw(server, "POST", "/v1/attempts", eve.token, content=body,
             headers={"Content-Type": "application/json"})
    assert ok.status_code == 201, ok.text


def test_below_the_disk_floor_writes_get_507_and_reads_work(tmp_path, rt_task):
    live = _server_with(tmp_path, {"dry_runs_per_day = 3":
                                   "dry_runs_per_day = 3\nmin_free_disk_mb = 1000000000"})
    live.start()
    try:
        health = raw(live, "GET", "/v1/health")
        assert health.status_code == 503
        assert any("below the floor" in p for p in health.json()["problems"])
        refused = raw(live, "POST", "/v1/admin/participants", live.admin_token,
                      json={"display_name": "fay", "arm": "human"})
        assert refused.status_code == 507
        assert refused.json()["code"] == "insufficient_storage"
        assert "writes are refused" in refused.json()["message"]
        assert raw(live, "GET", "/v1/study", live.admin_token).status_code == 200
    finally:
        live.stop()


def test_compute_is_reserved_at_submit_and_settled_in_slot_time(tmp_path, rt_task):
    # 2 seeds × 60 s = 120 s reserved per attempt; a budget of 250 holds two at once.
    live = _server_with(tmp_path, {"compute_seconds_per_day = 3600":
                                   "compute_seconds_per_day = 250"})
    live.start()
    try:
        gus = live.participant("gus")
        first = gus.submit(SLEEPY.format(seconds=2), "rt_sentiment")
        second = gus.submit(QUICK, "rt_sentiment")
        quota = gus.quota()
        assert quota.compute_seconds_reserved == 240 and quota.compute_seconds_used == 240
        with pytest.raises(ArenaAPIError) as info:  # a third could overrun the day
            gus.submit(QUICK, "rt_sentiment", note="third")
        assert info.value.status == 429 and "held by your queued" in info.value.message
        done = gus.wait(first.id, poll=0.2)
        gus.wait(second.id, poll=0.2)
        settled = gus.quota()
        assert settled.compute_seconds_reserved == 0
        # Slot time: the sleeping seeds are charged their wall time, not their CPU time.
        assert done.cpu_seconds < 2 * 2 <= settled.compute_seconds_used < 120
        assert gus.submit(QUICK, "rt_sentiment", note="now it fits").status.value == "queued"
    finally:
        live.stop()


def test_parallel_dry_runs_queue_on_their_lane_and_health_keeps_answering(server):
    people = [server.participant(f"dry{i}") for i in range(6)]
    health_times = []
    kim = server.participant("kim")  # an attempt submitted into the storm, by someone else
    attempt = kim.submit(SLEEPY.format(seconds=2), "rt_sentiment")

    def one(client):
        try:
            return client.dry_run(QUICK, "rt_sentiment").ok
        except ArenaAPIError as exc:
            return exc.status

    with cf.ThreadPoolExecutor(42) as pool:
        futures = [pool.submit(one, c) for c in people for _ in range(7)]  # 42 at once
        pending_seen = 0
        wait_for(lambda: kim.attempt(attempt.id).status is AttemptStatus.RUNNING)
        # A running attempt holds its author's one slot: a dry run beside it is refused.
        with pytest.raises(ArenaAPIError) as refused:
            kim.dry_run(QUICK, "rt_sentiment")
        assert refused.value.status == 429 and "1 attempt(s)" in refused.value.message
        while not all(f.done() for f in futures):
            asked = time.monotonic()
            report = raw(server, "GET", "/v1/health")
            health_times.append(time.monotonic() - asked)
            assert report.status_code == 200
            pending_seen = max(pending_seen, report.json()["dry_runs"]["pending"])
            time.sleep(0.2)
        outcomes = [f.result() for f in futures]
    # One dry run per participant at a time (concurrent_attempts = 1): the rest are refused
    # at once with 429, and the admitted ones queue on the lane rather than all running.
    assert outcomes.count(True) == 6 and outcomes.count(429) == 36
    assert pending_seen >= 2
    assert max(health_times) < 10  # it answered throughout (a stall was 22 s before)
    done = kim.wait(attempt.id, poll=0.2)
    assert done.status is AttemptStatus.SCORED
    assert (done.finished_at - done.submitted_at).total_seconds() < 60  # within one seed's limit
