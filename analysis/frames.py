"""Study records → one tidy frame of finished attempts with every time axis an analyst needs.

Inputs are plain DataFrames as the server's Parquet exports give them (attempts, sessions,
usage, dry runs, experiments); nothing here reads a file or the network. Times are hours.
Missing data is said, not zeroed: an axis a participant has no data for is NaN and a
`DataWarning` says why.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd

from analysis.clock import Clock, active_hours_at, clocked_in_at, merge_sessions, stamps

AXES = {
    "calendar_hours": "hours since the study started",
    "own_hours": "hours since the participant's own start",
    "active_hours": "active hours (clocked in)",
    "compute_hours": "cumulative compute hours (GPU on GPU runs, else CPU)",
    "dollars": "cumulative dollars (API + compute + labour)",
}
COLUMNS = ["attempt_id", "participant_id", "display_name", "arm", "kind", "task", "status",
           "submitted_at", "finished_at", "public_pgr", "private_pgr", "cpu_seconds",
           "gpu_seconds", "flagged", "clocked_out", "clock_capped", "note", "code_sha256",
           *AXES]
FINISHED = ("scored", "failed", "timed_out")
# Attempts that ran (and so used compute) without a score: they count on the compute axis.
RAN = (*FINISHED, "cancelled")


class DataWarning(UserWarning):
    """Something in the records leaves an axis or a row undefined; the analysis says so."""


@dataclass(frozen=True)
class Prices:
    """Dollars per hour of each resource, kept apart: a CPU hour is not a GPU hour, and a
    human's active hour is labour the agents' API bill has no counterpart for otherwise."""

    cpu_hour: float = 0.0
    gpu_hour: float = 0.0
    labour_hour: float = 0.0

    @property
    def any(self) -> bool:
        return bool(self.cpu_hour or self.gpu_hour or self.labour_hour)


def _hours(delta: pd.Series) -> pd.Series:
    return delta.dt.total_seconds() / 3600.0


def _cumulative_at(times: np.ndarray, stamps: np.ndarray, amounts: np.ndarray) -> np.ndarray:
    """For each time t, the sum of `amounts` stamped at or before t (stamps sorted)."""
    if len(stamps) == 0:
        return np.zeros(len(times))
    total = np.concatenate([[0.0], np.cumsum(amounts)])
    return total[np.searchsorted(stamps, times, side="right")]


@dataclass(frozen=True)
class _Stamped:
    """A log of stamped amounts (compute used, dollars spent), split by participant once and
    sorted by time, so each participant's lookups are plain numpy."""

    parts: dict[str, tuple[np.ndarray, dict[str, np.ndarray]]]

    @classmethod
    def of(cls, table: pd.DataFrame, stamp: str, columns: list[str]) -> _Stamped:
        times = stamps(table[stamp]) if len(table) else np.array([], dtype="datetime64[us]")
        values = {c: table[c].to_numpy(dtype=float) for c in columns}
        parts = {}
        for pid, rows in table.groupby("participant_id", sort=False).indices.items():
            rows = rows[np.argsort(times[rows], kind="stable")]
            parts[pid] = (times[rows], {c: v[rows] for c, v in values.items()})
        return cls(parts)

    def cumulative(self, pid: str, column: str, times: np.ndarray) -> np.ndarray:
        at, values = self.parts.get(pid, (np.array([], dtype="datetime64[us]"), {}))
        return _cumulative_at(times, at, values.get(column, np.array([])))

    def has(self, pid: str) -> bool:
        return pid in self.parts


def _or_empty(table: pd.DataFrame | None, columns: list[str]) -> pd.DataFrame:
    """The table, or an empty one with the columns when there is none (no export yet)."""
    if table is None or table.empty:
        return pd.DataFrame(columns=columns)
    return table


def _finished(attempts: pd.DataFrame, flags: pd.DataFrame | None) -> pd.DataFrame:
    done = attempts[attempts["status"].isin(FINISHED) & attempts["finished_at"].notna()].copy()
    done = done.rename(columns={"id": "attempt_id", "participant_kind": "kind"})
    if "kind" not in done:
        done["kind"] = None
    flagged_ids = set(flags["attempt_id"]) if flags is not None and len(flags) else set()
    done["flagged"] = done["attempt_id"].isin(flagged_ids)
    for column in ("cpu_seconds", "gpu_seconds"):
        done[column] = done[column].fillna(0.0) if column in done else 0.0
    return done.sort_values(["finished_at", "attempt_id"]).reset_index(drop=True)


