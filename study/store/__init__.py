"""The DuckDB store: schema migrations and the queries the service needs."""

from study.store.db import Database, utcnow
from study.store.queries import Store

__all__ = ["Database", "Store", "utcnow"]
