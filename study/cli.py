"""`arena`: prepare the embedded default study, show its fixed baselines, run a method."""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from study.cli_tasks import tasks_app
from study.errors import ArenaError
from study.tasks import DEFAULT_TASKS, prepare_task

app = typer.Typer(help="w2s-arena: a weak-to-strong research race, scored by the server.",
                  no_args_is_help=True, add_completion=False)
console = Console()

PairOpt = Annotated[str, typer.Option(
    "--pair", envvar="ARENA_MODEL_PAIR",
    help="(weak, strong) models: 'default' (MiniLM-L3 → mpnet) or 'small' (L3 → MiniLM-L6).")]


def _fail(exc: ArenaError) -> None:
    # Messages are text: a "[models]" in one must print, not vanish as rich markup.
    console.print(f"[red]error[/red] ({exc.code}): {escape(exc.message)}")
    raise typer.Exit(2)


def _fmt(mean: float | None, se: float | None = None) -> str:
    if mean is None:
        return "—"
    return f"{mean:.3f}" if se is None else f"{mean:.3f} ± {se:.3f}"


app.add_typer(tasks_app, name="tasks")


def _baseline_row(table: Table, name: str, pair: str) -> None:
    from runner.teacher import fixed_baselines, resolve_pair

    task = prepare_task(name)
    _record_row(table, task, fixed_baselines(task, resolve_pair(pair)))


def _record_row(table: Table, task, record) -> None:
    weak, ceil = record.weak_acc, record.ceiling_acc
    sd = lambda xs: statistics.stdev(xs) if len(xs) > 1 else 0.0  # noqa: E731
    table.add_row(task.name, str(task.kind), str(task.info.role), task.info.content_hash,
                  f"{statistics.mean(weak):.3f} ± {sd(weak):.3f}",
                  f"{statistics.mean(ceil):.3f} ± {sd(ceil):.3f}",
                  f"{record.ceiling_mean - record.weak_mean:.3f}", str(len(weak)))


def _protocol_table(path: Path) -> Table:
    """Everything a protocol's study needs, built once: its tasks (built-in or data folders),
    its model pair (LMs downloaded if hub-only), fixed baselines and the activation cache."""
    from runner.bundle import VISIBLE
    from runner.features import ensure_features
    from runner.pairs import pair_for_protocol
    from runner.teacher import fixed_baselines
    from study.protocol import load_protocol
    from study.tasks.datadir import prepare_protocol_tasks

    protocol = load_protocol(path)
    tasks = prepare_protocol_tasks(protocol)  # a bad data folder stops us before any download
    pair = pair_for_protocol(protocol)
    table = Table("task", "kind", "role", "data hash", "weak (mean ± sd)",
                  "ceiling (mean ± sd)", "gap", "seeds",
                  title=f"fixed baselines, {protocol.name} ({pair.weak.spec.name} → "
                        f"{pair.strong.spec.name})")
    for task in tasks.values():
        record = fixed_baselines(task, pair)
        for model in (pair.weak, pair.strong):
            ensure_features(model, task, VISIBLE)
        _record_row(table, task, record)
    return table


def _baseline_table(names: list[str], pair: str) -> Table:
    table = Table("task", "kind", "role", "data hash", "weak (mean ± sd)",
                  "ceiling (mean ± sd)", "gap", "seeds", title=f"fixed baselines, pair {pair}")
    for name in names:
        _baseline_row(table, name, pair)
    return table


@app.command()
def prepare(pair: PairOpt = "default",
            task: Annotated[list[str] | None,
                            typer.Option(help="Only these tasks.")] = None,
            protocol: Annotated[Path | None, typer.Option(
                help="Prepare this protocol's tasks and pair instead (e.g. "
                     "protocols/tiny-lm.toml).")] = None) -> None:
    """Build the default tasks, cache their features and freeze their baselines (once)."""
    try:
        console.print(_protocol_table(protocol) if protocol is not None
                      else _baseline_table(task or list(DEFAULT_TASKS), pair))
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
        task: Annotated[str, typer.Option(help="Task name.")] = "tweet_sentiment",
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
                                 budget=Budget(seconds=time_budget, memory_mb=memory_mb,
                                               # unsandboxed local runs: cgroups if there
                                               cgroups="optional" if no_sandbox else "required"),
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


# ------------------------------------------------------------------------------ the platform
DataDirOpt = Annotated[Path, typer.Option("--data-dir", envvar="ARENA_DATA_DIR",
                                          help="Where the study's DuckDB file lives.")]
study_app = typer.Typer(help="Create a study from a protocol.")
app.add_typer(study_app, name="study")


