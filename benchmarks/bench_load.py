"""A simulated study under load: 9 agent and 5 human clients on loopback, local and Ray backends.

Usage: python -m benchmarks.bench_load [--seconds 90] [--backend local|ray|both]
Each client is the real SDK over HTTP: it submits a small method, waits on it (long-poll) and
polls its status and the leaderboard, for a bounded time. Then the queue is drained and the
ledger checked from the server's own records: every submitted attempt is found, and
submitted = scored + failed + cancelled, none lost, none run twice. Reports attempts per minute,
p99 API latency and queue wait per arm into BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.report import write_section
from participants.sdk import ArenaClient
from study.protocol import load_protocol
from study.server import create_study

REPO = Path(__file__).resolve().parent.parent
AGENTS, HUMANS = 9, 5
# Small and quick, so the runner (two cores) turns attempts over while clients keep calling.
METHOD = """
def run(ctx):
    head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels,
                              seed=ctx.seed, epochs=5)
    return head.predict_proba(ctx.strong_features("test"))
"""
FINAL = {"scored", "failed", "timed_out", "cancelled"}


def bench_protocol(folder: Path) -> Path:
    """The small test study with budgets no client of a bounded run can exhaust."""
    text = (REPO / "tests" / "protocols" / "small.toml").read_text()
    for key in ("attempts_per_day", "compute_seconds_per_day", "concurrent_attempts"):
        text = _set(text, key, "100000" if key != "concurrent_attempts" else "4")
    path = folder / "load.toml"
    path.write_text(text)
    return path


def _set(text: str, key: str, value: str) -> str:
    lines = [f"{key} = {value}" if line.split("=")[0].strip() == key else line
             for line in text.splitlines()]
    return "\n".join(lines) + "\n"


@dataclass
class LoadResult:
    submitted: dict[str, list[str]] = field(default_factory=dict)  # arm → attempt ids
    latencies_ms: list[float] = field(default_factory=list)
    refused: int = 0  # 429s: a client asked faster than its budget allows (not an error)


def _client_loop(url: str, token: str, arm: str, seconds: float, result: LoadResult,
                 lock: threading.Lock) -> None:
    end = time.monotonic() + seconds
    mine: list[str] = []
    with ArenaClient(url, token, retries=2) as client:

        def timed(call, *args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                with lock:
                    result.latencies_ms.append((time.perf_counter() - started) * 1000)

        while time.monotonic() < end:
            try:
                view = timed(client.submit, METHOD, "rt_sentiment")
            except Exception as exc:  # a 429 is the quota speaking; anything else is a bug
                if getattr(exc, "status", None) != 429:
                    raise
                with lock:
                    result.refused += 1
                time.sleep(1)
                continue
            mine.append(view.id)
            timed(client.attempt, view.id, wait=min(5.0, max(0.1, end - time.monotonic())))
            timed(client.leaderboard)
    with lock:
        result.submitted.setdefault(arm, []).extend(mine)


def run_mix(url: str, agent_tokens: list[str], human_tokens: list[str],
            seconds: float) -> LoadResult:
    """Every client in its own thread, all released at once, for `seconds`."""
    result, lock = LoadResult(), threading.Lock()
    threads = [threading.Thread(target=_client_loop, args=(url, tok, arm, seconds, result, lock))
               for arm, tokens in (("ai", agent_tokens), ("human", human_tokens))
               for tok in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return result


@dataclass
class Ledger:
    submitted: int
    by_status: Counter
    missing: list[str]
    run_twice: list[str]
    queue_wait_s: dict[str, float]  # arm → median seconds from queued to started

    @property
    def balanced(self) -> bool:
        done = sum(self.by_status[s] for s in ("scored", "failed", "timed_out", "cancelled"))
        return not self.missing and not self.run_twice and done == self.submitted


def ledger(admin: ArenaClient, submitted: dict[str, list[str]], *, drain_s: float = 600) -> Ledger:
    """Wait for the queue to drain, then account for every submitted attempt."""
    views = {}
    deadline = time.monotonic() + drain_s
    for arm, ids in submitted.items():
        for attempt_id in ids:
            view = admin.attempt(attempt_id)
            while view.status.value not in FINAL and time.monotonic() < deadline:
                view = admin.attempt(attempt_id, wait=5)
            views[attempt_id] = (arm, view)
    waits: dict[str, list[float]] = {}
    for arm, view in views.values():
        if view.started_at and view.queued_at:
            waits.setdefault(arm, []).append((view.started_at - view.queued_at).total_seconds())
    all_ids = [i for ids in submitted.values() for i in ids]
    return Ledger(
        submitted=len(all_ids),
        by_status=Counter(view.status.value for _, view in views.values()),
        missing=[i for i in all_ids if i not in views],
        run_twice=[i for i, (_, view) in views.items() if view.tries > 1],
        queue_wait_s={arm: statistics.median(w) for arm, w in waits.items()})


def _serve(folder: Path, port: int, args: list[str]) -> subprocess.Popen:
    log = (folder / "server.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "study.cli", "serve", "--data-dir",
                             str(folder / "study"), "--port", str(port), "--slots", "2", *args],
                            stdout=log, stderr=subprocess.STDOUT)


def _start_ray_head(port: int, client_port: int) -> None:
    ray = Path(sys.executable).with_name("ray")
    subprocess.run([str(ray), "start", "--head", "--num-cpus=2", f"--port={port}",
                    f"--ray-client-server-port={client_port}", "--include-dashboard=false",
                    "--disable-usage-stats"], check=True, capture_output=True, timeout=180,
                   env={**os.environ, "RAY_AUTH_MODE": "disabled"})  # see tests/ray_cluster.py


def _stop_ray_head() -> None:
    subprocess.run([str(Path(sys.executable).with_name("ray")), "stop", "--force"],
                   capture_output=True, timeout=120)


def bench(backend: str, seconds: float, port: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        admin_token = create_study(folder / "study", load_protocol(bench_protocol(folder))).token
        args = []
        if backend == "ray":
            _start_ray_head(port + 1, port + 2)
            args = ["--backend", "ray", "--ray-address", f"ray://127.0.0.1:{port + 2}"]
        server = _serve(folder, port, args)
        url = f"http://127.0.0.1:{port}"
        try:
            with ArenaClient(url, admin_token) as admin:
                admin.wait_ready(timeout=600, poll=0.5)
                tokens = {arm: [admin.add_participant(f"{arm}-{i}", arm=arm,
                                                      kind="agent" if arm == "ai" else "human"
                                                      ).token for i in range(n)]
                          for arm, n in (("ai", AGENTS), ("human", HUMANS))}
                started = time.monotonic()
                load = run_mix(url, tokens["ai"], tokens["human"], seconds)
                books = ledger(admin, load.submitted)
                elapsed_min = (time.monotonic() - started) / 60
        finally:
            server.terminate()
            server.wait(30)
            if backend == "ray":
                _stop_ray_head()
    lat = sorted(load.latencies_ms)
    return {"backend": backend, "clients": AGENTS + HUMANS, "seconds": seconds,
            "submitted": books.submitted, "by_status": dict(books.by_status),
            "attempts_per_min": books.by_status["scored"] / elapsed_min,
            "p50_ms": statistics.median(lat), "p99_ms": lat[int(0.99 * len(lat)) - 1],
            "queue_wait_s": books.queue_wait_s, "missing": books.missing,
            "run_twice": books.run_twice, "balanced": books.balanced, "refused": load.refused}


def _line(r: dict) -> str:
    waits = ", ".join(f"{arm} {w:.1f} s" for arm, w in sorted(r["queue_wait_s"].items()))
    return (f"- **{r['backend']}** backend, {r['clients']} clients ({AGENTS} agents, {HUMANS} "
            f"humans) for {r['seconds']:.0f} s, two worker slots: {r['submitted']} submitted, "
            f"**{r['attempts_per_min']:.1f} scored attempts/min** (queue drained), API p50 "
            f"{r['p50_ms']:.0f} ms / **p99 {r['p99_ms']:.0f} ms**, median queue wait {waits}; "
            f"ledger {r['by_status']} — "
            f"{'balanced: none lost, none run twice' if r['balanced'] else 'NOT BALANCED'} "
            f"(missing {len(r['missing'])}, run twice {len(r['run_twice'])}).")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--backend", choices=("local", "ray", "both"), default="both")
    opts = parser.parse_args()
    backends = ("local", "ray") if opts.backend == "both" else (opts.backend,)
    results = [bench(b, opts.seconds, 8811 + 10 * i) for i, b in enumerate(backends)]
    lines = [_line(r) for r in results]
    lines.append("- The clients and the runner share the machine's cores; on Ray the same two "
                 "cores host the head, its workers and the sandboxes, so the figure measures the "
                 "backend's overhead, not a cluster's capacity.")
    write_section("Load: a simulated study, local and Ray backends (issue 18)", "\n".join(lines))
    print("\n".join(lines))
    if not all(r["balanced"] for r in results):
        sys.exit(1)


if __name__ == "__main__":
    main()
