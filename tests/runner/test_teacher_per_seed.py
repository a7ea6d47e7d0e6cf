"""Seed k of an attempt learns from one of the 16 frozen teachers, drawn from the seed, so the
floor is the mean of the population methods learn from and copying the teacher scores PGR 0.

The task is synthetic: its features are written straight into a private feature cache (so no
encoder runs), and everything after that is the real path: fixed baselines, per-teacher bundles,
one sandboxed process per seed, the scorer.
"""

from __future__ import annotations

import textwrap

import numpy as np
import pytest

from runner.attempt import run_attempt
from runner.features import feature_path
from runner.method import Budget
from runner.teacher import BASELINE_SEEDS, fixed_baselines, teacher_index
from study.tasks import Example, TaskKind, TaskRole, TaskSpec, build_task

# Fits the teacher exactly: its logits are affine in the weak features, so least squares on the
# logit of its soft labels recovers it, and the method returns the teacher's own test answers.
COPY_TEACHER = """
import numpy as np

def run(ctx):
    p = np.clip(np.asarray(ctx.weak_soft_labels, dtype=np.float64), 1e-12, 1 - 1e-12)
    X = ctx.weak_features("train")
    A = np.c_[X, np.ones(len(X))]
    coef, *_ = np.linalg.lstsq(A, np.log(p / (1 - p)), rcond=None)
    T = ctx.weak_features("test")
    return 1 / (1 + np.exp(-(np.c_[T, np.ones(len(T))] @ coef)))
"""


def synthetic_task():
    rng = np.random.default_rng(7)
    n = 1100
    latent = rng.normal(size=n)
    labels = (latent + rng.normal(scale=0.3, size=n) > 0.2).astype(int)  # not 50/50
    examples = [Example({"text": f"synthetic item {i}"}, int(labels[i])) for i in range(n)]
    spec = TaskSpec(name="synthetic_teacher_copy", kind=TaskKind.CLASSIFY,
                    role=TaskRole.HILL_CLIMB, source="synthetic",
                    sizes={"weak_train": 60, "train": 540, "test": 500},
                    description="synthetic")
    task = build_task(spec, examples)
    by_uid = {ex.uid: i for i, ex in enumerate(examples)}
    return task, latent, by_uid


def write_features(task, latent, by_uid, pair) -> None:
    """Weak: the latent under heavy noise in 6-d; strong: it under light noise in 12-d."""
    rng = np.random.default_rng(8)
    for model, dim, noise in ((pair.weak, 6, 2.0), (pair.strong, 12, 0.4)):
        for split, examples in task.splits.items():
            z = latent[[by_uid[ex.uid] for ex in examples]]
            X = rng.normal(scale=noise, size=(len(z), dim)) + z[:, None] * np.linspace(1, .2, dim)
            path = feature_path(model, task, split)
            path.parent.mkdir(parents=True, exist_ok=True)
            np.save(path, X.astype(np.float32))


def one_seed_per_teacher() -> list[int]:
    seeds: dict[int, int] = {}
    candidate = 0
    while len(seeds) < len(BASELINE_SEEDS):
        seeds.setdefault(teacher_index(candidate), candidate)
        candidate += 1
    return [seeds[k] for k in range(len(BASELINE_SEEDS))]


@pytest.fixture
def synthetic(tmp_path, monkeypatch, small_pair):
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    task, latent, by_uid = synthetic_task()
    write_features(task, latent, by_uid, small_pair)
    return task, fixed_baselines(task, small_pair)


def test_teacher_index_is_fixed_by_the_seed_and_uniform():
    draws = np.bincount([teacher_index(s) for s in range(16_000)], minlength=16)
    assert teacher_index(123) == teacher_index(123)
    assert draws.min() > 850 and draws.max() < 1150  # 1000 expected per teacher


def test_copying_the_teacher_scores_zero_over_the_teachers(synthetic, small_pair, tmp_path):
    task, baselines = synthetic
    assert np.ptp(baselines.weak_acc) > 0, "the 16 teachers must differ for this to test much"
    method = tmp_path / "copy.py"
    method.write_text(textwrap.dedent(COPY_TEACHER))
    seeds = one_seed_per_teacher()
    result = run_attempt(method, task, seeds=seeds, pair=small_pair,
                         budget=Budget(seconds=60, memory_mb=2048))
    assert result.status == "scored", result.error
    # Each seed got exactly its own teacher's labels: it reproduces that teacher's accuracy.
    got = [o.accuracy for o in result.outcomes]
    want = [baselines.weak_acc[teacher_index(s)] for s in seeds]
    assert got == pytest.approx(want, abs=1e-9)
    score = result.scores["all"]
    assert score.pgr == pytest.approx(0.0, abs=1e-9)
    # Under the old rule (always teacher 0) the same method scored this instead, not 0.
    old = (baselines.weak_acc[0] - baselines.weak_mean) / (baselines.ceiling_mean
                                                            - baselines.weak_mean)
    assert old != pytest.approx(0.0, abs=1e-3)


def test_the_bundle_holds_only_its_seeds_teacher(synthetic, small_pair):
    from runner.bundle import write_bundle

    task, baselines = synthetic
    all_labels = np.load(baselines.teacher_labels_path())
    assert all_labels.shape == (len(BASELINE_SEEDS), task.info.sizes["train"])
    for k in (0, 5):
        folder = write_bundle(task, small_pair, baselines, teacher=k)
        arrays = sorted(p.name for p in folder.glob("*.npy"))
        assert arrays == ["weak_soft_labels.npy"]
        np.testing.assert_array_equal(np.load(folder / "weak_soft_labels.npy"), all_labels[k])
