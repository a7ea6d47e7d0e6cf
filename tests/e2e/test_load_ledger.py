"""The server benchmark's load mix, bounded, as a test: 9 agent and 5 human clients submit,
wait, break, cancel, dry-run and read for a few seconds on two worker slots; then the ledger read
from the stopped server's file must balance — every acknowledged submit stored, submitted =
scored + failed + timed out + cancelled, none recorded twice, the audit log agreeing."""

from __future__ import annotations

import pytest

from benchmarks.bench_load import AGENTS, HUMANS, bench_protocol
from benchmarks.server_load import ledger, run_mix
from study.protocol import load_protocol
from study.server import create_study
from tests.e2e.conftest import LiveServer, free_port

pytestmark = pytest.mark.slow


def test_the_fourteen_client_mix_keeps_the_ledger(tmp_path, rt_task):
    data_dir = tmp_path / "study"
    token = create_study(data_dir, load_protocol(bench_protocol(tmp_path))).token
    live = LiveServer(data_dir=data_dir, port=free_port(), admin_token=token)
    live.start(slots=2)
    try:
        tally = run_mix(live.url, token, seconds=12, clients=AGENTS + HUMANS,
                        arms=["ai"] * AGENTS + ["human"] * HUMANS)
    finally:
        live.stop()
    books = ledger(data_dir, tally)  # raises AssertionError on any break in the ledger
    assert books["submitted"] == len(tally.submitted) > 0
    finished = sum(books[s] for s in ("scored", "failed", "timed_out", "cancelled"))
    assert finished == books["submitted"]
    assert books["scored"] > 0 and set(books["queue_wait_s"]) == {"ai", "human"}
