"""Plotly figures from tidy frames; no I/O, no Streamlit."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go

from analysis.curves import arm_frontier, best_so_far
from analysis.frames import AXES

ARM_COLORS = {"human": "#1f77b4", "ai": "#d62728", "automated-baseline": "#7f7f7f",
              "imported": "#2ca02c"}


def _color(arm: str) -> str:
    return ARM_COLORS.get(arm, "#9467bd")


def frontier_figure(frame: pd.DataFrame, *, x: str = "calendar_hours",
                    score: str = "public_pgr",
                    bands: dict[str, tuple[float, float]] | None = None,
                    participants: bool = True, attempts: bool = True) -> go.Figure:
    """Each participant's best-so-far (thin), each arm's frontier (thick, with bootstrap bands
    on its steps when given), every scored attempt as a dot, flagged attempts as red crosses."""
    fig = go.Figure()
    if participants:
        # One trace per arm, participants separated by gaps: ninety traces would cost more
        # in plotly's validation than all the data.
        curves = best_so_far(frame, x=x, score=score, steps_only=True)
        for arm, arm_curves in curves.groupby("arm", sort=True):
            pieces = []
            for _, curve in arm_curves.groupby("participant_id", sort=False):
                pieces += [curve, curve.iloc[:1].assign(x=None, best=None)]
            lines = pd.concat(pieces)
            fig.add_trace(go.Scatter(
                x=lines["x"], y=lines["best"], mode="lines", line_shape="hv",
                line={"width": 1, "color": _color(arm)}, opacity=0.35, connectgaps=False,
                name=f"{arm} participants", customdata=lines[["display_name"]].to_numpy(),
                hovertemplate="%{customdata[0]}: %{y:.3f}<extra></extra>"))
    for arm, steps in arm_frontier(frame, x=x, score=score).groupby("arm"):
        error = None
        if bands:
            lo = [steps_best - bands.get(a, (steps_best, steps_best))[0]
                  for a, steps_best in zip(steps["attempt_id"], steps["best"], strict=True)]
            hi = [bands.get(a, (steps_best, steps_best))[1] - steps_best
                  for a, steps_best in zip(steps["attempt_id"], steps["best"], strict=True)]
            error = {"type": "data", "array": hi, "arrayminus": lo, "visible": True}
        fig.add_trace(go.Scatter(
            x=steps["x"], y=steps["best"], mode="lines+markers", line_shape="hv",
            line={"width": 3, "color": _color(arm)}, name=f"{arm} frontier", error_y=error,
            customdata=steps["attempt_id"],
            hovertemplate=f"{arm}: %{{y:.3f}} (attempt %{{customdata}})<extra></extra>"))
    scored = frame[frame["status"].eq("scored") & frame[score].notna()].assign(
        method=lambda f: f["note"].fillna("").str.slice(0, 80).where(
            f["note"].notna(), "code " + f["code_sha256"].fillna("").str.slice(0, 10)))
    # WebGL, one trace per arm with one colour: a study has tens of thousands of attempts,
    # and a per-point colour list costs plotly a validation call per point.
    for arm, cloud in scored.groupby("arm") if attempts else ():
        fig.add_trace(go.Scattergl(
            x=cloud[x], y=cloud[score], mode="markers", name=f"{arm} attempts",
            marker={"size": 5, "color": _color(arm), "opacity": 0.5},
            customdata=cloud[["attempt_id", "display_name", "method"]].to_numpy(),
            hovertemplate="%{customdata[1]} %{customdata[0]}: %{y:.3f}<br>%{customdata[2]}"
                          "<extra></extra>"))
    flagged = scored[scored["flagged"].astype(bool)]
    if len(flagged):
        fig.add_trace(go.Scatter(
            x=flagged[x], y=flagged[score], mode="markers", name="flagged",
            marker={"symbol": "x", "size": 10, "color": "red"},
            customdata=flagged[["attempt_id", "display_name"]],
            hovertemplate="flagged: %{customdata[1]} %{customdata[0]}<extra></extra>"))
    fig.update_layout(xaxis_title=AXES.get(x, x), yaxis_title=score.replace("_", " "),
                      template="plotly_white", legend={"orientation": "h"},
                      margin={"l": 50, "r": 20, "t": 40, "b": 40},
                      title="Gap closed over time: best so far, per arm")
    return fig


def attempts_over_time_figure(frame: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for arm, group in frame.groupby("arm"):
        fig.add_trace(go.Histogram(x=group["calendar_hours"], name=arm, opacity=0.7,
                                   marker_color=_color(arm), xbins={"size": 1.0}))
    fig.update_layout(barmode="overlay", template="plotly_white", title="Attempts per hour",
                      xaxis_title=AXES["calendar_hours"], yaxis_title="finished attempts")
    return fig


def generalization_figure(matrix: pd.DataFrame) -> go.Figure:
    """Rows: attempts (participant); columns: held-out tasks; cells: PGR on the re-run."""
    if matrix.empty:
        return go.Figure(layout={"title": "Generalization: no held-out re-runs yet"})
    tasks = sorted({t for row in matrix["held_out"] for t in row})
    labels = [f"{r.display_name} · {r.attempt_id}" for r in matrix.itertuples()]
    z = [[row.get(t) for t in tasks] for row in matrix["held_out"]]
    fig = go.Figure(go.Heatmap(z=z, x=tasks, y=labels, colorscale="RdBu", zmid=0,
                               colorbar={"title": "PGR"}))
    fig.update_layout(template="plotly_white", title="Generalization to held-out tasks")
    return fig
