"""How many gold labels should the weak teacher get? Prints weak, ceiling and baseline PGRs for a
range of `weak_train` sizes, so the default leaves room to climb (docs/tasks.md records the run).

Usage: python scripts/calibrate_weak_size.py TASK [--pair default] [--sizes 100,200,300] [--seeds 8]
Runs in-process on cached features (the baselines' logic, without the per-seed process).
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np

from runner.features import load_features
from runner.lib import LogConf, confident_indices, hard_labels, self_train, train_head
from runner.teacher import resolve_pair
from study.tasks import build_task, get_spec
from study.tasks.sources import SOURCES


def _accuracy(head, X: np.ndarray, y: np.ndarray) -> float:
    return float(((head.predict_proba(X) >= 0.5) == y).mean())


def _cell(rows: dict[str, list[float]], key: str, weak: float, ceil: float) -> str:
    """PGR mean ± SE over seeds, each seed's student against the fixed (mean) floor and ceiling."""
    pgrs = (np.array(rows[key]) - weak) / (ceil - weak)
    return f"{pgrs.mean():6.2f}±{pgrs.std(ddof=1) / np.sqrt(len(pgrs)):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("task")
    parser.add_argument("--pair", default="default")
    parser.add_argument("--sizes", default="100,150,200,300,500")
    parser.add_argument("--seeds", type=int, default=8)
    args = parser.parse_args()
    pair = resolve_pair(args.pair)
    base = get_spec(args.task)
    source = SOURCES[base.source]()
    print(f"{'gold':>5} {'weak':>6} {'ceil':>6} {'vanilla':>13} {'confident':>13} "
          f"{'logconf':>13} {'bootstrap':>13}")
    for size in [int(s) for s in args.sizes.split(",")]:
        spec = dataclasses.replace(base, sizes={**base.sizes, "weak_train": size})
        task = build_task(spec, source)
        wx = {s: load_features(pair.weak, task, s) for s in ("weak_train", "train", "test")}
        sx = {s: load_features(pair.strong, task, s) for s in ("train", "test")}
        y_wt = np.array(task.labels("weak_train"), float)
        y_tr, y_te = np.array(task.labels("train"), float), np.array(task.labels("test"))
        rows: dict[str, list[float]] = {k: [] for k in
                                        ("weak", "ceil", "van", "conf", "logc", "boot")}
        X, X_test = sx["train"], sx["test"]
        for seed in range(args.seeds):
            teacher = train_head(wx["weak_train"], y_wt, seed=seed)
            soft = teacher.predict_proba(wx["train"])
            keep = confident_indices(soft, 0.5)
            students = {
                "ceil": train_head(X, y_tr, seed=seed),
                "van": train_head(X, soft, seed=seed),
                "conf": train_head(X[keep], hard_labels(soft[keep]), seed=seed),
                "logc": train_head(X, soft, seed=seed, loss=LogConf()),
                "boot": self_train(X, soft, seed=seed),
            }
            rows["weak"].append(_accuracy(teacher, wx["test"], y_te))
            for key, head in students.items():
                rows[key].append(_accuracy(head, X_test, y_te))
        weak, ceil = np.mean(rows["weak"]), np.mean(rows["ceil"])
        cells = [_cell(rows, key, weak, ceil) for key in ("van", "conf", "logc", "boot")]
        print(f"{size:>5} {weak:6.3f} {ceil:6.3f} " + " ".join(f"{c:>13}" for c in cells),
              flush=True)


if __name__ == "__main__":
    main()
