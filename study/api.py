"""The HTTP door: FastAPI routes over ArenaService. Every participant, human or agent, comes in
here; routes stay thin, errors are mapped to status codes in one place."""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from study.api_ops import DatabaseWatchdog, WriteGuard, document_errors, install_fault_handlers
from study.api_workspace import add_workspace_routes, serve_docs_offline
from study.audit import ChainHead, chain_head
from study.audit_scores import AuditReport, verify_study
from study.brief import render_brief
from study.errors import (
    ArenaError,
    AuthError,
    ConflictError,
    ForbiddenError,
    InvalidError,
    NotFoundError,
    PayloadTooLargeError,
    QuotaError,
)
from study.health import HealthReport, health_report
from study.llm_review import Review, ReviewUnavailableError
from study.records import (
    TERMINAL,
    AttemptStatus,
    AttemptView,
    AuditView,
    ClockView,
    CodeSnapshotView,
    DryRunSpec,
    DryRunView,
    ExperimentSpec,
    ExperimentView,
    FlagView,
    ForumPostSpec,
    ForumPostView,
    GeneralizationRow,
    ImportSpec,
    IssuedToken,
    LeaderboardRow,
    MeView,
    ParticipantRecord,
    ParticipantSpec,
    ProtocolAmendSpec,
    QuotaView,
    ReasonSpec,
    ReviewSpec,
    Role,
    StudyView,
    SubmitSpec,
    TaskView,
    TranscriptSpec,
    UsageSpec,
    UsageView,
)
from study.server import Platform, open_platform
from study.service import ArenaService
from study.waiters import AttemptBoard

REPO = Path(__file__).resolve().parent.parent
MAX_WAIT_S = 60.0  # a long-poll answers within this, so proxies and clients never time out
# DuckDB pages with BIGINT offsets; a bigger number is a 422, never a database error
MAX_PAGE_OFFSET = 1_000_000_000
STATUS = {AuthError: 401, ForbiddenError: 403, NotFoundError: 404, ConflictError: 409,
          PayloadTooLargeError: 413, InvalidError: 422, QuotaError: 429,
          ReviewUnavailableError: 502}


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    slots: int = 1
    start_workers: bool = True
    gpus: str | None = None  # "all" or "0,1": one worker slot per GPU (overrides `slots`)
    backend: str | None = None  # "local" or "ray" (default: the protocol's [runner] backend)
    ray_address: str | None = None  # ray://HOST:10001 for the Ray backend
    allow_broken_chain: bool = False  # serve a study whose audit does not verify (logged)
    queue_stale_s: float = 6 * 3600.0  # health turns 503 when the oldest queued waits longer
    db_exit_after_s: float = 60.0  # exit non-zero when DuckDB stays unusable this long


def error_response(exc: ArenaError) -> JSONResponse:
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    headers = {}
    if isinstance(exc, QuotaError) and exc.retry_after is not None:
        # Rounded up: a client that comes back after Retry-After must find the quota back.
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=status,
                        headers=headers)


bearer = HTTPBearer(auto_error=False)


# Dependencies that do no I/O are async: FastAPI runs a plain `def` dependency in its thread
# pool, a hop per dependency per request that cost the status poll more than its work.
async def get_platform(request: Request) -> Platform:
    return request.app.state.platform


async def get_service(platform: Annotated[Platform, Depends(get_platform)]) -> ArenaService:
    return platform.service


ServiceDep = Annotated[ArenaService, Depends(get_service)]


async def get_principal(service: ServiceDep,
                        creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                        ) -> ParticipantRecord:
    token = creds.credentials if creds else None
    known = service.known_principal(token)  # memory only: no thread, no query
    if known is not None:
        return known
    return await run_in_threadpool(service.authenticate, token)


Principal = Annotated[ParticipantRecord, Depends(get_principal)]


