"""The feature cache: computed once, reused, and recomputed when the data changes."""

import dataclasses

import numpy as np
import pytest

import runner.features as features
from study.tasks import Example, TaskKind, TaskRole, TaskSpec, build_task


def _task(texts, seed=0):
    examples = [Example({"text": t}, i % 2) for i, t in enumerate(texts)]
    spec = TaskSpec(name="tiny", kind=TaskKind.CLASSIFY, role=TaskRole.HELD_OUT, source="-",
                    sizes={"weak_train": 2, "train": 4, "test": 4}, description="",
                    split_seed=seed)
    return build_task(spec, examples)


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path))
    return tmp_path


def test_miss_then_hit(isolated_cache, small_pair, monkeypatch):
    task = _task([f"review number {i}" for i in range(10)])
    loads = []
    real_load = features.load_encoder
    monkeypatch.setattr(features, "load_encoder", lambda m: loads.append(m) or real_load(m))
    first = features.ensure_features(small_pair.strong, task, ("train", "test"))
    assert len(loads) == 1 and all(p.exists() for p in first.values())
    assert str(isolated_cache) in str(first["train"])
    second = features.ensure_features(small_pair.strong, task, ("train", "test"))
    assert second == first and len(loads) == 1  # a hit never loads the encoder
    assert np.load(first["test"]).shape == (4, 384)


def test_changed_data_invalidates(isolated_cache, small_pair):
    texts = [f"review number {i}" for i in range(10)]
    before = features.ensure_features(small_pair.weak, _task(texts), ("test",))["test"]
    changed = features.ensure_features(small_pair.weak, _task([t + "!" for t in texts]),
                                       ("test",))["test"]
    assert changed != before and changed.exists()
    assert not np.allclose(np.load(changed), np.load(before))


def test_pairwise_features_are_answer_differences(isolated_cache, small_pair):
    examples = [Example({"prompt": "q", "first": f"good {i}", "second": f"bad {i}"}, 1)
                for i in range(6)]
    spec = TaskSpec(name="pairs", kind=TaskKind.PAIRWISE, role=TaskRole.HELD_OUT, source="-",
                    sizes={"weak_train": 2, "train": 2, "test": 2}, description="")
    task = build_task(spec, examples)
    swapped = build_task(spec, [dataclasses.replace(
        ex, inputs={"prompt": "q", "first": ex.inputs["second"], "second": ex.inputs["first"]},
        uid="") for ex in examples])
    a = features.load_features(small_pair.weak, task, "test")
    b = features.load_features(small_pair.weak, swapped, "test")
    np.testing.assert_allclose(a, -b, atol=1e-5)
