"""Tasks: typed examples, the AAR JSONL formats, deterministic splits, the default catalog."""

from study.tasks.build import TaskSpec, build_task, load_task_dir, write_task
from study.tasks.catalog import (
    DEFAULT_TASKS,
    EXTRA_TASKS,
    get_spec,
    prepare_task,
)
from study.tasks.formats import display_text, encoder_texts
from study.tasks.records import SPLITS, Example, Task, TaskInfo, TaskKind, TaskRole

__all__ = [
    "DEFAULT_TASKS", "EXTRA_TASKS", "SPLITS", "Example", "Task", "TaskInfo", "TaskKind",
    "TaskRole", "TaskSpec",
    "build_task", "display_text", "encoder_texts", "get_spec", "load_task_dir", "prepare_task",
    "write_task",
]
