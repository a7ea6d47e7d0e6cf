"""The search that chose the default tasks (docs/tasks.md): audits candidate variants of the
packaged sources — teacher strength (gold examples for the teacher), label names hidden from
methods, the role judged — on cached features, and prints one line per candidate.

Resizing `weak_train` leaves `train` and `test` (dealt first) unchanged, so a variant costs only
the weak model's features of its new gold set; resizing `test` or `train` deals new splits, whose
strong features (mpnet: ~34 texts/s on two idle cores) are computed once and cached.
Results are appended to --out as JSON lines.

Usage: python scripts/task_search.py --pair default --out /tmp/search.jsonl \
           tweet_sentiment:weak_train=150:test=3000 rt_sentiment:hide_names=1:role=held_out
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

from runner.models import resolve_model
from runner.task_audit import audit_task
from runner.teacher import lm_pair, resolve_pair
from study.tasks import SPLITS, TaskRole, get_spec, prepare_task

HIDDEN = ("label A", "label B")


def variant(text: str):
    """`task[:key=value…]` → (spec, role); keys: a split's size (weak_train, train, test),
    hide_names, role."""
    name, *pairs = text.split(":")
    spec = get_spec(name)
    options = dict(p.split("=", 1) for p in pairs)
    unknown = set(options) - {*SPLITS, "hide_names", "role"}
    if unknown:  # a misspelt key would otherwise audit the unchanged task under a new name
        raise SystemExit(f"{text}: unknown keys {sorted(unknown)}")
    sizes = {split: int(options[split]) for split in SPLITS if split in options}
    spec = dataclasses.replace(spec, sizes={**spec.sizes, **sizes})
    if options.get("hide_names") == "1":
        spec = dataclasses.replace(spec, label_names=HIDDEN,
                                   description="Is this item of class A (0) or class B (1)?")
    role = TaskRole(options["role"]) if "role" in options else spec.role
    return spec, role


def pair_named(text: str):
    """A catalogue pair ("default", "small") or any two packaged encoders as "weak:strong"."""
    if ":" not in text:
        return resolve_pair(text)
    weak, strong = text.split(":", 1)
    return lm_pair(text, resolve_model(weak), resolve_model(strong), None)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("candidates", nargs="+")
    parser.add_argument("--pair", default="default",
                        help='A pair name, or two packaged encoders: "minilm-l6:mpnet".')
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--sweep-only", default="",
                        help="A cheaper screen: sweep only these baselines (comma-separated).")
    args = parser.parse_args()
    pair = pair_named(args.pair)
    for text in args.candidates:
        started = time.monotonic()
        spec, role = variant(text)
        only = tuple(n for n in args.sweep_only.split(",") if n) or None
        report = audit_task(prepare_task(spec), pair, role=role, sweep_only=only)
        report["candidate"] = text
        report["seconds"] = round(time.monotonic() - started)
        with args.out.open("a") as fh:
            fh.write(json.dumps(report) + "\n")
        misses = {c["name"]: round(c["miss"], 3) for c in report["verdict"]["criteria"]
                  if not c["passed"]}
        print(f"{text} [{args.pair}, {role}]: {'PASS' if report['verdict']['passed'] else 'fail'}"
              f" gap {report['fixed']['gap']:.3f} vanilla {report['vanilla']['pgr']:.2f} "
              f"tuned {report['tuned_best']['pgr']:.2f} teacher-free "
              f"{max(m['pgr'] for m in report['teacher_free']):.2f} misses {misses} "
              f"({report['seconds']} s)", flush=True)


if __name__ == "__main__":
    main()
