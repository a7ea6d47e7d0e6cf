"""The brief is one document for both arms, and it states what the server enforces: quotas
and budgets per arm, experiments, the ranking rule, the audits and who sees the forum."""

from study.score_display import PGR_SENTENCE


def test_both_arms_read_the_same_brief_with_every_rule(server):
    human = server.participant("hana")
    agent = server.participant("claude-b", arm="ai", kind="agent")
    text = human.brief()
    assert agent.brief() == text
    assert PGR_SENTENCE in text and "ctx.strong_features" in text
    assert "| human | 5 | 3600 s | 1 |" in text and "| ai | 5 | 3600 s | 1 |" in text
    assert "Dry runs (one seed, unscored, at most 120 s): 3 a day" in text
    assert "Experiments" in text and "50 a day, 1 at once" in text
    assert "*private* PGR" in text and "top 3 attempts are re-run on the held-out" in text
    assert "Teacher ablation" in text and "Label probing" in text
    assert "participants of your own arm" in text and "never shared" in text
