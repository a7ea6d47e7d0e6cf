"""Long-poll waiters: a request waiting on an attempt sleeps on an asyncio event that the store
sets when the attempt's status changes (after the change commits), so a hundred clients
waiting on attempts cost the server no queries and no threads while nothing happens."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager


class AttemptBoard:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._waiters: dict[str, set[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}

    def notify(self, attempt_id: str) -> None:
        """Called from any thread (a worker, a request) once a change has committed."""
        with self._lock:
            waiting = list(self._waiters.get(attempt_id, ()))
        for loop, event in waiting:
            if not loop.is_closed():
                loop.call_soon_threadsafe(event.set)

    @contextmanager
    def watch(self, attempt_id: str) -> Iterator[asyncio.Event]:
        """Register before reading the attempt, so a change between the read and the wait
        is not missed."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        with self._lock:
            self._waiters.setdefault(attempt_id, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                found = self._waiters.get(attempt_id)
                if found is not None:
                    found.discard(entry)
                    if not found:
                        del self._waiters[attempt_id]

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(len(v) for v in self._waiters.values())