def _save_token(path: Path, token: str) -> None:
    path.write_text(token + "\n")
    path.chmod(0o600)


@study_app.command("create")
def study_create(protocol: Path, data_dir: DataDirOpt = Path("arena-data")) -> None:
    """Freeze PROTOCOL.toml into a new study; prints the admin token (also saved, mode 600)."""
    from study.protocol import load_protocol
    from study.server import create_study

    try:
        spec = load_protocol(protocol)
        issued = create_study(data_dir, spec)
    except ArenaError as exc:
        _fail(exc)
    _save_token(data_dir / "admin.token", issued.token)
    console.print(f"study '{spec.name}' created in {data_dir} (protocol {spec.hash()[:12]}); "
                  f"admin token saved to {data_dir / 'admin.token'}:")
    print(issued.token)


GpusOpt = Annotated[str | None, typer.Option(
    "--gpus", help="'all' or GPU indices '0,1': one worker slot per GPU, compute charged in "
                   "GPU-seconds (default: the protocol's [runner] gpus; none: a CPU study).")]


BackendOpt = Annotated[str | None, typer.Option(
    "--backend", help="Where attempts run: 'local' (this machine's slots) or 'ray' (a Ray "
                      "cluster; default: the protocol's [runner] backend).")]
RayAddressOpt = Annotated[str | None, typer.Option(
    "--ray-address", help="The Ray head's client address, ray://HOST:10001 (--backend ray).")]


def _check_gpus(gpus: str | None) -> None:
    """`--gpus` on a machine without them fails here, before anything starts."""
    if gpus is None:
        return
    from runner.gpu import resolve_slots

    try:
        for slot in resolve_slots(gpus):
            console.print(f"[dim]{slot.describe()}[/dim]")
    except ArenaError as exc:
        _fail(exc)


def _check_backend(backend: str | None, ray_address: str | None,
                   protocol: Path | None = None) -> None:
    """`--backend`/`--ray-address` (else the protocol's [runner] table) that cannot be used
    fail here, before a study is created."""
    from study.protocol import load_protocol
    from study.server import check_backend

    try:
        runner = load_protocol(protocol).runner if protocol is not None else None
        check_backend(backend or (runner.backend if runner else "local"),
                      ray_address or (runner.ray_address if runner else None))
    except ArenaError as exc:
        _fail(exc)


@app.command()
def serve(data_dir: DataDirOpt = Path("arena-data"), host: str = "127.0.0.1",
          port: int = 8765,
          slots: Annotated[int, typer.Option(min=0, help="Worker slots (0: API only).")] = 1,
          gpus: GpusOpt = None,
          allow_broken_chain: Annotated[bool, typer.Option(
              help="Serve even if the audit log does not verify (logged loudly).")] = False,
          backend: BackendOpt = None, ray_address: RayAddressOpt = None,
          access_log: Annotated[bool, typer.Option(
              help="Log every request (method, path and query, status) to stderr.")] = False
          ) -> None:
    """Run the study server and its runner on an existing study. Exits 3 when the database
    stayed unusable (for a supervisor to restart it), 2 when the study cannot be opened."""
    import uvicorn

    from study.api import ServerSettings, create_app

    _check_gpus(gpus)
    _check_study_data(data_dir)
    app_ = create_app(ServerSettings(data_dir=data_dir, slots=slots, gpus=gpus,
                                     allow_broken_chain=allow_broken_chain, backend=backend,
                                     ray_address=ray_address))
    # Long-polls hold their request up to a minute: a shutdown cuts what is still open after
    # a few seconds (their clients simply ask again) instead of waiting for them.
    uvicorn.run(app_, host=host, port=port, log_level="info" if access_log else "warning",
                access_log=access_log, timeout_graceful_shutdown=5)
    if getattr(app_.state, "fatal", None):
        console.print(f"[red]stopped[/red]: {app_.state.fatal}")
        raise typer.Exit(3)


def _check_study_data(data_dir: Path) -> None:
    """The study's data folders as it pinned them, before the server starts: an unset
    ARENA_AAR_DATA or a folder edited since is the reason and exit 2, not a startup traceback."""
    import duckdb

    from study.protocol import ProtocolSpec
    from study.server import db_path
    from study.store import Database, Store
    from study.tasks.datadir import pin_dataset_hashes

    if not db_path(data_dir).exists():
        return
    try:
        db = Database(db_path(data_dir), read_only=True)
        try:
            study = Store(db).get_study()
        finally:
            db.close()
    except duckdb.Error:
        return  # locked by a running server, or damaged: the server's own start reports it
    if study is not None:
        try:
            pin_dataset_hashes(ProtocolSpec.model_validate_json(study["protocol_json"]))
        except ArenaError as exc:
            _fail(exc)


