"""Reads that a status poll repeats, remembered while they cannot have changed.

A client watching its attempt may ask for it several times a second. Each ask used to cost
three DuckDB queries — who holds the token, the attempt's row, its queue position — of one to
three milliseconds each, most of a poll's server time. Two caches take them off the hot path:

- `CommitCache`: a read remembered until the next write commits. DuckDB has one writer, this
  process, and every write goes through `Database.transaction()`, which counts transactions
  once they are visible (`Database.commits`). A value read while the count was n is what the
  same query would return while the count is still n, so a hit is never stale.
- `CredentialCache`: who a credential belongs to. Tokens and sessions change only by being
  revoked or ended, and the service forgets every remembered credential when that happens
  (`forget_all`); entries also end after `ttl_s` in case some future write is missed. The
  credential's own expiry is not cached away: the service checks it on every request.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, Generic, TypeVar

V = TypeVar("V")


class _Bounded(Generic[V]):
    """An LRU map of key → (stamp, value), safe across threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._items: OrderedDict[str, tuple[Any, V]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str, valid: Callable[[Any], bool]) -> tuple[bool, V | None]:
        with self._lock:
            hit = self._items.get(key)
            if hit is None or not valid(hit[0]):
                return False, None
            self._items.move_to_end(key)
            return True, hit[1]

    def put(self, key: str, stamp: Any, value: V) -> None:
        with self._lock:
            self._items[key] = (stamp, value)
            self._items.move_to_end(key)
            while len(self._items) > self._size:
                self._items.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()


class CommitCache:
    """`get(key, read)`: read's value, from memory when no write has committed since it was
    read. Callers must not mutate what it returns (it is shared)."""

    # 256 rows: at the largest legal source (200 kB) about 50 MB, typically well under 1 MB.
    def __init__(self, db, *, size: int = 256) -> None:
        self._db = db
        self._items: _Bounded[Any] = _Bounded(size)

    def get(self, key: str, read: Callable[[], V]) -> V:
        if self._db.in_transaction():  # this thread would read its own uncommitted writes
            return read()
        stamp = self._db.commits  # before the read: a commit during it makes the entry stale
        found, value = self._items.get(key, lambda at: at == self._db.commits)
        if found:
            return value
        value = read()
        self._items.put(key, stamp, value)
        return value


class CredentialCache:
    """Credential hash → (principal, when the credential ends or None), for `ttl_s` at most
    and only until `forget_all`."""

    def __init__(self, *, ttl_s: float = 30.0, size: int = 4096,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl_s = ttl_s
        self._clock = clock
        self._epoch = 0  # bumped by forget_all; an entry read before a bump is not kept
        self._items: _Bounded[tuple[Any, Any]] = _Bounded(size)

    @property
    def epoch(self) -> int:
        """Take this before reading a credential from the database, and give it to `put`."""
        return self._epoch

    def get(self, key: str) -> tuple[Any, Any] | None:
        now = self._clock()
        found, value = self._items.get(
            key, lambda at: at[0] == self._epoch and now - at[1] < self.ttl_s)
        return value if found else None

    def put(self, key: str, epoch: int, principal: Any, ends_at: Any) -> None:
        if epoch == self._epoch:
            self._items.put(key, (epoch, self._clock()), (principal, ends_at))

    def forget_all(self) -> None:
        """A credential was revoked or ended: nothing remembered may be trusted again. Called
        after the change commits, so a read that began before it carries an older epoch."""
        self._epoch += 1
        self._items.clear()
