"""Plotly figures from attempt records (pure: records in, `go.Figure` out, no I/O)."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from analysis.figures import add_references
from analysis.palette import arm_color
from study.records import AttemptStatus, AttemptView

# On the PGR scale the weak teacher is 0 and the strong model on gold labels is 1, whatever the
# task: the lines every public-PGR chart is read against. (The best shipped baseline needs the
# whole study's attempts: the analysis' gap-closure figure draws it.)
PGR_REFERENCES = {"weak teacher (PGR 0)": 0.0, "ceiling: strong on gold (PGR 1)": 1.0}


def arm_colors(arms: pd.Series) -> dict[str, str]:
    """The analysis' one palette: an arm has the same colour here, in the report and exports."""
    return {arm: arm_color(arm) for arm in arms.unique()}


def scored_frame(views: list[AttemptView], arms: dict[str, str | None] | None = None
                 ) -> pd.DataFrame:
    """Scored attempts with a public PGR, in finishing order, with each arm's running best."""
    arms = arms or {}
    rows = [{"attempt": v.id[:12], "participant_id": v.participant_id,
             "arm": arms.get(v.participant_id) or "unknown", "task": v.task,
             "finished_at": v.finished_at, "pgr": v.public.pgr}
            for v in views
            if v.status is AttemptStatus.SCORED and v.finished_at and v.public
            and v.public.pgr is not None and not v.disqualified]
    frame = pd.DataFrame(rows, columns=["attempt", "participant_id", "arm", "task",
                                        "finished_at", "pgr"])
    frame = frame.sort_values("finished_at", kind="stable").reset_index(drop=True)
    frame["best"] = frame.groupby("arm")["pgr"].cummax() if len(frame) else frame["pgr"]
    return frame


def to_now(frame: pd.DataFrame, now: dt.datetime | None = None) -> pd.DataFrame:
    """Each arm's best held until now: a step line that stops at the last improvement (or a
    single dot for one improvement) would read as "this arm stopped"."""
    if frame.empty:
        return frame
    now = now or dt.datetime.now(dt.UTC)
    last = frame.groupby("arm", sort=False).tail(1).assign(finished_at=now, pgr=None,
                                                          attempt="now")
    return pd.concat([frame, last], ignore_index=True)


def best_so_far(views: list[AttemptView]) -> go.Figure:
    """My public PGR per attempt and my best so far, over wall-clock time, held until now."""
    frame = scored_frame(views)
    steps = to_now(frame)
    fig = go.Figure()
    fig.add_scatter(x=frame["finished_at"], y=frame["pgr"], mode="markers", name="attempt",
                    text=frame["attempt"], hovertemplate="%{text}: PGR %{y:.2f}<extra></extra>")
    fig.add_scatter(x=steps["finished_at"], y=steps["best"], mode="lines", name="best so far",
                    line={"shape": "hv", "width": 3})
    add_references(fig, PGR_REFERENCES)
    fig.update_layout(xaxis_title="finished at (UTC)", yaxis_title="public PGR",
                      margin={"l": 10, "r": 10, "t": 30, "b": 10}, height=360,
                      legend={"orientation": "h", "y": 1.1})
    return fig


def attempts_over_time(views: list[AttemptView], arms: dict[str, str | None]) -> go.Figure:
    """Cumulative attempts per arm: who is submitting, and how fast."""
    frame = pd.DataFrame([{"arm": arms.get(v.participant_id) or "unknown",
                           "submitted_at": v.submitted_at} for v in views],
                         columns=["arm", "submitted_at"])
    frame = frame.sort_values("submitted_at", kind="stable")
    frame["attempts"] = frame.groupby("arm").cumcount() + 1
    fig = px.line(frame, x="submitted_at", y="attempts", color="arm", line_shape="hv",
                  markers=True, color_discrete_map=arm_colors(frame["arm"]))
    fig.update_layout(xaxis_title="submitted at (UTC)", yaxis_title="attempts (cumulative)",
                      height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def frontier(views: list[AttemptView], arms: dict[str, str | None]) -> go.Figure:
    """Best public PGR per arm over time: the first look at how fast each arm closes the gap."""
    frame = to_now(scored_frame(views, arms))
    fig = px.line(frame, x="finished_at", y="best", color="arm", line_shape="hv", markers=True,
                  hover_data=["attempt", "pgr"], color_discrete_map=arm_colors(frame["arm"]))
    add_references(fig, PGR_REFERENCES)
    fig.update_layout(xaxis_title="finished at (UTC)", yaxis_title="best public PGR",
                      height=340, margin={"l": 10, "r": 10, "t": 30, "b": 10})
    return fig


def metrics_figures(records: list[dict]) -> dict[str, go.Figure]:
    """One chart per `ctx.log` metric name, one line per seed, against the step the method
    gave (or seconds since the seed started when it gave none)."""
    if not records:
        return {}
    frame = pd.DataFrame(records)
    figures = {}
    for name, part in frame.groupby("name", sort=True):
        has_step = part["step"].notna().all()
        x = "step" if has_step else "t"
        fig = go.Figure()
        for seed, line in part.groupby("seed", sort=False):
            fig.add_scatter(x=line[x], y=line["value"], mode="lines+markers",
                            name=f"seed {seed}", marker={"size": 4})
        fig.update_layout(title={"text": str(name), "x": 0, "font": {"size": 14}},
                          xaxis_title="step" if has_step else "seconds into the seed",
                          height=280, margin={"l": 10, "r": 10, "t": 36, "b": 10},
                          legend={"orientation": "h", "y": -0.3})
        figures[str(name)] = fig
    return figures
