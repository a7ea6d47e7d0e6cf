"""Interim looks that may be confirmatory: Lan–DeMets alpha spending over the looks the plan
declares, with boundaries from the permutation distribution of the participant endpoints.

Under "no difference between arms" every relabelling of participants is equally likely, and a
participant's whole trajectory moves with their label. So the statistic at every look (the arms'
mean endpoint difference) is computed for every relabelling at once; at look k the boundary is
the largest |difference| threshold that keeps the share of relabellings crossing at or before
look k within α(τ_k), the spending function at the look's information fraction τ_k = t_k / t.
The chance of ever crossing under the null is then at most α however many looks there are and
however the looks correlate — exactly so when every relabelling is enumerated.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.curves import participant_curves, roster_of, unmeasured, values_on_grid
from analysis.endpoint import EXACT_LIMIT, _splits

SPENDING = {
    "obrien_fleming": "Lan–DeMets O'Brien–Fleming-type spending",
    "pocock": "Lan–DeMets Pocock-type spending",
}
TIE = 1e-12  # differences this close count as equal (float sums of the same values)


def alpha_spent(tau: np.ndarray, alpha: float, kind: str) -> np.ndarray:
    """The cumulative α a spending function allows by information fraction τ (0 at 0, α at 1).
    O'Brien–Fleming-type spends almost nothing early; Pocock-type spends evenly in log."""
    tau = np.clip(np.asarray(tau, dtype=float), 0.0, 1.0)
    if kind == "obrien_fleming":
        with np.errstate(divide="ignore"):
            return np.where(tau > 0, 2 * sps.norm.sf(sps.norm.isf(alpha / 2) / np.sqrt(tau)),
                            0.0)
    if kind == "pocock":
        return alpha * np.log1p((math.e - 1) * tau)
    raise ValueError(f"unknown spending function {kind!r}; choose from {sorted(SPENDING)}")


@dataclass(frozen=True)
class Look:
    """One planned look, as the group-sequential test read it."""

    look: int
    t: float
    tau: float
    alpha_spent: float  # cumulative α allowed by this look
    boundary: float  # |mean difference| at or beyond which the look crosses (inf: cannot)
    diff: float  # the observed mean difference, arm a − arm b
    p_value: float  # the look's own (unadjusted) permutation p, for reference only
    crossed: bool

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def _relabellings(n: int, k: int, *, draws: int, seed: int) -> np.ndarray:
    """(relabellings × k): who is in the first arm. Row 0 is the observed labelling
    (participants 0..k−1); all C(n, k) when that is few enough, else a fixed sample."""
    if math.comb(n, k) <= EXACT_LIMIT:
        return _splits(n, k)  # lexicographic: the first is (0, …, k−1), the observed split
    rng = np.random.default_rng(seed)
    return np.vstack([np.arange(k), np.argsort(rng.random((draws, n)), axis=1)[:, :k]])


