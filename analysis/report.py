"""One self-contained HTML report (figures work offline: plotly.js is inlined once), plus the
underlying tables as CSV and Parquet beside it."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from analysis.curves import arm_frontier
from analysis.data import StudyData
from analysis.figures import attempts_over_time_figure, frontier_figure, generalization_figure
from analysis.frames import AXES, attempts_frame
from analysis.stats import (
    ItemResults,
    activity,
    area_under_frontier,
    paired_bootstrap,
    pgr_interval,
    public_private_gap,
    time_to_threshold,
)

THRESHOLDS = [0.2, 0.5, 0.8]


def build_tables(data: StudyData, *, score: str = "public_pgr", gpu_hour_price: float = 0.0,
                 items: Callable[[str], ItemResults | None] | None = None
                 ) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    frame = attempts_frame(data.attempts, study_start=data.study_start,
                           sessions=data.sessions, usage=data.usage, flags=data.flags,
                           gpu_hour_price=gpu_hour_price)
    window = (data.study_end - data.study_start).total_seconds() / 3600
    thresholds = [time_to_threshold(arm_frontier(frame, x=axis, score=score), THRESHOLDS)
                  .assign(axis=axis) for axis in AXES]
    tables = {
        "time_to_threshold": pd.concat(thresholds, ignore_index=True),
        "area_under_frontier": area_under_frontier(
            arm_frontier(frame, x="calendar_hours", score=score), end=window),
        "activity": activity(frame, window_hours=window),
        "public_private_gap": public_private_gap(frame),
    }
    if items is not None:
        tables["paired_bootstrap"] = _arms_compared(frame, score, items)
    if not data.generalization.empty:
        tables["generalization"] = pd.DataFrame(
            [{"display_name": r["display_name"], "arm": r["arm"], "attempt_id": r["attempt_id"],
              **{f"held_out:{t}": v for t, v in r["held_out"].items()}}
             for r in data.generalization.to_dict("records")])
    return frame, tables


def _arms_compared(frame: pd.DataFrame, score: str,
                   items: Callable[[str], ItemResults | None]) -> pd.DataFrame:
    """Each pair of arms' best attempts, compared on the same test items."""
    scored = frame[frame["status"].eq("scored") & frame[score].notna()]
    best = scored.loc[scored.groupby("arm")[score].idxmax()]
    rows = []
    records = best.to_dict("records")
    for i, a in enumerate(records):
        for b in records[i + 1:]:
            if a["task"] != b["task"]:
                continue
            first, second = items(a["attempt_id"]), items(b["attempt_id"])
            if first is None or second is None:  # e.g. imported results: no per-item data
                continue
            test = paired_bootstrap(first, second)
            rows.append({"arm_a": a["arm"], "attempt_a": a["attempt_id"], "arm_b": b["arm"],
                         "attempt_b": b["attempt_id"], **test})
    return pd.DataFrame(rows)


def frontier_bands(frame: pd.DataFrame, items: Callable[[str], ItemResults | None], *,
                   x: str = "calendar_hours", score: str = "public_pgr"
                   ) -> dict[str, tuple[float, float]]:
    bands = {}
    for attempt_id in arm_frontier(frame, x=x, score=score)["attempt_id"].unique():
        evidence = items(attempt_id)
        if evidence is not None:
            bands[attempt_id] = pgr_interval(evidence, draws=300)
    return bands


def write_report(data: StudyData, out: Path, *, title: str = "w2s-arena study report",
                 score: str = "public_pgr", gpu_hour_price: float = 0.0,
                 items: Callable[[str], ItemResults | None] | None = None) -> list[Path]:
    """Writes `out` (HTML) and `<out stem>_tables/*.csv|*.parquet`; returns every path."""
    frame, tables = build_tables(data, score=score, gpu_hour_price=gpu_hour_price, items=items)
    bands = frontier_bands(frame, items, score=score) if items is not None else None
    # Every attempt as a dot on the calendar axis only: five copies of a large study's cloud
    # would make the file five times larger for no new information.
    figures = [frontier_figure(frame, x=axis, score=score,
                               bands=bands if axis == "calendar_hours" else None,
                               attempts=axis == "calendar_hours")
               .update_layout(title=f"Best so far per arm — {AXES[axis]}") for axis in AXES]
    figures.append(attempts_over_time_figure(frame))
    if not data.generalization.empty:
        figures.append(generalization_figure(data.generalization))
    parts = [fig.to_html(full_html=False, include_plotlyjs="inline" if i == 0 else False,
                         config={"displaylogo": False})
             for i, fig in enumerate(figures)]
    sections = "\n".join(f"<h2>{html.escape(name.replace('_', ' '))}</h2>\n"
                         + table.to_html(index=False, float_format=lambda v: f"{v:.3f}",
                                         na_rep="—", border=0, classes="table")
                         for name, table in tables.items())
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    page = f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,sans-serif;margin:2rem auto;max-width:1100px;color:#222}}
.table{{border-collapse:collapse;font-size:.9rem}}.table td,.table th{{padding:.25rem .6rem;
border-bottom:1px solid #ddd;text-align:right}}h2{{margin-top:2.2rem}}</style></head>
<body><h1>{html.escape(title)}</h1>
<p>Score: <b>{score.replace('_', ' ')}</b>. {len(frame)} finished attempts of
{frame['participant_id'].nunique()} participants; window {data.study_start:%Y-%m-%d %H:%M} →
{data.study_end:%Y-%m-%d %H:%M} UTC. Written {stamp}.</p>
{''.join(parts)}
{sections}
</body></html>"""
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(page, encoding="utf-8")
    folder = out.with_name(f"{out.stem}_tables")
    folder.mkdir(exist_ok=True)
    written = [out]
    for name, table in {"attempts": frame, **tables}.items():
        for suffix, write in ((".csv", table.to_csv), (".parquet", table.to_parquet)):
            path = folder / f"{name}{suffix}"
            write(path, index=False)
            written.append(path)
    return written
