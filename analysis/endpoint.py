"""The study's question — does arm A reach a higher PGR than arm B by time t? — answered with
the participant as the unit: one endpoint value per participant, two arms compared by an exact
permutation test (or a pooled t-test), with the smallest p the design allows and the
difference it could detect."""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats as sps

from analysis.curves import participant_curves, roster_of, unmeasured

# Beyond this many splits the permutation distribution is sampled, not enumerated.
EXACT_LIMIT = 200_000


def participant_endpoint(frame: pd.DataFrame, *, t: float, axis: str,
                         endpoint: str = "private_at_best_public",
                         participants: pd.DataFrame | None = None,
                         no_attempt: str = "floor") -> pd.DataFrame:
    """Each enrolled participant's endpoint at x = t on `axis`. Columns: participant_id,
    display_name, arm, value, scored (had a scored attempt by t), attempts (finished by t).
    A participant with no scored attempt by t gets the weak floor (PGR 0) with
    `no_attempt="floor"`, or NaN with "exclude"."""
    if no_attempt not in ("floor", "exclude"):
        raise ValueError(f"no_attempt must be 'floor' or 'exclude', not {no_attempt!r}")
    roster = roster_of(frame, participants)
    curves = participant_curves(frame, x=axis, endpoint=endpoint)
    # Curves are sorted by x within a participant: the last step at or before t holds.
    held = curves[curves["x"] <= t].groupby("participant_id", sort=False)["value"].last()
    raw = roster["participant_id"].map(held).to_numpy(float)
    by_t = frame[frame[axis] <= t].groupby("participant_id").size()
    # No scored attempt by t: the floor (or excluded). No data on this axis at all: missing.
    floor = np.where(roster["participant_id"].isin(unmeasured(frame, axis)), np.nan,
                     0.0 if no_attempt == "floor" else np.nan)
    return roster.assign(
        value=np.where(np.isnan(raw), floor, raw),
        scored=~np.isnan(raw),
        attempts=roster["participant_id"].map(by_t).fillna(0).astype(int).to_numpy()
    ).reset_index(drop=True)


@dataclass(frozen=True)
class ArmTest:
    """A two-arm comparison of participant endpoints."""

    arm_a: str
    arm_b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    diff: float  # mean_a − mean_b
    ci_low: float  # pooled-t 95% interval of the difference (NaN below 2 + 2 participants)
    ci_high: float
    p_value: float
    test: str
    smallest_p: float  # the smallest p this design can give, whatever the data
    detectable: float  # the difference detectable at 80% power, given the observed spread

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


def smallest_p(n_a: int, n_b: int) -> float:
    """The design's floor on a two-sided permutation p: one split in C(n, n_a) is the observed
    one (two when the arms are the same size: the mirror split ties it)."""
    splits = math.comb(n_a + n_b, n_a)
    return min(1.0, (2 if n_a == n_b else 1) / splits)


@functools.lru_cache(maxsize=16)
def _splits(n: int, k: int) -> np.ndarray:
    """Every way to pick the first arm's k of n pooled participants (cached: a simulation
    asks for the same design many times)."""
    return np.array(list(itertools.combinations(range(n), k)), dtype=np.intp)


def permutation_p(a: np.ndarray, b: np.ndarray, *, draws: int = 20_000, seed: int = 0
                  ) -> float:
    """Two-sided p of the difference in means: exact over every split of the pooled values
    into arms of the observed sizes, or sampled (with the observed split counted) beyond
    EXACT_LIMIT splits."""
    pooled = np.concatenate([a, b])
    n, k = len(pooled), len(a)
    observed = abs(a.mean() - b.mean())
    total = pooled.sum()
    if math.comb(n, k) <= EXACT_LIMIT:
        sums = pooled[_splits(n, k)].sum(axis=1)
        extreme = np.sum(np.abs(sums / k - (total - sums) / (n - k)) >= observed - 1e-12)
        return float(extreme / len(sums))
    rng = np.random.default_rng(seed)
    picks = np.argsort(rng.random((draws, n)), axis=1)[:, :k]
    sums = pooled[picks].sum(axis=1)
    extreme = np.sum(np.abs(sums / k - (total - sums) / (n - k)) >= observed - 1e-12)
    return float((extreme + 1) / (draws + 1))


def pooled_sd(a: np.ndarray, b: np.ndarray) -> float:
    df = len(a) + len(b) - 2
    if df < 1:
        return math.nan
    ss = ((a - a.mean()) ** 2).sum() + ((b - b.mean()) ** 2).sum()
    return math.sqrt(ss / df)


def detectable_difference(sd: float, n_a: int, n_b: int, *, alpha: float = 0.05,
                          power: float = 0.8) -> float:
    """The true arm difference a two-sided pooled t-test at `alpha` detects with `power`,
    given the spread between participants; inf when the design cannot reach `alpha` at all."""
    df = n_a + n_b - 2
    if df < 1 or not math.isfinite(sd) or smallest_p(n_a, n_b) > alpha:
        return math.inf
    quantiles = sps.t.ppf(1 - alpha / 2, df) + sps.t.ppf(power, df)
    return float(quantiles * sd * math.sqrt(1 / n_a + 1 / n_b))


def compare_arms(values: pd.DataFrame, arm_a: str, arm_b: str, *, test: str = "permutation",
                 alpha: float = 0.05) -> ArmTest:
    """Participant endpoints (`participant_endpoint`'s frame) of two arms, compared."""
    a = values.loc[values["arm"].eq(arm_a), "value"].dropna().to_numpy(float)
    b = values.loc[values["arm"].eq(arm_b), "value"].dropna().to_numpy(float)
    if len(a) == 0 or len(b) == 0:
        raise ValueError(f"cannot compare {arm_a!r} ({len(a)} participants) with {arm_b!r} "
                         f"({len(b)} participants)")
    sd = pooled_sd(a, b)
    diff = float(a.mean() - b.mean())
    half = math.nan
    if len(a) + len(b) > 2 and math.isfinite(sd):
        half = float(sps.t.ppf(0.975, len(a) + len(b) - 2) * sd
                     * math.sqrt(1 / len(a) + 1 / len(b)))
    if test == "permutation":
        p = permutation_p(a, b)
    elif test == "pooled_t":
        p = float(sps.ttest_ind(a, b, equal_var=True).pvalue) if len(a) + len(b) > 2 \
            else 1.0
        p = 1.0 if math.isnan(p) else p  # no spread at all: no evidence either way
    else:
        raise ValueError(f"unknown test {test!r}; choose permutation or pooled_t")
    return ArmTest(arm_a=arm_a, arm_b=arm_b, n_a=len(a), n_b=len(b),
                   mean_a=float(a.mean()), mean_b=float(b.mean()), diff=diff,
                   ci_low=diff - half, ci_high=diff + half, p_value=p, test=test,
                   smallest_p=smallest_p(len(a), len(b)),
                   detectable=detectable_difference(sd, len(a), len(b), alpha=alpha))


def designer_line(result: ArmTest, *, alpha: float) -> str:
    """One sentence an analyst (or the next study's designer) reads first."""
    sizes = f"{result.n_a} {result.arm_a} and {result.n_b} {result.arm_b} participants"
    floor = f"the smallest p this design allows is {result.smallest_p:.3g}"
    if not math.isfinite(result.detectable):
        return (f"With {sizes}, {floor}, above α = {alpha:g}: no difference, however large, "
                "can be significant. Enrol more participants.")
    return (f"With {sizes} and the observed spread between participants, this study can "
            f"detect an arm difference of {result.detectable:.3f} PGR at 80% power "
            f"(α = {alpha:g}, two-sided); {floor}.")
