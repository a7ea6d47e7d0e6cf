"""Clock-in sessions → active hours, said honestly: overlapping sessions are merged (never summed),
a session never closed is capped and flagged, and a participant with no clock events has no
active hours at all (NaN), not zero."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

US = "datetime64[us]"


@dataclass(frozen=True)
class Clock:
    """One participant's merged clock-in intervals (sorted, disjoint), and whether any of them
    was open and had to be capped."""

    starts: np.ndarray
    ends: np.ndarray
    capped: bool

    @property
    def empty(self) -> bool:
        return len(self.starts) == 0


def stamps(values: pd.Series) -> np.ndarray:
    """UTC instants as naive datetime64[us] (mixing tz-aware and naive series otherwise fails);
    NaT stays NaT."""
    return pd.to_datetime(values, utc=True).dt.tz_localize(None).to_numpy(dtype=US)


def merge_sessions(starts: np.ndarray, ends: np.ndarray, *, as_of: np.datetime64,
                   max_open_hours: float) -> Clock:
    """Union of one participant's sessions (datetime64[us]; an open session's end is NaT). An
    open session ends at the earlier of `as_of` and its start + `max_open_hours`: a clock-in
    left running over a weekend is not a weekend of work."""
    if len(starts) == 0:
        return Clock(np.array([], dtype=US), np.array([], dtype=US), capped=False)
    open_ = np.isnat(ends)
    cap = np.minimum(starts + np.timedelta64(int(max_open_hours * 3.6e9), "us"), as_of)
    ends = np.where(open_, np.maximum(cap, starts), ends)
    order = np.argsort(starts, kind="stable")
    starts, ends = starts[order], ends[order]
    merged_starts, merged_ends = [starts[0]], [ends[0]]
    for start, end in zip(starts[1:], ends[1:], strict=True):
        if start <= merged_ends[-1]:
            merged_ends[-1] = max(merged_ends[-1], end)
        else:
            merged_starts.append(start)
            merged_ends.append(end)
    return Clock(np.array(merged_starts, dtype=US), np.array(merged_ends, dtype=US),
                 capped=bool(open_.any()))


def active_hours_at(times: np.ndarray, clock: Clock) -> np.ndarray:
    """For each time t (datetime64[us]), the clocked-in hours up to t; NaN without a clock."""
    if clock.empty:
        return np.full(len(times), np.nan)
    overlap = np.minimum(clock.ends[None, :], times[:, None]) - clock.starts[None, :]
    seconds = np.clip(overlap.astype("timedelta64[us]").astype(np.int64) / 1e6, 0, None)
    return seconds.sum(axis=1) / 3600.0


def clocked_in_at(times: np.ndarray, clock: Clock) -> np.ndarray:
    """Whether each time falls inside a clock-in interval (ends inclusive)."""
    if clock.empty:
        return np.zeros(len(times), dtype=bool)
    t = times[:, None]
    return ((clock.starts[None, :] <= t) & (t <= clock.ends[None, :])).any(axis=1)
