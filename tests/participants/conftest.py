"""A real study server for the workspace tests, and signed-in AppTests against it.

One server per test module (the small protocol: 5 attempts a day per participant, so each test
makes its own participants); the workspace reaches it only through ARENA_URL, as in production.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest
from streamlit.testing.v1 import AppTest

from participants.sdk import ArenaClient
from tests.conftest import REPO
from tests.e2e.conftest import LiveServer, make_server

APP = REPO / "participants" / "workspace" / "app.py"


@pytest.fixture(scope="module")
def arena(tmp_path_factory, rt_task) -> Iterator[LiveServer]:
    live = make_server(tmp_path_factory.mktemp("arena"))
    live.start()
    yield live
    live.stop()


@pytest.fixture
def app_for(arena: LiveServer, monkeypatch) -> Callable[[ArenaClient], AppTest]:
    """A workspace signed in with the client's token, through the sign-in page."""
    monkeypatch.setenv("ARENA_URL", arena.url)

    def make(client: ArenaClient) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.text_input(key="signin_token").input(client.token)
        at.button(key="signin_submit").click().run()
        assert not at.exception, at.exception
        assert at.session_state["auth_me"] is not None, [e.value for e in at.error]
        return at

    return make


def open_page(at: AppTest, name: str) -> AppTest:
    at.switch_page(f"app_pages/{name}.py").run()
    assert not at.exception, at.exception
    return at


def wait_until(predicate: Callable[[], bool], timeout: float = 90, poll: float = 0.3) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(poll)


def confirm_if_clocked_out(at: AppTest) -> None:
    """A clocked-out participant is asked before submitting; these tests submit anyway."""
    if any(b.key == "editor_submit_anyway" for b in at.button):
        assert any("clocked out" in str(w.value) for w in at.warning)
        at.button(key="editor_submit_anyway").click().run()
