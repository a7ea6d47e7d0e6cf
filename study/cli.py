"""`arena`: prepare the embedded default study, show its fixed baselines, run a method."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from study.errors import ArenaError
from study.tasks import DEFAULT_TASKS, prepare_task

app = typer.Typer(help="w2s-arena: a weak-to-strong research race, scored by the server.",
                  no_args_is_help=True, add_completion=False)
console = Console()

PairOpt = Annotated[str, typer.Option(
    "--pair", envvar="ARENA_MODEL_PAIR",
    help="(weak, strong) models: 'default' (MiniLM-L3 → mpnet) or 'small' (L3 → MiniLM-L6).")]


def _fail(exc: ArenaError) -> None:
    console.print(f"[red]error[/red] ({exc.code}): {exc.message}")
    raise typer.Exit(2)


def _fmt(mean: float | None, se: float | None = None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f}" if se is None else f"{mean:.3f} ± {se:.3f}"


@app.command()
def tasks() -> None:
    """List the default tasks."""
    table = Table("task", "kind", "role", "weak_train", "train", "test", "description")
    for spec in DEFAULT_TASKS.values():
        table.add_row(spec.name, str(spec.kind), str(spec.role),
                      *(str(spec.sizes[s]) for s in ("weak_train", "train", "test")),
                      spec.description)
    console.print(table)


def _baseline_row(table: Table, name: str, pair: str) -> None:
    from runner.teacher import fixed_baselines, resolve_pair

    task = prepare_task(name)
    record = fixed_baselines(task, resolve_pair(pair))
    weak, ceil = record.weak_acc, record.ceiling_acc
    table.add_row(name, str(task.kind), str(task.info.role), task.info.content_hash,
                  f"{statistics.mean(weak):.3f} ± {statistics.stdev(weak):.3f}",
                  f"{statistics.mean(ceil):.3f} ± {statistics.stdev(ceil):.3f}",
                  f"{record.ceiling_mean - record.weak_mean:.3f}", str(len(weak)))


def _baseline_table(names: list[str], pair: str) -> Table:
    table = Table("task", "kind", "role", "data hash", "weak (mean ± sd)",
                  "ceiling (mean ± sd)", "gap", "seeds", title=f"fixed baselines, pair {pair}")
    for name in names:
        _baseline_row(table, name, pair)
    return table


@app.command()
def prepare(pair: PairOpt = "default",
            task: Annotated[list[str] | None,
                            typer.Option(help="Only these tasks.")] = None) -> None:
    """Build the default tasks, cache their features and freeze their baselines (once)."""
    try:
        console.print(_baseline_table(task or list(DEFAULT_TASKS), pair))
    except ArenaError as exc:
        _fail(exc)


@app.command()
def baselines(task: str, pair: PairOpt = "default") -> None:
    """Print a task's fixed weak floor and ceiling (mean ± sd over 16 seeds)."""
    try:
        console.print(_baseline_table([task], pair))
    except ArenaError as exc:
        _fail(exc)


def _score_table(result) -> Table:
    table = Table("part", "subset", "n", "weak", "W2S", "ceiling", "PGR ± SE", "PGR 95% CI",
                  title=f"{result.task}: {len(result.seeds)} seed(s)")
    for part, score in result.scores.items():
        ci = "—" if score.pgr_ci95 is None else "[{:.2f}, {:.2f}]".format(*score.pgr_ci95)
        table.add_row(part, "(all)", str(score.n), _fmt(score.weak), _fmt(score.accuracy),
                      _fmt(score.ceiling), _fmt(score.pgr, score.pgr_se), ci)
        for name, sub in score.subsets.items():
            table.add_row("", name, str(sub.n), _fmt(sub.weak), _fmt(sub.accuracy),
                          _fmt(sub.ceiling), _fmt(sub.pgr), "")
    return table


@app.command()
def run(method: Annotated[Path, typer.Argument(help="A method file, or a folder with method.py.")],
        task: Annotated[str, typer.Option(help="Task name.")] = "rt_sentiment",
        seeds: Annotated[int, typer.Option(min=1, max=64, help="How many seeds.")] = 3,
        seed: Annotated[list[int] | None, typer.Option(
            help="Fix the seeds (reproduce a run); by default the runner draws them.")] = None,
        pair: PairOpt = "default",
        time_budget: Annotated[float, typer.Option(help="Seconds per seed.")] = 600.0,
        memory_mb: Annotated[int, typer.Option(help="Address-space limit per seed.")] = 4096,
        no_sandbox: Annotated[bool, typer.Option(help="Run without bubblewrap.")] = False) -> None:
    """Run one method on one task and print weak / W2S / ceiling / PGR ± SE per part."""
    from runner.attempt import choose_seeds, run_attempt
    from runner.method import Budget
    from runner.teacher import resolve_pair

    chosen = list(seed) if seed else choose_seeds(seeds)
    done = []

    def report(outcome) -> None:
        done.append(outcome)
        status = "[green]ok[/green]" if outcome.status == "ok" else f"[red]{outcome.status}[/red]"
        console.print(f"seed {outcome.seed}: {status} in {outcome.wall_s:.1f} s "
                      f"(cpu {outcome.cpu_s:.1f} s, peak {outcome.peak_mb:.0f} MB)"
                      + ("" if outcome.sandboxed else " [yellow]unsandboxed[/yellow]"))

    try:
        with console.status(f"running {method.name} on {task} ({len(chosen)} seeds)"):
            result = run_attempt(method, task, seeds=chosen, pair=resolve_pair(pair),
                                 budget=Budget(seconds=time_budget, memory_mb=memory_mb),
                                 sandbox=not no_sandbox, on_seed=report)
    except ArenaError as exc:
        _fail(exc)
    if result.status != "scored":
        failed = next(o for o in result.outcomes if o.status != "ok")
        console.print(f"[red]failed[/red]: {result.error}")
        if failed.traceback:
            console.print(failed.traceback[-3000:], markup=False, highlight=False)
        if failed.log_tail:
            console.print("[dim]output tail:[/dim]")
            console.print(failed.log_tail[-2000:], markup=False, highlight=False)
        raise typer.Exit(1)
    console.print(_score_table(result))


def main() -> None:  # pragma: no cover - console entry for `python -m study.cli`
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(app())


if __name__ == "__main__":
    main()
