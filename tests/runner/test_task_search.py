"""The search script's candidate grammar: split sizes, hidden label names, the role and any two
packaged encoders as a pair (the audits themselves are tested in test_task_audit.py)."""

import importlib.util

import pytest

from study.tasks import TaskRole, build_task, get_spec
from study.tasks.sources import SOURCES
from tests.conftest import REPO


def _script():
    path = REPO / "scripts" / "task_search.py"
    spec = importlib.util.spec_from_file_location("task_search", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_candidate_resizes_splits_hides_names_and_sets_the_role():
    search = _script()
    spec, role = search.variant(
        "tweet_sentiment:test=3000:weak_train=150:hide_names=1:role=held_out")
    assert spec.sizes == {**get_spec("tweet_sentiment").sizes, "test": 3000, "weak_train": 150}
    assert spec.label_names == search.HIDDEN and "positive" not in spec.description
    assert role is TaskRole.HELD_OUT


def test_a_larger_test_split_takes_the_old_test_and_train_items():
    # Why a test of 3,000 costs only the new train split's features: it is dealt first, so it
    # holds exactly the items of the 1,000-item test and 2,000-item train it replaces.
    search = _script()
    source = SOURCES["tweets"]()
    old = build_task(search.variant("tweet_sentiment:test=1000:train=2000")[0], source)
    new = build_task(search.variant("tweet_sentiment:test=3000:train=2000")[0], source)
    before = {ex.uid for split in ("test", "train") for ex in old.splits[split]}
    assert {ex.uid for ex in new.splits["test"]} == before
    assert not {ex.uid for ex in new.splits["train"]} & {ex.uid for ex in new.splits["test"]}


def test_a_misspelt_key_is_refused_not_ignored():
    with pytest.raises(SystemExit, match="unknown keys"):
        _script().variant("tweet_sentiment:tset=3000")


def test_two_packaged_encoders_make_a_pair():
    pair = _script().pair_named("minilm-l3:minilm-l6")
    assert (pair.weak.spec.name, pair.strong.spec.name) == ("minilm-l3", "minilm-l6")
