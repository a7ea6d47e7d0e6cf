"""A study on the Ray backend whose head cannot be reached: the server still accepts and queues
submissions, /v1/health says why nothing runs, and every workspace page says so in its sidebar.
An unhealthy server (503: here the data disk below the floor) is named in the sidebar too."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from study.records import AttemptStatus
from tests.e2e.conftest import SMALL, VANILLA, free_port, make_server
from tests.participants.conftest import APP


@pytest.fixture
def away(tmp_path, rt_task):
    live = make_server(tmp_path)
    # Nothing listens on this port: the Ray head is "away" from the start.
    live.start(args=("--backend", "ray", "--ray-address", f"ray://127.0.0.1:{free_port()}"))
    yield live
    live.stop()


def test_submissions_queue_and_the_sidebar_says_why(away, monkeypatch):
    address = away.proc.args[away.proc.args.index("--ray-address") + 1]
    pat = away.participant("pat")
    view = pat.submit(VANILLA, "rt_sentiment")
    assert view.status is AttemptStatus.QUEUED
    report = pat.health_report()
    assert report["status"] == "ok"  # serving: a restart would not bring the head back
    executor = report["executor"]
    assert (executor["backend"], executor["address"], executor["connected"]) == (
        "ray", address, False)
    assert executor["error"].startswith(f"cannot reach the Ray head at {address}")
    assert any("cannot reach the Ray head" in w for w in report["warnings"])
    assert pat.attempt(view.id).status is AttemptStatus.QUEUED  # waiting, not failed

    monkeypatch.setenv("ARENA_URL", away.url)
    at = AppTest.from_file(str(APP), default_timeout=60).run()
    at.text_input(key="signin_token").input(pat.token)
    at.button(key="signin_submit").click().run()
    assert not at.exception, at.exception
    shown = [str(w.value) for w in at.sidebar.warning]
    assert any(w.startswith("Runner: attempts wait in the queue") for w in shown), shown


def test_an_unhealthy_server_is_named_in_the_sidebar(tmp_path, rt_task, monkeypatch):
    live = make_server(tmp_path)
    live.start(slots=0)
    try:
        ray = live.participant("ray-disk")
        monkeypatch.setenv("ARENA_URL", live.url)
        at = AppTest.from_file(str(APP), default_timeout=60).run()
        at.text_input(key="signin_token").input(ray.token)
        at.button(key="signin_submit").click().run()
        assert not at.exception and not at.sidebar.error, at.sidebar.error
        floor = 10 ** 9  # MB: more than any disk has free
        with live.admin() as admin:
            admin.amend_protocol(SMALL.read_text().replace(
                "[limits]", f"[limits]\nmin_free_disk_mb = {floor}"), reason="test the floor")
        assert ray.health_report()["status"] == "unhealthy"
        at.run()
        shown = [str(e.value) for e in at.sidebar.error]
        assert any(e.startswith("Server: ") and "floor" in e for e in shown), shown
    finally:
        live.stop()
