"""Plotly figures from tidy frames; no I/O, no Streamlit.

The gap-closure figure draws, per arm, the median of its participants' curves as a step line
running to `until` (now, or the window's end) with a band resampled over participants, and
the best in the arm (n = …) beside it, dashed; reference lines for the weak floor, the best
baseline and the ceiling; "no data" rather than empty axes; and a one-line "who leads".
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from analysis.curves import (
    ENDPOINTS,
    arm_summary,
    endpoint_of,
    participant_curves,
    roster_of,
    unmeasured,
)
from analysis.frames import AXES
from analysis.palette import REFERENCE_COLOR, arm_color, arm_fill

# Legends sit below the plot, clear of the x-axis title; the bottom margin makes room.
LAYOUT = {"template": "plotly_white", "margin": {"l": 60, "r": 30, "t": 80, "b": 130},
          "legend": {"orientation": "h", "yanchor": "top", "y": -0.22, "x": 0}}
BAND_POINTS = 80  # the participant-resampled band is computed on at most this many x


def grid_for(curves: pd.DataFrame, until: float) -> np.ndarray:
    """Every x at which some participant's curve steps, from 0 to `until`."""
    xs = curves.loc[curves["x"] <= until, "x"].to_numpy(float)
    return np.unique(np.concatenate([[0.0], xs, [until]]))


def _thin(grid: np.ndarray) -> np.ndarray:
    if len(grid) <= BAND_POINTS:
        return grid
    return np.unique(np.concatenate([grid[np.linspace(0, len(grid) - 1, BAND_POINTS)
                                          .astype(int)], grid[-1:]]))


def arm_curves(frame: pd.DataFrame, *, x: str, endpoint: str, until: float,
               roster: pd.DataFrame | None = None, draws: int = 2000, seed: int = 0
               ) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(participant curves, arm summary on the grid to `until`) for one axis; the band is
    resampled over participants on a thinned grid and carried forward between its points."""
    curves = participant_curves(frame, x=x, endpoint=endpoint)
    roster = roster_of(frame, roster)
    grid = grid_for(curves, until)
    missing = unmeasured(frame, x)
    exact = arm_summary(curves, roster, grid, draws=0, seed=seed, missing=missing)
    banded = arm_summary(curves, roster, _thin(grid), draws=draws, seed=seed, missing=missing)
    parts = []
    for arm, rows in exact.groupby("arm", sort=True):
        band = banded[banded["arm"] == arm]
        at = np.searchsorted(band["x"].to_numpy(), rows["x"].to_numpy(), side="right") - 1
        parts.append(rows.assign(low=band["low"].to_numpy()[at],
                                 high=band["high"].to_numpy()[at]))
    summary = pd.concat(parts, ignore_index=True) if parts else exact
    return curves, summary


def who_leads(summary: pd.DataFrame, at: float, *, axis: str) -> str:
    """One line: which arm's median participant is ahead at x = `at`, by how much, and
    whether the bands separate them."""
    rows = summary[summary["x"] <= at].groupby("arm").last()
    if rows.empty:
        return f"At {at:.4g} ({AXES.get(axis, axis)}): no data."
    rows = rows.sort_values("median", ascending=False)
    parts = [f"{arm} {r['median']:.2f} (n = {int(r['n'])})" for arm, r in rows.iterrows()]
    if len(rows) == 1:
        return f"At {at:.4g} ({AXES.get(axis, axis)}): only {parts[0]}."
    first, second = rows.iloc[0], rows.iloc[1]
    if first["median"] == second["median"]:
        verdict = "no arm leads"
    else:
        separated = first["low"] > second["high"]
        verdict = (f"{rows.index[0]} leads by {first['median'] - second['median']:.2f}"
                   + ("" if separated else ", within the bands"))
    return f"At {at:.4g} ({AXES.get(axis, axis)}), median participant: {verdict} — " \
           + " vs ".join(parts) + "."


def _no_data(fig: go.Figure, message: str) -> go.Figure:
    fig.add_annotation(text=message, showarrow=False, font={"size": 16},
                       xref="paper", yref="paper", x=0.5, y=0.5)
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


def add_references(fig: go.Figure, references: dict[str, float] | None) -> None:
    """Dotted labelled lines (floor, best baseline, ceiling); the workspace's charts too."""
    for label, y in (references or {}).items():
        if y is not None and np.isfinite(y):
            fig.add_hline(y=y, line={"dash": "dot", "width": 1, "color": REFERENCE_COLOR},
                          annotation_text=label, annotation_position="top left",
                          annotation_font={"size": 10, "color": REFERENCE_COLOR})


