"""What running attempts report while they run — each seed's state, its last ctx.progress and
its ctx.log records — kept in memory for the attempt page to poll.

Memory, not DuckDB: the reports arrive every half second per running seed and are worth
nothing once the attempt is recorded (its seeds' results and metrics then live in the store),
and a restart requeues a running attempt anyway. The single writer is kept for what lasts.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from study.records import SeedRunView

MAX_METRICS = 1000  # per seed, the same cap as the stored ctx.log records


class LiveRuns:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, dict[int, dict[str, Any]]] = {}
        self._versions: dict[str, int] = {}  # attempt → reports so far (long-polls compare it)
        self.on_change: Callable[[str], None] | None = None  # set by the server (long-polls)

    def _changed(self, attempt_id: str) -> None:
        """Called under the lock; wakes long-polls that watch this attempt's live report."""
        self._versions[attempt_id] = self._versions.get(attempt_id, 0) + 1
        if self.on_change is not None:
            self.on_change(attempt_id)

    def version(self, attempt_id: str) -> int | None:
        """How many times the attempt's live report changed, or None when it is not running."""
        with self._lock:
            return self._versions.get(attempt_id) if attempt_id in self._runs else None

    def start(self, attempt_id: str, seeds: list[int]) -> None:
        with self._lock:
            self._runs[attempt_id] = {seed: {"state": "pending", "metrics": []} for seed in seeds}
            self._changed(attempt_id)

    def report(self, attempt_id: str, seed: int, update: dict[str, Any]) -> None:
        """One report from the runner: `state`, `done`/`total`, or new `metrics` records."""
        with self._lock:
            run = self._runs.get(attempt_id, {}).get(seed)
            if run is None:
                return
            if "state" in update:
                run["state"] = update["state"]
            if "done" in update:
                run["done"], run["total"] = update["done"], update.get("total")
            room = MAX_METRICS - len(run["metrics"])
            run["metrics"].extend(list(update.get("metrics", []))[:max(room, 0)])
            self._changed(attempt_id)

    def finish_seed(self, attempt_id: str, outcome: Any) -> None:
        """A seed ended (a runner SeedOutcome): its state, wall time, error and output."""
        with self._lock:
            run = self._runs.get(attempt_id, {}).get(outcome.seed)
            if run is not None:
                run.update(state=outcome.status, wall=outcome.wall_s, error=outcome.error,
                           log_tail=outcome.log_tail[-20000:])
                self._changed(attempt_id)

    def drop(self, attempt_id: str) -> None:
        with self._lock:
            self._runs.pop(attempt_id, None)
            self._versions.pop(attempt_id, None)

    def snapshot(self, attempt_id: str) -> tuple[list[SeedRunView], list[dict]] | None:
        """(per-seed views, ctx.log records tagged with their seed), or None when not running."""
        with self._lock:
            runs = self._runs.get(attempt_id)
            if runs is None:
                return None
            views = [SeedRunView(seed=seed, state=r["state"], done=r.get("done"),
                                 total=r.get("total"), wall_seconds=r.get("wall"),
                                 error=r.get("error"), log_tail=r.get("log_tail", ""))
                     for seed, r in runs.items()]
            metrics = [{**m, "seed": seed} for seed, r in runs.items() for m in r["metrics"]]
        return views, metrics
