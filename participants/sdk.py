"""The one client every participant uses: the CLI, the Streamlit workspace, the MCP server and
the agents all reach the study server through this class, over HTTP, and nothing else."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any, TypeVar

import httpx
from pydantic import BaseModel, TypeAdapter

from study.records import (
    TERMINAL,
    AttemptStatus,
    AttemptView,
    AuditView,
    ClockView,
    CodeSnapshotView,
    DraftSpec,
    DraftView,
    DryRunSpec,
    DryRunView,
    ExperimentSpec,
    ExperimentView,
    FlagView,
    ForumPostSpec,
    ForumPostView,
    GeneralizationRow,
    IssuedToken,
    LeaderboardRow,
    MeView,
    ParticipantKind,
    ParticipantRecord,
    ParticipantSpec,
    ProtocolAmendSpec,
    QuotaView,
    ReasonSpec,
    Role,
    SessionView,
    StudyView,
    SubmitSpec,
    TaskView,
    TranscriptSpec,
    UsageSpec,
    UsageView,
)

T = TypeVar("T")
DEFAULT_URL = "http://127.0.0.1:8765"
LONG_POLL_S = 25.0  # each wait request: the server answers on a change or after this
DRY_RUN_TIMEOUT = 180.0  # above the server's 120 s cap on a dry run, plus queueing and startup


class ArenaAPIError(Exception):
    """The server's `{code, message}` with its HTTP status (and Retry-After for 429)."""

    def __init__(self, status: int, code: str, message: str,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.retry_after = status, code, message, retry_after


class ArenaClient:
    def __init__(self, url: str | None = None, token: str | None = None, *,
                 timeout: float = 30.0, retries: int = 3,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.url = (url or os.environ.get("ARENA_URL") or DEFAULT_URL).rstrip("/")
        self.token = token if token is not None else os.environ.get("ARENA_TOKEN")
        self.retries = retries
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        self._http = httpx.Client(base_url=self.url, headers=headers, timeout=timeout,
                                  transport=transport)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ArenaClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---------------------------------------------------------------------------- plumbing
    def _request(self, method: str, path: str, *, json: Any = None,
                 params: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None,
                 timeout: float | None = None, resend: bool = True) -> httpx.Response:
        """Retries transport failures; safe because every write here is idempotent (submit
        carries an idempotency key, the others are state changes that report conflicts).
        `resend=False` retries only failures to connect: a request the server may already be
        running (a dry run) is never sent twice."""
        params = {k: v for k, v in (params or {}).items() if v is not None}
        extra = {} if timeout is None else {"timeout": timeout}
        for attempt in range(self.retries + 1):
            try:
                response = self._http.request(method, path, json=json, params=params,
                                              headers=headers, **extra)
                break
            except httpx.TransportError as exc:
                sent = not isinstance(exc, httpx.ConnectError | httpx.ConnectTimeout)
                if attempt == self.retries or (sent and not resend):
                    raise
                time.sleep(min(2.0, 0.2 * 2**attempt))
        if response.status_code >= 400:
            try:
                body = response.json()
                code, message = body.get("code", "error"), body.get("message", response.text)
            except ValueError:
                code, message = "error", response.text[:500]
            retry = response.headers.get("Retry-After")
            raise ArenaAPIError(response.status_code, code, message,
                                float(retry) if retry else None)
        return response

    def _get(self, path: str, model: type[T] | Any, **params: Any) -> T:
        data = self._request("GET", path, params=params).json()
        return TypeAdapter(model).validate_python(data)

    def _post(self, path: str, model: type[T] | Any, body: BaseModel | None = None,
              headers: dict[str, str] | None = None, **params: Any) -> T:
        payload = body.model_dump(mode="json") if body is not None else None
        data = self._request("POST", path, json=payload, params=params, headers=headers).json()
        return TypeAdapter(model).validate_python(data)

    # ------------------------------------------------------------------------------ reading
    def health(self) -> bool:
        return self._request("GET", "/v1/health").json().get("status") == "ok"

    def health_report(self) -> dict[str, Any]:
        """The server's health report — database, workers, queue, disk — healthy or not
        (an unhealthy server answers 503 with the same report)."""
        response = self._http.get("/v1/health")
        try:
            return response.json()
        except ValueError:
            return {"status": "unhealthy", "problems": [f"HTTP {response.status_code}"]}

    def wait_ready(self, timeout: float = 600.0, poll: float = 0.5) -> None:
        """Block until the server answers its health check (it may still be preparing tasks)."""
        deadline = time.monotonic() + timeout
        while True:
            try:  # 503 is an answer too: the server is up, and its report says what is wrong
                if self._http.get("/v1/health").status_code in (200, 503):
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"no study server answered at {self.url}")
            time.sleep(poll)

    def study(self) -> StudyView:
        return self._get("/v1/study", StudyView)

    def me(self) -> MeView:
        return self._get("/v1/me", MeView)

    def quota(self) -> QuotaView | None:
        return self._get("/v1/quota", QuotaView | None)

    def tasks(self) -> list[TaskView]:
        return self._get("/v1/tasks", list[TaskView])

    def brief(self) -> str:
        return self._request("GET", "/v1/docs/brief").json()["markdown"]

    def baselines(self) -> dict[str, str]:
        return {b["name"]: b["source"] for b in self._request("GET", "/v1/baselines").json()}

    # ------------------------------------------------------------------------------ attempts
    def submit(self, source: str | Path, task: str, *, note: str | None = None,
               idempotency_key: str | None = None, parent_id: str | None = None
               ) -> AttemptView:
        """Submit a method (source text or a path). One key per call, reused on retries, so a
        retried submit never makes two attempts. `parent_id`: your attempt it was edited from."""
        if isinstance(source, Path):
            source = source.read_text(encoding="utf-8")
        key = idempotency_key or uuid.uuid4().hex
        spec = SubmitSpec(task=task, source=source, note=note, idempotency_key=key,
                          parent_id=parent_id)
        return self._post("/v1/attempts", AttemptView, spec)

    def attempt(self, attempt_id: str, *, wait: float | None = None,
                since: AttemptStatus | None = None, since_position: int | None = None,
                since_live: int | None = None) -> AttemptView:
        """One attempt; with `wait` (≤ 60 s) the server answers as soon as its status
        differs from `since` (default: its status when asked), its queue position from
        `since_position`, or its live report (progress, logs) from `since_live` (a view's
        `live_version`), or after `wait` seconds."""
        if not wait:
            return self._get(f"/v1/attempts/{attempt_id}", AttemptView)
        params = {"wait": wait, "since": since.value if since else None,
                  "since_position": since_position, "since_live": since_live}
        data = self._request("GET", f"/v1/attempts/{attempt_id}", params=params,
                             timeout=wait + 30).json()
        return TypeAdapter(AttemptView).validate_python(data)

    def attempts(self, *, task: str | None = None, everyone: bool = False,
                 limit: int = 200) -> list[AttemptView]:
        return self._get("/v1/attempts", list[AttemptView], task=task,
                         everyone=everyone or None, limit=limit)

    def cancel(self, attempt_id: str) -> AttemptView:
        return self._post(f"/v1/attempts/{attempt_id}/cancel", AttemptView)

    def wait(self, attempt_id: str, *, timeout: float = 3600.0, poll: float = 1.0,
             on_update=None) -> AttemptView:
        """Until the attempt is scored, failed, timed out or cancelled. Each request
        long-polls (the server answers on a change of status or queue position), so a
        waiting client costs the server nothing; `poll` is the pause between requests only
        when a server answers at once with nothing new (one that does not long-poll)."""
        deadline = time.monotonic() + timeout
        last, position = None, None
        while True:
            asked = time.monotonic()
            wait = min(LONG_POLL_S, deadline - asked)
            # The first read answers at once, so its status is reported before the long-poll
            # waits for the next one (a long-poll with no `since` would start from whatever
            # status it finds, and a quick transition would never be seen).
            long = last is not None and wait >= 0.1
            view = self.attempt(attempt_id, wait=wait if long else None, since=last,
                                since_position=position if long else None)
            if on_update:
                on_update(view)
            if view.status in TERMINAL:
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"attempt {attempt_id} still {view.status.value}")
            if ((view.status, view.queue_position) == (last, position)
                    and time.monotonic() - asked < min(poll, wait)):
                time.sleep(poll)
            last, position = view.status, view.queue_position

    def dry_run(self, source: str | Path, task: str, *, timeout: float = DRY_RUN_TIMEOUT,
                idempotency_key: str | None = None) -> DryRunView:
        """Run once on the public inputs, unscored and not counted: does it work? The server
        answers when the run ends (it caps a dry run at 120 s), so the wait is longer than
        other calls, and a request that reached the server is never re-sent: each resend
        would run (and charge) the method again."""
        if isinstance(source, Path):
            source = source.read_text(encoding="utf-8")
        spec = DryRunSpec(task=task, source=source, idempotency_key=idempotency_key)
        data = self._request("POST", "/v1/dry-run", json=spec.model_dump(mode="json"),
                             timeout=timeout, resend=False).json()
        return DryRunView.model_validate(data)

    # --------------------------------------------------------------------------- experiments
    def participant_bundle(self, task: str) -> bytes:
        """The task's participant bundle as a tar (train only, one teacher's labels)."""
        return self._request("GET", f"/v1/tasks/{task}/bundle.tar", timeout=600).content

    def experiment(self, source: str | Path, task: str, *, note: str | None = None,
                   idempotency_key: str | None = None) -> ExperimentView:
        """Queue an experiment (code with run(ctx), unscored); returns at once, queued."""
        if isinstance(source, Path):
            source = source.read_text(encoding="utf-8")
        spec = ExperimentSpec(task=task, source=source, note=note,
                              idempotency_key=idempotency_key or uuid.uuid4().hex)
        return self._post("/v1/experiments", ExperimentView, spec)

    def get_experiment(self, experiment_id: str) -> ExperimentView:
        return self._get(f"/v1/experiments/{experiment_id}", ExperimentView)

    def experiments(self, *, everyone: bool = False, limit: int = 100) -> list[ExperimentView]:
        return self._get("/v1/experiments", list[ExperimentView], everyone=everyone or None,
                         limit=limit)

    def cancel_experiment(self, experiment_id: str) -> ExperimentView:
        return self._post(f"/v1/experiments/{experiment_id}/cancel", ExperimentView)

    def experiment_file(self, experiment_id: str, name: str) -> bytes:
        return self._request("GET", f"/v1/experiments/{experiment_id}/files/{name}").content

    def wait_experiment(self, experiment_id: str, *, timeout: float = 1800.0,
                        poll: float = 1.0) -> ExperimentView:
        """Poll until the experiment is no longer queued or running."""
        deadline = time.monotonic() + timeout
        while True:
            view = self.get_experiment(experiment_id)
            if view.status not in ("queued", "running"):
                return view
            if time.monotonic() > deadline:
                raise TimeoutError(f"experiment {experiment_id} still {view.status}")
            time.sleep(poll)

    def report_usage(self, usage: UsageSpec) -> None:
        self._request("POST", "/v1/usage", json=usage.model_dump())

    def report_transcript(self, entries: list[TranscriptSpec]) -> int:
        return self._request("POST", "/v1/transcripts",
                             json=[e.model_dump() for e in entries]).json()["written"]

    def usage(self) -> list[UsageView]:
        return self._get("/v1/admin/usage", list[UsageView])

    def transcript(self, participant_id: str) -> list[dict[str, Any]]:
        return self._request("GET", f"/v1/admin/transcripts/{participant_id}").json()

    def leaderboard(self, task: str | None = None) -> list[LeaderboardRow]:
        return self._get("/v1/leaderboard", list[LeaderboardRow], task=task)

    # --------------------------------------------------------------------------- forum, clock
    def forum(self, query: str | None = None, *, limit: int | None = None, offset: int = 0,
              kind: str | None = None, author: str | None = None) -> list[ForumPostView]:
        """Newest first; a page of `limit` posts from `offset` (the server's default: 200)."""
        return self._get("/v1/forum", list[ForumPostView], q=query, limit=limit,
                         offset=offset or None, kind=kind, author=author)

    def post(self, kind: str, title: str, body: str, *, attempt_id: str | None = None,
             idempotency_key: str | None = None) -> ForumPostView:
        """One key per post, reused on retries: a re-sent post comes back, never doubled."""
        spec = ForumPostSpec(kind=kind, title=title, body=body, attempt_id=attempt_id,
                             idempotency_key=idempotency_key or uuid.uuid4().hex)
        return self._post("/v1/forum", ForumPostView, spec)

    def attempt_code(self, attempt_id: str) -> CodeSnapshotView:
        """The code of an arm-mate's attempt linked on the forum (the read is logged)."""
        return self._get(f"/v1/forum/code/{attempt_id}", CodeSnapshotView)

    def code_reads(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/admin/code-reads").json()

    def clock(self) -> ClockView:
        return self._get("/v1/clock", ClockView)

    def clock_in(self) -> ClockView:
        return self._post("/v1/clock/in", ClockView)

    def clock_out(self) -> ClockView:
        return self._post("/v1/clock/out", ClockView)

    # ------------------------------------------------------------------ workspace sessions, drafts
    def open_session(self) -> SessionView:
        """Trade this client's participant token for a workspace session secret."""
        return self._post("/v1/sessions", SessionView)

    def end_session(self) -> None:
        """End the session this client signs in with (its token is a session secret)."""
        self._request("DELETE", "/v1/sessions/current")

    def draft(self) -> DraftView | None:
        return self._get("/v1/drafts/latest", DraftView | None)

    def save_draft(self, source: str, *, task: str | None = None,
                   origin: str | None = None) -> DraftView:
        spec = DraftSpec(source=source, task=task, origin=origin)
        data = self._request("PUT", "/v1/drafts/latest", json=spec.model_dump()).json()
        return DraftView.model_validate(data)

    # ------------------------------------------------------------------------- admin, analyst
    def add_participant(self, name: str, *, arm: str | None = None,
                        kind: ParticipantKind | str = ParticipantKind.HUMAN,
                        role: Role | str = Role.PARTICIPANT,
                        token_hours: float | None = None) -> IssuedToken:
        spec = ParticipantSpec(display_name=name, arm=arm, kind=ParticipantKind(kind),
                               role=Role(role), token_hours=token_hours)
        return self._post("/v1/admin/participants", IssuedToken, spec)

    def participants(self) -> list[ParticipantRecord]:
        return self._get("/v1/admin/participants", list[ParticipantRecord])

    def issue_token(self, participant_id: str, *, hours: float | None = None) -> IssuedToken:
        return self._post(f"/v1/admin/participants/{participant_id}/tokens", IssuedToken,
                          hours=hours)

    def revoke_token(self, token_id: str) -> None:
        self._request("POST", f"/v1/admin/tokens/{token_id}/revoke")

    def amend_protocol(self, toml: str, *, reason: str) -> dict[str, Any]:
        spec = ProtocolAmendSpec(toml=toml, reason=reason)
        return self._request("PUT", "/v1/admin/protocol", json=spec.model_dump()).json()

    def flags(self) -> list[FlagView]:
        return self._get("/v1/admin/flags", list[FlagView])

    def audits(self) -> list[AuditView]:
        return self._get("/v1/admin/audits", list[AuditView])

    def request_ablation(self, attempt_id: str) -> AuditView:
        return self._post(f"/v1/admin/attempts/{attempt_id}/ablation", AuditView)

    def review(self, attempt_id: str, *, transcript: str | None = None) -> dict[str, Any]:
        return self._request("POST", f"/v1/admin/attempts/{attempt_id}/review",
                             json={"transcript": transcript}).json()

    def disqualify(self, attempt_id: str, reason: str) -> AttemptView:
        return self._post(f"/v1/admin/attempts/{attempt_id}/disqualify", AttemptView,
                          ReasonSpec(reason=reason))

    def finalize(self, *, force: bool = False) -> dict[str, int]:
        return self._request("POST", "/v1/admin/finalize",
                             params={"force": force or None}).json()

    def generalization(self) -> list[GeneralizationRow]:
        return self._get("/v1/admin/generalization", list[GeneralizationRow])

    def import_aar(self, label: str, files: dict[str, dict[str, Any]]) -> dict[str, Any]:
        return self._request("POST", "/v1/admin/import",
                             json={"label": label, "files": files}).json()

    def item_results(self, attempt_id: str) -> dict[str, Any]:
        return self._request("GET", f"/v1/admin/attempts/{attempt_id}/items").json()

    def export(self, table: str) -> bytes:
        return self._request("GET", f"/v1/export/{table}.parquet").content


__all__ = ["TERMINAL", "ArenaAPIError", "ArenaClient", "AttemptStatus"]