@app.command()
def up(protocol: Path = Path("protocols/default.toml"), data_dir: DataDirOpt = Path("arena-data"),
       host: str = "127.0.0.1", port: int = 8765,
       slots: Annotated[int, typer.Option(help="Worker slots.")] = 1,
       gpus: GpusOpt = None,
       workspace_port: Annotated[int, typer.Option(
           help="Port of the Streamlit workspace (0: do not start it).")] = 8501,
       backend: BackendOpt = None, ray_address: RayAddressOpt = None) -> None:
    """Start the platform on the embedded default study: create it the first time, add a
    researcher, print the URL and a participant token, then serve until interrupted."""
    from runner.pairs import pair_for_protocol
    from study.protocol import load_protocol
    from study.records import ParticipantKind, ParticipantSpec
    from study.server import create_study, db_path
    from study.service import ArenaService
    from study.store import Database, Store
    from study.tasks.datadir import pin_dataset_hashes

    _check_gpus(gpus)  # before a study is created on a machine that cannot run it
    _check_backend(backend, ray_address, protocol)
    try:
        if not db_path(data_dir).exists():
            spec = load_protocol(protocol)
            spec = pin_dataset_hashes(spec)
            pair_for_protocol(spec)  # a missing model: where it was looked for, and no study
            issued = create_study(data_dir, spec)
            _save_token(data_dir / "admin.token", issued.token)
        token_file = data_dir / "participant.token"
        bot_file = data_dir / "scripted.token"
        spec = load_protocol(protocol)
        wanted = [(token_file, "researcher", spec.arm_names[0], ParticipantKind.HUMAN)]
        if "automated-baseline" in spec.arm_names:
            wanted.append((bot_file, "scripted-baseline", "automated-baseline",
                           ParticipantKind.AGENT))
        missing = [w for w in wanted if not w[0].exists()]
        if missing:
            db = Database(db_path(data_dir))
            try:
                service = ArenaService(Store(db), spec)
                for path, name, arm, kind in missing:
                    issued = service.add_participant(
                        ParticipantSpec(display_name=name, arm=arm, kind=kind), actor=None)
                    _save_token(path, issued.token)
            finally:
                db.close()
    except ArenaError as exc:
        _fail(exc)
    url = f"http://{host}:{port}"
    console.print(f"[bold]w2s-arena[/bold] serving {url}  (API docs: {url}/docs)\n"
                  f"participant token ({token_file}):\n  {token_file.read_text().strip()}\n"
                  f"admin token: {data_dir / 'admin.token'}\n"
                  f"try: ARENA_URL={url} ARENA_TOKEN=$(cat {token_file}) "
                  f".venv/bin/arena submit baselines/logconf.py --wait")
    if bot_file.exists():
        _start_scripted_agent(url, bot_file.read_text().strip(), data_dir)
        console.print(f"a scripted agent (arm automated-baseline) explores the baselines in "
                      f"the background; its log: {data_dir / 'scripted.log'}")
    if os.environ.get("ANTHROPIC_API_KEY"):
        console.print(f"Claude agents: ARENA_URL={url} ARENA_ADMIN_TOKEN=$(cat "
                      f"{data_dir / 'admin.token'}) .venv/bin/arena agents run --n 3")
    workspace = _start_workspace(url, host, workspace_port) if workspace_port else None
    try:
        serve(data_dir=data_dir, host=host, port=port, slots=slots, gpus=gpus,
              backend=backend, ray_address=ray_address)
    finally:
        if workspace is not None:
            workspace.terminate()
            workspace.wait(10)


def _start_workspace(url: str, host: str, port: int):
    """The researchers' Streamlit workspace, a client of this server like any other."""
    import subprocess
    import sys

    app_file = Path(__file__).resolve().parent.parent / "participants" / "workspace" / "app.py"
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(app_file), "--server.headless", "true",
         "--server.address", host, "--server.port", str(port),
         "--browser.gatherUsageStats", "false"],
        env={**os.environ, "ARENA_URL": url}, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL, cwd=app_file.parents[2])  # .streamlit/config.toml is there
    console.print(f"workspace for researchers: [bold]http://{host}:{port}[/bold] "
                  "(sign in with the participant token)")
    return proc


