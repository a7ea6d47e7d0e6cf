"""Choosing the Ray backend, without a Ray cluster: `arena up --backend ray --ray-address` and the
protocol's [runner] table both put attempts on Ray (here a head that is away, so submissions
queue and /v1/health says why); a backend or address that cannot be used fails at start and
creates nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import pytest

from study.records import AttemptStatus
from tests.conftest import REPO
from tests.e2e.conftest import SMALL, VANILLA, free_port, make_server


def arena_up(tmp_path, *args: str, **popen) -> subprocess.Popen | subprocess.CompletedProcess:
    argv = [sys.executable, "-m", "study.cli", "up", "--protocol", str(SMALL),
            "--data-dir", str(tmp_path / "arena-data"), "--workspace-port", "0", *args]
    env = {**os.environ, "COLUMNS": "300"}
    if popen:
        return subprocess.Popen(argv, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, **popen)
    return subprocess.run(argv, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(("args", "why"), [
    (("--backend", "ray"), "needs the head's address"),
    (("--backend", "ray", "--ray-address", "127.0.0.1:6379"), "ray://HOST:10001"),
    (("--backend", "slurm"), "unknown backend 'slurm'"),
])
def test_a_backend_that_cannot_be_used_fails_at_start_and_creates_nothing(tmp_path, args, why):
    done = arena_up(tmp_path, "--port", "1", *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert why in done.stdout, done.stdout
    assert not (tmp_path / "arena-data").exists()  # no study for a runner that cannot run


def ray_health(url: str, timeout: float = 180) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        try:
            report = httpx.get(f"{url}/v1/health").json()
            if report.get("executor", {}).get("backend") == "ray" and report["warnings"]:
                return report
        except (httpx.TransportError, ValueError):
            pass
        assert time.monotonic() < deadline, "the server never reported its Ray backend"
        time.sleep(0.5)


def test_arena_up_with_a_ray_address_runs_attempts_on_ray(tmp_path, rt_task):
    port, address = free_port(), f"ray://127.0.0.1:{free_port()}"  # nothing listens there
    proc = arena_up(tmp_path, "--port", str(port), "--backend", "ray", "--ray-address", address,
                    start_new_session=True)
    try:
        report = ray_health(f"http://127.0.0.1:{port}")
        assert (report["executor"]["address"], report["executor"]["connected"]) == (address,
                                                                                    False)
        assert report["warnings"][0].startswith("attempts wait in the queue: cannot reach")
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)


def test_the_protocols_runner_table_chooses_ray(tmp_path, rt_task):
    address = f"ray://127.0.0.1:{free_port()}"
    protocol = tmp_path / "ray.toml"
    protocol.write_text(SMALL.read_text()
                        + f'\n[runner]\nbackend = "ray"\nray_address = "{address}"\n')
    live = make_server(tmp_path, protocol)
    live.start()  # no --backend: the protocol decides
    try:
        report = ray_health(live.url)
        assert report["executor"]["address"] == address
        pat = live.participant("pat")
        view = pat.submit(VANILLA, "rt_sentiment")
        time.sleep(2)  # several scheduler turns: still queued, never failed as a fault
        assert pat.attempt(view.id).status is AttemptStatus.QUEUED
    finally:
        live.stop()
