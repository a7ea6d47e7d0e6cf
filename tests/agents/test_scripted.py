"""The scripted agent explores baseline variants through the SDK, idempotently, within quota."""

from participants.agents.scripted import run_scripted, variants
from tests.conftest import REPO


def test_variants_rewrite_one_constant_each():
    sources = {p.stem: p.read_text() for p in (REPO / "baselines").glob("*.py")}
    found = {v.key: v for v in variants(sources)}
    assert "logconf-ALPHA-0.9" in found and "ALPHA = 0.9" in found["logconf-ALPHA-0.9"].source
    assert len(found) == 2 + 3 * 3


def test_the_scripted_agent_runs_posts_and_resumes_without_duplicates(server):
    bot = server.participant("scripted-baseline", arm="automated-baseline", kind="agent")
    first = run_scripted(bot, poll=0.1, stop_after=2)
    assert len(first) == 2
    again = run_scripted(bot, poll=0.1, stop_after=2)
    assert again == first  # the same idempotency keys: the same attempts
    assert len(bot.attempts()) == 2
    (post,) = [p for p in bot.forum() if p.participant_id == bot.participant_id][:1]
    assert post.attempt_id in first
    everything = run_scripted(bot, poll=0.1)  # 11 variants, 5 attempts a day
    assert len(bot.attempts()) == 5 and len(everything) == 5
    assert bot.clock().clocked_in_since is None and bot.clock().active_seconds > 0
