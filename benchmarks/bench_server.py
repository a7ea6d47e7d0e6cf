"""Study-server speed on loopback: submit-to-queued latency, status-poll throughput, and what
clients waiting on attempts cost the server (long-polls against once-a-second polling).

Usage: python -m benchmarks.bench_server
A real `arena serve` process with no worker slots (so the runner's CPU use does not blur the
API's figures), a real DuckDB file, clients over HTTP. Targets: p99 submit ≤ 50 ms, ≥ 300 polls/s
with 9 concurrent pollers.
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks.report import write_section
from benchmarks.server_load import ledger, run_mix
from participants.sdk import ArenaClient
from study.protocol import load_protocol
from study.server import create_study

REPO = Path(__file__).resolve().parent.parent
SUBMITS = 400
POLLERS = 9
POLL_SECONDS = 10.0
WRITES_PER_S = 10
WAITERS = 50
WINDOW_S = 20.0
LONG_POLL_S = 60.0
WAKES = 15
LOAD_SECONDS = 90.0
METHOD = (REPO / "baselines" / "vanilla.py").read_text()


def _protocol(folder: Path) -> Path:
    text = (REPO / "tests" / "protocols" / "small.toml").read_text()
    text = text.replace("attempts_per_day = 5", "attempts_per_day = 100000")
    # Submits reserve seeds × attempt_seconds of compute: make room for every queued one.
    text = text.replace("compute_seconds_per_day = 3600", "compute_seconds_per_day = 1e9")
    path = folder / "bench.toml"
    path.write_text(text)
    return path


def _poll(url: str, token: str, attempt_id: str, seconds: float, out) -> None:
    count = 0
    with ArenaClient(url, token, retries=0) as client:
        end = time.perf_counter() + seconds
        while time.perf_counter() < end:
            client.attempt(attempt_id)
            count += 1
    out.put(count)


def _write(url: str, token: str, stop: threading.Event) -> None:
    with ArenaClient(url, token) as client:
        while not stop.wait(1.0 / WRITES_PER_S):
            client.save_draft(METHOD + f"# {time.monotonic()}\n", task="rt_sentiment")


def _poll_phase(url: str, token: str, attempt_id: str, pid: int, *,
                writer: str | None = None) -> tuple[float, float]:
    """POLLERS processes polling one attempt for POLL_SECONDS (with a client writing beside
    them when `writer` is a token): polls a second and the server's CPU milliseconds a poll."""
    stop = threading.Event()
    writing = threading.Thread(target=_write, args=(url, writer, stop), daemon=True)
    if writer:
        writing.start()
    context = mp.get_context("spawn")
    queue = context.Queue()
    pollers = [context.Process(target=_poll, args=(url, token, attempt_id, POLL_SECONDS, queue))
               for _ in range(POLLERS)]
    before = _cpu_seconds(pid)
    for p in pollers:
        p.start()
    total = sum(queue.get() for _ in pollers)
    used = _cpu_seconds(pid) - before
    for p in pollers:
        p.join()
    stop.set()
    if writer:
        writing.join()
    return total / POLL_SECONDS, used * 1000 / max(total, 1)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        admin_token = create_study(folder / "study", load_protocol(_protocol(folder))).token
        port = 8791
        url = f"http://127.0.0.1:{port}"
        server = subprocess.Popen([sys.executable, "-m", "study.cli", "serve", "--data-dir",
                                   str(folder / "study"), "--port", str(port), "--slots", "0"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            with ArenaClient(url, admin_token) as admin:
                admin.wait_ready(timeout=300, poll=0.2)
                token = admin.add_participant("bench", arm="human").token
            with ArenaClient(url, token) as client:
                for _ in range(20):  # warm-up
                    client.submit(METHOD, "rt_sentiment")
                latencies = []
                for _ in range(SUBMITS):
                    started = time.perf_counter()
                    view = client.submit(METHOD, "rt_sentiment")
                    latencies.append((time.perf_counter() - started) * 1000)
                    assert view.status.value == "queued"
            quiet = _poll_phase(url, token, view.id, server.pid)
            with ArenaClient(url, admin_token) as admin:
                writer = admin.add_participant("writer", arm="human").token
            busy = _poll_phase(url, token, view.id, server.pid, writer=writer)
            waiting = _long_polls(url, server.pid, token)
        finally:
            server.terminate()
            server.wait(20)
    latencies.sort()
    p50 = statistics.median(latencies)
    p99 = latencies[int(0.99 * len(latencies)) - 1]
    lines = [
        f"- Submit → queued, {SUBMITS} sequential submits over HTTP (one client, validation, "
        f"quota check, DuckDB insert and event): p50 **{p50:.1f} ms**, p99 **{p99:.1f} ms**, "
        f"max {latencies[-1]:.1f} ms (target p99 ≤ 50 ms).",
        f"- Status polls (`GET /v1/attempts/ID` of a queued attempt, 420 in the queue), "
        f"{POLLERS} pollers in separate processes for {POLL_SECONDS:.0f} s: "
        f"**{quiet[0]:.0f} polls/s** (target ≥ 300), the server's CPU {quiet[1]:.2f} ms a "
        "poll. The pollers share the two cores with the server.",
        f"- The same while another client saves a draft {WRITES_PER_S} times a second (each "
        "commit makes the next poll read the attempt from DuckDB again): "
        f"**{busy[0]:.0f} polls/s**, {busy[1]:.2f} ms of server CPU a poll (its writes included).",
    ]
    lines.append(_load_line())
    write_section("Study server (issue 3)", "\n".join(lines))
    mix = _load_mix()
    write_section("Study server: waiting clients (issue 11)",
                  "\n".join([waiting, mix, _load_line()]))
    print("\n".join(lines) + "\n" + waiting + "\n" + mix)


def _load_line() -> str:
    """Other work on the machine moves every figure here: say how much there was."""
    return (f"- Load average (1 min) at the end: {os.getloadavg()[0]:.1f} on {os.cpu_count()} "
            "cores.")


def _load_mix() -> str:
    """The 14-client mix on a server with one worker slot, for LOAD_SECONDS, then its
    ledger (benchmarks.server_load): none lost, none run twice, the audit agrees."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        text = _protocol(folder).read_text().replace("dry_runs_per_day = 3",
                                                     "dry_runs_per_day = 100000")
        (folder / "bench.toml").write_text(text)
        data_dir = folder / "study"
        admin_token = create_study(data_dir, load_protocol(folder / "bench.toml")).token
        port = 8792
        server = subprocess.Popen([sys.executable, "-m", "study.cli", "serve", "--data-dir",
                                   str(data_dir), "--port", str(port), "--slots", "1"],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        started = time.monotonic()
        try:
            with ArenaClient(f"http://127.0.0.1:{port}", admin_token) as admin:
                admin.wait_ready(timeout=300, poll=0.2)
            tally = run_mix(f"http://127.0.0.1:{port}", admin_token, seconds=LOAD_SECONDS)
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
        took = time.monotonic() - started
        books = ledger(data_dir, tally)
    return (f"- Load mix: 14 clients (submit + long-poll wait, broken submits, submit + "
            f"cancel, dry runs, reads) for {LOAD_SECONDS:.0f} s on one worker slot, then the "
            f"queue drained ({took:.0f} s in all). Ledger: {books['submitted']} submitted = "
            f"{books['scored']} scored + {books['failed']} failed + {books['timed_out']} "
            f"timed out + {books['cancelled']} cancelled; none lost, none recorded twice, "
            f"`arena audit verify` agrees with every row. Actions {books['actions']}; "
            f"refusals {books['refusals']}.")


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, from /proc (clock ticks)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _server_cpu(pid: int, clients, work, seconds: float) -> float:
    """The server's CPU share (of one core) while `clients` each run `work` for `seconds`."""
    stop = threading.Event()
    threads = [threading.Thread(target=work, args=(c, stop), daemon=True) for c in clients]
    for t in threads:
        t.start()
    time.sleep(2.0)  # every client has made its first request
    before, started = _cpu_seconds(pid), time.monotonic()
    time.sleep(seconds)
    used = (_cpu_seconds(pid) - before) / (time.monotonic() - started)
    stop.set()
    return used


def _wait_once(client: ArenaClient, attempt_id: str, answered: list[float]) -> None:
    client.attempt(attempt_id, wait=LONG_POLL_S)
    answered.append(time.monotonic())


def _long_polls(url: str, pid: int, token: str) -> str:
    """50 clients waiting on 50 queued attempts (no worker: nothing finishes): the server's CPU
    with long-polls, against the same clients polling once a second (the old `wait`); then how
    fast a waiting client learns of a change."""
    with ArenaClient(url, token) as submitter:
        ids = [submitter.submit(METHOD, "rt_sentiment", note=f"wait {i}").id
               for i in range(WAITERS)]
    clients = [(ArenaClient(url, token, timeout=90), attempt_id) for attempt_id in ids]

    def long_poll(client_and_id, stop) -> None:
        client, attempt_id = client_and_id
        with contextlib.suppress(Exception):  # closed under it at the end: done
            while not stop.is_set():
                client.attempt(attempt_id, wait=LONG_POLL_S)

    def poll(client_and_id, stop) -> None:
        client, attempt_id = client_and_id
        while not stop.wait(1.0):
            client.attempt(attempt_id)

    idle = _server_cpu(pid, [], poll, WINDOW_S)
    polling = _server_cpu(pid, clients, poll, WINDOW_S)
    waiting = _server_cpu(pid, clients, long_poll, WINDOW_S)
    wakes = []
    for client, _ in clients:  # the parked long-polls of the last phase end with them
        client.close()
    with ArenaClient(url, token) as canceller, ArenaClient(url, token, timeout=90) as client:
        for attempt_id in ids[:WAKES]:
            answered: list[float] = []
            waiter = threading.Thread(target=_wait_once, args=(client, attempt_id, answered))
            waiter.start()
            time.sleep(0.5)  # parked on the server
            asked = time.monotonic()
            canceller.cancel(attempt_id)
            waiter.join()
            wakes.append((answered[0] - asked) * 1000)
    return "\n".join([
        f"- Server CPU (share of one core) with {WAITERS} clients waiting on queued attempts "
        f"for {WINDOW_S:.0f} s: idle **{idle:.3f}**, polling once a second (the old `wait`) "
        f"**{polling:.3f}**, long-polling (`?wait={LONG_POLL_S:.0f}`) **{waiting:.3f}**.",
        f"- A long-polling client learns of a change (here a cancel by another client) in a "
        f"median **{statistics.median(wakes):.0f} ms** (max {max(wakes):.0f} ms, {WAKES} "
        "changes), the cancel's own round trip included.",
    ])


if __name__ == "__main__":
    main()