def _stamped_runs(runs: pd.DataFrame, started: str) -> pd.DataFrame:
    """Unscored runs as stored (dry runs, experiments: participant_id, `started`, finished_at,
    cpu_seconds) → participant_id, at, cpu_seconds, gpu_seconds, stamped when they ended (or,
    still running or lost, when they began: no seconds were measured, so they add 0)."""
    if runs is None or runs.empty:
        return pd.DataFrame(columns=["participant_id", "at", "cpu_seconds", "gpu_seconds"])
    at = pd.to_datetime(runs[started], utc=True)
    if "finished_at" in runs:
        at = pd.to_datetime(runs["finished_at"], utc=True).fillna(at)
    zeros = pd.Series(0.0, index=runs.index)
    return pd.DataFrame({"participant_id": runs["participant_id"], "at": at,
                         "cpu_seconds": runs.get("cpu_seconds", zeros).astype(float).fillna(0.0),
                         "gpu_seconds": runs.get("gpu_seconds", zeros).astype(float).fillna(0.0)})


def _compute_log(attempts: pd.DataFrame, dry_runs: pd.DataFrame | None,
                 experiments: pd.DataFrame | None) -> pd.DataFrame:
    """Every measured use of compute, stamped when it ended: finished and cancelled attempts,
    dry runs and experiments (participant_id, at, cpu_seconds, gpu_seconds)."""
    ran = attempts[attempts["status"].isin(RAN) & attempts["finished_at"].notna()]
    parts = [pd.DataFrame({
        "participant_id": ran["participant_id"],
        "at": pd.to_datetime(ran["finished_at"], utc=True),
        "cpu_seconds": ran["cpu_seconds"].fillna(0.0) if "cpu_seconds" in ran else 0.0,
        "gpu_seconds": ran["gpu_seconds"].fillna(0.0) if "gpu_seconds" in ran else 0.0}),
        _stamped_runs(dry_runs, "created_at"), _stamped_runs(experiments, "submitted_at")]
    log = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(
        len(p) for p in parts) else parts[0]
    # The compute axis counts what the study charges: GPU time on a GPU run, CPU time on a
    # CPU run (the two are different resources, so they are never added up).
    return log.assign(charged_seconds=log["gpu_seconds"].where(log["gpu_seconds"] > 0,
                                                               log["cpu_seconds"]))


def _participant_axes(out: dict[str, np.ndarray], rows: np.ndarray, *, pid: str,
                      human: bool, clock: Clock, times: dict[str, np.ndarray],
                      compute: _Stamped, spent: _Stamped, prices: Prices) -> None:
    """Fills one participant's rows of the active, compute and dollar axes and clock flags."""
    finished, submitted = times["finished"][rows], times["submitted"][rows]
    made_in = clocked_in_at(submitted, clock)
    out["clocked_out"][rows] = ~made_in & (not clock.empty)
    out["clock_capped"][rows] = clock.capped
    active = active_hours_at(finished, clock)
    out["active_hours"][rows] = np.where(made_in, active, np.nan)
    out["compute_hours"][rows] = compute.cumulative(pid, "charged_seconds", finished) / 3600
    out["dollars"][rows] = _dollars_at(finished, pid=pid, human=human, active=active,
                                       compute=compute, spent=spent, prices=prices)


def _dollars_at(times: np.ndarray, *, pid: str, human: bool, active: np.ndarray,
                compute: _Stamped, spent: _Stamped, prices: Prices) -> np.ndarray:
    """A participant's cumulative dollars at each time: API cost recorded, CPU and GPU hours
    each at its own price, and a human's active hours at the labour price."""
    cpu = compute.cumulative(pid, "cpu_seconds", times) / 3600
    gpu = compute.cumulative(pid, "gpu_seconds", times) / 3600
    labour = active * prices.labour_hour if human and prices.labour_hour else 0.0
    dollars = (spent.cumulative(pid, "cost_usd", times) + cpu * prices.cpu_hour
               + gpu * prices.gpu_hour + labour)
    priced = spent.has(pid) or prices.cpu_hour or prices.gpu_hour or (
        human and prices.labour_hour)
    # No cost record and no price that applies: dollars unknown, not free.
    return dollars if priced else np.full(len(times), np.nan)


