"""Study records → one tidy frame of finished attempts with every time axis an analyst needs.

Inputs are plain DataFrames as the server's Parquet exports give them (attempts, sessions,
usage); nothing here reads a file or the network. Times are hours.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

AXES = {
    "calendar_hours": "hours since the study started",
    "own_hours": "hours since the participant's own start",
    "active_hours": "active hours (clocked in)",
    "compute_hours": "cumulative compute hours",
    "dollars": "cumulative dollars (API + compute)",
}
COLUMNS = ["attempt_id", "participant_id", "display_name", "arm", "kind", "task", "status",
           "finished_at", "public_pgr", "private_pgr", "cpu_seconds", "flagged", "note",
           "code_sha256", *AXES]


def _hours(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 3600.0


def _active_hours_at(times: pd.Series, sessions: pd.DataFrame) -> np.ndarray:
    """For each time t: the sum over clock-in sessions of their overlap with (−∞, t]."""
    if sessions.empty:
        return np.zeros(len(times))
    starts = sessions["started_at"].to_numpy(dtype="datetime64[us]")
    ends = sessions["ended_at"].to_numpy(dtype="datetime64[us]")
    ends = np.where(np.isnat(ends), np.datetime64("9999-12-31", "us"), ends)  # still in
    t = times.to_numpy(dtype="datetime64[us]")[:, None]
    overlap = (np.minimum(ends[None, :], t) - starts[None, :]).astype("timedelta64[us]")
    seconds = np.clip(overlap.astype(np.int64) / 1e6, 0, None)
    return seconds.sum(axis=1) / 3600.0


def _api_dollars_at(times: pd.Series, spent: pd.DataFrame) -> np.ndarray:
    """For each time t: the participant's API dollars recorded up to t."""
    if spent.empty:
        return np.zeros(len(times))
    spent = spent.sort_values("recorded_at")
    stamps = spent["recorded_at"].to_numpy(dtype="datetime64[us]")
    total = np.concatenate([[0.0], np.cumsum(spent["cost_usd"].to_numpy(dtype=float))])
    return total[np.searchsorted(stamps, times.to_numpy(dtype="datetime64[us]"), side="right")]


def attempts_frame(attempts: pd.DataFrame, *, study_start: pd.Timestamp,
                   sessions: pd.DataFrame | None = None, usage: pd.DataFrame | None = None,
                   flags: pd.DataFrame | None = None,
                   gpu_hour_price: float = 0.0) -> pd.DataFrame:
    """One row per finished attempt (scored, failed or timed out), with the five x-axes."""
    sessions = sessions if sessions is not None else pd.DataFrame(
        columns=["participant_id", "started_at", "ended_at"])
    usage = usage if usage is not None else pd.DataFrame(
        columns=["participant_id", "recorded_at", "cost_usd"])
    done = attempts[attempts["status"].isin(["scored", "failed", "timed_out"])
                    & attempts["finished_at"].notna()].copy()
    done = done.rename(columns={"id": "attempt_id", "participant_kind": "kind"})
    if "kind" not in done:
        done["kind"] = None
    flagged_ids = set(flags["attempt_id"]) if flags is not None and len(flags) else set()
    done["flagged"] = done["attempt_id"].isin(flagged_ids)
    done["cpu_seconds"] = done["cpu_seconds"].fillna(0.0)
    done = done.sort_values(["finished_at", "attempt_id"]).reset_index(drop=True)
    done["calendar_hours"] = _hours(done["finished_at"] - study_start)
    parts = []
    for pid, group in done.groupby("participant_id", sort=False):
        group = group.copy()
        mine = sessions[sessions["participant_id"] == pid]
        first = min([group["submitted_at"].min(), *mine["started_at"].tolist()])
        group["own_hours"] = _hours(group["finished_at"] - first)
        if (group["kind"] == "imported").all():
            # Published results keep their own clock: drawn from the study's start.
            group["calendar_hours"] = group["own_hours"]
        group["active_hours"] = _active_hours_at(group["finished_at"], mine)
        group["compute_hours"] = group["cpu_seconds"].cumsum() / 3600.0
        group["dollars"] = _api_dollars_at(group["finished_at"], usage[
            usage["participant_id"] == pid]) + group["compute_hours"] * gpu_hour_price
        parts.append(group)
    frame = pd.concat(parts) if parts else done.assign(
        own_hours=[], active_hours=[], compute_hours=[], dollars=[])
    for column in COLUMNS:
        if column not in frame:
            frame[column] = None
    return frame[COLUMNS].sort_values(["finished_at", "attempt_id"]).reset_index(drop=True)
