"""The embedded default tasks and the one way to get a task: prepare (build once) or load."""

from __future__ import annotations

from pathlib import Path

from study.errors import NotFoundError
from study.settings import cache_dir
from study.tasks.build import TaskSpec, build_task, write_task
from study.tasks.records import Task, TaskKind, TaskRole
from study.tasks.sources import SOURCES

# Gold examples for each task's weak teacher: fewer make a weaker teacher and more room to climb.
# docs/tasks.md records the audits that chose the tasks: `tweet_sentiment` (8,000 test items) is the
# hill-climbing task and passes every criterion on L3 → mpnet (vanilla PGR 0.17, best teacher-free
# 0.15, best tuned baseline 0.27, interval half-width 0.064); `rt_sentiment` passes as a held-out
# task but not as the race, where `zero_shot` reaches 0.49 and a tuned logconf 0.75;
# `convention_party` is the closest second held-out task.
WEAK_TRAIN_SIZE = 100

DEFAULT_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="rt_sentiment", kind=TaskKind.CLASSIFY, role=TaskRole.HELD_OUT,
            source="rotten_tomatoes",
            sizes={"weak_train": WEAK_TRAIN_SIZE, "train": 3000, "test": 2000},
            description="Is this Rotten Tomatoes critic snippet from a fresh (1) or a rotten (0) "
                        "review?",
            label_names=("rotten", "fresh"),
        ),
        TaskSpec(
            name="tweet_sentiment", kind=TaskKind.CLASSIFY, role=TaskRole.HILL_CLIMB,
            source="tweets",
            sizes={"weak_train": WEAK_TRAIN_SIZE, "train": 2000, "test": 8000},
            description="Is this tweet positive (1) or negative (0)?",
            label_names=("negative", "positive"),
        ),
        TaskSpec(
            name="convention_party", kind=TaskKind.CLASSIFY, role=TaskRole.HELD_OUT,
            source="convention_speeches",
            sizes={"weak_train": WEAK_TRAIN_SIZE, "train": 1000, "test": 1200},
            description="Was this paragraph spoken at the 2012 Republican (1) or Democratic (0) "
                        "National Convention?",
            label_names=("democrat", "republican"),
        ),
    )
}

# Built and scored like the default tasks, but not part of the default study (docs/tasks.md):
# hhh_pairwise is too small for its gap to clear the noise (it exercises the pairwise format and
# per-subset scores); with these encoders no shipped method beats copying winowhy's teacher.
EXTRA_TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec(
            name="hhh_pairwise", kind=TaskKind.PAIRWISE, role=TaskRole.HELD_OUT,
            source="hhh_alignment",
            sizes={"weak_train": 60, "train": 81, "test": 80},
            description="Which of two assistant answers is more helpful, honest and harmless: "
                        "the first (A) or the second (B)?",
            label_names=("the second answer is better", "the first answer is better"),
        ),
        TaskSpec(
            name="winowhy_verify", kind=TaskKind.VERIFY, role=TaskRole.HELD_OUT,
            source="winowhy",
            sizes={"weak_train": 300, "train": 1000, "test": 900},
            description="Is the explanation given for this Winograd schema answer correct "
                        "(true) or not (false)?",
            label_names=("incorrect reasoning", "correct reasoning"),
        ),
    )
}


def task_folder(name: str, content_hash: str) -> Path:
    return cache_dir() / "tasks" / name / content_hash


def get_spec(name: str) -> TaskSpec:
    known = {**DEFAULT_TASKS, **EXTRA_TASKS}
    try:
        return known[name]
    except KeyError:
        raise NotFoundError(f"unknown task {name!r}; known: {sorted(known)}") from None


def prepare_task(spec: TaskSpec | str) -> Task:
    """Build the task from its source (deterministic) and keep a copy in the AAR layout."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    task = build_task(spec, SOURCES[spec.source]())
    folder = task_folder(task.name, task.info.content_hash)
    if not (folder / "task.json").exists():
        write_task(task, folder)
    return task
