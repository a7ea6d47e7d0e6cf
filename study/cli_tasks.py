"""`arena tasks`: list the built-in tasks; `arena tasks check DIR` validates a data folder."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from study.errors import ArenaError
from study.tasks import DEFAULT_TASKS

tasks_app = typer.Typer(help="The built-in tasks, and checks of your own data folders.",
                        invoke_without_command=True)
console = Console()
TOKENIZER_PATTERNS = ["tokenizer*", "vocab*", "merges*", "special_tokens_map.json",
                      "config.json", "*.tiktoken"]


@tasks_app.callback()
def list_tasks(ctx: typer.Context) -> None:
    """List the default tasks."""
    if ctx.invoked_subcommand is not None:
        return
    table = Table("task", "kind", "role", "weak_train", "train", "test", "description")
    for spec in DEFAULT_TASKS.values():
        table.add_row(spec.name, str(spec.kind), str(spec.role),
                      *(str(spec.sizes[s]) for s in ("weak_train", "train", "test")),
                      spec.description)
    console.print(table)


def _token_counter(model: str):
    """Token lengths with `model`'s tokenizer (a catalogue name or a local folder)."""
    from runner.lib.lm import load_tokenizer
    from runner.models.catalog import model_from_reference
    from runner.models.resolve import hub_is_offline, materialize, resolve_model

    spec, folder = model_from_reference(model)
    resolved = resolve_model(spec, local_path=folder)
    if resolved.path is None and spec.hub_id and not hub_is_offline():
        # Counting tokens needs the tokenizer, not gigabytes of weights.
        from huggingface_hub import snapshot_download

        path = snapshot_download(spec.hub_id, allow_patterns=TOKENIZER_PATTERNS)
    else:
        path = materialize(resolved).path
    tokenizer = load_tokenizer(path)
    return lambda texts: [len(ids) for ids in tokenizer(texts)["input_ids"]]


@contextmanager
def _bad_input_exits() -> Iterator[None]:
    """A platform error or a bad value (an unknown kind, role or pair) is one red line and
    exit 2, not a traceback."""
    try:
        yield
    except ArenaError as exc:
        console.print(f"[red]error[/red] ({exc.code}): {escape(exc.message)}")
        raise typer.Exit(2) from None
    except ValueError as exc:
        console.print(f"[red]error[/red]: {escape(str(exc))}")
        raise typer.Exit(2) from None


@tasks_app.command("check")
def check(folder: Annotated[Path, typer.Argument(help="A folder in the AAR layout.")],
          kind: Annotated[str, typer.Option(help="classify, pairwise or verify.")],
          model: Annotated[str, typer.Option(
              help="Whose tokenizer counts tokens: a catalogue model or a local folder.")]
          = "tiny-qwen3") -> None:
    """Validate a data folder; print sizes, class balance and token lengths per split."""
    from study.tasks.datadir import check_data_dir

    with _bad_input_exits():
        report = check_data_dir(folder, kind, _token_counter(model))
    table = Table("split", "file", "items", "label 1 share", "tokens min / median / p95 / max",
                  "subsets", title=f"{folder} ({kind}; tokens by {model})")
    for split, row in report.items():
        tok = row["tokens"]
        table.add_row(split, row["file"], str(row["n"]), f"{row['share_label_1']:.3f}",
                      f"{tok['min']} / {tok['median']:g} / {tok['p95']} / {tok['max']}",
                      ", ".join(row["subsets"]) or "—")
    console.print(table)
    console.print("[green]ok[/green]: the folder can be named in a protocol's "
                  + escape("[[datasets]]"))


@tasks_app.command("audit")
def audit(task: Annotated[str, typer.Argument(help="A built-in task name.")],
          pair: Annotated[str, typer.Option(
              "--pair", envvar="ARENA_MODEL_PAIR", help="'default' or 'small'.")] = "default",
          role: Annotated[str | None, typer.Option(
              help="Judge as 'hill_climb' or 'held_out' (default: the task's own role).")]
          = None,
          out: Annotated[Path | None, typer.Option(
              help="Folder for <task>.json and <task>.md (default: the cache's audits/).")]
          = None) -> None:
    """A task's health report (docs/tasks.md): floor, ceiling, interval width, copying the
    teacher, teacher-free methods, a bounded sweep of the shipped baselines, and a verdict."""
    import json

    from runner.models import PAIRS
    from runner.task_audit import audit_task, render_markdown
    from runner.teacher import resolve_pair
    from study.settings import cache_dir
    from study.tasks import TaskRole, prepare_task

    with _bad_input_exits():
        built = prepare_task(task)
        if pair not in PAIRS:
            raise ValueError(f"unknown pair {pair!r}; known: {sorted(PAIRS)}")
        resolved = resolve_pair(pair)
        report = audit_task(built, resolved, role=TaskRole(role) if role else None,
                            progress=lambda step: console.print(f"[dim]{step}…[/dim]"))
    folder = out or cache_dir() / "audits" / resolved.key
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{task}.json").write_text(json.dumps(report, indent=2))
    markdown = render_markdown(report)
    (folder / f"{task}.md").write_text(markdown)
    console.print(markdown)
    console.print(f"wrote {folder / f'{task}.json'} and {folder / f'{task}.md'}")
