"""`arena tasks audit TASK`: is this task an instrument that measures weak-to-strong progress?

From cached features, in minutes on two cores: the floor and ceiling with intervals; the 95%
interval half-width of a method's PGR (vanilla over the protocol's 5 seeds); what copying the
teacher scores; a teacher-free suite (first principal component, k-means, a probe along
label-name prompt directions, the shipped `zero_shot.py`); a bounded hyper-parameter sweep of
every shipped baseline; the permuted-teacher ablation of the best; and a verdict against the
criteria in docs/tasks.md. Methods run in this process on the same bundle a sandboxed method
reads (speed: hundreds of runs), through the same `run(ctx)` and the same scorer.
"""

from __future__ import annotations

import importlib.util
import itertools
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import numpy as np

from runner import lib as w2s_lib
from runner.attempt import score_attempt
from runner.bundle import write_bundle
from runner.method.context import Context
from runner.models import load_encoder
from runner.teacher import FixedBaselines, ModelPair, fixed_baselines, teacher_index
from study.scoring import Z95, correct, linear_interval, pgr_spread, validate_predictions
from study.tasks import Task, TaskRole

REPO = Path(__file__).resolve().parent.parent
AUDIT_SEEDS = (101, 202, 303, 404, 505)  # five seeds, as the default protocol runs
SWEEP_SEEDS = AUDIT_SEEDS[:3]
# The interval a 5-seed attempt shows is itself noisy (its seed part has 4 degrees of freedom),
# so the half-width criterion reads its mean over four disjoint 5-seed attempts of vanilla.
INTERVAL_SEEDS = AUDIT_SEEDS + tuple(range(1001, 1016))
# Ten or more phrasings per label name: a prompt ensemble, as a teacher-free researcher would.
PHRASINGS = ("This is {}.", "It is {}.", "{}", "The answer: {}.", "Label: {}.", "Verdict: {}.",
             "Overall, {}.", "In short, {}.", "This one is {}.", "Category: {}.", "Clearly {}.",
             "A {} example.")

# Bounded sweeps: each shipped baseline's constants, crossed with the head's epochs.
SWEEPS: dict[str, dict[str, tuple]] = {
    "vanilla": {},
    "confident": {"KEEP": (0.3, 0.5, 0.7)},
    "logconf": {"ALPHA": (0.5, 0.75, 1.0), "WARMUP": (0.05, 0.2)},
    "bootstrap": {"ROUNDS": (1, 3), "BETA": (0.5, 0.8)},
    "zero_shot": {"QUANTILE": (0.1, 0.25)},
}
HEAD_EPOCHS = (20, 60)
TEACHER_FREE_BASELINES = ("zero_shot",)


@dataclass(frozen=True)
class Criterion:
    name: str
    value: float | None
    low: float | None
    high: float | None

    @property
    def passed(self) -> bool:
        if self.value is None:
            return False
        return bool((self.low is None or self.value >= self.low)
                    and (self.high is None or self.value <= self.high))

    @property
    def miss(self) -> float:
        """How far outside its bounds the value lies (0 when it passes)."""
        if self.value is None:
            return float("inf")
        below = 0.0 if self.low is None else max(0.0, self.low - self.value)
        above = 0.0 if self.high is None else max(0.0, self.value - self.high)
        return below + above


# (name, low, high) per role; values are read from the report by `criteria_values`.
HILL_CLIMB = (("gap", 0.08, None), ("half_width", None, 0.10), ("copy_teacher", -0.02, 0.02),
              ("vanilla", 0.10, 0.35), ("teacher_free_best", None, 0.35),
              ("tuned_best", None, 0.60))
HELD_OUT = (("gap", 0.05, None), ("half_width", None, 0.15), ("floor_over_chance", 0.02, None),
            ("best_beats_teacher", 0.0, None))


@dataclass
class MethodScore:
    name: str
    config: dict[str, Any]
    pgr: float | None
    public: float | None
    ci95: tuple[float, float] | None
    per_seed: list[float] = field(default_factory=list)

    def row(self) -> dict[str, Any]:
        return {"name": self.name, "config": self.config, "pgr": self.pgr,
                "public_pgr": self.public, "ci95": self.ci95, "pgr_per_seed": self.per_seed}


