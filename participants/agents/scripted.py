"""The scripted agent: a non-LLM participant that walks the baseline library's methods and
hyper-parameters through the SDK, in its own arm, so a newcomer sees a live study at once and
the analysis has an automated floor to compare both arms against."""

from __future__ import annotations

import contextlib
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass

from participants.sdk import ArenaAPIError, ArenaClient
from study.records import AttemptStatus

log = logging.getLogger("w2s_arena.scripted")

# (baseline, constant, values): each variant rewrites one module-level constant.
GRID: tuple[tuple[str, str | None, tuple[float, ...]], ...] = (
    ("vanilla", None, ()),
    ("logconf", "ALPHA", (0.5, 0.75, 0.9)),
    ("confident", "KEEP", (0.3, 0.5, 0.7)),
    ("bootstrap", "BETA", (0.3, 0.5, 0.7)),
    ("zero_shot", None, ()),
)


@dataclass(frozen=True)
class Variant:
    key: str
    source: str
    note: str


def variants(baselines: dict[str, str]) -> Iterator[Variant]:
    for name, constant, values in GRID:
        source = baselines.get(name)
        if source is None:
            continue
        if constant is None:
            yield Variant(f"{name}", source, f"scripted: {name} as shipped")
            continue
        for value in values:
            changed, count = re.subn(rf"^{constant} = .*$", f"{constant} = {value}", source,
                                     flags=re.M)
            if count:
                yield Variant(f"{name}-{constant}-{value}", changed,
                              f"scripted: {name} with {constant} = {value}")


def run_scripted(client: ArenaClient, *, task: str = "rt_sentiment", name: str = "scripted",
                 poll: float = 2.0, stop_after: int | None = None) -> list[str]:
    """Submit every variant once (idempotently: a restart skips what was submitted), wait for
    each, and post the best as a finding. Stops early when the quota runs out."""
    try:
        client.clock_in()
    except ArenaAPIError as exc:
        if exc.status != 409:
            raise
    done: list[str] = []
    best = None
    try:
        for i, variant in enumerate(variants(client.baselines())):
            if stop_after is not None and i >= stop_after:
                break
            try:
                view = client.submit(variant.source, task, note=variant.note,
                                     idempotency_key=f"{name}:{task}:{variant.key}")
            except ArenaAPIError as exc:
                if exc.status == 429:
                    log.info("%s: quota reached: %s", name, exc.message)
                    break
                raise
            view = client.wait(view.id, poll=poll)
            done.append(view.id)
            score = view.public.pgr if view.public else None
            if view.status is AttemptStatus.SCORED and score is not None and (
                    best is None or score > best[0]):
                best = (score, view.id, variant.note)
        if best is not None:
            client.post("result", f"{name}: best baseline variant so far",
                        f"{best[2]} reached public PGR {best[0]} on {task}.",
                        attempt_id=best[1], idempotency_key=f"scripted-best:{best[1]}")
    finally:
        with contextlib.suppress(ArenaAPIError):
            client.clock_out()
    return done
