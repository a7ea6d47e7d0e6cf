"""The workspace waits on long-polls, not on a timer: a browser left on a queued attempt keeps a
long-poll parked on the study server and asks it nothing else while nothing changes; a change
reaches the page through that long-poll. Read from the server's own access log (`arena serve
--access-log`) and its health report (parked long-polls). Real server with no worker slot (the
attempt stays queued), real `streamlit run`, chromium."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import VANILLA, make_server, wait_for
from tests.participants.browser import Workspace
from tests.participants.test_browser import browser, errors_of, page, sign_in  # noqa: F401

pytestmark = pytest.mark.browser
IDLE_S = 8.0  # eight redraws of the page's live part
REQUEST = re.compile(r'"GET (\S+) HTTP/1\.1"')


@pytest.fixture(scope="module")
def quiet(tmp_path_factory, rt_task):
    live = make_server(tmp_path_factory.mktemp("quiet"))
    live.start(slots=0, args=("--access-log",))
    yield live
    live.stop()


@pytest.fixture(scope="module")
def quiet_workspace(quiet, tmp_path_factory):
    with Workspace(quiet.url, tmp_path_factory.mktemp("workspace")) as ws:
        yield ws


def _gets(server, since: int) -> list[str]:
    """Paths (with queries) of the GET requests the server has answered since `since` bytes
    into its log."""
    return REQUEST.findall((server.data_dir / "server.log").read_bytes()[since:].decode())


def _log_size(server) -> int:
    return (server.data_dir / "server.log").stat().st_size


def test_a_page_on_a_queued_attempt_long_polls_and_asks_nothing_on_a_timer(
        quiet, quiet_workspace, page):  # noqa: F811
    vic = quiet.participant("vic-waits")
    view = vic.submit(VANILLA, "rt_sentiment")  # no worker slot: it stays queued
    sign_in(page, quiet_workspace.url, vic.token)
    page.goto(f"{quiet_workspace.url}/attempts?attempt={view.id}")
    expect(page.get_by_role("heading", name="My attempts", exact=True)).to_be_visible()
    expect(page.get_by_text("waiting for a worker")).to_be_visible()
    wait_for(lambda: vic.health_report()["waiting"] >= 1, timeout=30)  # parked on the server

    idle_from = _log_size(quiet)
    page.wait_for_timeout(IDLE_S * 1000)
    idle = [p for p in _gets(quiet, idle_from) if p.startswith("/v1/attempts")]
    # Nothing changed: no list refetch and no plain read of the attempt, only (at most) a
    # long-poll that ran out its wait and was asked again.
    assert all("wait=" in p for p in idle), idle
    assert vic.health_report()["waiting"] >= 1

    change_from = _log_size(quiet)
    vic.cancel(view.id)
    expect(page.get_by_test_id("stMetricValue").filter(has_text="cancelled")).to_be_visible()
    answered = _gets(quiet, change_from)
    assert any(p.startswith(f"/v1/attempts/{view.id}?wait=") and "since=queued" in p
               for p in answered), answered
    assert errors_of(page) == []