class Runner:
    """Runs `run(ctx)`-style methods in process on per-teacher bundles and scores them."""

    def __init__(self, task: Task, pair: ModelPair, baselines: FixedBaselines) -> None:
        self.task, self.pair, self.baselines = task, pair, baselines
        self.scratch = Path(tempfile.mkdtemp(prefix="audit-"))
        self._encoders: dict[str, Any] = {}  # ctx.embed's encoders, loaded once for all runs

    def context(self, seed: int, *, permute: int | None = None,
                head_epochs: int | None = None) -> Context:
        bundle = write_bundle(self.task, self.pair, self.baselines,
                              teacher=teacher_index(seed, len(self.baselines.seeds)),
                              permute_seed=permute)
        ctx = Context({"bundle": str(bundle), "seed": seed, "scratch": str(self.scratch),
                       "budget": {}})
        if head_epochs is not None:
            ctx.lib = SimpleNamespace(**{n: getattr(w2s_lib, n) for n in w2s_lib.__all__})
            ctx.lib.train_head = partial(w2s_lib.train_head, epochs=head_epochs)
        # In process the frozen encoders can be shared: a sandboxed seed loads its own.
        ctx._cache.update(self._encoders)
        return ctx

    def _keep_encoders(self, ctx: Context) -> None:
        self._encoders.update({k: v for k, v in ctx._cache.items() if k.startswith("encoder:")})

    def predictions(self, method: Callable[[Context], Any], seeds: tuple[int, ...], *,
                    permute: int | None = None, head_epochs: int | None = None
                    ) -> list[np.ndarray]:
        n = self.task.info.sizes["test"]
        probs = []
        for seed in seeds:
            ctx = self.context(seed, permute=permute, head_epochs=head_epochs)
            probs.append(validate_predictions(method(ctx), n))
            self._keep_encoders(ctx)
        return probs

    def score(self, name: str, method: Callable[[Context], Any], config: dict[str, Any], *,
              seeds: tuple[int, ...] = AUDIT_SEEDS, permute: int | None = None,
              head_epochs: int | None = None) -> MethodScore:
        probs = self.predictions(method, seeds, permute=permute, head_epochs=head_epochs)
        scores = score_attempt(self.task, self.baselines, probs, public_fraction=0.5,
                               salt="task-audit")  # an analysts' check: no secret needed
        whole, public = scores["all"], scores.get("public")
        return MethodScore(name, config, whole.pgr, public.pgr if public else None,
                           whole.pgr_ci95, whole.pgr_per_seed)


def load_baseline(name: str, overrides: dict[str, Any]) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"audit_{name}", REPO / "baselines" /
                                                  f"{name}.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    for key, value in overrides.items():
        setattr(module, key, value)
    return module


def sweep(runner: Runner, name: str) -> list[MethodScore]:
    grid = SWEEPS[name]
    keys = list(grid)
    epochs = (None,) if name in TEACHER_FREE_BASELINES else HEAD_EPOCHS
    out = []
    for values in itertools.product(*(grid[k] for k in keys)):
        module = load_baseline(name, dict(zip(keys, values, strict=True)))
        for e in epochs:
            config = {**dict(zip(keys, values, strict=True)),
                      **({} if e is None else {"epochs": e})}
            out.append(runner.score(name, module.run, config, seeds=SWEEP_SEEDS, head_epochs=e))
    return out


# teacher-free methods (never read ctx.weak_soft_labels) ----------------------------------------
def _unit(scores: np.ndarray, ref: np.ndarray) -> np.ndarray:
    spread = ref.std() + 1e-9
    return w2s_lib.sigmoid(2.0 * (scores - np.median(ref)) / spread)


def first_component(ctx: Context, sign: float = 1.0) -> np.ndarray:
    X = ctx.strong_features("train")
    mean = X.mean(0)
    direction = np.linalg.svd(X - mean, full_matrices=False)[2][0] * sign
    return _unit((ctx.strong_features("test") - mean) @ direction, (X - mean) @ direction)


def two_means(ctx: Context, sign: float = 1.0) -> np.ndarray:
    """k-means with k = 2 (Lloyd, initialised at the extremes of the first component)."""
    X = ctx.strong_features("train")
    mean = X.mean(0)
    pc = np.linalg.svd(X - mean, full_matrices=False)[2][0]
    proj = (X - mean) @ pc
    centres = np.stack([X[proj.argmin()], X[proj.argmax()]])
    for _ in range(50):
        assign = ((X[:, None, :] - centres[None]) ** 2).sum(-1).argmin(1)
        new = np.stack([X[assign == k].mean(0) if (assign == k).any() else centres[k]
                        for k in (0, 1)])
        if np.allclose(new, centres):
            break
        centres = new
    direction = (centres[1] - centres[0]) * sign
    return _unit(ctx.strong_features("test") @ direction, X @ direction)


