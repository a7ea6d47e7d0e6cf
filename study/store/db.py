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
import re
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


# One SELECT (or WITH … SELECT) and nothing else; any write word anywhere counts as a write
# (a column named `updated` too: a needless count costs one cache miss, a missed one a lie).
_READ_ONLY = re.compile(r"\s*(SELECT|WITH)\b[^;]*;?\s*\Z", re.IGNORECASE)
_WRITE_WORD = re.compile(r"\b(INSERT|UPDATE|DELETE|MERGE|CREATE|ALTER|DROP|COPY|ATTACH|"
                         r"CHECKPOINT|SET|SETVAL|NEXTVAL)\b", re.IGNORECASE)


class _WriteTracking:
    """A transaction's cursor that notes whether anything in it may have written: a statement
    that is not one plain SELECT, or any other use (register, ...). Transactions that only
    read (an idle worker's claim, four times a second) then leave `Database.commits` alone,
    so the reads remembered against it stay good (study.read_cache)."""

    __slots__ = ("_cur", "wrote")

    def __init__(self, cur: duckdb.DuckDBPyConnection) -> None:
        self._cur, self.wrote = cur, False

    def execute(self, sql: str, *args: Any, **kwargs: Any) -> duckdb.DuckDBPyConnection:
        if not _READ_ONLY.match(sql) or _WRITE_WORD.search(sql):
            self.wrote = True
        return self._cur.execute(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name != "description":
            self.wrote = True
        return getattr(self._cur, name)


class Database:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = str(path)
        self.read_only = read_only
        self._local = threading.local()
        self._write_lock = threading.RLock()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._generation = 0
        # Write transactions committed (bumped once each is visible; every write goes through
        # transaction()): a read made when this was n still holds while it is n (read_cache).
        self.commits = 0
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
            self.commits += 1  # what was read before may be gone with the failed checkpoint
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
            self._count_if_write(sql)
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
            self._count_if_write(sql)
        except duckdb.Error as exc:
            self._noticed(exc)
            raise
        return None if row is None else row[0]

    def _count_if_write(self, sql: str) -> None:
        """A write made outside transaction() (autocommit) still makes remembered reads stale:
        study.read_cache trusts `commits` alone."""
        if not self.in_transaction() and (not _READ_ONLY.match(sql) or _WRITE_WORD.search(sql)):
            with self._write_lock:
                self.commits += 1

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current thread's transaction commits (never on rollback):
        how waiters learn of a change only when it is visible to their reads."""
        pending = getattr(self._local, "after_commit", None)
        if pending is None:
            callback()  # no transaction open on this thread: the change is already visible
        else:
            pending.append(callback)

    def in_transaction(self) -> bool:
        """Whether this thread is inside transaction(): its reads see its uncommitted writes."""
        return getattr(self._local, "after_commit", None) is not None

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction under the process-wide write lock; rolls back on any error."""
        with self._write_lock:
            cur = self._cursor()
            outer = getattr(self._local, "after_commit", None)
            self._local.after_commit = pending = []
            tracked = _WriteTracking(cur)
            try:
                cur.execute("BEGIN TRANSACTION")
                try:
                    yield tracked  # type: ignore[misc]  # a DuckDB cursor to its users
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
                # Also after a failed COMMIT or a rollback: whether a failed COMMIT left its
                # writes is DuckDB's business; a needless bump costs one cache miss.
                if tracked.wrote:
                    self.commits += 1  # under the write lock: no lost increments
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
