"""Attempts on a Ray cluster: the same sandboxed method process, on whichever node Ray picks.

The server still claims every attempt (fair share, quotas, concurrency caps) and records every
outcome; Ray only decides *where* an attempt runs. What travels to a node is names and hashes,
never the server's objects: the node builds the task and its fixed baselines itself (both are
deterministic from packages, data folders and the cache) and refuses to run anything unless
they hash to what the server holds — a node with other data fails loudly, it never scores.

The server connects as a Ray *client* (`ray://head:10001`): a plain driver process is ended by
Ray when the head's control store goes away, and the study server must outlive its cluster.
While the head is unreachable the scheduler claims nothing (see `ready`), so submissions keep
queueing and the queue drains when the head is back.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import os
import socket
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from runner.attempt import AttemptResult, run_attempt
from runner.gpu import Slot, discover_gpus
from runner.pairs import pair_for_protocol
from runner.teacher import FixedBaselines, ModelPair, fixed_baselines
from study.errors import ArenaError
from study.protocol import ProtocolSpec
from study.tasks import Task
from study.tasks.datadir import prepare_protocol_tasks

log = logging.getLogger("w2s_arena.ray")


class RayUnavailableError(ArenaError):
    """Ray is not installed, or its head cannot be reached."""

    code = "ray_unavailable"


class NodeMismatchError(ArenaError):
    """A node's task or fixed baselines differ from the server's: it must not score."""

    code = "node_mismatch"


class RayAttemptLost(Exception):
    """Ray lost the attempt (a worker or node died, the head went away): infrastructure."""


def baseline_fingerprint(base: FixedBaselines) -> str:
    """What a score depends on in the frozen baselines: accuracies, seeds, the test predictions
    of floor and ceiling, and every teacher's soft labels."""
    h = hashlib.sha256()
    h.update(f"{base.task}|{base.content_hash}|{base.pair}|{base.seeds}|"
             f"{base.weak_acc}|{base.ceiling_acc}".encode())
    for array in (base.weak_test_probs(), base.ceiling_test_probs(),
                  np.load(base.teacher_labels_path())):
        h.update(np.ascontiguousarray(array).tobytes())
    return h.hexdigest()


@dataclass(frozen=True)
class NodeRun:
    """One attempt as a node receives it: plain data only."""

    source: str
    task: str
    task_hash: str
    baseline_hash: str
    # The frozen protocol: the node resolves tasks and the model pair exactly as the server did.
    protocol_json: str
    # run_attempt's plain-data keyword arguments (seeds, budget, sandbox, scoring settings),
    # built by the server once for both backends so they cannot drift apart.
    attempt_kwargs: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def _node_study(protocol_json: str) -> tuple[dict[str, Task], ModelPair]:
    """A Ray worker process serves many attempts: build the study's tasks and pair once."""
    protocol = ProtocolSpec.model_validate_json(protocol_json)
    return prepare_protocol_tasks(protocol), pair_for_protocol(protocol)


def run_on_node(spec: NodeRun) -> AttemptResult:
    """Runs inside a Ray worker: check the node's data against the server's, then run the
    method exactly as the local backend does."""
    tasks, pair = _node_study(spec.protocol_json)
    task = tasks[spec.task]
    if task.info.content_hash != spec.task_hash:
        raise NodeMismatchError(
            f"task {spec.task} on this node hashes to {task.info.content_hash[:12]}, the server's "
            f"to {spec.task_hash[:12]}: rebuild its cache or point it at the shared one")
    if baseline_fingerprint(fixed_baselines(task, pair)) != spec.baseline_hash:
        raise NodeMismatchError(
            f"the fixed baselines of {spec.task} on this node differ from the server's")
    with tempfile.TemporaryDirectory(prefix="method-") as tmp:
        path = Path(tmp) / "method.py"
        path.write_text(spec.source, encoding="utf-8")
        return run_attempt(path, task, pair=pair, slot=_node_slot(), **spec.attempt_kwargs)


def _node_slot() -> Slot | None:
    """The GPUs Ray gave this task (it sets CUDA_VISIBLE_DEVICES to them), as a slot whose
    devices the sandbox binds; None on a CPU task."""
    import ray

    if not ray.is_initialized():  # called outside a Ray worker (tests): asking would start one
        return None
    ids = {int(i) for i in ray.get_gpu_ids()}
    if not ids:
        return None
    found, why = discover_gpus()
    gpus = tuple(g for g in found if g.index in ids)
    if len(gpus) != len(ids):  # never a GPU attempt silently run on the CPU
        raise NodeMismatchError(
            f"Ray gave this task GPU(s) {sorted(ids)}, but this node's nvidia-smi lists "
            f"{sorted(g.index for g in found)}{f' ({why})' if why else ''}")
    return Slot(number=0, gpus=gpus, dev_root=os.environ.get("ARENA_GPU_DEV_ROOT", "/dev"))