def _routes(app: FastAPI) -> None:
    @app.get("/v1/health", tags=["meta"], responses={503: {
        "model": HealthReport, "description": "unhealthy: the report says which part"}})
    async def health(request: Request, response: Response) -> HealthReport:
        """The database, each worker's last heartbeat, the oldest queued attempt's age and
        the free disk; 503 when any is wrong. No token needed (for supervisors)."""
        platform = request.app.state.platform
        report = await run_in_threadpool(health_report, platform,
                                         queue_stale_s=request.app.state.queue_stale_s)
        report.waiting = request.app.state.board.waiting
        if report.status != "ok":
            response.status_code = 503
        return report

    @app.get("/v1/study", tags=["meta"])
    def study(service: ServiceDep, me: Principal) -> StudyView:
        return service.study_view()

    @app.get("/v1/me", tags=["participant"])
    def whoami(service: ServiceDep, me: Principal) -> MeView:
        return service.me(me)

    @app.get("/v1/quota", tags=["participant"])
    def quota(service: ServiceDep, me: Principal) -> QuotaView | None:
        return service.quota(me)

    @app.get("/v1/tasks", tags=["tasks"])
    def tasks(service: ServiceDep, me: Principal) -> list[TaskView]:
        return [TaskView(**t) for t in service.tasks()]

    @app.get("/v1/docs/brief", tags=["tasks"])
    def brief(service: ServiceDep, me: Principal) -> dict[str, str]:
        """The task brief that humans and agents read: the method API, the rules, baselines."""
        return {"markdown": render_brief(service)}

    @app.get("/v1/baselines", tags=["tasks"])
    def baselines(me: Principal) -> list[dict[str, str]]:
        return [{"name": p.stem, "source": p.read_text(encoding="utf-8")}
                for p in sorted((REPO / "baselines").glob("*.py"))]

    @app.post("/v1/attempts", tags=["attempts"], status_code=201)
    def submit(spec: SubmitSpec, service: ServiceDep, me: Principal, response: Response,
               idempotency_key: Annotated[str | None, Header(max_length=200)] = None
               ) -> AttemptView:
        if idempotency_key and not spec.idempotency_key:
            spec = spec.model_copy(update={"idempotency_key": idempotency_key})
        view, created = service.submit(me, spec)
        if not created:
            response.status_code = 200
        return view

    @app.post("/v1/dry-run", tags=["attempts"])
    async def dry_run(spec: DryRunSpec, service: ServiceDep, me: Principal) -> DryRunView:
        """Run a method once on the public inputs: unscored, not counted as an attempt. It
        runs on the runner's dry-run lane; this request waits without holding a thread."""
        future = await run_in_threadpool(service.start_dry_run, me, spec)
        return DryRunView(**await asyncio.wrap_future(future))

    @app.post("/v1/usage", tags=["agents"], status_code=204)
    def usage(spec: UsageSpec, service: ServiceDep, me: Principal) -> None:
        """An agent harness reports one model turn's tokens and dollars (idempotent)."""
        service.record_usage(me, spec)

    @app.post("/v1/transcripts", tags=["agents"])
    def transcripts(entries: list[TranscriptSpec], service: ServiceDep, me: Principal
                    ) -> dict[str, int]:
        return {"written": service.record_transcript(me, entries)}

    @app.get("/v1/admin/usage", tags=["analyst"])
    def usage_table(service: ServiceDep, me: Principal) -> list[UsageView]:
        """Per participant: model turns, tokens, dollars and active hours."""
        return service.usage(me)

    @app.get("/v1/admin/transcripts/{participant_id}", tags=["analyst"])
    def transcript(participant_id: str, service: ServiceDep, me: Principal
                   ) -> list[dict[str, Any]]:
        return service.transcript(me, participant_id)

    @app.get("/v1/attempts", tags=["attempts"])
    def list_attempts(service: ServiceDep, me: Principal, task: str | None = None,
                      everyone: bool = False,
                      limit: Annotated[int, Query(ge=1, le=5000)] = 200) -> list[AttemptView]:
        return service.list_attempts(me, task=task, everyone=everyone, limit=limit)

    @app.get("/v1/attempts/{attempt_id}", tags=["attempts"])
    async def get_attempt(attempt_id: str, request: Request, service: ServiceDep,
                          me: Principal, wait: Annotated[float | None, Query(
                              ge=0, le=MAX_WAIT_S,
                              description="long-poll: answer when the status changes, or "
                                          "after this many seconds")] = None,
                          since: Annotated[AttemptStatus | None, Query(
                              description="with wait: the status the caller last saw (answer "
                                          "at once if it already differs)")] = None,
                          since_position: Annotated[int | None, Query(
                              ge=0, le=MAX_PAGE_OFFSET,
                              description="with wait: the queue position the caller "
                                                "last saw (answer when it moves)")] = None,
                          since_live: Annotated[int | None, Query(
                              ge=0, le=MAX_PAGE_OFFSET,
                              description="with wait: the live_version the caller last saw "
                                          "(answer on the running attempt's next live "
                                          "report)")] = None
                          ) -> AttemptView:
        def read() -> AttemptView:
            return service.get_attempt(me, attempt_id)

        if not wait:
            return await run_in_threadpool(read)
        return await long_poll(request.app.state.board, read, attempt_id, wait, since=since,
                               since_position=since_position, since_live=since_live)

    @app.post("/v1/attempts/{attempt_id}/cancel", tags=["attempts"])
    def cancel(attempt_id: str, service: ServiceDep, me: Principal) -> AttemptView:
        return service.cancel(me, attempt_id)

    @app.get("/v1/leaderboard", tags=["leaderboard"])
    def leaderboard(service: ServiceDep, me: Principal, task: str | None = None
                    ) -> list[LeaderboardRow]:
        return service.leaderboard(me, task)

    @app.get("/v1/forum", tags=["forum"])
    def forum(service: ServiceDep, me: Principal, q: str | None = None,
              limit: Annotated[int, Query(ge=1, le=1000)] = 200,
              offset: Annotated[int, Query(ge=0, le=MAX_PAGE_OFFSET)] = 0,
              kind: Annotated[str | None, Query(pattern=r"^(result|hypothesis|insight|error)$")]
              = None,
              author: Annotated[str | None, Query(max_length=200,
                                                  description="display name or id")] = None
              ) -> list[ForumPostView]:
        """Newest first, in pages (limit, offset), filtered by kind, author or text."""
        return service.forum(me, q, limit=limit, offset=offset, kind=kind, author=author)

    @app.get("/v1/tasks/{task}/bundle.tar", tags=["tasks"], response_class=Response)
    def participant_bundle(task: str, service: ServiceDep, me: Principal) -> Response:
        """The participant bundle of a task as a tar — all of `train` with one teacher's
        labels, no test split — for experiments on the participant's own machine."""
        return Response(service.participant_bundle(me, task), media_type="application/x-tar",
                        headers={"Content-Disposition": f"attachment; filename={task}.tar"})

    @app.post("/v1/experiments", tags=["experiments"], status_code=201)
    def submit_experiment(spec: ExperimentSpec, service: ServiceDep, me: Principal
                          ) -> ExperimentView:
        """Queue participant code as an experiment (unscored; own daily budget); poll
        GET /v1/experiments/{id} for its output. A re-sent idempotency key returns the first."""
        return service.submit_experiment(me, spec)

    @app.get("/v1/experiments", tags=["experiments"])
    def list_experiments(service: ServiceDep, me: Principal, everyone: bool = False,
                         limit: Annotated[int, Query(ge=1, le=1000)] = 100
                         ) -> list[ExperimentView]:
        return service.list_experiments(me, everyone=everyone, limit=limit)

    @app.get("/v1/experiments/{experiment_id}", tags=["experiments"])
    def get_experiment(experiment_id: str, service: ServiceDep, me: Principal
                       ) -> ExperimentView:
        return service.get_experiment(me, experiment_id)

    @app.post("/v1/experiments/{experiment_id}/cancel", tags=["experiments"])
    def cancel_experiment(experiment_id: str, service: ServiceDep, me: Principal
                          ) -> ExperimentView:
        return service.cancel_experiment(me, experiment_id)

    @app.get("/v1/experiments/{experiment_id}/files/{name}", tags=["experiments"],
             response_class=Response)
    def experiment_file(experiment_id: str, name: str, service: ServiceDep,
                        me: Principal) -> Response:
        media, content = service.experiment_file(me, experiment_id, name)
        inline = media.startswith("image/")  # anything else downloads, never renders
        return Response(content, media_type=media, headers={
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"{'inline' if inline else 'attachment'}; filename={name}"})

    @app.get("/v1/forum/code/{attempt_id}", tags=["forum"])
    def attempt_code(attempt_id: str, service: ServiceDep, me: Principal) -> CodeSnapshotView:
        """The code of an attempt linked in a post, for its author's arm-mates when the
        protocol shares code (forum.share_code_within_arm); every read is logged."""
        return service.attempt_code(me, attempt_id)

    @app.get("/v1/admin/code-reads", tags=["analyst"])
    def code_reads(service: ServiceDep, me: Principal) -> list[dict[str, Any]]:
        return service.code_reads(me)

    @app.post("/v1/forum", tags=["forum"], status_code=201)
    def post(spec: ForumPostSpec, service: ServiceDep, me: Principal) -> ForumPostView:
        return service.post(me, spec)

    @app.get("/v1/clock", tags=["clock"])
    def clock(service: ServiceDep, me: Principal) -> ClockView:
        return service.clock_view(me)

    @app.post("/v1/clock/in", tags=["clock"])
    def clock_in(service: ServiceDep, me: Principal) -> ClockView:
        return service.clock_in(me)

    @app.post("/v1/clock/out", tags=["clock"])
    def clock_out(service: ServiceDep, me: Principal) -> ClockView:
        return service.clock_out(me)

    @app.post("/v1/admin/participants", tags=["admin"], status_code=201)
    def add_participant(spec: ParticipantSpec, service: ServiceDep, me: Principal
                        ) -> IssuedToken:
        service.require(me, Role.ADMIN)
        return service.add_participant(spec, actor=me.id)

    @app.get("/v1/admin/participants", tags=["admin"])
    def participants(service: ServiceDep, me: Principal) -> list[ParticipantRecord]:
        service.require(me, Role.ADMIN, Role.ANALYST)
        return service.store.list_participants()

    @app.post("/v1/admin/participants/{participant_id}/tokens", tags=["admin"],
              status_code=201)
    def issue_token(participant_id: str, service: ServiceDep, me: Principal,
                    hours: Annotated[float | None, Query(gt=0, le=87_600)] = None
                    ) -> IssuedToken:
        service.require(me, Role.ADMIN)
        return service.issue_token(participant_id, hours=hours, actor=me.id)

    @app.post("/v1/admin/tokens/{token_id}/revoke", tags=["admin"])
    def revoke(token_id: str, service: ServiceDep, me: Principal) -> dict[str, str]:
        service.require(me, Role.ADMIN)
        service.revoke_token(token_id, actor=me.id)
        return {"revoked": token_id}

    @app.post("/v1/admin/import", tags=["admin"], status_code=201)
    def import_aar(spec: ImportSpec, service: ServiceDep, me: Principal) -> dict[str, Any]:
        """Import AAR per-seed result files as attempts of an "imported" participant."""
        return service.import_aar(me, spec)

    @app.get("/v1/admin/attempts/{attempt_id}/items", tags=["analyst"])
    def items(attempt_id: str, service: ServiceDep, me: Principal) -> dict[str, Any]:
        """Per-item correctness per seed, with the baselines' per-item means."""
        return service.item_results(me, attempt_id)

    @app.get("/v1/admin/flags", tags=["analyst"])
    def flags(service: ServiceDep, me: Principal) -> list[FlagView]:
        return service.flags(me)

    @app.get("/v1/admin/audits", tags=["analyst"])
    def audits(service: ServiceDep, me: Principal) -> list[AuditView]:
        return service.audits(me)

    @app.post("/v1/admin/attempts/{attempt_id}/ablation", tags=["analyst"], status_code=201)
    def ablation(attempt_id: str, service: ServiceDep, me: Principal) -> AuditView:
        """Re-run a scored attempt with permuted weak labels (a teacher ablation)."""
        return service.request_ablation(me, attempt_id)

    @app.post("/v1/admin/attempts/{attempt_id}/review", tags=["analyst"])
    def review(attempt_id: str, service: ServiceDep, me: Principal,
               spec: ReviewSpec | None = None) -> Review:
        """An LLM review of the source (and an optional agent transcript) against the rubric
        of known hacks; a verdict other than clean is flagged."""
        return service.review(me, attempt_id, transcript=spec.transcript if spec else None)

    @app.post("/v1/admin/attempts/{attempt_id}/disqualify", tags=["admin"])
    def disqualify(attempt_id: str, spec: ReasonSpec, service: ServiceDep, me: Principal
                   ) -> AttemptView:
        return service.disqualify(me, attempt_id, reason=spec.reason)

    @app.post("/v1/admin/finalize", tags=["admin"])
    def finalize(service: ServiceDep, me: Principal, force: bool = False) -> dict[str, int]:
        """Re-run every participant's top-k on the held-out tasks; reveal private scores."""
        return service.finalize(me, force=force)

    @app.get("/v1/admin/generalization", tags=["analyst"])
    def generalization(service: ServiceDep, me: Principal) -> list[GeneralizationRow]:
        return service.generalization(me)

    @app.get("/v1/admin/audit", tags=["admin"])
    def audit(service: ServiceDep, me: Principal) -> AuditReport:
        """Recompute the keyed event chain, then every score and leaderboard from the chained
        events; names each `attempts` row that disagrees."""
        service.require(me, Role.ADMIN, Role.ANALYST)
        return verify_study(service.store, service.protocol.tasks.all)

    @app.get("/v1/admin/audit/head", tags=["admin"])
    def audit_head(service: ServiceDep, me: Principal) -> ChainHead:
        """The chain's head, to anchor outside the study."""
        service.require(me, Role.ADMIN, Role.ANALYST)
        return chain_head(service.store.events(), service.store.chain_scheme)

    @app.put("/v1/admin/protocol", tags=["admin"])
    def amend_protocol(spec: ProtocolAmendSpec, service: ServiceDep, me: Principal
                       ) -> dict[str, str | int]:
        """Change the protocol after start: audited, and every scored attempt is re-scored."""
        return service.amend_protocol(me, spec.toml, reason=spec.reason)

    @app.get("/v1/export/{table}.parquet", tags=["analyst"],
             response_class=Response, responses={200: {"content": {
                 "application/vnd.apache.parquet": {}}}})
    def export(table: str, service: ServiceDep, me: Principal) -> Response:
        data = service.export_parquet(me, table)
        return Response(data, media_type="application/vnd.apache.parquet",
                        headers={"Content-Disposition": f'attachment; filename="{table}.parquet"'})


