"""One DuckDB connection per server process: a cursor per thread, one lock for writes.

DuckDB allows a single read-write process per file, which is exactly the design's "one writer".
Reads run concurrently on per-thread cursors; writes are serialised by a lock so that
compare-and-set updates and uniqueness checks never race.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from importlib import resources
from pathlib import Path
from typing import Any

import duckdb

MIGRATIONS = "study.store.migrations"


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Database:
    def __init__(self, path: Path | str, *, read_only: bool = False) -> None:
        self.path = str(path)
        self._con = duckdb.connect(self.path, read_only=read_only)
        self._con.execute("SET TimeZone = 'UTC'")
        self._local = threading.local()
        self._write_lock = threading.RLock()

    def _cursor(self) -> duckdb.DuckDBPyConnection:
        cur = getattr(self._local, "cursor", None)
        if cur is None:
            cur = self._con.cursor()
            cur.execute("SET TimeZone = 'UTC'")
            self._local.cursor = cur
        return cur

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self._cursor()
        cur.execute(sql, list(params))
        names = [d[0] for d in cur.description or ()]
        return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]

    def one(self, sql: str, params: Sequence[Any] = ()) -> dict[str, Any] | None:
        found = self.rows(sql, params)
        return found[0] if found else None

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self._cursor().execute(sql, list(params)).fetchone()
        return None if row is None else row[0]

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction under the process-wide write lock; rolls back on any error."""
        with self._write_lock:
            cur = self._cursor()
            cur.execute("BEGIN TRANSACTION")
            try:
                yield cur
            except BaseException:
                cur.execute("ROLLBACK")
                raise
            cur.execute("COMMIT")

    def migrate(self) -> int:
        """Apply numbered migrations not yet in schema_version; returns the version reached."""
        with self.transaction() as cur:
            cur.execute("CREATE TABLE IF NOT EXISTS schema_version "
                        "(version INTEGER NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
            current = cur.execute("SELECT coalesce(max(version), 0) FROM schema_version"
                                  ).fetchone()[0]
        files = sorted(p for p in resources.files(MIGRATIONS).iterdir()
                       if p.name.endswith(".sql"))
        for file in files:
            version = int(file.name.split("_", 1)[0])
            if version <= current:
                continue
            sql = "\n".join(line for line in file.read_text().splitlines()
                            if not line.strip().startswith("--"))
            with self.transaction() as cur:
                for statement in sql.split(";"):
                    if statement.strip():
                        cur.execute(statement)
                cur.execute("INSERT INTO schema_version VALUES (?, ?)", [version, utcnow()])
            current = version
        return current

    def close(self) -> None:
        self._con.close()
