"""N worker slots pulling attempts from the server: claim → execute → finish, with a heartbeat.

The scheduler knows nothing of the store. The server hands it a JobSource; the source decides
which attempt goes next (fair share, concurrency caps) and records every outcome. Every step is
guarded: a failed claim or heartbeat is logged and retried; an outcome that cannot be recorded
is retried with backoff and, failing that, left `running` with a heartbeat that goes stale, so
the source's sweep (or the next start) requeues it — never lost, never a dead worker.

Dry runs take their own small lane of slots (`dry_slots`), so a burst of them queues here
instead of running dozens of sandboxes in the API's thread pool.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from runner.gpu import Slot, slot_healthy

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
    slot: Slot | None = None  # stamped by the worker that claimed it: where (which GPUs) it runs


class JobSource(Protocol):
    def claim(self) -> Job | None: ...

    def heartbeat(self, job: Job) -> bool:
        """Record liveness; False means the job was cancelled and the run should stop."""
        ...

    def finish(self, job: Job, result: object | None, infra_error: str | None) -> None: ...

    def requeue_stale(self, older_than_s: float) -> list[str]:
        """Requeue `running` attempts whose heartbeat is older than this: their worker lost
        them (it could not record the outcome, or it died)."""
        ...


Executor = Callable[[Job, threading.Event], object]


class BusyError(Exception):
    """The dry-run lane is full: come back later."""


@dataclass
class WorkerState:
    """What health reports of one worker: when its loop last showed life, what it runs."""

    name: str
    beat: float = field(default_factory=time.time)
    attempt_id: str | None = None
    last_error: str | None = None
    errors: int = 0
    slot: Slot | None = None  # what this worker holds (its GPUs), for its whole life
    retired: bool = False  # its GPU was lost: it claims nothing more


@dataclass
class Scheduler:
    source: JobSource
    execute: Executor
    slots: int = 1
    # What each worker holds (its GPUs); when given, one worker per entry and `slots` is ignored.
    resources: list[Slot] = field(default_factory=list)
    poll_seconds: float = 0.25
    heartbeat_seconds: float = 2.0
    finish_tries: int = 8  # backoff 0.2 s doubling to 10 s: about 40 s before giving up
    stale_after_s: float = 120.0  # a heartbeat this old means the worker lost the attempt
    sweep_seconds: float = 15.0
    # Asked before every claim; None: the executor is always ready (local slots).
    ready: Callable[[], bool] | None = None
    dry_slots: int = 1
    dry_queue: int = 16  # dry runs waiting beyond this are refused (429), never piled up
    _stop: threading.Event = field(default_factory=threading.Event)
    _wake: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    workers: list[WorkerState] = field(default_factory=list)
    _last_sweep: float = 0.0
    _dry: ThreadPoolExecutor | None = None
    _dry_pending: int = 0
    _dry_lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> None:
        held: list[Slot | None] = [*self.resources] or [None] * self.slots
        for i, slot in enumerate(held):
            state = WorkerState(name=f"worker-{i}", slot=slot)
            self.workers.append(state)
            thread = threading.Thread(target=self._loop, args=(state,), name=state.name,
                                      daemon=True)
            thread.start()
            self._threads.append(thread)
        if self.dry_slots > 0:
            self._dry = ThreadPoolExecutor(self.dry_slots, thread_name_prefix="dry-run")

    def wake(self) -> None:
        """Called on submit so an idle worker claims at once instead of at its next poll."""
        self._wake.set()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        for thread in self._threads:
            thread.join(timeout)
        if self._dry is not None:
            self._dry.shutdown(wait=False, cancel_futures=True)

    def alive(self) -> list[bool]:
        return [t.is_alive() for t in self._threads]

    # ------------------------------------------------------------------------------ dry runs
    def run_dry(self, fn: Callable[[], Any]) -> Future:
        """Queue `fn` on the dry-run lane; BusyError when the lane's queue is full."""
        if self._dry is None:
            raise BusyError("this server runs no dry runs (no dry-run slots)")
        with self._dry_lock:
            if self._dry_pending >= self.dry_slots + self.dry_queue:
                raise BusyError(f"{self._dry_pending} dry runs are already waiting")
            self._dry_pending += 1

        def run() -> Any:
            try:
                return fn()
            finally:
                with self._dry_lock:
                    self._dry_pending -= 1

        return self._dry.submit(run)

    @property
    def dry_pending(self) -> int:
        return self._dry_pending

    # --------------------------------------------------------------------------- the loop
    def _loop(self, state: WorkerState) -> None:
        while not self._stop.is_set() and not state.retired:
            state.beat = time.time()
            try:
                self._step(state)
            except Exception as exc:  # nothing may end a worker: log, back off, go on
                self._note(state, exc, "worker step failed")
                self._stop.wait(min(5.0, 0.2 * 2 ** min(state.errors, 5)))

    def _step(self, state: WorkerState) -> None:
        self._sweep(state)
        if self.ready is not None and not self.ready():
            # The executor cannot run anything now (a Ray head away): claim nothing, so
            # submissions wait in the queue instead of failing as infrastructure faults.
            self._stop.wait(self.poll_seconds * 4)
            return
        job = self.source.claim()
        if job is None:
            self._wake.wait(self.poll_seconds)
            self._wake.clear()
            return
        state.attempt_id = job.attempt_id
        try:
            self._run(job if state.slot is None else replace(job, slot=state.slot), state)
        finally:
            state.attempt_id = None
        self._retire_if_lost(state)

    def _retire_if_lost(self, state: WorkerState) -> None:
        """A worker whose GPU is gone stops claiming, so requeued work goes to a healthy one."""
        if state.slot is None or not state.slot.gpus or slot_healthy(state.slot):
            return
        state.retired = True
        state.last_error = f"{state.slot.describe()} was lost: this worker claims no more"
        log.error(state.last_error)

    def _sweep(self, state: WorkerState) -> None:
        """Now and then, requeue attempts whose worker lost them (stale heartbeat)."""
        now = time.monotonic()
        if now - self._last_sweep < self.sweep_seconds:
            return
        self._last_sweep = now
        try:
            found = self.source.requeue_stale(self.stale_after_s)
        except Exception as exc:
            self._note(state, exc, "stale sweep failed")
            return
        if found:
            log.warning("requeued %d attempt(s) whose worker lost them: %s", len(found), found)

    def _note(self, state: WorkerState, exc: BaseException, what: str) -> None:
        state.errors += 1
        state.last_error = f"{what}: {type(exc).__name__}: {str(exc)[:300]}"
        log.exception(what)

    def _run(self, job: Job, state: WorkerState) -> None:
        cancel = threading.Event()
        done = threading.Event()
        shutdown = threading.Event()

        def beat() -> None:
            while not done.wait(self.heartbeat_seconds):
                state.beat = time.time()
                if self._stop.is_set():
                    shutdown.set()
                    cancel.set()
                try:
                    if not self.source.heartbeat(job):
                        cancel.set()
                except Exception as exc:
                    self._note(state, exc, f"heartbeat failed for {job.attempt_id}")

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
        self._finish(job, result, infra_error, state)

    def _finish(self, job: Job, result: object | None, infra_error: str | None,
                state: WorkerState) -> None:
        """Record the outcome, retrying with backoff; if it still cannot be recorded the
        attempt stays `running`, its heartbeat goes stale and the sweep requeues it."""
        for attempt in range(self.finish_tries):
            state.beat = time.time()
            try:
                self.source.finish(job, result, infra_error)
                return
            except Exception as exc:
                self._note(state, exc, f"recording the outcome of {job.attempt_id} failed "
                                       f"(try {attempt + 1} of {self.finish_tries})")
            if self._stop.wait(min(10.0, 0.2 * 2 ** attempt)):
                break
        log.error("gave up recording %s; it will be requeued once its heartbeat is stale",
                  job.attempt_id)