def prompt_direction(directions: dict[str, np.ndarray], ctx: Context) -> np.ndarray:
    """Along mean(embeddings of label-1 phrasings) − mean(label-0 phrasings), thresholded at
    the median of `train` (no class prior known)."""
    X = ctx.strong_features("train")
    d = directions["one"] - directions["zero"]
    return _unit(ctx.strong_features("test") @ d, X @ d)


def prompt_nearest(directions: dict[str, np.ndarray], ctx: Context) -> np.ndarray:
    """The nearer of the two label centroids (zero-shot classification, no threshold to fit)."""
    zero, one = directions["zero"], directions["one"]
    d = one - zero
    offset = (one @ one - zero @ zero) / 2
    spread = (ctx.strong_features("train") @ d).std() + 1e-9
    return w2s_lib.sigmoid(2.0 * (ctx.strong_features("test") @ d - offset) / spread)


def label_directions(pair: ModelPair, task: Task) -> dict[str, np.ndarray]:
    encoder = load_encoder(pair.strong)
    embs = [np.asarray(encoder.embed([p.format(name) for p in PHRASINGS])).mean(0)
            for name in task.info.label_names]
    return {"zero": embs[0], "one": embs[1]}


def teacher_free(runner: Runner) -> list[MethodScore]:
    """Unsupervised methods have no label to orient them: each is scored with both signs and
    the better kept, an upper bound on what a researcher could pick by reading a few items."""
    out = []
    dirs = label_directions(runner.pair, runner.task)
    for name, method in (("first_component", first_component), ("kmeans_2", two_means)):
        both = [runner.score(name, partial(method, sign=s), {"sign": s}) for s in (1.0, -1.0)]
        out.append(max(both, key=lambda m: -np.inf if m.pgr is None else m.pgr))
    for name, method in (("prompt_direction", prompt_direction),
                         ("prompt_nearest", prompt_nearest)):
        out.append(runner.score(name, partial(method, dirs), {"phrasings": len(PHRASINGS)}))
    out += sweep(runner, "zero_shot")
    return out


