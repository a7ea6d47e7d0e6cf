"""The protocol's [analysis] table: defaults for old protocols, the default protocol's plan,
and clear errors for a plan that cannot be read."""

from pathlib import Path

import pytest

from study.errors import InvalidError
from study.protocol import load_protocol, parse_protocol

REPO = Path(__file__).resolve().parents[2]
MINIMAL = """
name = "p"
[tasks]
hill_climb = ["rt_sentiment"]
[[arms]]
name = "human"
[[arms]]
name = "ai"
"""


def test_an_old_protocol_without_the_table_gets_the_default_plan():
    plan = parse_protocol(MINIMAL).analysis
    assert plan.endpoint == "private_at_best_public" and plan.unit == "participant"
    assert plan.at is None and plan.alpha == 0.05 and plan.test == "permutation"


def test_the_default_protocol_preregisters_human_against_ai():
    plan = load_protocol(REPO / "protocols" / "default.toml").analysis
    assert plan.arms == ["human", "ai"] and plan.axis == "calendar_hours"


@pytest.mark.parametrize(("table", "message"), [
    ('arms = ["human", "robots"]', "analysis.arms must name two of the arms"),
    ('arms = ["human"]', "analysis.arms must name two of the arms"),
    ('endpoint = "best_private"', "analysis.endpoint"),
    ('axis = "minutes"', "analysis.axis"),
    ("alpha = 1.5", "analysis.alpha"),
    ('unit = "attempt"', "analysis.unit"),
    ('task = "chat-0115"', "analysis.task 'chat-0115' is not a hill-climb task"),
])
def test_a_bad_plan_is_refused_with_its_field(table, message):
    with pytest.raises(InvalidError, match=message):
        parse_protocol(MINIMAL + f"[analysis]\n{table}\n")
