"""One convention for every score people read: the mean PGR over seeds and its 95% interval over
test items and seeds (`study.scoring.pgr_interval`), of the part the reader may see, rounded as
their feedback is. The attempt view, the leaderboard and the forum all build it here."""

from __future__ import annotations

import json
from typing import Any

from study.scoring import format_pgr

PGR_SENTENCE = (
    "PGR = (acc_w2s − acc_weak) / (acc_ceiling − acc_weak): the share of the gap between the weak "
    "teacher's test accuracy and the strong model's gold-trained ceiling (both frozen means over "
    "16 seeds) that your method recovers, averaged over the attempt's seeds and shown with its 95% "
    "interval over test items and seeds, on the public half of `test` (e.g. 0.62 [0.53, 0.71]).")


def round_pair(pair: Any, digits: int | None) -> tuple[float, float] | None:
    if pair is None:
        return None
    lo, hi = (float(v) for v in pair)
    return (lo, hi) if digits is None else (round(lo, digits), round(hi, digits))


def part_interval(scores_json: str | dict | None, part: str, digits: int | None
                  ) -> tuple[float, float] | None:
    """The stored 95% interval of one part ("public", "private") of an attempt's scores."""
    if not scores_json:
        return None
    scores = json.loads(scores_json) if isinstance(scores_json, str) else scores_json
    return round_pair((scores.get(part) or {}).get("pgr_ci95"), digits)


def shown(pgr: float | None, ci95: tuple[float, float] | None, digits: int | None) -> str:
    return format_pgr(pgr, ci95, digits)
