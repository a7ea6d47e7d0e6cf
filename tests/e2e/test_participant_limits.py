"""Transcripts, usage reports and forum posts have per-participant daily caps, and usage (which
an agent's harness reports about itself) is validated and priced by the server."""

import io

import pandas as pd
import pytest

from participants.sdk import ArenaAPIError
from study.prices import turn_cost
from study.records import TranscriptSpec, UsageSpec
from tests.conftest import REPO
from tests.e2e.conftest import running_server
from tests.e2e.test_operations import raw

LIMITS = REPO / "tests" / "protocols" / "limits.toml"


@pytest.fixture(scope="module")
def live(tmp_path_factory, rt_task):
    with running_server(tmp_path_factory.mktemp("limits"), LIMITS) as server:
        yield server


def _usage(key: str, **change) -> UsageSpec:
    fields = {"turn_key": key, "model": "claude-haiku-4-5", "input_tokens": 1000,
              "output_tokens": 200, "cost_usd": 0.0}
    return UsageSpec(**{**fields, **change})


def _refused(call, status: int, says: str) -> ArenaAPIError:
    with pytest.raises(ArenaAPIError) as info:
        call()
    assert info.value.status == status and says in info.value.message, info.value
    return info.value


def test_usage_is_priced_by_the_server_and_marked_self_reported(live):
    bot = live.participant("bot", arm="ai", kind="agent")
    bot.report_usage(_usage("t1", cost_usd=0.0))  # a harness claiming its turns were free
    with live.admin() as admin:
        (row,) = [u for u in admin.usage() if u.participant_id == bot.participant_id]
    assert row.cost_usd == pytest.approx(turn_cost("claude-haiku-4-5", input_tokens=1000,
                                                   output_tokens=200))
    with live.admin() as admin:
        stored = pd.read_parquet(io.BytesIO(admin.export("usage")))
    (mine,) = stored[stored.participant_id == bot.participant_id].itertuples()
    assert mine.self_reported and mine.reported_cost_usd == 0.0  # the harness's claim, kept
    assert mine.cost_usd == pytest.approx(row.cost_usd)
    _refused(lambda: bot.report_usage(_usage("t2", model="gpt-imaginary")), 422, "no price")
    _refused(lambda: bot.report_usage(_usage("t3", output_tokens=10**9)), 422,
             "not plausible")


def test_usage_reports_have_a_daily_cap(live):
    bot = live.participant("bot2", arm="ai", kind="agent")
    bot.report_usage(_usage("a"))
    bot.report_usage(_usage("b"))
    bot.report_usage(_usage("a"))  # a resumed harness re-sending a turn costs nothing
    error = _refused(lambda: bot.report_usage(_usage("c")), 429, "usage reports")
    assert error.retry_after is not None and error.retry_after > 0


def test_oversize_transcripts_are_refused_and_nothing_is_lost(live):
    bot = live.participant("bot3", arm="ai", kind="agent")
    assert bot.report_transcript([TranscriptSpec(turn_key="k1", iteration=0, role="assistant",
                                                 content="x" * 5000)]) == 1
    _refused(lambda: bot.report_transcript([TranscriptSpec(
        turn_key="k2", iteration=1, role="assistant", content="y" * 6000)]), 429,
        "transcript bytes")
    with live.admin() as admin:
        kept = admin.transcript(bot.participant_id)
    assert [e["turn_key"] for e in kept] == ["k1"]


def test_forum_posts_have_a_daily_cap(live):
    ada = live.participant("ada", arm="ai")
    # A size cap per post, checked by the server (the SDK checks first; a raw client does not).
    long = raw(live, "POST", "/v1/forum", ada.token,
               json={"kind": "insight", "title": "too long", "body": "x" * 20_001})
    assert long.status_code == 422 and "body" in long.text
    for i in range(2):  # the refused post used none of the day's posts
        ada.post("insight", f"note {i}", "body")
    _refused(lambda: ada.post("insight", "one more", "body"), 429, "forum posts")
    assert len([p for p in ada.forum() if p.participant_id == ada.participant_id]) == 2
