import dataclasses
import json

import pytest

from study.errors import InvalidError, NotFoundError
from study.tasks import (
    DEFAULT_TASKS,
    Example,
    TaskKind,
    build_task,
    load_task_dir,
    write_task,
)
from study.tasks.formats import parse_row, read_jsonl
from study.tasks.sources import (
    MIN_PARAGRAPH_WORDS,
    convention_speeches,
    hhh_alignment,
    rotten_tomatoes,
)


@pytest.fixture(scope="module")
def rt_source():
    return rotten_tomatoes()


def test_split_is_deterministic_and_disjoint(rt_source):
    spec = DEFAULT_TASKS["rt_sentiment"]
    a, b = build_task(spec, rt_source), build_task(spec, list(rt_source))
    assert a.info.content_hash == b.info.content_hash
    uids = {s: [ex.uid for ex in a.splits[s]] for s in a.splits}
    assert uids == {s: [ex.uid for ex in b.splits[s]] for s in b.splits}
    sets = {s: set(v) for s, v in uids.items()}
    assert not (sets["weak_train"] & sets["train"]) and not (sets["train"] & sets["test"])
    assert not (sets["weak_train"] & sets["test"])
    assert {s: len(v) for s, v in uids.items()} == spec.sizes


def test_splits_keep_the_sources_natural_class_ratio(rt_source):
    """Not an exact 50/50, which would hand methods the class prior: each split has the
    source's share of label 1 to within one item."""
    natural = sum(ex.label for ex in rt_source) / len(rt_source)
    assert abs(natural - 0.5) > 0.05  # fresh snippets outnumber rotten ones in the source
    task = build_task(DEFAULT_TASKS["rt_sentiment"], rt_source)
    for split, examples in task.splits.items():
        positives = sum(ex.label for ex in examples)
        assert abs(positives - natural * len(examples)) <= 1, split


def test_a_documented_tilt_sets_the_share(rt_source):
    spec = dataclasses.replace(DEFAULT_TASKS["rt_sentiment"], positive_share=0.3)
    task = build_task(spec, rt_source)
    assert sum(ex.label for ex in task.splits["test"]) == round(0.3 * spec.sizes["test"])


def test_another_seed_or_size_changes_the_hash_but_not_test(rt_source):
    spec = DEFAULT_TASKS["rt_sentiment"]
    base = build_task(spec, rt_source)
    resized = build_task(dataclasses.replace(spec, sizes={**spec.sizes, "weak_train": 300}),
                         rt_source)
    assert resized.info.content_hash != base.info.content_hash
    assert [e.uid for e in resized.splits["test"]] == [e.uid for e in base.splits["test"]]
    reseeded = build_task(dataclasses.replace(spec, split_seed=1), rt_source)
    assert reseeded.info.content_hash != base.info.content_hash


def test_write_and_load_round_trip(tmp_path, rt_source):
    task = build_task(DEFAULT_TASKS["rt_sentiment"], rt_source)
    write_task(task, tmp_path / "rt")
    loaded = load_task_dir(tmp_path / "rt")
    assert loaded.info.content_hash == task.info.content_hash
    assert loaded.splits["test"][0] == task.splits["test"][0]


def test_hhh_is_pairwise_with_subsets_and_shuffled_order():
    examples = hhh_alignment()
    assert len(examples) == 221
    assert {ex.subset for ex in examples} == {"harmless", "helpful", "honest", "other"}
    share_first = sum(ex.label for ex in examples) / len(examples)
    assert 0.4 < share_first < 0.6  # the source always lists the better answer first


def test_convention_paragraphs_keep_both_parties_and_drop_applause_lines():
    examples = convention_speeches()
    assert len(examples) == 2942  # 189 speeches cut at line breaks, duplicates dropped
    assert len({ex.uid for ex in examples}) == len(examples)
    assert min(len(ex.inputs["text"].split()) for ex in examples) >= MIN_PARAGRAPH_WORDS
    assert sum(ex.label for ex in examples) == 1205  # republican; the rest democrat


def test_aar_formats_parse_every_kind():
    pair = parse_row(TaskKind.PAIRWISE, {"prompt": "p", "first": "a", "second": "b",
                                         "label": "B", "subset": "ood"})
    assert pair.label == 0 and pair.subset == "ood"
    verify = parse_row(TaskKind.VERIFY, {"question": "2+2?", "choice": "4", "label": True})
    assert verify.label == 1
    assert parse_row(TaskKind.CLASSIFY, {"text": "t", "label": 0}).label == 0


@pytest.mark.parametrize(
    ("kind", "row", "message"),
    [
        (TaskKind.PAIRWISE, {"prompt": "p", "first": "a", "label": "A"},
         "lacks field(s) ['second']"),
        (TaskKind.PAIRWISE, {"prompt": "p", "first": "a", "second": "b", "label": 1}, '"A" or "B"'),
        (TaskKind.VERIFY, {"question": "q", "choice": "c", "label": "yes"}, "true or false"),
        (TaskKind.CLASSIFY, {"text": "t", "label": True}, "0 or 1"),
    ],
)
def test_bad_rows_get_a_clear_error(kind, row, message):
    with pytest.raises(InvalidError) as info:
        parse_row(kind, row)
    assert message in info.value.message


def test_load_task_dir_reports_file_and_line(tmp_path):
    folder = tmp_path / "t"
    folder.mkdir()
    good = json.dumps({"question": "q", "choice": "c", "label": False})
    for split in ("weak_train", "train"):
        (folder / f"{split}.jsonl").write_text(good + "\n")
    with pytest.raises(NotFoundError, match=r"lacks test\.jsonl"):
        load_task_dir(folder, name="v", kind=TaskKind.VERIFY)
    (folder / "test.jsonl").write_text(good + "\n{not json\n")
    with pytest.raises(InvalidError, match=r"test\.jsonl:2"):
        read_jsonl(TaskKind.VERIFY, folder / "test.jsonl")
    (folder / "test.jsonl").write_text(good + "\n")
    task = load_task_dir(folder, name="v", kind=TaskKind.VERIFY)
    assert task.info.sizes == {"weak_train": 1, "train": 1, "test": 1}


def test_example_rejects_non_binary_labels():
    with pytest.raises(ValueError):
        Example({"text": "x"}, 2)
