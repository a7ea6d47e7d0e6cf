"""N worker slots pulling attempts from the server: claim → execute → finish, with a heartbeat.

The scheduler knows nothing of the store. The server hands it a JobSource; the source decides
which attempt goes next (fair share, concurrency caps) and records every outcome. A worker that
dies mid-attempt leaves the attempt `running` with a stale heartbeat, which the server requeues.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

log = logging.getLogger("w2s_arena.scheduler")


@dataclass(frozen=True)
class Job:
    attempt_id: str
    participant_id: str
    task: str
    seeds: list[int]
    source: str
    kind: str = "attempt"  # or an audit: "teacher_ablation", "heldout"
    audit_id: str | None = None


class JobSource(Protocol):
    def claim(self) -> Job | None: ...

    def heartbeat(self, job: Job) -> bool:
        """Record liveness; False means the job was cancelled and the run should stop."""
        ...

    def finish(self, job: Job, result: object | None, infra_error: str | None) -> None: ...


Executor = Callable[[Job, threading.Event], object]


@dataclass
class Scheduler:
    source: JobSource
    execute: Executor
    slots: int = 1
    poll_seconds: float = 0.25
    heartbeat_seconds: float = 2.0
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for i in range(self.slots):
            thread = threading.Thread(target=self._loop, name=f"worker-{i}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def wake(self) -> None:
        """Called on submit so an idle worker claims at once instead of at its next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.source.claim()
            except Exception:  # a store hiccup must not kill the worker
                log.exception("claim failed")
                job = None
            if job is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._run(job)

    def _run(self, job: Job) -> None:
        cancel = threading.Event()
        done = threading.Event()
        shutdown = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_seconds):
                if self._stop.is_set():
                    shutdown.set()
                    cancel.set()
                try:
                    if not self.source.heartbeat(job):
                        cancel.set()
                except Exception:
                    log.exception("heartbeat failed for %s", job.attempt_id)

        beater = threading.Thread(target=beat, name=f"heartbeat-{job.attempt_id}", daemon=True)
        beater.start()
        result, infra_error = None, None
        try:
            result = self.execute(job, cancel)
        except Exception as exc:  # the runner's own fault, never the method's
            log.exception("executing %s failed", job.attempt_id)
            infra_error = f"{type(exc).__name__}: {exc}"
        finally:
            done.set()
            beater.join()
        if shutdown.is_set():  # not the method's doing: the attempt goes back to the queue
            result, infra_error = None, "the server stopped while the attempt ran"
        self.source.finish(job, result, infra_error)
