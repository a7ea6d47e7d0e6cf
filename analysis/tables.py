"""Tables with the participant as the row: each participant's endpoint, thresholds (with
censoring), attempts, compute, cost and clock compliance; and the arms compared on matched
terms (best of k with k equal across arms, and at equal compute per participant)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.curves import expected_best_of_k, participant_curves
from analysis.endpoint import participant_endpoint
from analysis.stats import time_to_threshold


def participant_table(frame: pd.DataFrame, roster: pd.DataFrame, *, t: float, axis: str,
                      endpoint: str, thresholds: list[float], as_of: float | None = None,
                      end: float | None = None, used: pd.DataFrame | None = None
                      ) -> pd.DataFrame:
    """One row per enrolled participant. Threshold columns hold the x at which the
    participant's curve reached it, or the horizon with `censored` when it had not. Compute
    and dollars are what each had used by now when `used` (`frames.exposure`) is given — dry
    runs, experiments and runs after their last finished attempt included — else the most
    any of their finished attempts carries."""
    values = participant_endpoint(frame, t=t, axis=axis, endpoint=endpoint,
                                  participants=roster, no_attempt="exclude")
    curves = participant_curves(frame, x=axis, endpoint=endpoint)
    reached = time_to_threshold(curves.assign(arm=curves["participant_id"]), thresholds,
                                as_of=as_of, end=end, value="value",
                                arms=list(roster["participant_id"]))
    wide = reached.pivot(index="arm", columns="threshold", values="x")
    wide.columns = [f"pgr≥{c:g}" for c in wide.columns]
    censored = reached.pivot(index="arm", columns="threshold", values="censored")
    censored.columns = [f"pgr≥{c:g} censored" for c in censored.columns]
    mine = frame.groupby("participant_id")
    table = values.rename(columns={"value": "endpoint"}).assign(
        failed=values["participant_id"].map(
            mine["status"].apply(lambda s: int(s.isin(["failed", "timed_out"]).sum())))
        .fillna(0).astype(int),
        compute_hours=values["participant_id"].map(
            mine["compute_hours"].max() if used is None else used["compute_hours"]),
        dollars=values["participant_id"].map(
            mine["dollars"].max() if used is None else used["dollars"]),
        clock_events=values["participant_id"].map(
            mine["active_hours"].apply(lambda s: bool(s.notna().any()))).fillna(False),
        clocked_out_attempts=values["participant_id"].map(mine["clocked_out"].sum())
        .fillna(0).astype(int),
        clock_capped=values["participant_id"].map(mine["clock_capped"].any()).fillna(False))
    gpu = (used["gpu_hours"] if used is not None and "gpu_hours" in used
           else mine["gpu_seconds"].sum() / 3600 if "gpu_seconds" in frame else None)
    if gpu is not None and (gpu.fillna(0.0) > 0).any():  # a GPU study: its GPU-hours by name
        table = table.assign(gpu_hours=values["participant_id"].map(gpu))
    return (table.merge(wide, left_on="participant_id", right_index=True, how="left")
            .merge(censored, left_on="participant_id", right_index=True, how="left"))


def _compute_budget(frame: pd.DataFrame, roster: pd.DataFrame, arms: list[str], *,
                    t: float, axis: str) -> float:
    """The compute every arm's median participant had used by t: the smallest of the arms'
    medians (a participant with no attempt used none)."""
    used = frame[frame[axis] <= t].groupby("participant_id")["compute_hours"].max()
    medians = [float(np.nanmedian(roster.loc[roster["arm"] == arm, "participant_id"]
                                  .map(used).fillna(0.0).to_numpy(float)))
               for arm in arms if (roster["arm"] == arm).any()]
    return min(medians) if medians else np.nan


def matched_comparison(frame: pd.DataFrame, roster: pd.DataFrame, arms: list[str], *,
                       t: float, axis: str, endpoint: str) -> pd.DataFrame:
    """Per arm at t: n, the median and mean participant endpoint, the best in the arm (grows
    with n), the expected best of k participants with k the smallest arm's size (what the
    best-in-arm would be at equal sizes), and the median endpoint at equal compute per
    participant (on the compute axis, at the budget every arm's median participant used)."""
    values = participant_endpoint(frame, t=t, axis=axis, endpoint=endpoint,
                                  participants=roster)
    sizes = values.groupby("arm").size()
    k = int(sizes.loc[[a for a in arms if a in sizes.index]].min()) if len(sizes) else 0
    budget = _compute_budget(frame, roster, arms, t=t, axis=axis)
    matched = participant_endpoint(frame[frame[axis] <= t], t=budget, axis="compute_hours",
                                   endpoint=endpoint, participants=roster) \
        if np.isfinite(budget) else values.assign(value=np.nan)
    rows = []
    for arm in arms:
        mine = values.loc[values["arm"] == arm, "value"].to_numpy(float)
        if len(mine) == 0:
            rows.append({"arm": arm, "n": 0})
            continue
        rows.append({
            "arm": arm, "n": len(mine), "median": float(np.median(mine)),
            "mean": float(mine.mean()), "best_in_arm": float(mine.max()), "k": k,
            "best_of_k": float(expected_best_of_k(mine[:, None], k)[0]) if k else np.nan,
            "compute_budget_hours": budget,
            "median_at_budget": float(np.nanmedian(
                matched.loc[matched["arm"] == arm, "value"].to_numpy(float)))})
    return pd.DataFrame(rows)


def thresholds_wide(long: pd.DataFrame) -> pd.DataFrame:
    """`time_to_threshold`'s long table as one row per arm and a readable "pgr≥t" column per
    threshold: the hour reached, or why not ("not yet by 50.0", "never", "no data")."""
    def cell(row: pd.Series) -> str:
        if row["status"] == "reached":
            return f"{row['x']:.1f}"
        if row["status"] == "no data":
            return "no data"
        return f"{row['status']} by {row['x']:.1f}"

    if long.empty:
        return pd.DataFrame(columns=["arm"])
    shown = long.assign(cell=long.apply(cell, axis=1),
                        column=[f"pgr≥{t:g}" for t in long["threshold"]])
    return shown.pivot(index="arm", columns="column", values="cell").reset_index()


def best_per_task(frame: pd.DataFrame) -> pd.DataFrame:
    """Per participant and task: scored attempts, the best public score and its attempt's
    private score — for results read on another task than the study's endpoint."""
    scored = frame[frame["status"].eq("scored") & frame["public_pgr"].notna()]
    if scored.empty:
        return pd.DataFrame(columns=["task", "display_name", "arm", "attempts", "best_public",
                                     "its_private"])
    best = scored.loc[scored.groupby(["participant_id", "task"])["public_pgr"].idxmax()]
    counts = scored.groupby(["participant_id", "task"]).size()
    return pd.DataFrame({
        "task": best["task"].to_numpy(), "display_name": best["display_name"].to_numpy(),
        "arm": best["arm"].to_numpy(),
        "attempts": [int(counts[(p, t)]) for p, t in zip(best["participant_id"], best["task"],
                                                         strict=True)],
        "best_public": best["public_pgr"].to_numpy(),
        "its_private": best["private_pgr"].to_numpy()}).sort_values(["task", "display_name"])