def _start_scripted_agent(url: str, token: str, data_dir: Path) -> None:
    """A newcomer sees a live study without an API key: the scripted agent starts once the
    server answers, in a daemon thread of this process, through the SDK like anyone else."""
    import logging
    import threading

    from participants.agents.scripted import run_scripted
    from participants.sdk import ArenaClient

    def work() -> None:
        handler = logging.FileHandler(data_dir / "scripted.log")
        logging.getLogger("w2s_arena.scripted").addHandler(handler)
        logging.getLogger("w2s_arena.scripted").setLevel(logging.INFO)
        with ArenaClient(url, token) as client:
            try:
                client.wait_ready(timeout=3600)
                # The study's own race, whatever the protocol names it.
                run_scripted(client, task=client.study().tasks["hill_climb"][0], poll=5.0)
            except Exception:
                logging.getLogger("w2s_arena.scripted").exception("the scripted agent stopped")

    threading.Thread(target=work, name="scripted-agent", daemon=True).start()


audit_app = typer.Typer(help="Check the study's hash-chained event log.")
app.add_typer(audit_app, name="audit")


def _open_read_only(data_dir: Path):
    import duckdb

    from study.server import db_path
    from study.store import Database

    try:
        return Database(db_path(data_dir), read_only=True)
    except duckdb.Error as exc:
        console.print(f"[red]cannot open {db_path(data_dir)}[/red]: {exc} (a running server "
                      "holds it: use GET /v1/admin/audit)")
        raise typer.Exit(2) from None


@audit_app.command("verify")
def audit_verify(data_dir: DataDirOpt = Path("arena-data"),
                 anchor: Annotated[list[str] | None, typer.Option(
                     help="ID:HASH from an earlier `arena audit head`, to check it still "
                          "holds.")] = None) -> None:
    """Recompute the keyed event chain, then every score and leaderboard from the chained
    events, from the DuckDB file (read-only; stop the server first, or use GET
    /v1/admin/audit on a live one). Exit 1 naming the first broken link and every row of
    `attempts` that disagrees with the chain."""
    from study.audit import check_anchor
    from study.audit_scores import verify_study
    from study.protocol import ProtocolSpec
    from study.store import Store

    db = _open_read_only(data_dir)
    try:
        store = Store(db)
        protocol = ProtocolSpec.model_validate_json(store.get_study()["protocol_json"])
        report = verify_study(store, protocol.tasks.all)
        anchors = [check_anchor(store.events(), a) for a in anchor or []]
    except ArenaError as exc:
        _fail(exc)
    finally:
        db.close()
    chain = report.chain
    if not chain.ok:
        console.print(f"[red]broken at event {chain.broken_at}[/red]: {chain.problem}")
        raise typer.Exit(1)
    console.print(f"chain intact: {chain.events} events ({chain.scheme}), head "
                  f"{chain.head_id}:{chain.head_hash}")
    problems = [a for a in anchors if a]
    for problem in problems:
        console.print(f"[red]anchor[/red]: {problem}")
    scores = report.scores
    for d in scores.disagreements:
        console.print(f"attempts row {d.attempt_id} disagrees with the chain on {d.field}: "
                      f"table {d.table!r}, chain {d.chain!r}", markup=False, highlight=False)
    for task, board in scores.leaderboards.items():
        top = ", ".join(f"{r['participant_id']} {r['best_pgr']:.4f}" for r in board[:3])
        console.print(f"leaderboard {task} (from the chain): {top or 'no scored attempt'}")
    if problems or not scores.ok:
        raise typer.Exit(1)
    console.print(f"[green]ok[/green]: {scores.attempts_checked} attempts agree with the chain")


@audit_app.command("head")
def audit_head(data_dir: DataDirOpt = Path("arena-data")) -> None:
    """Print the chain's head (JSON) to anchor outside the study — a ticket, a mail, a public
    log. `arena audit verify --anchor ID:HASH` later proves history before it is unchanged."""
    from study.audit import chain_head
    from study.store import Store

    db = _open_read_only(data_dir)
    try:
        store = Store(db)
        head = chain_head(store.events(), store.chain_scheme)
    finally:
        db.close()
    print(head.model_dump_json())


def _register_participant_commands() -> None:
    from participants.cli import register

    register(app)


_register_participant_commands()


def main() -> None:
    """The `arena` command. A server that cannot be reached is a message, not a traceback."""
    import httpx

    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        app(standalone_mode=True)
    except httpx.TransportError as exc:
        try:
            url = str(exc.request.url.copy_with(path="/", query=None))
        except RuntimeError:  # no request attached
            url = os.environ.get("ARENA_URL", "the server")
        console.print(f"[red]cannot reach the study server[/red] ({url}): {exc}. Is it up "
                      "(`arena up` / `arena serve`), and is ARENA_URL (or --url) right?")
        sys.exit(1)


if __name__ == "__main__":
    main()