def _probe(address: str, timeout: float = 2.0) -> str | None:
    """None when something listens at the address's host:port, else why not."""
    host, _, port = address.removeprefix("ray://").rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return None
    except (OSError, ValueError) as exc:
        return f"{type(exc).__name__}: {exc}"


def _import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise RayUnavailableError(
            "the Ray backend needs Ray: pip install -e '.[ray]'") from None
    return ray


def check_ray_address(address: str) -> None:
    """A Ray client address, and Ray installed to use it; raises RayUnavailableError."""
    if not address.startswith("ray://"):
        raise RayUnavailableError(
            f"--ray-address {address!r}: give the head's client address, "
            "ray://HOST:10001 (a plain driver would be ended by Ray if the head went away)")
    _import_ray()


@dataclass
class RayExecutor:
    """Submits attempts as Ray tasks and waits for them; reconnects to the head when needed."""

    address: str
    retry_seconds: float = 5.0  # between connection tries while the head is away
    poll_seconds: float = 0.5
    _ray: Any = None
    _remote: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_try: float = 0.0
    last_error: str | None = None
    connected_since: float | None = None

    def __post_init__(self) -> None:
        check_ray_address(self.address)
        self._ray = _import_ray()

    # ------------------------------------------------------------------------- connection
    def ready(self) -> bool:
        """True when the head answers; tries to (re)connect at most every `retry_seconds`.
        The scheduler claims nothing while this is False."""
        with self._lock:
            if self._ray.is_initialized() and self._alive():
                return True
            if time.monotonic() < self._next_try:
                return False
            self._next_try = time.monotonic() + self.retry_seconds
            return self._connect()

    def _alive(self) -> bool:
        try:
            self._ray.cluster_resources()
            return True
        except Exception as exc:
            self._disconnect(f"the Ray head stopped answering: {type(exc).__name__}: {exc}")
            return False

    def _connect(self) -> bool:
        # A TCP probe first: the Ray client retries a closed port for about 30 s, and the
        # scheduler asks every few seconds while the head is away.
        probe = _probe(self.address)
        if probe is not None:
            self._disconnect(f"cannot reach the Ray head at {self.address}: {probe}")
            return False
        try:
            self._ray.init(self.address, logging_level=logging.WARNING, log_to_driver=False)
            self._remote = self._ray.remote(max_retries=0)(run_on_node)
        except Exception as exc:
            self._disconnect(f"cannot reach the Ray head at {self.address}: "
                             f"{type(exc).__name__}: {str(exc)[:300]}")
            return False
        self.last_error, self.connected_since = None, time.time()
        log.info("connected to the Ray cluster at %s", self.address)
        return True

    def _disconnect(self, why: str) -> None:
        if self.last_error != why:
            log.warning(why)
        self.last_error, self.connected_since = why, None
        try:
            self._ray.shutdown()
        except Exception:  # a dead connection may not shut down cleanly; it is gone either way
            log.debug("ray.shutdown after a lost connection failed", exc_info=True)

    def health(self) -> dict[str, Any]:
        return {"backend": "ray", "address": self.address,
                "connected": self.connected_since is not None, "error": self.last_error}

    def close(self) -> None:
        with self._lock:
            if self._ray.is_initialized():
                self._ray.shutdown()
            self.connected_since = None

    # --------------------------------------------------------------------------- running
    def run(self, spec: NodeRun, *, cancel: threading.Event, num_cpus: float = 1,
            num_gpus: float = 0, memory_mb: int = 0) -> AttemptResult:
        """The attempt's result. Raises RayAttemptLost when Ray lost it, which the scheduler
        books as infrastructure — and when it was cancelled, which the server has already
        recorded (a cancelled attempt is never moved back to the queue)."""
        if not self.ready():
            raise RayAttemptLost(self.last_error or "the Ray head is unreachable")
        ray = self._ray
        try:
            ref = self._remote.options(num_cpus=num_cpus, num_gpus=num_gpus,
                                       memory=memory_mb * 2**20 or None).remote(spec)
            while True:
                done, _ = ray.wait([ref], timeout=self.poll_seconds)
                if done:
                    return ray.get(ref)
                if cancel.is_set():
                    ray.cancel(ref, force=True)
                    raise RayAttemptLost("cancelled while it ran on Ray")
        except RayAttemptLost:
            raise
        except ray.exceptions.RayTaskError as exc:
            cause = exc.cause if isinstance(getattr(exc, "cause", None), Exception) else exc
            if isinstance(cause, NodeMismatchError):
                raise RayAttemptLost(f"node refused the attempt: {cause.message}") from None
            raise RayAttemptLost(f"the attempt failed on its node: {type(cause).__name__}: "
                                 f"{str(cause)[:500]}") from None
        except Exception as exc:  # worker or node died, the head went away, the object is lost
            raise RayAttemptLost(f"Ray lost the attempt: {type(exc).__name__}: "
                                 f"{str(exc)[:500]}") from None