# floor, ceiling, copying the teacher ---------------------------------------------------------
def _interval(per_item: np.ndarray, draws: int = 2000) -> tuple[float, float]:
    idx = np.random.default_rng(0).integers(0, len(per_item), size=(draws, len(per_item)))
    means = per_item[idx].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def per_item_baselines(task: Task, baselines: FixedBaselines
                       ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gold test labels, and per test item the floor's and the ceiling's mean correctness
    over their seeds."""
    y = np.array(task.labels("test"))
    weak = np.stack([correct(p, y) for p in baselines.weak_test_probs()]).mean(0)
    ceiling = np.stack([correct(p, y) for p in baselines.ceiling_test_probs()]).mean(0)
    return y, weak, ceiling


def fixed_figures(task: Task, baselines: FixedBaselines) -> dict[str, Any]:
    y, weak, ceiling = per_item_baselines(task, baselines)
    majority = float(max(y.mean(), 1 - y.mean()))
    return {"floor": baselines.weak_mean, "floor_ci95": _interval(weak),
            "ceiling": baselines.ceiling_mean, "ceiling_ci95": _interval(ceiling),
            "gap": baselines.ceiling_mean - baselines.weak_mean, "majority_class": majority,
            "share_label_1": float(y.mean()), "test_items": len(y)}


def interval_widths(runner: Runner, method: Callable[[Context], Any],
                    seeds: tuple[int, ...] = INTERVAL_SEEDS,
                    block: int = len(AUDIT_SEEDS)) -> dict[str, Any]:
    """How wide the interval of a `block`-seed attempt is, over disjoint blocks of `seeds`:
    the whole interval (items and seeds, as every score is shown) and its test-item part
    alone (what a test-bootstrap measures: the split's own resolution)."""
    y, weak, ceiling = per_item_baselines(runner.task, runner.baselines)
    w2s = np.stack([correct(p, y) for p in runner.predictions(method, seeds)])
    whole, items = [], []
    for start in range(0, len(seeds) - block + 1, block):
        spread = pgr_spread(w2s[start:start + block], weak, ceiling)
        if spread is None:
            continue
        lo, hi = linear_interval(*spread)
        whole.append((hi - lo) / 2)
        items.append(Z95 * np.sqrt(max(0.0, sum(s.items for s in spread[1]))))
    gap = float(ceiling.mean() - weak.mean())
    per_seed = (w2s.mean(1) - weak.mean()) / gap if gap else None  # no gap, no PGR
    return {"seeds": len(seeds), "block": block, "half_widths": whole,
            "half_width": float(np.mean(whole)) if whole else None,
            "items_half_width": float(np.mean(items)) if items else None,
            "pgr_sd_between_seeds": None if per_seed is None else float(per_seed.std(ddof=1))}


def copy_teacher(task: Task, baselines: FixedBaselines) -> dict[str, float]:
    """Each seed returns its own teacher's test predictions: the PGR of that, over all 16
    teachers (its expectation), and the spread one 5-seed attempt of it would show."""
    y = np.array(task.labels("test"))
    acc = np.array([correct(p, y).mean() for p in baselines.weak_test_probs()])
    per_teacher = (acc - baselines.weak_mean) / (baselines.ceiling_mean - baselines.weak_mean)
    return {"expected_pgr": float(per_teacher.mean()),
            "sd_of_a_5_seed_attempt": float(per_teacher.std(ddof=1) / np.sqrt(len(AUDIT_SEEDS)))}


# the report ----------------------------------------------------------------------------------
def _best(scores: list[MethodScore], key: str = "public") -> MethodScore:
    return max(scores, key=lambda m: -np.inf if getattr(m, key) is None else getattr(m, key))


def criteria_values(report: dict[str, Any]) -> dict[str, float | None]:
    fixed = report["fixed"]
    best = report["tuned_best"]
    return {
        "gap": fixed["gap"],
        "half_width": report["interval"]["half_width"],
        "copy_teacher": report["copy_teacher"]["expected_pgr"],
        "vanilla": report["vanilla"]["pgr"],
        "teacher_free_best": max((m["pgr"] for m in report["teacher_free"]
                                  if m["pgr"] is not None), default=None),
        "tuned_best": best["pgr"],
        "floor_over_chance": fixed["floor_ci95"][0] - fixed["majority_class"],
        "best_beats_teacher": None if best["ci95"] is None else best["ci95"][0],
    }


def verdict(report: dict[str, Any], role: TaskRole) -> dict[str, Any]:
    values = criteria_values(report)
    rules = HILL_CLIMB if role is TaskRole.HILL_CLIMB else HELD_OUT
    checks = [Criterion(name, values[name], low, high) for name, low, high in rules]
    return {"role": str(role), "passed": all(c.passed for c in checks),
            "criteria": [{"name": c.name, "value": c.value, "low": c.low, "high": c.high,
                          "passed": c.passed, "miss": c.miss} for c in checks]}


def audit_task(task: Task, pair: ModelPair, *, role: TaskRole | None = None,
               sweep_only: tuple[str, ...] | None = None,
               progress: Callable[[str], None] = lambda _: None) -> dict[str, Any]:
    """The whole report as a JSON-ready dict (see the module docstring). `sweep_only` limits
    the sweep to some baselines: a cheaper screen for a task search, marked in the report."""
    baselines = fixed_baselines(task, pair)
    runner = Runner(task, pair, baselines)
    progress("fixed baselines and copying the teacher")
    report: dict[str, Any] = {"task": task.name, "content_hash": task.info.content_hash,
                              "pair": pair.name, "weak_model": pair.weak.spec.name,
                              "strong_model": pair.strong.spec.name,
                              "sizes": task.info.sizes, "seeds": list(AUDIT_SEEDS),
                              "teachers": len(baselines.seeds),
                              "fixed": fixed_figures(task, baselines),
                              "copy_teacher": copy_teacher(task, baselines)}
    progress("vanilla over five seeds")
    vanilla = load_baseline("vanilla", {})
    report["vanilla"] = runner.score("vanilla", vanilla.run, {}).row()
    progress("vanilla's interval width over four 5-seed attempts")
    report["interval"] = interval_widths(runner, vanilla.run)
    progress("teacher-free suite")
    report["teacher_free"] = [m.row() for m in teacher_free(runner)]
    tuned: list[MethodScore] = []
    report["sweep_only"] = list(sweep_only) if sweep_only else None
    for name in SWEEPS:
        if name not in TEACHER_FREE_BASELINES and (not sweep_only or name in sweep_only):
            progress(f"sweep {name}")
            tuned += sweep(runner, name)
    report["sweep"] = [m.row() for m in tuned]
    best = _best(tuned)  # chosen on the public half, as a participant would
    progress(f"best tuned ({best.name} {best.config}) over five seeds, and its ablation")
    module = load_baseline(best.name, {k: v for k, v in best.config.items() if k != "epochs"})
    epochs = best.config.get("epochs")
    report["tuned_best"] = runner.score(best.name, module.run, best.config,
                                        head_epochs=epochs).row()
    report["ablation"] = runner.score(best.name, module.run, best.config, permute=1,
                                      head_epochs=epochs).row()
    report["verdict"] = verdict(report, role or task.info.role)
    return report


def _f(value: Any) -> str:
    return "—" if value is None else f"{value:.3f}"


def _interval_sentence(interval: dict[str, Any]) -> str:
    return (f"Interval of a {interval['block']}-seed vanilla attempt, mean of "
            f"{len(interval['half_widths'])} disjoint attempts ({interval['seeds']} seeds): "
            f"half-width {_f(interval['half_width'])} (attempts: "
            f"{', '.join(_f(h) for h in interval['half_widths'])}); its test-item part alone "
            f"{_f(interval['items_half_width'])}; per-seed PGR sd "
            f"{_f(interval['pgr_sd_between_seeds'])}.")


def render_markdown(report: dict[str, Any]) -> str:
    """The report for docs/tasks.md: one table of criteria, then the figures behind them."""
    fixed, v = report["fixed"], report["verdict"]
    lines = [f"### `{report['task']}` ({report['weak_model']} → {report['strong_model']}; "
             f"audit verdict for a {v['role'].replace('_', '-')} task: "
             f"**{'passes' if v['passed'] else 'fails'}**)", "",
             f"floor {_f(fixed['floor'])} [{_f(fixed['floor_ci95'][0])}, "
             f"{_f(fixed['floor_ci95'][1])}], ceiling {_f(fixed['ceiling'])} "
             f"[{_f(fixed['ceiling_ci95'][0])}, {_f(fixed['ceiling_ci95'][1])}], gap "
             f"{_f(fixed['gap'])}; test {fixed['test_items']} items, label-1 share "
             f"{fixed['share_label_1']:.2f}; copying the teacher: PGR "
             f"{_f(report['copy_teacher']['expected_pgr'])} in expectation (sd of a 5-seed "
             f"attempt {_f(report['copy_teacher']['sd_of_a_5_seed_attempt'])}).", "",
             _interval_sentence(report["interval"]), "",
             "| criterion | value | bound | passes | miss |", "|---|---|---|---|---|"]
    for c in v["criteria"]:
        bound = " ".join(s for s in (f"≥ {c['low']}" if c["low"] is not None else "",
                                     f"≤ {c['high']}" if c["high"] is not None else "") if s)
        lines.append(f"| {c['name']} | {_f(c['value'])} | {bound} | "
                     f"{'yes' if c['passed'] else 'no'} | {_f(c['miss'])} |")
    lines += ["", "| method | config | PGR (all) | public | 95% interval |",
              "|---|---|---|---|---|"]
    rows = [("vanilla (5 seeds)", report["vanilla"]), ("tuned best (5 seeds)",
                                                       report["tuned_best"]),
            ("tuned best, permuted teacher", report["ablation"])]
    rows += [(f"teacher-free: {m['name']}", m) for m in report["teacher_free"]]
    for label, m in rows:
        ci = m["ci95"]
        lines.append(f"| {label} | {m['config'] or ''} | {_f(m['pgr'])} | {_f(m['public_pgr'])}"
                     f" | {'—' if ci is None else f'[{ci[0]:.3f}, {ci[1]:.3f}]'} |")
    best_of = {}
    for m in report["sweep"]:
        if m["name"] not in best_of or (m["public_pgr"] or -9) > (best_of[m["name"]]
                                                                  ["public_pgr"] or -9):
            best_of[m["name"]] = m
    if report.get("sweep_only"):
        lines += ["", f"A screen, not the full audit: only {', '.join(report['sweep_only'])} "
                      "swept."]
    lines += ["", "Best of each sweep (3 seeds, chosen on the public half): " + "; ".join(
        f"{n} {_f(m['pgr'])} at {m['config']}" for n, m in best_of.items()) + "."]
    return "\n".join(lines) + "\n"
