"""The numbers an analyst defends: time to thresholds (censored, and Kaplan–Meier over
participants), area under a curve and rates as of a time, the public-vs-private gap, the
per-attempt interval and a paired comparison of two attempts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from study import scoring


def _horizon(end: float | None, as_of: float | None, xs: pd.Series) -> float:
    """The last x the records speak for: `as_of` (capped at the window's end), else the end,
    else the last x seen."""
    candidates = [v for v in (end, as_of) if v is not None]
    if candidates:
        return float(min(candidates))
    return float(xs.max()) if len(xs) else 0.0


def time_to_threshold(steps: pd.DataFrame, thresholds: list[float], *,
                      as_of: float | None = None, end: float | None = None,
                      value: str = "best", arms: list[str] | None = None) -> pd.DataFrame:
    """Per arm and threshold, the first x at which the step curve (`value` over x, per arm)
    reached it — or, censored, the horizon it was watched to: "not yet" while the window is
    open at `as_of`, "never" once `end` has passed. Arms in `arms` with no steps get censored
    rows too. Columns: arm, threshold, x, censored, status."""
    horizon = _horizon(end, as_of, steps["x"])
    closed = end is not None and horizon >= end
    watched = steps[steps["x"] <= horizon].sort_values(["arm", "x"], kind="stable")
    arms_all = sorted(set(steps["arm"]) | set(arms or []))
    tables = []
    for t in thresholds:
        # One grouped pass per threshold: the first step at or above it, per arm.
        first = watched[watched[value] >= t].groupby("arm", sort=False)["x"].first()
        reached = pd.Series(arms_all).map(first)
        tables.append(pd.DataFrame({
            "arm": arms_all, "threshold": t, "x": reached.fillna(horizon).to_numpy(float),
            "censored": reached.isna().to_numpy(),
            "status": np.where(reached.notna(), "reached", "never" if closed else "not yet")}))
    if not tables:
        return pd.DataFrame(columns=["arm", "threshold", "x", "censored", "status"])
    return (pd.concat(tables, ignore_index=True).sort_values(["arm", "threshold"], kind="stable")
            .reset_index(drop=True))


def kaplan_meier(times: np.ndarray, reached: np.ndarray) -> pd.DataFrame:
    """Product-limit estimate of P(not yet reached) after each event time; `reached` False
    marks a censored time. Columns: x, survival."""
    order = np.lexsort((~reached, times))  # at a tie, events before censorings
    times, reached = times[order], reached[order]
    at_risk, survival, rows = len(times), 1.0, []
    for x in np.unique(times):
        here = times == x
        events = int(reached[here].sum())
        if events:
            survival *= 1 - events / at_risk
            rows.append({"x": float(x), "survival": survival})
        at_risk -= int(here.sum())
    return pd.DataFrame(rows, columns=["x", "survival"])


def km_time_to_threshold(curves: pd.DataFrame, roster: pd.DataFrame, thresholds: list[float],
                         *, as_of: float | None = None, end: float | None = None,
                         exposure: pd.Series | None = None) -> pd.DataFrame:
    """Per arm and threshold, over its participants (each reaching it or censored): n, how
    many reached it, the Kaplan–Meier share reached and the median x to reach it (NaN when
    fewer than half are estimated to have). On calendar hours everyone is censored at the
    common horizon (`as_of`, `end`); on another axis pass `exposure` (participant_id → how far
    along the axis they had got by now, `frames.exposure`): each is censored at their own,
    and one whose exposure is unknown (NaN: no clock, an imported result) is left out and
    counted as `missing`, not put at 0. Columns: arm, threshold, n, reached, missing,
    share_reached, median_x."""
    participant_steps = curves.assign(arm=curves["participant_id"])
    horizon = {} if exposure is not None else {"as_of": as_of, "end": end}
    per_person = time_to_threshold(participant_steps, thresholds, value="value",
                                   arms=list(roster["participant_id"]), **horizon)
    if exposure is not None:
        own = per_person["arm"].map(exposure).astype(float)
        per_person["x"] = per_person["x"].where(~per_person["censored"], own)
    per_person = per_person.merge(roster[["participant_id", "arm"]],
                                  left_on="arm", right_on="participant_id",
                                  suffixes=("_person", ""))
    rows = []
    for (arm, t), group in per_person.groupby(["arm", "threshold"], sort=True):
        known = group[group["x"].notna()]
        km = kaplan_meier(known["x"].to_numpy(float), ~known["censored"].to_numpy(bool))
        below = km[km["survival"] <= 0.5]
        rows.append({"arm": arm, "threshold": t, "n": len(known),
                     "reached": int((~known["censored"]).sum()),
                     "missing": len(group) - len(known),
                     "share_reached": np.nan if known.empty else
                     1 - (float(km["survival"].iloc[-1]) if len(km) else 1.0),
                     "median_x": float(below["x"].iloc[0]) if len(below) else np.nan})
    return pd.DataFrame(rows, columns=["arm", "threshold", "n", "reached", "missing",
                                       "share_reached", "median_x"])


def area_under_frontier(steps: pd.DataFrame, *, end: float, start: float = 0.0,
                        as_of: float | None = None, value: str = "best",
                        arms: list[str] | None = None) -> pd.DataFrame:
    """Per arm, the mean of its step curve over [start, horizon] (0 before its first step),
    where the horizon is `as_of` while the window is open: mid-study, the mean is over the
    hours that have passed, not the whole window."""
    horizon = _horizon(end, as_of, steps["x"])
    rows = []
    for arm in sorted(set(steps["arm"]) | set(arms or [])):
        group = steps[steps["arm"] == arm]
        xs = np.clip(np.append(group["x"].to_numpy(float), horizon), start, horizon)
        area = float(np.sum(group[value].to_numpy(float) * np.diff(xs)))
        rows.append({"arm": arm, "mean_pgr": area / (horizon - start)
                     if horizon > start else np.nan, "over_hours": horizon - start})
    return pd.DataFrame(rows, columns=["arm", "mean_pgr", "over_hours"])


def activity(frame: pd.DataFrame, *, window_hours: float, as_of: float | None = None,
             roster: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per arm: participants, finished attempts, attempts per elapsed hour and per
    participant-hour, and the failure rate. Rates divide by the hours elapsed (`as_of`, at
    most the window), not the whole window; an enrolled arm with no attempt gets a row."""
    elapsed = min(as_of, window_hours) if as_of is not None else window_hours
    enrolled = roster if roster is not None else frame[["participant_id", "arm"]]
    people = pd.concat([enrolled[["participant_id", "arm"]],
                        frame[["participant_id", "arm"]]]).dropna().drop_duplicates()
    by_arm = frame.assign(failed=frame["status"].isin(["failed", "timed_out"])).groupby(
        "arm").agg(attempts=("status", "size"), failed=("failed", "sum"))
    table = people.groupby("arm").size().rename("participants").to_frame().join(
        by_arm, how="left").fillna({"attempts": 0, "failed": 0}).reset_index()
    attempts = table["attempts"].astype(int)
    rate = elapsed if elapsed > 0 else np.nan
    return pd.DataFrame({
        "arm": table["arm"], "participants": table["participants"], "attempts": attempts,
        "elapsed_hours": elapsed, "attempts_per_hour": attempts / rate,
        "attempts_per_participant_hour": attempts / (rate * table["participants"]),
        "failure_rate": (table["failed"] / attempts).where(attempts > 0)})


def public_private_gap(frame: pd.DataFrame) -> pd.DataFrame:
    """Per participant: their best-public attempt's public − private PGR (overfitting to the
    feedback shows as a positive gap), and the mean gap over all their scored attempts."""
    scored = frame[frame["status"].eq("scored") & frame["public_pgr"].notna()
                   & frame["private_pgr"].notna()]
    scored = scored.assign(gap=scored["public_pgr"] - scored["private_pgr"])
    best = scored.loc[scored.groupby("participant_id", sort=True)["public_pgr"].idxmax()]
    return pd.DataFrame({
        "participant_id": best["participant_id"].to_numpy(),
        "display_name": best["display_name"].to_numpy(), "arm": best["arm"].to_numpy(),
        "best_public": best["public_pgr"].to_numpy(), "its_private": best["private_pgr"].to_numpy(),
        "gap_at_best": best["gap"].to_numpy(),
        "mean_gap": best["participant_id"].map(
            scored.groupby("participant_id")["gap"].mean()).to_numpy()})


@dataclass(frozen=True)
class ItemResults:
    """Per-item evidence for one attempt: correctness per seed (seeds × items), and the fixed
    baselines' mean correctness per item."""

    correct: np.ndarray
    weak: np.ndarray
    ceiling: np.ndarray


def pgr_interval(items: ItemResults) -> tuple[float, float]:
    """The study's one per-attempt 95% interval (study.scoring.pgr_interval: items and seeds,
    neither counted twice), on these items; NaNs when it is undefined."""
    interval = scoring.pgr_interval(items.correct, items.weak, items.ceiling)
    return interval if interval is not None else (np.nan, np.nan)


def paired_comparison(a: ItemResults, b: ItemResults) -> dict[str, float]:
    """Is A's program better than B's on the same test items? ("does program X beat program
    Y" — not the arm comparison.) The per-attempt interval's convention on the difference:
    linearised per shared item (paired across both attempts, floor and ceiling), each
    attempt's seed part added once (`scoring.seed_spread`); returns the mean PGR difference,
    its 95% interval and the matching two-sided p-value (NaNs when floor and ceiling
    coincide)."""
    n = a.correct.shape[1]
    if b.correct.shape[1] != n:
        raise ValueError("the two attempts were scored on different test items")
    gap = float(a.ceiling.mean() - a.weak.mean())
    if gap == 0 or n < 2:  # no gap between floor and ceiling: PGR is undefined
        return {"diff": float("nan"), "ci_low": float("nan"), "ci_high": float("nan"),
                "p_value": float("nan")}
    per_a, per_b = a.correct.mean(axis=0), b.correct.mean(axis=0)
    diff = float((per_a.mean() - per_b.mean()) / gap)
    influence = (per_a - per_b - diff * (a.ceiling - a.weak)) / gap
    spreads = [scoring.item_spread(influence), scoring.seed_spread(a.correct, gap),
               scoring.seed_spread(b.correct, gap)]
    low, high = scoring.linear_interval(diff, spreads)
    return {"diff": diff, "ci_low": low, "ci_high": high,
            "p_value": scoring.two_sided_p(diff, spreads)}
