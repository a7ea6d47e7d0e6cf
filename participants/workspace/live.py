"""Live attempts without polling the server: the workspace waits on the study server's
long-polls.

A page that shows attempts still queued or running hands them to this browser session's
`Watcher`. For each such attempt one background thread makes long-poll requests
(`GET /v1/attempts/{id}?wait=…&since=…&since_position=…`, plus `since_live=…` while it runs, so
its progress and logs arrive as they are reported): the server parks each request until the
status, the queue position or the live report changes, so a page left open on a waiting attempt
costs the server nothing while nothing happens. The page draws from what the watcher last heard
(`latest`, `changes`), never by refetching on a timer. A thread ends when its attempt finishes,
when the page has not looked for `IDLE_S` (the tab was closed or left), or on an error it
cannot wait out (a revoked session).

Pure Python and the SDK: no Streamlit here (the threads must not touch the page's state).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable

import httpx

from participants.sdk import ArenaAPIError, ArenaClient
from study.records import TERMINAL, AttemptView

WAIT_S = 25.0  # each long-poll's bound: well inside proxies' and the SDK's timeouts
IDLE_S = 60.0  # no page has looked this long: stop watching
RETRY_S = 5.0  # after a failed request (the server away), before asking again
MAX_WATCHED = 32  # attempts watched at once per session; more wait for the next page run


class Watcher:
    def __init__(self, client: ArenaClient, *, wait_s: float = WAIT_S,
                 idle_s: float = IDLE_S) -> None:
        self.client, self.wait_s, self.idle_s = client, wait_s, idle_s
        self._lock = threading.Lock()
        self._views: dict[str, AttemptView] = {}
        self._threads: dict[str, threading.Thread] = {}
        self._looked = time.monotonic()
        self.changes = 0  # status changes heard: the page redraws all of itself when it moves
        self.error: str | None = None  # the last request that failed, for the page to say

    def watch(self, views: Iterable[AttemptView]) -> None:
        """Follow every attempt among `views` that is not finished (one thread each)."""
        self.look()
        with self._lock:
            for view in views:
                alive = self._threads.get(view.id)
                if view.status in TERMINAL or (alive is not None and alive.is_alive()):
                    continue
                if len(self._threads) >= MAX_WATCHED:
                    break
                self._views[view.id] = view
                thread = threading.Thread(target=self._follow, args=(view.id,), daemon=True,
                                          name=f"watch-{view.id}")
                self._threads[view.id] = thread
                thread.start()

    def look(self) -> None:
        """The page is still showing: keep following."""
        self._looked = time.monotonic()

    def latest(self, attempt_id: str) -> AttemptView | None:
        with self._lock:
            return self._views.get(attempt_id)

    @property
    def watching(self) -> int:
        with self._lock:
            return sum(t.is_alive() for t in self._threads.values())

    def _follow(self, attempt_id: str) -> None:
        try:
            view = self.latest(attempt_id)
            while view is not None and view.status not in TERMINAL:
                if time.monotonic() - self._looked > self.idle_s:
                    return
                view = self._next(view)
        finally:
            with self._lock:
                self._threads.pop(attempt_id, None)

    def _next(self, view: AttemptView) -> AttemptView | None:
        """One long-poll; the view it answered with (or the same one after a failure, or
        None when the attempt can no longer be followed)."""
        asked = time.monotonic()
        try:
            new = self.client.attempt(view.id, wait=self.wait_s, since=view.status,
                                      since_position=view.queue_position,
                                      since_live=view.live_version)
        except ArenaAPIError as exc:  # 401 (signed out, revoked), 404: nothing to wait for
            self.error = exc.message
            return None if exc.status in (401, 403, 404) else self._pause(view)
        except httpx.TransportError as exc:
            self.error = f"the study server cannot be reached ({type(exc).__name__})"
            return self._pause(view)
        self.error = None
        with self._lock:
            if new.status != view.status:
                self.changes += 1
            self._views[new.id] = new
        self._settle(view, new, asked)
        return new

    def _settle(self, view: AttemptView, new: AttemptView, asked: float) -> None:
        """A server that answers at once with nothing new (one that does not long-poll)
        is asked again after a pause, not in a busy loop."""
        same = (new.status, new.queue_position, new.live_version) == (
            view.status, view.queue_position, view.live_version)
        if same and time.monotonic() - asked < 1.0:
            time.sleep(RETRY_S)

    def _pause(self, view: AttemptView) -> AttemptView:
        time.sleep(RETRY_S)
        return view
