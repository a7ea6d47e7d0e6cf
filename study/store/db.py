"""One DuckDB connection per server process: a cursor per thread, one lock for writes.

DuckDB allows a single read-write process per file, which is exactly the design's "one writer".
Reads run concurrently on per-thread cursors; writes are serialised by a lock so that
compare-and-set updates and uniqueness checks never race.

A fatal DuckDB error (a failed checkpoint on a full disk) invalidates the whole database
instance: every later query fails until every connection to it is closed. The Database notices
such an error, and the next call closes every cursor and reconnects; if that fails too, the
error stands and the server's health check reports it (the server then exits for its
supervisor to restart it).
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

MIGRATIONS = "study.store.migrations"
log = logging.getLogger("w2s_arena.store")


def is_fatal(exc: BaseException) -> bool:
    """True for errors after which DuckDB must be reopened (it says "invalidated")."""
    return isinstance(exc, duckdb.FatalException) or (
        isinstance(exc, duckdb.Error) and "invalidated" in str(exc))


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Database:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._generation = 0
        self.broken: str | None = None  # the fatal error, until a reopen succeeds
        self._con = self._connect()

    def _connect(self) -> duckdb.DuckDBPyConnection:
        con = duckdb.connect(self.path, read_only=self.read_only)
        con.execute("SET TimeZone = 'UTC'")
        return con

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        if self.broken is not None:
            self.reopen()
        cur = getattr(self._local, "cursor", None)
        if cur is None or getattr(self._local, "generation", -1) != self._generation:
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor, self._local.generation = cur, self._generation
            self._cursors.append(cur)
        return cur

    def _noticed(self, exc: BaseException) -> None:
        if is_fatal(exc) and self.broken is None:
            self.broken = str(exc)[:500]
            log.error("DuckDB reported a fatal error; reconnecting on the next call: %s", exc)

    def reopen(self) -> None:
        """Close every cursor and the connection (DuckDB keeps an invalidated instance alive
        while any of them is open), then connect again. Raises if the file cannot be opened."""
        with self._write_lock:  # the one lock: a writer that notices the error may reopen
            if self.broken is None:
                return
            for cur in [*self._cursors, self._con]:
                with suppress(duckdb.Error):
                    cur.close()
            self._cursors.clear()
            self._generation += 1
            self._con = self._connect()
            log.warning("DuckDB reconnected after: %s", self.broken)
            self.broken = None

    def check(self) -> str | None:
        """A liveness probe for health checks: None when a query runs, else the problem."""
        try:
            self._cursor().execute("SELECT 1").fetchall()
        except duckdb.Error as exc:
            self._noticed(exc)
            return f"{type(exc).__name__}: {str(exc)[:300]}"
        return None

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._cursor()
        try:
            cur.execute(sql, list(params))
            names = [d[0] for d in cur.description or ()]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        except duckdb.Error as exc:
            self._noticed(exc)
            raise

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        try:
            row = self._cursor().execute(sql, list(params)).fetchone()
        except duckdb.Error as exc:
            self._noticed(exc)
            raise
        return None if row is None else row[0]

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current thread's transaction commits (never on rollback):
        how waiters learn of a change only when it is visible to their reads."""
        pending = getattr(self._local, "after_commit", None)
        if pending is None:
            callback()  # no transaction open on this thread: the change is already visible
        else:
            pending.append(callback)

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction under the process-wide write lock; rolls back on any error."""
        with self._write_lock:
            cur = self._cursor()
            outer = getattr(self._local, "after_commit", None)
            self._local.after_commit = pending = []
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield cur
                except BaseException:
                    try:
                        cur.execute("ROLLBACK")
                    except duckdb.Error as exc:  # a fatal error leaves nothing to roll back
                        self._noticed(exc)
                    raise
                cur.execute("COMMIT")
            except duckdb.Error as exc:
                self._noticed(exc)
                raise
            finally:
                self._local.after_commit = outer
        for callback in pending:
            try:
                callback()
            except Exception:  # a waiter's problem must never fail a committed write
                log.exception("after-commit callback failed")

    def migrate(self) -> int:
        """Apply numbered migrations not yet in schema_version; returns the version reached."""
        with self.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version "
                        "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
            applied = {row[0] for row in cur.execute("SELECT version FROM schema_version"
                                                     ).fetchall()}
        files = sorted(p for p in resources.files(MIGRATIONS).iterdir()
                       if p.name.endswith(".sql"))
        current = max(applied, default=0)
        for file in files:
            version = int(file.name.split("_", 1)[0])
            # By set, not by maximum: numbers are reserved per feature, so a lower number
            # can land after a higher one and must still be applied to existing files.
            if version in applied:
                continue
            sql = "\n".join(line for line in file.read_text().splitlines()
                            if not line.strip().startswith("--"))
            with self.transaction() as cur:
                for statement in sql.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
            current = max(current, version)
        return current

    def close(self) -> None:
        self._con.close()
