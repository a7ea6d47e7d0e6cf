"""`arena agents run`, killed with SIGKILL mid-iteration and started again, resumes as the same
participant from its saved state, and never duplicates a submission."""

import os
import signal
import subprocess
import sys

from participants.sdk import ArenaClient
from tests.conftest import REPO
from tests.fakes.anthropic_server import FakeMessagesAPI, text_reply, tool_use_reply

VANILLA = (REPO / "baselines" / "vanilla.py").read_text()


def test_kill_9_and_resume(server, tmp_path):
    workspaces = tmp_path / "agents"
    with FakeMessagesAPI() as fake:
        env = {**os.environ, "ANTHROPIC_API_KEY": "sk-ant-fake",
               "ANTHROPIC_BASE_URL": fake.url, "ARENA_URL": server.url,
               "ARENA_ADMIN_TOKEN": server.admin_token}
        cmd = [sys.executable, "-m", "study.cli", "agents", "run", "--n", "1",
               "--max-iterations", "1", "--workspaces", str(workspaces)]
        fake.replies.extend([
            tool_use_reply(("submit_method", {"task": "rt_sentiment", "source": VANILLA})),
            tool_use_reply(("list_my_attempts", {})), text_reply("done")])
        fake.hold.set()  # the first request goes through, the second is held...
        fake.hold.clear()
        first = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, start_new_session=True)
        _wait_requests(fake, 1)
        fake.hold.set()  # ...so the harness is caught between turns, its submit already made
        assert fake.held.wait(60)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait(10)
        fake.hold.clear()
        fake.release.set()
        token = (workspaces / ".harness" / "claude-1" / "token").read_text().strip()
        with ArenaClient(server.url, token) as agent:
            assert len(agent.attempts()) == 1
        resumed = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                                 timeout=300, check=False)
        assert resumed.returncode == 0, resumed.stdout + resumed.stderr
        assert "iteration budget reached" in resumed.stdout
    with ArenaClient(server.url, token) as agent:
        assert len(agent.attempts()) == 1  # still one: the resume did not submit again
        assert agent.me().participant.display_name == "claude-1"
    with server.admin() as admin:
        (usage,) = [u for u in admin.usage() if u.display_name == "claude-1"]
    assert usage.turns == 3  # the held request was never answered, so never counted


def _wait_requests(fake, count, timeout=120):
    import time

    deadline = time.monotonic() + timeout
    while len(fake.requests) < count:
        assert time.monotonic() < deadline, "the harness never called the API"
        time.sleep(0.05)