def _default_as_of(done: pd.DataFrame, sessions: pd.DataFrame,
                   study_end: pd.Timestamp | None) -> pd.Timestamp:
    """Now — or the latest record, for a replayed log stamped in the future — but never past
    the window's end."""
    seen = pd.to_datetime(pd.concat([done["finished_at"], sessions["started_at"]]), utc=True)
    latest = max(pd.Timestamp.now(tz="UTC"), seen.max()) if seen.notna().any() else \
        pd.Timestamp.now(tz="UTC")
    return min(latest, study_end) if study_end is not None else latest


def _warn_missing(frame: pd.DataFrame, *, late: int, no_clock: list[str]) -> None:
    if late:
        warnings.warn(f"{late} attempt(s) finished after the window's end: excluded",
                      DataWarning, stacklevel=3)
    if no_clock:
        warnings.warn(f"no clock events for {', '.join(sorted(no_clock))}: their active hours "
                      "are unknown (NaN), not zero", DataWarning, stacklevel=3)
    out = frame[frame["clocked_out"].astype(bool)]
    if len(out):
        warnings.warn(f"{len(out)} attempt(s) were submitted while clocked out: excluded from "
                      "the active-hours axis", DataWarning, stacklevel=3)
    capped = frame.loc[frame["clock_capped"].astype(bool), "display_name"].unique()
    if len(capped):
        warnings.warn(f"never-closed clock-ins capped for {', '.join(sorted(capped))}",
                      DataWarning, stacklevel=3)


def attempts_frame(attempts: pd.DataFrame, *, study_start: pd.Timestamp,
                   study_end: pd.Timestamp | None = None, as_of: pd.Timestamp | None = None,
                   sessions: pd.DataFrame | None = None, usage: pd.DataFrame | None = None,
                   flags: pd.DataFrame | None = None, dry_runs: pd.DataFrame | None = None,
                   experiments: pd.DataFrame | None = None, prices: Prices | None = None,
                   gpu_hour_price: float = 0.0, max_open_hours: float = 12.0) -> pd.DataFrame:
    """One row per finished attempt (scored, failed or timed out) up to the window's end, with
    the five x-axes; the compute and dollar axes also count cancelled attempts, dry runs and
    experiments (the server's `dry_runs` and `experiments` records). `as_of` (default: now,
    or the window's end if earlier) caps open clock-ins.
    Warns (`DataWarning`) about every row or axis it had to leave undefined."""
    sessions = _or_empty(sessions, ["participant_id", "started_at", "ended_at"])
    usage = _or_empty(usage, ["participant_id", "recorded_at", "cost_usd"])
    prices = prices or Prices(gpu_hour=gpu_hour_price)
    done = _finished(attempts, flags)
    as_of = as_of or _default_as_of(done, sessions, study_end)
    if "disqualified" in done:
        # A disqualification is an audited decision: the attempt's score no longer counts
        # (its compute still does, through the compute log).
        out = done["disqualified"].fillna(False).astype(bool)
        if out.any():
            warnings.warn(f"{int(out.sum())} disqualified attempt(s) excluded", DataWarning,
                          stacklevel=2)
        done = done[~out]
    late = 0
    if study_end is not None:
        late = int((done["finished_at"] > study_end).sum())
        done = done[done["finished_at"] <= study_end]
    done["calendar_hours"] = _hours(done["finished_at"] - study_start)
    times = {"finished": stamps(done["finished_at"]), "submitted": stamps(done["submitted_at"])}
    out = {"own_hours": np.full(len(done), np.nan), "active_hours": np.full(len(done), np.nan),
           "compute_hours": np.full(len(done), np.nan), "dollars": np.full(len(done), np.nan),
           "clocked_out": np.zeros(len(done), bool), "clock_capped": np.zeros(len(done), bool)}
    compute = _Stamped.of(_compute_log(attempts, dry_runs, experiments), "at",
                          ["cpu_seconds", "gpu_seconds", "charged_seconds"])
    spent = _Stamped.of(usage, "recorded_at", ["cost_usd"])
    session_starts, session_ends = stamps(sessions["started_at"]), stamps(sessions["ended_at"])
    clocks = {pid: (session_starts[at], session_ends[at])
              for pid, at in sessions.groupby("participant_id", sort=False).indices.items()}
    no_clock_start = np.array([], dtype="datetime64[us]")
    cap = np.datetime64(as_of.tz_convert("UTC").tz_localize(None), "us")
    kinds = done["kind"].to_numpy()
    imported = np.zeros(len(done), bool)
    no_clock = []
    for pid, rows in done.groupby("participant_id", sort=False).indices.items():
        starts, ends = clocks.get(pid, (no_clock_start, no_clock_start))
        first = min(times["submitted"][rows].min(), starts.min()) if len(starts) else \
            times["submitted"][rows].min()
        out["own_hours"][rows] = (times["finished"][rows] - first) / np.timedelta64(1, "h")
        if (kinds[rows] == "imported").all():
            # Published results keep their own clock, drawn from the study's start, and
            # have no clock, compute or cost records: those axes are unknown, not zero.
            imported[rows] = True
            continue
        clock = merge_sessions(starts, ends, as_of=cap, max_open_hours=max_open_hours)
        if clock.empty:
            no_clock.append(str(done["display_name"].iloc[rows[0]]))
        _participant_axes(out, rows, pid=pid, human=bool((kinds[rows] == "human").all()),
                          clock=clock, times=times, compute=compute, spent=spent,
                          prices=prices)
    frame = done.assign(**out)
    frame.loc[imported, "calendar_hours"] = frame.loc[imported, "own_hours"]
    for column in COLUMNS:
        if column not in frame:
            frame[column] = None
    frame = frame[COLUMNS].sort_values(["finished_at", "attempt_id"]).reset_index(drop=True)
    _warn_missing(frame, late=late, no_clock=no_clock)
    return frame


