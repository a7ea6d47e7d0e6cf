"""A bounded load mix against a live study server, then its ledger.

14 clients (7 per arm) each loop for a fixed time: submit a method and wait for it (long-poll),
submit a broken one, submit and cancel, dry-run, read the leaderboard and their attempts. Then
the ledger, read from the DuckDB file once the server is stopped: every submit the clients were
told succeeded is a row (none lost), every row finished (scored + failed + timed out + cancelled
= submitted), no attempt was recorded twice, and `arena audit verify` agrees with every row.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from participants.sdk import ArenaAPIError, ArenaClient
from study.audit_scores import verify_study
from study.protocol import ProtocolSpec
from study.server import db_path
from study.store import Database, Store

QUICK = "def run(ctx):\n    return [0.5] * 2000\n"
BROKEN = "def run(ctx):\n    raise ValueError('a broken method')\n"
FINISHED = {"scored", "failed", "timed_out", "cancelled"}


@dataclass
class Tally:
    submitted: set[str] = field(default_factory=set)
    actions: Counter = field(default_factory=Counter)
    errors: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # every API call but the waits
    lock: threading.Lock = field(default_factory=threading.Lock)

    def note(self, action: str, attempt_id: str | None = None) -> None:
        with self.lock:
            self.actions[action] += 1
            if attempt_id:
                self.submitted.add(attempt_id)


class _Timed:
    """The client's calls, timed into the tally (waits are the long-poll's, not latency)."""

    def __init__(self, client: ArenaClient, tally: Tally) -> None:
        self._client, self._tally = client, tally

    def __getattr__(self, name: str):
        call = getattr(self._client, name)
        if name == "wait":
            return call

        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                with self._tally.lock:
                    self._tally.latencies_ms.append((time.perf_counter() - started) * 1000)

        return timed


def _client_loop(client: ArenaClient, seed: int, until: float, tally: Tally) -> None:
    rng = random.Random(seed)
    client = _Timed(client, tally)  # type: ignore[assignment]
    while time.monotonic() < until:
        roll = rng.random()
        try:
            if roll < 0.45:
                view = client.submit(QUICK, "rt_sentiment")
                tally.note("submit+wait", view.id)
                client.wait(view.id, timeout=300)
            elif roll < 0.6:
                tally.note("submit broken", client.submit(BROKEN, "rt_sentiment").id)
            elif roll < 0.7:
                view = client.submit(QUICK, "rt_sentiment", note="to cancel")
                tally.note("submit+cancel", view.id)
                try:
                    client.cancel(view.id)
                except ArenaAPIError as exc:  # it may have finished first: that is fine
                    tally.errors[f"cancel {exc.status}"] += 1
            elif roll < 0.8:
                client.dry_run(QUICK, "rt_sentiment")
                tally.note("dry run")
            else:
                client.leaderboard()
                client.attempts()
                tally.note("read")
        except ArenaAPIError as exc:
            with tally.lock:
                tally.errors[f"{exc.status} {exc.code}"] += 1
            time.sleep(1.0)


def run_mix(url: str, admin_token: str, *, seconds: float, clients: int = 14,
            arms: list[str] | None = None) -> Tally:
    """`arms`: one arm name per client (default: alternating human and ai)."""
    tally = Tally()
    arms = arms or [("human", "ai")[i % 2] for i in range(clients)]
    with ArenaClient(url, admin_token) as admin:
        tokens = [admin.add_participant(f"load-{i}", arm=arm,
                                        kind="human" if arm == "human" else "agent").token
                  for i, arm in enumerate(arms)]
    until = time.monotonic() + seconds
    people = [ArenaClient(url, token, timeout=90) for token in tokens]
    threads = [threading.Thread(target=_client_loop, args=(c, i, until, tally))
               for i, c in enumerate(people)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for client in people:  # let the queue drain
        for view in client.attempts(limit=5000):
            client.wait(view.id, timeout=600)
        client.close()
    return tally


def ledger(data_dir: Path, tally: Tally) -> dict:
    """Read the stopped server's file; raise AssertionError on any break in the ledger."""
    db = Database(db_path(data_dir), read_only=True)
    try:
        store = Store(db)
        rows = db.rows("SELECT a.id, a.status, a.tries FROM attempts a JOIN participants p "
                       "ON p.id = a.participant_id WHERE p.display_name LIKE 'load-%'")
        recorded = db.rows("SELECT attempt_id, count(*) FILTER (WHERE kind IN ("
                           "'attempt_scored', 'attempt_failed', 'attempt_timed_out')) AS ends, "
                           "count(*) FILTER (WHERE kind = 'attempt_started') AS starts "
                           "FROM events WHERE attempt_id IS NOT NULL GROUP BY attempt_id")
        waits = db.rows("SELECT p.arm, median(epoch(a.started_at) - epoch(a.queued_at)) AS s "
                        "FROM attempts a JOIN participants p ON p.id = a.participant_id "
                        "WHERE p.display_name LIKE 'load-%' AND a.started_at IS NOT NULL "
                        "GROUP BY p.arm ORDER BY p.arm")
        protocol = ProtocolSpec.model_validate_json(store.get_study()["protocol_json"])
        audit = verify_study(store, protocol.tasks.all)
    finally:
        db.close()
    ids = {r["id"] for r in rows}
    statuses = Counter(r["status"] for r in rows)
    by_id = {r["attempt_id"]: r for r in recorded}
    lost = tally.submitted - ids
    assert not lost, f"submits acknowledged but not stored: {sorted(lost)[:5]}"
    assert set(statuses) <= FINISHED, f"unfinished attempts: {statuses}"
    twice = [i for i in ids if by_id.get(i, {}).get("ends", 0) > 1]
    assert not twice, f"attempts recorded twice: {twice[:5]}"
    restarted = [r["id"] for r in rows if by_id.get(r["id"], {}).get("starts", 0) > r["tries"]]
    assert not restarted, f"runs not counted as tries: {restarted[:5]}"
    assert audit.ok, audit.model_dump_json()[:2000]
    return {"submitted": len(ids), **{s: statuses.get(s, 0) for s in sorted(FINISHED)},
            "actions": dict(tally.actions), "refusals": dict(tally.errors),
            "queue_wait_s": {w["arm"]: round(float(w["s"]), 1) for w in waits}}
