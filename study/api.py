"""The HTTP door: FastAPI routes over ArenaService. Every participant, human or agent, comes in
here; routes stay thin, errors are mapped to status codes in one place."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.exceptions import HTTPException as StarletteHTTPException

from study.audit import ChainReport, verify_chain
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
from study.llm_review import Review, ReviewUnavailableError
from study.records import (
    AttemptView,
    AuditView,
    ClockView,
    DryRunSpec,
    DryRunView,
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

REPO = Path(__file__).resolve().parent.parent
STATUS = {AuthError: 401, ForbiddenError: 403, NotFoundError: 404, ConflictError: 409,
          PayloadTooLargeError: 413, InvalidError: 422, QuotaError: 429,
          ReviewUnavailableError: 502}


@dataclass(frozen=True)
class ServerSettings:
    data_dir: Path
    slots: int = 1
    start_workers: bool = True


class BodyLimit:
    """Reads a request body up to a limit before the app sees it: 413 past it, and a client
    that disconnects mid-upload simply leaves nothing behind."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._too_large(send)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                await self._too_large(send)
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    async def _too_large(self, send) -> None:
        payload = json.dumps({"code": "payload_too_large",
                              "message": f"request body over {self.max_bytes} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def error_response(exc: ArenaError) -> JSONResponse:
    status = next((code for kind, code in STATUS.items() if isinstance(exc, kind)), 400)
    headers = {}
    if isinstance(exc, QuotaError) and exc.retry_after is not None:
        headers["Retry-After"] = str(max(1, int(exc.retry_after)))
    if isinstance(exc, AuthError):
        headers["WWW-Authenticate"] = "Bearer"
    return JSONResponse({"code": exc.code, "message": exc.message}, status_code=status,
                        headers=headers)


bearer = HTTPBearer(auto_error=False)


def get_platform(request: Request) -> Platform:
    return request.app.state.platform


def get_service(platform: Annotated[Platform, Depends(get_platform)]) -> ArenaService:
    return platform.service


ServiceDep = Annotated[ArenaService, Depends(get_service)]


def get_principal(service: ServiceDep,
                  creds: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]
                  ) -> ParticipantRecord:
    return service.authenticate(creds.credentials if creds else None)


Principal = Annotated[ParticipantRecord, Depends(get_principal)]


def _routes(app: FastAPI) -> None:
    @app.get("/v1/health", tags=["meta"])
    def health() -> dict[str, str]:
        return {"status": "ok"}

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
    def dry_run(spec: DryRunSpec, service: ServiceDep, me: Principal) -> DryRunView:
        """Run a method once on the public inputs: unscored, not counted as an attempt."""
        return service.dry_run(me, spec)

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
    def get_attempt(attempt_id: str, service: ServiceDep, me: Principal) -> AttemptView:
        return service.get_attempt(me, attempt_id)

    @app.post("/v1/attempts/{attempt_id}/cancel", tags=["attempts"])
    def cancel(attempt_id: str, service: ServiceDep, me: Principal) -> AttemptView:
        return service.cancel(me, attempt_id)

    @app.get("/v1/leaderboard", tags=["leaderboard"])
    def leaderboard(service: ServiceDep, me: Principal, task: str | None = None
                    ) -> list[LeaderboardRow]:
        return service.leaderboard(me, task)

    @app.get("/v1/forum", tags=["forum"])
    def forum(service: ServiceDep, me: Principal, q: str | None = None) -> list[ForumPostView]:
        return service.forum(me, q)

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
    def audit(service: ServiceDep, me: Principal) -> ChainReport:
        """Recompute the hash chain of the event log."""
        service.require(me, Role.ADMIN, Role.ANALYST)
        return verify_chain(service.store.events())

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


def render_brief(service: ArenaService) -> str:
    study = service.study_view()
    lines = [f"# {study.name}", "",
             "Weak-to-strong supervision: train the strong model from the weak teacher's labels.",
             "", "## Tasks", "",
             "| task | kind | role | train | test | weak | ceiling |",
             "|---|---|---|---|---|---|---|"]
    for t in service.tasks():
        lines.append(f"| {t['name']} | {t['kind']} | {t['role']} | {t['sizes']['train']} | "
                     f"{t['sizes']['test']} | {t['weak']} | {t['ceiling']} |")
    lines += ["", "## Rules", "",
              f"- Each attempt runs {study.seeds_per_attempt} seeds chosen by the server.",
              f"- You see the public {study.feedback['public_fraction']:.0%} of `test`, rounded "
              f"to {study.feedback['round_to']} decimals; the rest stays private until "
              f"{study.ends_at:%Y-%m-%d %H:%M} UTC.",
              f"- Limits per seed: {study.limits['attempt_seconds']:g} s, "
              f"{study.limits['memory_mb']} MB; source at most {study.limits['max_source_bytes']}"
              " bytes.", ""]
    for doc in ("method-api.md", "baselines.md"):
        path = REPO / "docs" / doc
        if path.exists():
            lines += [path.read_text(encoding="utf-8"), ""]
    return "\n".join(lines)


def create_app(settings: ServerSettings, *, platform: Platform | None = None) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.platform = platform or open_platform(
            settings.data_dir, slots=settings.slots, start_workers=settings.start_workers)
        try:
            yield
        finally:
            app.state.platform.close()

    app = FastAPI(title="w2s-arena", version="1", lifespan=lifespan,
                  description="One door for every participant of a weak-to-strong race.")

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
    # The body limit covers the largest legal source plus JSON escaping and the other fields.
    app.add_middleware(BodyLimit, max_bytes=2 * 5_000_000 + 65536)
    return app
