"""Participant and admin commands of `arena`, each one a thin call of the SDK over HTTP."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from participants.sdk import ArenaAPIError, ArenaClient
from study.gpu_accounting import format_compute

console = Console()
UrlOpt = Annotated[str | None, typer.Option("--url", envvar="ARENA_URL",
                                            help="Study server (default http://127.0.0.1:8765).")]
TokenOpt = Annotated[str | None, typer.Option("--token", envvar="ARENA_TOKEN",
                                              help="Your bearer token.")]


def client(url: str | None, token: str | None) -> ArenaClient:
    return ArenaClient(url, token)


def fail(exc: ArenaAPIError) -> None:
    console.print(f"[red]{exc.status} {exc.code}[/red]: {exc.message}")
    if exc.retry_after:
        console.print(f"retry after {exc.retry_after:.0f} s")
    raise typer.Exit(1)


def _score(view) -> str:
    if view.public is None or view.public.pgr is None:
        return "—"
    # The server writes every score one way: "0.62 [0.53, 0.71]" (95%, items and seeds).
    return view.public.shown or str(view.public.pgr)


def hill_climb_task(api: ArenaClient) -> str:
    """The task a study races on, as the server states it (a protocol names at least one)."""
    return api.study().tasks["hill_climb"][0]


def show_attempt(view) -> None:
    console.print(f"[bold]{view.id}[/bold] {view.task}: [cyan]{view.status.value}[/cyan]"
                  + (f" (queue position {view.queue_position})" if view.queue_position else "")
                  + (f"  public PGR {_score(view)}" if view.public else ""))
    if view.gpu_seconds is not None:
        peak = f", peak GPU memory {view.peak_gpu_mb:.0f} MB" if view.peak_gpu_mb else ""
        console.print(f"GPU time {format_compute(view.gpu_seconds, 'GPU-seconds')}{peak}")
    if view.error:
        console.print(f"[red]{view.error}[/red]")
        if view.traceback:
            console.print(view.traceback[-2000:], markup=False, highlight=False)


def register(app: typer.Typer) -> None:
    register_agents(app)
    register_analysis(app)
    participant = typer.Typer(help="Admin: add participants and manage their tokens.")
    app.add_typer(participant, name="participant")

    @participant.command("add")
    def add(name: str, arm: Annotated[str | None, typer.Option(help="Arm, e.g. human or ai.")]
            = None, kind: Annotated[str, typer.Option(help="human or agent.")] = "human",
            role: Annotated[str, typer.Option(help="participant, analyst or admin.")]
            = "participant",
            hours: Annotated[float | None, typer.Option(help="Token lifetime.")] = None,
            url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Add a participant (admin token needed) and print its token, shown once."""
        try:
            issued = client(url, token).add_participant(name, arm=arm, kind=kind, role=role,
                                                        token_hours=hours)
        except ArenaAPIError as exc:
            fail(exc)
        console.print(f"participant {issued.participant.id} ({issued.participant.role.value}, "
                      f"arm {issued.participant.arm}); token:")
        print(issued.token)

    study = typer.Typer(help="Admin: change a running study's protocol (audited).")
    app.add_typer(study, name="protocol")

    @study.command("amend")
    def amend(protocol: Path, reason: Annotated[str, typer.Option(help="Why, for the log.")],
              url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Replace the protocol of a running study; scored attempts are re-scored."""
        try:
            out = client(url, token).amend_protocol(protocol.read_text(encoding="utf-8"),
                                                    reason=reason)
        except ArenaAPIError as exc:
            fail(exc)
        console.print(f"protocol now {out['protocol_hash'][:12]}; {out['rescored']} attempt(s) "
                      "re-scored")

    @app.command()
    def finalize(force: Annotated[bool, typer.Option(
                     help="Close a still-open window now (an audited event).")] = False,
                 wait: Annotated[bool, typer.Option(help="Wait for the re-runs.")] = True,
                 url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Admin: re-run each participant's top-k on the held-out tasks, reveal private scores,
        and print the generalization matrix."""
        api = client(url, token)
        try:
            out = api.finalize(force=force)
            console.print(f"{out['audits_queued']} held-out re-runs of {out['attempts']} "
                          "attempt(s) queued")
            with console.status("re-running on held-out tasks") as status:
                while wait:
                    pending = [a for a in api.audits() if a.kind == "heldout"
                               and a.status in ("queued", "running")]
                    if not pending:
                        break
                    status.update(f"{len(pending)} held-out re-run(s) to go")
                    time.sleep(1.0)
            rows = api.generalization()
        except ArenaAPIError as exc:
            fail(exc)
        tasks = sorted({t for r in rows for t in r.held_out})
        table = Table("participant", "arm", "attempt", "public", "private", *tasks,
                      title="generalization (PGR)")
        for r in rows:
            table.add_row(r.display_name, r.arm or "", r.attempt_id, str(r.hill_climb_public),
                          str(r.hill_climb_private),
                          *(str(None if r.held_out.get(t) is None else round(r.held_out[t], 3))
                            for t in tasks))
        console.print(table)

    @participant.command("revoke")
    def revoke(token_id: str, url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Revoke a token by its id (admin)."""
        try:
            client(url, token).revoke_token(token_id)
        except ArenaAPIError as exc:
            fail(exc)
        console.print(f"revoked {token_id}")

    @app.command()
    def submit(method: Path, task: Annotated[str | None, typer.Option(
                   help="Task name (default: the study's hill-climbing task).")] = None,
               wait: Annotated[bool, typer.Option(
                   help="Wait until it is scored or fails.")] = False,
               note: Annotated[str | None, typer.Option(help="A note to your future self.")]
               = None, url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Submit a method file; the server runs and scores it."""
        api = client(url, token)
        try:
            task = task or hill_climb_task(api)
            view = api.submit(method, task, note=note)
            show_attempt(view)
            if wait:
                with console.status("waiting") as status:
                    view = api.wait(view.id, on_update=lambda v: status.update(
                        f"{v.id}: {v.status.value}"
                        + (f", queue position {v.queue_position}" if v.queue_position else "")))
                show_attempt(view)
        except ArenaAPIError as exc:
            fail(exc)
        if wait and view.status.value != "scored":
            raise typer.Exit(1)

    def show_health(report: dict) -> None:
        """The server's own health: is the runner alive, the queue moving, the disk free?"""
        if report.get("status") == "ok":
            oldest = (report.get("queue") or {}).get("oldest_queued_s")
            wait = f"; oldest queued attempt waits {oldest:.0f} s" if oldest else ""
            console.print(f"server: [green]ok[/green] ({len(report.get('workers', []))} "
                          f"worker(s){wait})")
            return
        console.print("server: [red]unhealthy[/red]: "
                      + escape("; ".join(report.get("problems", []))), highlight=False)

    @app.command()
    def status(attempt_id: Annotated[str | None, typer.Argument()] = None,
               url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Your attempts (or one of them) and your remaining quota."""
        api = client(url, token)
        try:
            if attempt_id:
                show_attempt(api.attempt(attempt_id))
                return
            views = api.attempts()
            on_gpus = any(v.gpu_seconds is not None for v in views)  # a GPU study
            table = Table("id", "task", "status", "public PGR", "submitted",
                          *(["GPU time"] if on_gpus else []))
            for v in views:
                table.add_row(v.id, v.task, v.status.value, _score(v),
                              f"{v.submitted_at:%m-%d %H:%M}",
                              *([format_compute(v.gpu_seconds, "GPU-seconds")] if on_gpus
                                else []))
            console.print(table)
            quota = api.quota()
        except ArenaAPIError as exc:
            fail(exc)
        if quota:
            left = format_compute(quota.compute_seconds_left, quota.compute_unit)
            console.print(f"quota: {quota.attempts_left}/{quota.attempts_per_day} attempts, "
                          f"{left} left today; "
                          f"{quota.active_attempts} active of {quota.concurrent_attempts}")
        show_health(api.health_report())

    @app.command()
    def leaderboard(task: Annotated[str | None, typer.Option(help="Task name.")] = None,
                    url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Best public PGR per participant."""
        try:
            rows = client(url, token).leaderboard(task)
        except ArenaAPIError as exc:
            fail(exc)
        table = Table("#", "participant", "arm", "kind", "best public PGR", "attempts")
        for r in rows:
            table.add_row(str(r.rank), r.display_name, r.arm or "", r.kind,
                          r.shown or str(r.best_pgr), str(r.attempts))
        console.print(table)


def register_analysis(app: typer.Typer) -> None:
    @app.command()
    def report(out: Annotated[Path, typer.Option(help="The HTML file to write.")]
               = Path("report.html"),
               endpoint: Annotated[str | None, typer.Option(
                   help="private_at_best_public (honest), best_public or oracle_private; "
                        "default: the protocol's analysis plan.")] = None,
               cpu_hour_price: Annotated[float, typer.Option(
                   help="Dollars per CPU hour of compute.")] = 0.0,
               gpu_hour_price: Annotated[float, typer.Option(
                   help="Dollars per GPU hour of compute (CPU hours are not GPU hours).")]
               = 0.0,
               labour_hour_price: Annotated[float | None, typer.Option(
                   help="Dollars per active hour of a human; default: the protocol's.")]
               = None,
               bands: Annotated[bool, typer.Option(
                   help="Per-attempt intervals and paired tests (fetches per-item results).")]
               = True,
               url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Analyst: write a self-contained HTML report and its tables (CSV, Parquet)."""
        import pandas as pd

        from analysis.data import from_exports, items_from_payload
        from analysis.frames import Prices
        from analysis.report import write_report

        api = client(url, token)
        try:
            study = api.study()
            data = from_exports(api.export, study_start=pd.Timestamp(study.starts_at),
                                study_end=pd.Timestamp(study.ends_at),
                                generalization=[g.model_dump() for g in api.generalization()],
                                plan=study.analysis, arms=study.arms,
                                hill_climb=study.tasks.get("hill_climb", []))
            labour = labour_hour_price if labour_hour_price is not None else float(
                study.analysis.get("labour_hour_price", 0.0))
            prices = Prices(cpu_hour=cpu_hour_price, gpu_hour=gpu_hour_price,
                            labour_hour=labour)
            chosen = endpoint or study.analysis.get("endpoint", "private_at_best_public")
            part = "public" if chosen == "best_public" else "private"

            def items(attempt_id: str):
                try:
                    return items_from_payload(api.item_results(attempt_id), part=part)
                except ArenaAPIError as exc:
                    if exc.status == 404:  # imported results carry no per-item data
                        return None
                    raise

            with console.status("building the report"):
                paths = write_report(data, out, title=study.name, endpoint=endpoint,
                                     prices=prices, items=items if bands else None)
        except ArenaAPIError as exc:
            fail(exc)
        except ValueError as exc:  # an unknown endpoint, a plan that does not fit the data
            console.print(f"[red]cannot build the report[/red]: {exc}")
            raise typer.Exit(2) from None
        console.print(f"wrote {paths[0]} and {len(paths) - 1} table files in "
                      f"{paths[1].parent}")

    @app.command("import-aar")
    def import_aar(paths: list[Path], label: Annotated[str, typer.Option(
                       help="Who the results are from, e.g. 'AAR release'.")],
                   url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Admin: import AAR per-seed results (files, or a `cache_results` folder read
        recursively) as "imported" participants, one per AAR dataset."""
        from study.aar_import import read_release

        contents: dict = {}
        unreadable = []
        for path in paths:
            found, bad = read_release(path)
            contents.update(found)
            unreadable += bad
        for s in unreadable:
            console.print(f"[yellow]skipped[/yellow] {s.path}: {s.reason}")
        if not contents:
            console.print("[red]no readable result files[/red]")
            raise typer.Exit(2)
        try:
            out = client(url, token).import_aar(label, contents)
        except ArenaAPIError as exc:
            fail(exc)
        for s in out.get("skipped", []):
            console.print(f"[yellow]skipped[/yellow] {s['path']}: {s['reason']}")
        console.print(f"imported {len(out['attempts'])} attempt(s) as "
                      f"{', '.join(f'{d}: {p}' for d, p in out.get('participants', {}).items())}")


def register_agents(app: typer.Typer) -> None:
    agents = typer.Typer(help="Run AI participants (Claude agents, or the scripted agent).")
    app.add_typer(agents, name="agents")

    @agents.command("run")
    def run_agents(
            n: Annotated[int, typer.Option(min=1, max=32, help="How many agents.")] = 3,
            model: Annotated[str, typer.Option(help="Claude model, or 'scripted'.")]
            = "claude-opus-4-6",
            task: Annotated[str | None, typer.Option(
                help="Task to climb (default: the study's hill-climbing task).")] = None,
            max_usd: Annotated[float, typer.Option(help="Dollar budget per agent.")] = 50.0,
            max_hours: Annotated[float, typer.Option(help="Time budget per agent.")] = 24.0,
            max_iterations: int = 100, turns: int = 20,
            max_tokens: Annotated[int, typer.Option(help="Per model reply.")] = 4096,
            thinking: Annotated[str | None, typer.Option(
                help="Extended thinking: 'adaptive' or a token budget.")] = None,
            effort: Annotated[str | None, typer.Option(
                help="low, medium, high, xhigh or max.")] = None,
            prefix: Annotated[str, typer.Option(
                help="Agents are named PREFIX-1 … PREFIX-N; unique within a study.")]
            = "claude",
            runtime: Annotated[str, typer.Option(
                help="messages (the harness on the Messages API) or claude-code (Claude Code "
                     "in a sandbox, the claude-code extra).")] = "messages",
            workspaces: Annotated[Path, typer.Option(help="Agents' private folders.")]
            = Path("arena-data/agents"),
            directions: Annotated[Path | None, typer.Option(
                exists=True, dir_okay=False,
                help="A file with one research direction per line.")] = None,
            admin_token: Annotated[str | None, typer.Option(envvar="ARENA_ADMIN_TOKEN")] = None,
            url: UrlOpt = None) -> None:
        """Run N agents in parallel until their budgets run out; a rerun resumes them (with
        the budgets given now). Exits 1 if any agent died."""
        import os

        from participants.agents.directions import DIRECTIONS
        from participants.agents.fleet import agent_client, exit_code
        from participants.agents.fleet import run_agents as run_all
        from participants.agents.harness import Agent, AgentConfig
        from participants.agents.scripted import run_scripted

        def registered(name: str, arm: str) -> ArenaClient:
            try:
                return agent_client(workspaces, name, url=url, admin_token=admin_token, arm=arm)
            except ValueError as exc:
                raise typer.BadParameter(str(exc)) from None
            except ArenaAPIError as exc:
                fail(exc)
                raise

        if task is None:  # the study's own race, whatever the protocol names it
            try:
                with ArenaClient(url, admin_token) as api:
                    task = hill_climb_task(api)
            except ArenaAPIError as exc:
                fail(exc)
        if model == "scripted":
            ids = run_scripted(registered("scripted-baseline", "automated-baseline"), task=task)
            console.print(f"scripted agent ran {len(ids)} attempt(s)")
            return
        if runtime not in ("messages", "claude-code"):
            raise typer.BadParameter(f"--runtime is messages or claude-code, not {runtime!r}")
        if not os.environ.get("ANTHROPIC_API_KEY"):
            console.print("[red]set ANTHROPIC_API_KEY[/red] to run Claude agents "
                          "(or use --model scripted)")
            raise typer.Exit(2)
        import anthropic

        if runtime == "claude-code":
            from participants.agents.claude_code import claude_binary

            claude_binary()  # the extra is installed: checked before anyone is registered
        pool = (directions.read_text().splitlines() if directions else list(DIRECTIONS))
        pool = [d for d in pool if d.strip()]
        if not pool:
            console.print(f"[red]error[/red]: {directions} holds no direction (one per line)")
            raise typer.Exit(2)
        runners = []
        for i in range(n):
            name = f"{prefix}-{i + 1}"
            try:  # prices and options are checked here, before any paid call
                config = AgentConfig(
                    name=name, direction=pool[i % len(pool)], workspace=workspaces / name,
                    model=model, task=task, max_usd=max_usd, max_hours=max_hours,
                    max_iterations=max_iterations, turns_per_iteration=turns,
                    max_tokens=max_tokens, thinking=thinking, effort=effort)
            except ValueError as exc:
                console.print(f"[red]{exc}[/red]")
                raise typer.Exit(2) from None
            client = registered(name, "ai")
            if runtime == "claude-code":
                from participants.agents.claude_code import ClaudeCodeAgent

                runners.append(ClaudeCodeAgent(config, client, token=client.token))
            else:
                runners.append(Agent(config, client, anthropic.Anthropic(max_retries=5)))
        outcomes = run_all(runners)
        for o in outcomes:
            state = f"DIED: {o.died}" if o.died else o.stopped
            console.print(f"{o.name}: {state}; ${o.spent_usd:.2f}, {o.iterations} iteration(s)")
        raise typer.Exit(exit_code(outcomes))

    @app.command()
    def mcp(transport: Annotated[str, typer.Option(help="stdio or streamable-http.")] = "stdio",
            port: int = 8766, url: UrlOpt = None, token: TokenOpt = None) -> None:
        """Serve the participant tools over MCP, for any MCP client (e.g. Claude Code)."""
        from participants.mcp_server import serve

        serve(url=url, token=token, transport=transport, port=port)


def main() -> None:  # pragma: no cover
    app = typer.Typer()
    register(app)
    sys.exit(app())
