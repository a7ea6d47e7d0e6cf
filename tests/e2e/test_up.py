"""`arena up` — the README's main command — creates the study, prints the URL and a working
participant token, and starts a scripted agent so the study is live at once."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from participants.sdk import ArenaClient
from study.records import AttemptStatus
from tests.conftest import REPO
from tests.e2e.conftest import SMALL, free_port


def test_arena_up_serves_prints_a_token_and_runs_the_scripted_agent(tmp_path, rt_task):
    port, ui_port = free_port(), free_port()
    data = tmp_path / "arena-data"
    proc = subprocess.Popen([sys.executable, "-m", "study.cli", "up", "--protocol", str(SMALL),
                             "--data-dir", str(data), "--port", str(port),
                             "--workspace-port", str(ui_port)], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True, env={**os.environ, "COLUMNS": "300"})
    try:
        lines = []
        while not any("w2s_" in line for line in lines):
            lines.append(proc.stdout.readline())
            assert proc.poll() is None, "".join(lines)
        text = "".join(lines)
        assert f"http://127.0.0.1:{port}" in text
        token = re.search(r"w2s_[\w-]+", text).group(0)
        with ArenaClient(f"http://127.0.0.1:{port}", token) as me:
            deadline = time.monotonic() + 120
            while True:
                try:
                    assert me.me().participant.display_name == "researcher"
                    break
                except Exception:
                    assert time.monotonic() < deadline
                    time.sleep(0.3)
        admin_token = (data / "admin.token").read_text().strip()
        with ArenaClient(f"http://127.0.0.1:{port}", admin_token) as admin:
            deadline = time.monotonic() + 180
            while not any(a.status is AttemptStatus.SCORED
                          for a in admin.attempts(everyone=True)):
                assert time.monotonic() < deadline, "the scripted agent scored nothing"
                time.sleep(0.5)
            bots = {p.id for p in admin.participants() if p.display_name == "scripted-baseline"}
            assert {a.participant_id for a in admin.attempts(everyone=True)} == bots
        deadline = time.monotonic() + 120
        while True:  # the workspace is up beside the server
            try:
                if httpx.get(f"http://127.0.0.1:{ui_port}/_stcore/health").text == "ok":
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "the workspace never answered"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(30)
