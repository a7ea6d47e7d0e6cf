"""Long-poll waiters: a request waiting on an attempt sleeps on an asyncio event that the store
sets when the attempt's status changes (after the change commits), so a hundred clients
waiting on attempts cost the server no queries and no threads while nothing happens. Waiters on
queued attempts are also woken when any attempt leaves the queue: their position moved. A page
that shows a running attempt's progress also asks to be woken by its live reports."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from contextlib import contextmanager

QUEUE = "\0queue"  # the key of every waiter whose attempt is queued
LIVE = "\0live:"  # + attempt id: the key of waiters on a running attempt's live report


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

    def notify_queue(self) -> None:
        """An attempt left the queue: every queued attempt behind it moved up."""
        self.notify(QUEUE)

    def notify_live(self, attempt_id: str) -> None:
        """A running attempt reported progress, a log record or a finished seed."""
        self.notify(LIVE + attempt_id)

    @contextmanager
    def watch(self, attempt_id: str, *, queued: bool = False,
              live: bool = False) -> Iterator[asyncio.Event]:
        """Register before reading the attempt, so a change between the read and the wait
        is not missed. `queued`: also wake on queue moves; `live`: on its live reports."""
        entry = (asyncio.get_running_loop(), asyncio.Event())
        keys = (attempt_id, *((QUEUE,) if queued else ()), *((LIVE + attempt_id,) if live else ()))
        with self._lock:
            for key in keys:
                self._waiters.setdefault(key, set()).add(entry)
        try:
            yield entry[1]
        finally:
            with self._lock:
                for key in keys:
                    found = self._waiters.get(key)
                    if found is not None:
                        found.discard(entry)
                        if not found:
                            del self._waiters[key]

    @property
    def waiting(self) -> int:
        with self._lock:
            return sum(len(v) for k, v in self._waiters.items() if not k.startswith("\0"))