def create_app(settings: ServerSettings, *, platform: Platform | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        live = app.state.platform = platform or open_platform(
            settings.data_dir, slots=settings.slots, start_workers=settings.start_workers,
            gpus=settings.gpus, allow_broken_chain=settings.allow_broken_chain,
            backend=settings.backend, ray_address=settings.ray_address)
        live.service.store.on_move = app.state.board.notify  # wakes long-polls
        live.service.store.on_queue_move = app.state.board.notify_queue
        live.service.live.on_change = app.state.board.notify_live
        if live.scheduler is not None:
            live.service.dry_lane = live.scheduler.run_dry
        live.service.recover_experiments()  # once the lane is known: queued ones go again
        live.service.recover_dry_runs()  # ones left running lost their process
        watchdog = DatabaseWatchdog(app, live.db, exit_after_s=settings.db_exit_after_s)
        watchdog.start()
        try:
            yield
        finally:
            watchdog.stopped.set()
            live.close()

    app = FastAPI(title="w2s-arena", version="1", lifespan=lifespan, docs_url=None,
                  description="One door for every participant of a weak-to-strong race.")
    serve_docs_offline(app)
    app.state.board = AttemptBoard()
    app.state.queue_stale_s = settings.queue_stale_s
    app.state.fatal = None  # set by the database watchdog: `arena serve` then exits non-zero
    install_fault_handlers(app)

    @app.exception_handler(ArenaError)
    async def arena_error(request: Request, exc: ArenaError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}"
                             for e in exc.errors())
        return JSONResponse({"code": "invalid", "message": problems[:2000]}, status_code=422)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # Framework-level errors (unparseable body, unknown route) get the same {code, message}.
        codes = {400: "invalid", 404: "not_found", 405: "method_not_allowed"}
        return JSONResponse({"code": codes.get(exc.status_code, "error"),
                             "message": str(exc.detail)}, status_code=exc.status_code,
                            headers=getattr(exc, "headers", None))

    _routes(app)
    add_workspace_routes(app, ServiceDep, Principal, bearer)
    document_errors(app)
    # Writes: the disk floor (507) and a per-route body limit from the protocol's source limit.
    app.add_middleware(WriteGuard)
    return app


async def long_poll(board: AttemptBoard, read, attempt_id: str, wait: float, *,
                    since: AttemptStatus | None = None, since_position: int | None = None,
                    since_live: int | None = None) -> AttemptView:
    """Answer when the attempt's status differs from `since` (default: its status now), its
    queue position from `since_position` (default: its position now), its live report from
    `since_live` (when given), or it is finished, or after `wait` s. The request sleeps on the
    board's event between reads: no thread, no query while nothing changes."""
    loop = asyncio.get_running_loop()
    deadline, first = loop.time() + wait, since
    position, seen = since_position, since_position is not None
    queued = since in (None, AttemptStatus.QUEUED)
    while True:
        with board.watch(attempt_id, queued=queued, live=since_live is not None) as changed:
            view = await run_in_threadpool(read)
            first = first or view.status
            if not seen:
                position, seen = view.queue_position, True
            moved = since_live is not None and view.live_version != since_live
            if (view.status in TERMINAL or view.status != first or moved
                    or view.queue_position != position or loop.time() >= deadline):
                return view
            queued = view.status is AttemptStatus.QUEUED
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), deadline - loop.time())