def exposure(participants: pd.DataFrame, attempts: pd.DataFrame, *, study_start: pd.Timestamp,
             as_of: pd.Timestamp, sessions: pd.DataFrame | None = None,
             usage: pd.DataFrame | None = None, dry_runs: pd.DataFrame | None = None,
             experiments: pd.DataFrame | None = None, prices: Prices | None = None,
             max_open_hours: float = 12.0) -> pd.DataFrame:
    """How far along each axis each participant (participant_id, kind) had got by `as_of` —
    where a participant who has not reached a threshold is censored on that axis: hours since
    the study's and their own start, active hours clocked, compute used (dry runs and
    experiments too) and dollars spent. NaN where the axis is unknown: no clock events for
    active hours, no price or cost record for dollars, and every axis but calendar hours for
    imported results. Index participant_id, one column per axis, and gpu_hours (the GPU time
    within compute_hours)."""
    sessions = _or_empty(sessions, ["participant_id", "started_at", "ended_at"])
    usage = _or_empty(usage, ["participant_id", "recorded_at", "cost_usd"])
    prices = prices or Prices()
    now = np.array([np.datetime64(as_of.tz_convert("UTC").tz_localize(None), "us")])
    compute = _Stamped.of(_compute_log(attempts, dry_runs, experiments), "at",
                          ["cpu_seconds", "gpu_seconds", "charged_seconds"])
    spent = _Stamped.of(usage, "recorded_at", ["cost_usd"])
    starts, ends = stamps(sessions["started_at"]), stamps(sessions["ended_at"])
    clocks = sessions.groupby("participant_id", sort=False).indices
    submitted = attempts.assign(at=stamps(attempts["submitted_at"])).groupby(
        "participant_id")["at"].min() if len(attempts) else pd.Series(dtype="datetime64[us]")
    calendar = (as_of - study_start).total_seconds() / 3600
    rows = []
    for pid, kind in zip(participants["participant_id"], participants["kind"], strict=True):
        at = clocks.get(pid, np.array([], dtype=int))
        clock = merge_sessions(starts[at], ends[at], as_of=now[0],
                               max_open_hours=max_open_hours)
        firsts = [v for v in (submitted.get(pid), starts[at].min() if len(at) else None)
                  if v is not None and not pd.isna(v)]
        own = (now[0] - min(firsts)) / np.timedelta64(1, "h") if firsts else np.nan
        if kind == "imported":
            rows.append({"participant_id": pid, "calendar_hours": calendar, "own_hours": own})
            continue
        active = active_hours_at(now, clock)
        rows.append({"participant_id": pid, "calendar_hours": calendar, "own_hours": own,
                     "active_hours": float(active[0]),
                     "compute_hours": float(compute.cumulative(pid, "charged_seconds", now)[0])
                     / 3600,
                     "gpu_hours": float(compute.cumulative(pid, "gpu_seconds", now)[0]) / 3600,
                     "dollars": float(_dollars_at(now, pid=pid, human=kind == "human",
                                                  active=active, compute=compute, spent=spent,
                                                  prices=prices)[0])})
    return pd.DataFrame(rows, columns=["participant_id", *AXES, "gpu_hours"]
                        ).set_index("participant_id")
