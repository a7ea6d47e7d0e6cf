"""Study-server speed on loopback: submit-to-queued latency and status-poll throughput.

Usage: python -m benchmarks.bench_server
A real `arena serve` process with no worker slots (so the runner's CPU use does not blur the
API's figures), a real DuckDB file, clients over HTTP. Targets: p99 submit ≤ 50 ms, ≥ 300 polls/s
with 9 concurrent pollers.
"""

from __future__ import annotations

import multiprocessing as mp
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_section
from participants.sdk import ArenaClient
from study.protocol import load_protocol
from study.server import create_study

REPO = Path(__file__).resolve().parent.parent
SUBMITS = 400
POLLERS = 9
POLL_SECONDS = 10.0
METHOD = (REPO / "baselines" / "vanilla.py").read_text()


def _protocol(folder: Path) -> Path:
    text = (REPO / "tests" / "protocols" / "small.toml").read_text()
    text = text.replace("attempts_per_day = 5", "attempts_per_day = 100000")
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
            queue = mp.get_context("spawn").Queue()
            pollers = [mp.get_context("spawn").Process(
                target=_poll, args=(url, token, view.id, POLL_SECONDS, queue))
                for _ in range(POLLERS)]
            for p in pollers:
                p.start()
            total = sum(queue.get() for _ in pollers)
            for p in pollers:
                p.join()
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
        f"- Status polls (`GET /v1/attempts/ID`), {POLLERS} pollers in separate processes for "
        f"{POLL_SECONDS:.0f} s: **{total / POLL_SECONDS:.0f} polls/s** (target ≥ 300). The "
        "pollers share the two cores with the server.",
    ]
    write_section("Study server (issue 3)", "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
