"""The HTTP door's operational guards: one JSON error shape for everything (500 included), a
per-route request body limit tied to the protocol's source limit, a disk watermark that refuses
writes (507) before DuckDB can fail on a full disk, error responses in the OpenAPI spec, and a
database watchdog that makes the process exit non-zero (for its supervisor to restart it) when
DuckDB stays unusable."""

from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel

from study.health import free_disk_mb
from study.store.db import is_fatal

log = logging.getLogger("w2s_arena.api")
WRITES = ("POST", "PUT", "PATCH", "DELETE")
GENERAL_BODY_BYTES = 4 * 2**20
IMPORT_BODY_BYTES = 32 * 2**20  # AAR result files, admins only
DISK_CHECK_S = 1.0


class ErrorBody(BaseModel):
    """Every error the server answers, whatever its status."""

    code: str
    message: str


ERROR_DOCS = {400: "unreadable request", 401: "no valid token", 403: "not your role",
              404: "not found (or not yours)", 409: "conflicts with the current state",
              413: "body or source too large", 422: "invalid input",
              429: "over a quota (see Retry-After)", 500: "server fault",
              503: "database unavailable"}


def source_body_bytes(max_source_bytes: int) -> int:
    """A JSON body carrying the largest legal source: JSON may escape one source byte as up to
    six (\\u0001), plus room for the other fields."""
    return 6 * max_source_bytes + 64 * 1024


def body_limit(path: str, max_source_bytes: int) -> int:
    if path in ("/v1/attempts", "/v1/dry-run"):
        return source_body_bytes(max_source_bytes)
    if path == "/v1/admin/import":
        return IMPORT_BODY_BYTES
    return max(GENERAL_BODY_BYTES, source_body_bytes(max_source_bytes))


def _json(status: int, code: str, message: str, headers: list | None = None):
    payload = json.dumps({"code": code, "message": message}).encode()
    start = {"type": "http.response.start", "status": status,
             "headers": [(b"content-type", b"application/json"),
                         (b"content-length", str(len(payload)).encode()), *(headers or [])]}
    return start, {"type": "http.response.body", "body": payload}


class WriteGuard:
    """ASGI middleware on writes: 507 below the disk floor (reads keep working), and the body
    read up to its route's limit before the app sees it (413 past it; a client that
    disconnects mid-upload leaves nothing behind)."""

    def __init__(self, app) -> None:
        self.app = app
        self._disk: tuple[float, float] = (0.0, float("inf"))  # (checked at, free MB)

    def _platform(self, scope):
        return getattr(scope["app"].state, "platform", None)

    def _free_mb(self, platform) -> float:
        checked, free = self._disk
        if time.monotonic() - checked > DISK_CHECK_S:
            free = free_disk_mb(Path(platform.db.path).parent)
            self._disk = (time.monotonic(), free)
        return free

    async def __call__(self, scope, receive, send) -> None:
        platform = self._platform(scope) if scope["type"] == "http" else None
        if platform is None or scope["method"] not in WRITES:
            await self.app(scope, receive, send)
            return
        limits = platform.service.protocol.limits
        free = self._free_mb(platform)
        if free < limits.min_free_disk_mb:
            await self._send(send, *_json(
                507, "insufficient_storage",
                f"the server's data disk has {free:.0f} MB free, below this study's floor of "
                f"{limits.min_free_disk_mb} MB: writes are refused until space is freed "
                "(reads keep working)", [(b"retry-after", b"60")]))
            return
        limit = body_limit(scope["path"], limits.max_source_bytes)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            await self._too_large(send, limit)
            return
        body, more = bytearray(), True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > limit:
                await self._too_large(send, limit)
                return
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": bytes(body), "more_body": False}

        await self.app(scope, replay, send)

    @staticmethod
    async def _send(send, start, body) -> None:
        await send(start)
        await send(body)

    async def _too_large(self, send, limit: int) -> None:
        await self._send(send, *_json(413, "payload_too_large",
                                      f"request body over {limit} bytes for this route"))


def install_fault_handlers(app: FastAPI) -> None:
    """Unexpected errors answer the same {code, message} body as every other error."""

    @app.exception_handler(duckdb.Error)
    async def database_error(request: Request, exc: duckdb.Error) -> JSONResponse:
        log.exception("database error on %s %s", request.method, request.url.path,
                      exc_info=exc)
        if is_fatal(exc):
            return JSONResponse({"code": "database_unavailable",
                                 "message": "the study database failed and is being reopened; "
                                            "retry shortly"}, status_code=503,
                                headers={"Retry-After": "5"})
        return JSONResponse({"code": "database_error",
                             "message": f"the study database refused this: "
                                        f"{type(exc).__name__}"}, status_code=500)

    @app.exception_handler(Exception)
    async def internal(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path,
                      exc_info=exc)
        return JSONResponse({"code": "internal", "message": "the server failed on this "
                             f"request ({type(exc).__name__}); it has been logged"},
                            status_code=500)


def document_errors(app: FastAPI) -> None:
    """Every route's error responses in the OpenAPI spec, all with the one error body."""
    body = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
    for route in app.routes:
        if not isinstance(route, APIRoute):
            continue
        codes = dict(ERROR_DOCS)
        if route.methods & set(WRITES):
            codes[507] = "the data disk is below its free-space floor"
        if route.path == "/v1/health":
            codes = {500: ERROR_DOCS[500]}  # its 503 carries the health report itself
        for code, text in codes.items():
            route.responses.setdefault(code, {"description": text, "content": body})
    plain = app.openapi

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = plain()
            schema.setdefault("components", {}).setdefault("schemas", {})["ErrorBody"] = \
                ErrorBody.model_json_schema()
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


class DatabaseWatchdog(threading.Thread):
    """Probes the database every few seconds (a fatal error makes it reconnect); if it stays
    unusable for `exit_after_s`, records why and stops the server, which then exits non-zero
    so that its supervisor (systemd, a container runtime) starts a fresh process."""

    def __init__(self, app: FastAPI, db, *, every_s: float = 5.0, exit_after_s: float = 60.0,
                 stop_server: Callable[[], None] | None = None) -> None:
        super().__init__(name="db-watchdog", daemon=True)
        self.app, self.db = app, db
        self.every_s, self.exit_after_s = every_s, exit_after_s
        # uvicorn shuts down on SIGTERM; `arena serve` then sees app.state.fatal and exits 3.
        self.stop_server = stop_server or (lambda: os.kill(os.getpid(), signal.SIGTERM))
        self.stopped = threading.Event()

    def run(self) -> None:
        failing_since = None
        while not self.stopped.wait(self.every_s):
            problem = self.db.check()
            if problem is None:
                failing_since = None
                continue
            failing_since = failing_since or time.monotonic()
            if time.monotonic() - failing_since >= self.exit_after_s:
                self.app.state.fatal = f"the database stayed unusable: {problem}"
                log.critical("%s; stopping so that a supervisor restarts the server",
                             self.app.state.fatal)
                self.stop_server()
                return