def _stepped(xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """A right-continuous step function as explicit corners, so a band drawn as one polygon
    (forward along its top, back along its bottom) keeps its steps."""
    corners_x = np.repeat(xs, 2)[1:]
    corners_y = np.repeat(ys, 2)[:-1]
    return corners_x, corners_y


def _arm_traces(fig: go.Figure, arm: str, rows: pd.DataFrame) -> None:
    color = arm_color(arm)
    n = int(rows["n"].iloc[0])
    xs, high = _stepped(rows["x"].to_numpy(float), rows["high"].to_numpy(float))
    _, low = _stepped(rows["x"].to_numpy(float), rows["low"].to_numpy(float))
    fig.add_trace(go.Scatter(
        x=np.concatenate([xs, xs[::-1]]), y=np.concatenate([high, low[::-1]]), fill="toself",
        fillcolor=arm_fill(arm), line={"width": 0}, hoverinfo="skip",
        name=f"{arm} 95% band (participants resampled)", legendgroup=arm))
    fig.add_trace(go.Scatter(
        x=rows["x"], y=rows["median"], mode="lines", line={"width": 3, "color": color,
                                                           "shape": "hv"},
        name=f"{arm} median participant (n = {n})", legendgroup=arm,
        hovertemplate=f"{arm} median: %{{y:.3f}}<extra></extra>"))
    fig.add_trace(go.Scatter(
        x=rows["x"], y=rows["best"], mode="lines",
        line={"width": 1.5, "color": color, "dash": "dash", "shape": "hv"},
        name=f"{arm} best in arm (n = {n})", legendgroup=arm,
        hovertemplate=f"{arm} best of {n}: %{{y:.3f}}<extra></extra>"))


def _participant_traces(fig: go.Figure, curves: pd.DataFrame, until: float) -> None:
    # One trace per arm, participants separated by gaps: ninety traces would cost more in
    # plotly's validation than all the data. Each curve runs on to `until`.
    for arm, arm_curves_ in curves.groupby("arm", sort=True):
        pieces = []
        for _, curve in arm_curves_.groupby("participant_id", sort=False):
            pieces += [curve, curve.iloc[-1:].assign(x=until),
                       curve.iloc[:1].assign(x=None, value=None)]
        lines = pd.concat(pieces)
        fig.add_trace(go.Scatter(
            x=lines["x"], y=lines["value"], mode="lines", line_shape="hv",
            line={"width": 1, "color": arm_color(arm)}, opacity=0.35, connectgaps=False,
            name=f"{arm} participants", legendgroup=arm,
            customdata=lines[["display_name"]].to_numpy(),
            hovertemplate="%{customdata[0]}: %{y:.3f}<extra></extra>"))


def _attempt_traces(fig: go.Figure, frame: pd.DataFrame, *, x: str, score: str,
                    intervals: dict[str, tuple[float, float]] | None) -> None:
    scored = frame[frame["status"].eq("scored") & frame[score].notna() & frame[x].notna()]
    scored = scored.assign(method=scored["note"].fillna("").str.slice(0, 80).where(
        scored["note"].notna(), "code " + scored["code_sha256"].fillna("").str.slice(0, 10)))
    # WebGL, one trace per arm with one colour: a study has tens of thousands of attempts,
    # and a per-point colour list costs plotly a validation call per point.
    for arm, cloud in scored.groupby("arm", sort=True):
        fig.add_trace(go.Scattergl(
            x=cloud[x], y=cloud[score], mode="markers", name=f"{arm} attempts",
            legendgroup=arm, marker={"size": 5, "color": arm_color(arm), "opacity": 0.45},
            customdata=cloud[["attempt_id", "display_name", "method"]].to_numpy(),
            hovertemplate="%{customdata[1]} %{customdata[0]}: %{y:.3f}<br>%{customdata[2]}"
                          "<extra></extra>"))
    held = scored[scored["attempt_id"].isin(intervals or {})]
    if len(held):
        lows = np.array([intervals[a][0] for a in held["attempt_id"]])  # type: ignore[index]
        highs = np.array([intervals[a][1] for a in held["attempt_id"]])  # type: ignore[index]
        fig.add_trace(go.Scatter(
            x=held[x], y=held[score], mode="markers", name="attempt 95% interval",
            marker={"size": 7, "color": [arm_color(a) for a in held["arm"]]},
            error_y={"type": "data", "array": highs - held[score].to_numpy(float),
                     "arrayminus": held[score].to_numpy(float) - lows, "visible": True},
            customdata=held["attempt_id"],
            hovertemplate="attempt %{customdata}: %{y:.3f}<extra></extra>"))
    flagged = scored[scored["flagged"].astype(bool)]
    if len(flagged):
        fig.add_trace(go.Scatter(
            x=flagged[x], y=flagged[score], mode="markers", name="flagged",
            marker={"symbol": "x", "size": 10, "color": "black"},
            customdata=flagged[["attempt_id", "display_name"]],
            hovertemplate="flagged: %{customdata[1]} %{customdata[0]}<extra></extra>"))


def _missing_note(frame: pd.DataFrame, x: str) -> str:
    """What this axis leaves out, said on the figure."""
    scored = frame[frame["status"].eq("scored")]
    notes = []
    if x == "active_hours":
        out = int(scored["clocked_out"].astype(bool).sum())
        if out:
            notes.append(f"{out} attempt(s) made while clocked out are not on this axis")
    missing = int(scored[x].isna().sum())
    if missing:
        notes.append(f"{missing} scored attempt(s) have no value on this axis")
    return "; ".join(notes)


def frontier_figure(frame: pd.DataFrame, *, x: str = "calendar_hours",
                    endpoint: str | None = None, score: str = "private_pgr",
                    until: float | None = None, roster: pd.DataFrame | None = None,
                    references: dict[str, float | None] | None = None,
                    bands: dict[str, tuple[float, float]] | None = None,
                    participants: bool = True, attempts: bool = True,
                    zoom: tuple[float, float] | None = None, draws: int = 2000,
                    summary: tuple[pd.DataFrame, pd.DataFrame] | None = None) -> go.Figure:
    """The gap-closure figure on one axis (see the module's docstring). `endpoint` (or the
    older `score`: private → the honest endpoint) picks the participant curve; `until` is
    where the lines end (default: the last x seen); `bands` are per-attempt intervals, drawn
    on those attempts; `zoom` sets the visible x-range after everything is built; `summary`
    is `arm_curves`' result for this axis when the caller already has it."""
    endpoint = endpoint_of(endpoint or score)
    dot_score = "public_pgr" if endpoint == "best_public" else "private_pgr"
    fig = go.Figure(layout=LAYOUT)
    fig.update_layout(title=f"Gap closed — {ENDPOINTS[endpoint]}",
                      xaxis_title=AXES.get(x, x), yaxis_title="PGR")
    usable = frame[frame["status"].eq("scored") & frame[dot_score].notna()
                   & frame[x].notna()] if len(frame) else frame
    if usable.empty:
        return _no_data(fig, f"no data on this axis ({AXES.get(x, x)})")
    until = float(until if until is not None else usable[x].max())
    curves, arms = summary or arm_curves(frame, x=x, endpoint=endpoint, until=until,
                                         roster=roster, draws=draws)
    add_references(fig, references)
    for arm, rows in arms.groupby("arm", sort=True):
        _arm_traces(fig, arm, rows)
    if participants:
        _participant_traces(fig, curves, until)
    if attempts:
        _attempt_traces(fig, frame, x=x, score=dot_score, intervals=bands)
    subtitle = who_leads(arms, until, axis=x)
    note = _missing_note(frame, x)
    fig.update_layout(title={"text": f"Gap closed — {ENDPOINTS[endpoint]}<br><sup>{subtitle}"
                                     + (f"<br>{note}" if note else "") + "</sup>"})
    fig.update_xaxes(range=list(zoom) if zoom else [0, until * 1.02 if until > 0 else 1])
    return fig


def _trajectory_traces(mine: pd.DataFrame, *, x: str, endpoint: str) -> list[go.Scatter]:
    """One participant's curve (to their last attempt) and every scored attempt as a point,
    public (open) and private (filled)."""
    scored = mine[mine["status"].eq("scored") & mine[x].notna()]
    arm = str(scored["arm"].iloc[0])
    curve = participant_curves(mine, x=x, endpoint=endpoint)
    line = pd.concat([curve, curve.iloc[-1:].assign(x=float(scored[x].max()))])
    traces = [go.Scatter(x=line["x"], y=line["value"], mode="lines", line_shape="hv",
                         line={"width": 3, "color": arm_color(arm)},
                         name=ENDPOINTS[endpoint_of(endpoint)])]
    for score, symbol in (("public_pgr", "circle-open"), ("private_pgr", "circle")):
        traces.append(go.Scatter(x=scored[x], y=scored[score], mode="markers",
                                 marker={"symbol": symbol, "color": arm_color(arm)},
                                 name=score.replace("_", " "), customdata=scored["attempt_id"],
                                 hovertemplate="%{customdata}: %{y:.3f}<extra></extra>"))
    return traces


def participant_figure(frame: pd.DataFrame, participant_id: str, *, x: str = "calendar_hours",
                       endpoint: str = "private_at_best_public") -> go.Figure:
    """One participant's trajectory: every attempt as a point, their curve as a step line."""
    mine = frame[frame["participant_id"] == participant_id]
    fig = go.Figure(layout=LAYOUT)
    fig.update_layout(xaxis_title=AXES.get(x, x), yaxis_title="PGR")
    if not (mine["status"].eq("scored") & mine[x].notna()).any():
        return _no_data(fig, "no scored attempts on this axis")
    fig.update_layout(title=f"{mine['display_name'].iloc[0]} ({mine['arm'].iloc[0]})")
    fig.add_traces(_trajectory_traces(mine, x=x, endpoint=endpoint))
    return fig


def trajectories_figure(frame: pd.DataFrame, *, x: str = "calendar_hours",
                        endpoint: str = "private_at_best_public") -> go.Figure:
    """Every participant's trajectory in one figure, one shown at a time (a menu picks whom):
    for the self-contained report, where there is no page to choose on."""
    fig = go.Figure(layout=LAYOUT)
    fig.update_layout(title="One participant's trajectory", xaxis_title=AXES.get(x, x),
                      yaxis_title="PGR")
    usable = frame[frame["status"].eq("scored") & frame[x].notna()]
    if usable.empty:
        return _no_data(fig, "no scored attempts yet")
    people = usable.drop_duplicates("participant_id")[
        ["participant_id", "display_name", "arm"]].sort_values(["arm", "display_name"])
    buttons = []
    for i, person in enumerate(people.itertuples()):
        traces = _trajectory_traces(frame[frame["participant_id"] == person.participant_id],
                                    x=x, endpoint=endpoint)
        for trace in traces:
            trace.visible = i == 0
        fig.add_traces(traces)
        buttons.append({"label": f"{person.display_name} ({person.arm})", "method": "update",
                        "args": [{"visible": [j // 3 == i
                                              for j in range(3 * len(people))]}]})
    fig.update_layout(updatemenus=[{"buttons": buttons, "x": 1.0, "xanchor": "right",
                                    "y": 1.15, "yanchor": "top"}])
    return fig


def attempts_over_time_figure(frame: pd.DataFrame, *, until: float | None = None
                              ) -> go.Figure:
    """Finished attempts per hour, per arm, stacked (never overlapping), from hour 0."""
    fig = go.Figure(layout=LAYOUT)
    fig.update_layout(title="Finished attempts per hour", xaxis_title=AXES["calendar_hours"],
                      yaxis_title="finished attempts", barmode="stack")
    if frame.empty:
        return _no_data(fig, "no finished attempts yet")
    end = float(until if until is not None else frame["calendar_hours"].max())
    edges = np.arange(0.0, np.floor(max(end, 0.0)) + 2.0)
    for arm, group in frame.groupby("arm", sort=True):
        counts, _ = np.histogram(group["calendar_hours"].clip(lower=0), bins=edges)
        fig.add_trace(go.Bar(x=edges[:-1] + 0.5, y=counts, width=1.0, name=arm,
                             marker_color=arm_color(arm)))
    fig.update_xaxes(range=[0, edges[-1]])
    fig.update_yaxes(rangemode="nonnegative")
    return fig


def generalization_figure(matrix: pd.DataFrame) -> go.Figure:
    """Rows: attempts (participant); columns: held-out tasks; cells: PGR on the re-run."""
    if matrix.empty:
        return _no_data(go.Figure(layout=LAYOUT), "no held-out re-runs yet")
    tasks = sorted({t for row in matrix["held_out"] for t in row})
    labels = [f"{r.display_name} · {r.attempt_id}" for r in matrix.itertuples()]
    z = [[row.get(t) for t in tasks] for row in matrix["held_out"]]
    fig = go.Figure(go.Heatmap(z=z, x=tasks, y=labels, colorscale="RdBu", zmid=0,
                               colorbar={"title": "PGR"}), layout=LAYOUT)
    fig.update_layout(title="Generalization to held-out tasks")
    return fig
