"""A simulated study under load, on the local backend and on Ray: 9 agent and 5 human clients.

Usage: python -m benchmarks.bench_load [--seconds 90] [--backend local|ray|both]
The clients are the real SDK over loopback, running the load mix of `benchmarks.server_load`
(submit and long-poll, broken submits, submit and cancel, dry runs, reads) for a bounded time;
then the queue drains and the ledger is read from the stopped server's DuckDB file: every
acknowledged submit stored, submitted = scored + failed + timed out + cancelled, none recorded
twice, the audit log agreeing with every row. Reports attempts per minute, API latency and queue
wait per arm into BENCHMARKS.md. On Ray the head (two CPUs) is started here with `ray start`.
"""

from __future__ import annotations

import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.report import write_section
from benchmarks.server_load import ledger, run_mix
from participants.sdk import ArenaClient
from study.protocol import load_protocol
from study.server import create_study

REPO = Path(__file__).resolve().parent.parent
AGENTS, HUMANS = 9, 5
RAY = Path(sys.executable).with_name("ray")


def bench_protocol(folder: Path) -> Path:
    """The small test study, two worker slots' worth of concurrency, budgets a bounded run
    cannot exhaust."""
    text = (REPO / "tests" / "protocols" / "small.toml").read_text()
    values = {"attempts_per_day": "100000", "compute_seconds_per_day": "10000000",
              "dry_runs_per_day": "100000"}
    lines = []
    for line in text.splitlines():
        key = line.split("=")[0].strip()
        lines.append(f"{key} = {values[key]}" if key in values else line)
    path = folder / "load.toml"
    path.write_text("\n".join(lines) + "\n")
    return path


def _ray(*args: str) -> None:
    # Ray turns token authentication on by itself once ~/.ray/auth_token exists, and its
    # client does not send the token: a loopback benchmark cluster runs without it.
    subprocess.run([str(RAY), *args], check=args[0] == "start", capture_output=True,
                   timeout=180, env={**os.environ, "RAY_AUTH_MODE": "disabled"})


def bench(backend: str, seconds: float, port: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        data_dir = folder / "study"
        admin_token = create_study(data_dir, load_protocol(bench_protocol(folder))).token
        args = []
        if backend == "ray":
            _ray("start", "--head", "--num-cpus=2", f"--port={port + 1}",
                 f"--ray-client-server-port={port + 2}", "--include-dashboard=false",
                 "--disable-usage-stats")
            args = ["--backend", "ray", "--ray-address", f"ray://127.0.0.1:{port + 2}"]
        server = subprocess.Popen([sys.executable, "-m", "study.cli", "serve", "--data-dir",
                                   str(data_dir), "--port", str(port), "--slots", "2", *args],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{port}"
        try:
            with ArenaClient(url, admin_token) as admin:
                admin.wait_ready(timeout=600, poll=0.5)
            started = time.monotonic()
            tally = run_mix(url, admin_token, seconds=seconds, clients=AGENTS + HUMANS,
                            arms=["ai"] * AGENTS + ["human"] * HUMANS)
            took = time.monotonic() - started
        finally:
            server.send_signal(signal.SIGINT)
            server.wait(60)
            if backend == "ray":
                _ray("stop", "--force")
        books = ledger(data_dir, tally)  # raises on any break in the ledger
    lat = sorted(tally.latencies_ms)
    return {"backend": backend, "seconds": seconds, "took": took, "books": books,
            "per_min": books["scored"] / (took / 60), "p50_ms": statistics.median(lat),
            "p99_ms": lat[int(0.99 * len(lat)) - 1]}


def _line(r: dict) -> str:
    books = r["books"]
    waits = ", ".join(f"{arm} {s:.1f} s" for arm, s in books["queue_wait_s"].items())
    return (f"- **{r['backend']}** backend: {AGENTS} agent + {HUMANS} human clients for "
            f"{r['seconds']:.0f} s on two worker slots, then the queue drained ({r['took']:.0f} s "
            f"in all): **{r['per_min']:.1f} scored attempts/min**; API latency p50 "
            f"{r['p50_ms']:.0f} ms, **p99 {r['p99_ms']:.0f} ms**; median queue wait {waits}. "
            f"Ledger: {books['submitted']} submitted = {books['scored']} scored + "
            f"{books['failed']} failed + {books['timed_out']} timed out + {books['cancelled']} "
            "cancelled; none lost, none run twice, the audit log agrees.")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=90)
    parser.add_argument("--backend", choices=("local", "ray", "both"), default="both")
    opts = parser.parse_args()
    backends = ("local", "ray") if opts.backend == "both" else (opts.backend,)
    lines = [_line(bench(b, opts.seconds, 8811 + 10 * i)) for i, b in enumerate(backends)]
    lines.append("- Clients, server, runner (and on Ray the head, its workers and the "
                 "sandboxes) share this machine's cores: the Ray line measures the backend's "
                 "overhead, not a cluster's capacity.")
    write_section("Load: a simulated study on the local and the Ray backend (issue 18)",
                  "\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