def _differences(values: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """(relabellings × looks) of the first arm's mean minus the second's, NaN values (a
    participant missing at a look) left out of their arm's mean."""
    seen = ~np.isnan(values)
    filled = np.where(seen, values, 0.0)
    # Sums by gathering the picked rows (no BLAS call: its threads spin on a busy machine).
    sums_a, count_a = filled[picks].sum(axis=1), seen[picks].sum(axis=1)
    sums_b, count_b = filled.sum(0) - sums_a, seen.sum(0) - count_a
    with np.errstate(divide="ignore", invalid="ignore"):
        return sums_a / count_a - sums_b / count_b


def sequential_test(values_a: np.ndarray, values_b: np.ndarray, looks: list[float], t: float,
                    *, alpha: float, spending: str, draws: int = 20_000, seed: int = 0
                    ) -> list[Look]:
    """The group-sequential permutation test: (participants × looks) endpoint values of the
    two arms at `looks` (increasing, the last at most t), one Look each. A look crosses when
    no earlier one did and the observed |difference| reaches its boundary."""
    values = np.vstack([values_a, values_b])
    picks = _relabellings(len(values), len(values_a), draws=draws, seed=seed)
    signed = _differences(values, picks)
    # An arm with no one measured at a look: no evidence there, for any relabelling.
    diffs = np.where(np.isnan(signed), -np.inf, np.abs(signed))
    p_values = np.mean(diffs >= diffs[0] - TIE, axis=0)
    taus = np.asarray(looks, dtype=float) / t
    spent = alpha_spent(taus, alpha, spending)
    total = len(picks)
    alive = np.ones(total, dtype=bool)
    out, stopped = [], False
    for i, look_t in enumerate(looks):
        column = diffs[:, i]
        budget = math.floor(spent[i] * total + 1e-9) - (total - int(alive.sum()))
        boundary = _boundary(column[alive], budget)
        crossed = bool(not stopped and column[0] >= boundary - TIE)
        stopped = stopped or crossed
        alive &= column < boundary - TIE
        out.append(Look(look=i + 1, t=float(look_t), tau=float(taus[i]),
                        alpha_spent=float(spent[i]), boundary=boundary,
                        diff=float(signed[0, i]), p_value=float(p_values[i]), crossed=crossed))
    return out


def _boundary(alive: np.ndarray, budget: int) -> float:
    """The smallest threshold on |difference| that at most `budget` of the relabellings still
    alive reach (tied values reach together); inf when none may."""
    values = np.sort(alive[np.isfinite(alive)])
    if budget < 1 or len(values) == 0:
        return math.inf
    candidates = np.unique(values)
    reaching = len(values) - np.searchsorted(values, candidates - TIE, side="left")
    allowed = candidates[reaching <= budget]
    return float(allowed.min()) if len(allowed) else math.inf


def endpoint_matrix(frame: pd.DataFrame, participants: pd.DataFrame, looks: list[float], *,
                    axis: str, endpoint: str, no_attempt: str) -> pd.DataFrame:
    """Each enrolled participant's endpoint at every look (as `participant_endpoint` reads
    it at each t): index participant_id, an `arm` column, one column per look."""
    roster = roster_of(frame, participants)
    ids = roster["participant_id"].tolist()
    curves = participant_curves(frame, x=axis, endpoint=endpoint)
    grid = np.asarray(looks, dtype=float)
    values = values_on_grid(curves, ids, grid, floor=0.0 if no_attempt == "floor" else None)
    missing = roster["participant_id"].isin(unmeasured(frame, axis)).to_numpy()
    values[missing] = np.nan
    return pd.DataFrame(values, index=pd.Index(ids, name="participant_id"),
                        columns=list(grid)).assign(arm=roster["arm"].to_numpy())


def reached_looks(interim: list[float], t: float, as_of: float, closed: bool) -> list[float]:
    """The planned looks read by `as_of`: the interim ones passed, and t itself once the
    window has closed (or t has passed)."""
    planned = [x for x in interim if x < t] + [t]
    return [x for x in planned if x <= as_of or (closed and x == t)]


def read_looks(frame: pd.DataFrame, roster: pd.DataFrame, arms: list[str], looks: list[float],
               t: float, *, endpoint: str, no_attempt: str, alpha: float, spending: str
               ) -> list[Look]:
    """The group-sequential test of the plan's two arms at the looks reached so far."""
    if not looks or len(arms) < 2:
        return []
    values = endpoint_matrix(frame, roster, looks, axis="calendar_hours", endpoint=endpoint,
                             no_attempt=no_attempt)
    grid = values.drop(columns="arm").to_numpy(float)
    in_a, in_b = values["arm"].eq(arms[0]).to_numpy(), values["arm"].eq(arms[1]).to_numpy()
    if not in_a.any() or not in_b.any():
        return []
    return sequential_test(grid[in_a], grid[in_b], looks, t, alpha=alpha, spending=spending)


def look_sentence(looks: list[Look], arms: list[str], spending: str, planned: int) -> str:
    """What the latest look says, for the report's first lines."""
    last = looks[-1]
    head = (f"Look {last.look} of {planned} (t = {last.t:.4g} h, τ = {last.tau:.2f}; "
            f"{SPENDING[spending]}, α spent by now {last.alpha_spent:.3g}). ")
    crossed = next((look for look in looks if look.crossed), None)
    if crossed is not None:
        leader = arms[0] if crossed.diff > 0 else arms[1]
        return head + (f"The boundary was crossed at look {crossed.look} (t = {crossed.t:.4g} "
                       f"h): {arms[0]} − {arms[1]} = {crossed.diff:+.3f} ≥ "
                       f"{crossed.boundary:.3f} in size — {leader} is ahead, confirmatory; "
                       "the test stopped there.")
    bound = "no crossing possible yet" if math.isinf(last.boundary) else \
        f"boundary {last.boundary:.3f}"
    return head + (f"{arms[0]} − {arms[1]} = {last.diff:+.3f} ({bound}): not crossed — "
                   + ("no difference shown." if last.tau >= 1 else "the study goes on."))
