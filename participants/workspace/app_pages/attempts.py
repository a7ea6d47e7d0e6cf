"""My attempts, like an experiment tracker: every attempt has its own URL
(`/attempts?attempt=att_…`); the chosen one shows each seed's live progress (ctx.progress),
its metrics (ctx.log) per seed, every seed's output, its scores with their interval, the diff
against the attempt it was edited from, and buttons to resubmit or open it in the editor.

Attempts still queued or running are followed by long-polls (participants.workspace.live): the
live part of the page redraws from what they last brought, and the whole page reruns — one
list request — only when a status changes. Nothing is refetched on a timer."""

import streamlit as st

from participants.workspace import charts, editor, state, views
from participants.workspace.errors import format_seconds
from participants.workspace.live import Watcher
from study.records import TERMINAL, AttemptView

REDRAW_S = 1.0  # the live part redraws from memory this often (no request to the server)
client = state.client()
ss = st.session_state
ss.setdefault("attempts_flash", None)
ss.setdefault("attempts_changes_seen", 0)

st.title("My attempts")


def watcher() -> Watcher:
    """This browser session's watcher, for the client it is signed in with."""
    found = ss.get("attempts_watcher")
    if found is None or found.client is not client:
        found = ss["attempts_watcher"] = Watcher(client)
    return found


live = watcher()
ss.attempts_changes_seen = live.changes  # taken before the list: it shows these changes
mine = state.fetch(client.attempts)
if mine is None:
    st.stop()
by_id = {v.id: v for v in mine}
chosen = st.query_params.get("attempt") or (mine[0].id if mine else None)
if chosen is None:
    st.info("No attempts yet: submit a method from the Method editor.")
    st.page_link("app_pages/editor.py", label="Open the editor", icon=":material/code:")
    st.stop()
if chosen not in by_id:  # a deep link to an older attempt, or an analyst's look at another
    view, error = state.call(client.attempt, chosen)
    if view is None:
        st.error(f"Attempt `{chosen}` cannot be opened: {error}", icon=":material/error:")
        st.stop()
    by_id[chosen] = view


def choose() -> None:
    st.query_params["attempt"] = ss.attempts_chosen


ids = list(by_id)
st.selectbox("Attempt", ids, index=ids.index(chosen), key="attempts_chosen", on_change=choose,
             format_func=lambda i: views.attempt_label(by_id[i]))

view = by_id[chosen]
source = view.source or ""
b1, b2, b3, _ = st.columns([1, 1, 1, 2])
if b1.button("Open in editor", icon=":material/edit:", key="attempts_open"):
    editor.load(source, f"{editor.ATTEMPT_ORIGIN}{chosen}")
    st.switch_page("app_pages/editor.py")
if b2.button("Resubmit as is", icon=":material/replay:", key="attempts_resubmit"):
    again, error = state.call(client.submit, source, view.task, parent_id=chosen,
                              note=f"resubmit of {views.short(chosen)}")
    ss.attempts_flash = error or f"Resubmitted as `{views.short(again.id)}`."
    if again is not None:
        st.query_params["attempt"] = again.id
    st.rerun()
if view.status not in TERMINAL and b3.button("Cancel", icon=":material/cancel:",
                                            key="attempts_cancel"):
    _, ss.attempts_flash = state.call(client.cancel, chosen)
    st.rerun()
if ss.attempts_flash:
    st.info(ss.attempts_flash)


def seeds_section(view: AttemptView) -> None:
    if view.status not in TERMINAL and not view.seed_runs:
        st.progress(0.0, text="waiting for a worker" if not view.started_at
                    else "starting its first seed")
    if view.status not in TERMINAL:  # afterwards the per-seed table says it all
        for run in view.seed_runs:
            fraction, words = views.seed_progress(run)
            st.progress(min(max(fraction, 0.0), 1.0), text=words)
    figures = charts.metrics_figures(view.metrics)
    if figures:
        st.subheader("Metrics (ctx.log)")
        columns = st.columns(min(len(figures), 2))
        for i, (name, fig) in enumerate(figures.items()):
            columns[i % len(columns)].plotly_chart(fig, width="stretch",
                                                   key=f"attempts_metric_{name}")
    elif view.status not in TERMINAL:
        st.caption("Metrics logged with `ctx.log(name, value, step)` appear here as they come.")


def scores_section(view: AttemptView) -> None:
    c1, c2, c3, c4 = st.columns([1, 1.6, 1, 1])  # the score and its interval need room
    c1.metric("Status", views.status_label(view))
    c2.metric("Public PGR [95% interval]", views.pgr_text(view))
    c3.metric("Public accuracy", f"{view.public.accuracy:.3f}"
              if view.public and view.public.accuracy is not None else "—")
    c4.metric("Wall time", format_seconds(view.wall_seconds)
              if view.wall_seconds is not None else "—")
    if view.gpu_seconds is not None:
        g1, g2 = st.columns(2)
        g1.metric("GPU time (wall × GPUs)", format_seconds(view.gpu_seconds))
        g2.metric("Peak GPU memory", f"{view.peak_gpu_mb:.0f} MB"
                  if view.peak_gpu_mb is not None else "—")
    if view.status in TERMINAL and view.seed_runs:
        st.dataframe(views.per_seed_frame(view), hide_index=True,
                     column_config={"public PGR": st.column_config.NumberColumn(format="%.2f")})
        if view.public and view.public.pgr is not None and not view.public.pgr_per_seed:
            st.caption("Per-seed scores are shown to analysts, and to you once the window "
                       "closes: one score per seed would let a method probe the public labels "
                       "once per seed instead of once per attempt.")
    subsets = views.subsets_frame(view)
    if len(subsets):
        st.caption("Per-subset public scores")
        st.dataframe(subsets, hide_index=True)


def output_section(view: AttemptView) -> None:
    if view.error:
        st.error(f"{view.error_kind or 'error'}: {views.plain(view.error)}",
                 icon=":material/error:")
    if view.traceback:
        with st.expander("Traceback", expanded=True):
            st.code(view.traceback, language="python")
    outputs = [r for r in view.seed_runs if r.log_tail or r.error]
    if outputs:
        st.subheader("Output per seed")
        for tab, run in zip(st.tabs([f"seed {r.seed}" for r in outputs]), outputs, strict=True):
            if run.error:
                tab.caption(f"error: {views.plain(run.error)}")
            tab.code(run.log_tail or "(no output)", language="text")
    elif view.log_tail:
        with st.expander("Log tail"):
            st.code(view.log_tail, language="text")
    st.caption(f"seeds {view.seeds} · tries {view.tries} · code sha256 "
               f"{view.code_sha256[:12]}" + (f" · note: {views.plain(view.note)}"
                                             if view.note else ""))


def newest(page_view: AttemptView) -> AttemptView:
    """What the long-polls last brought for an attempt, or what this page run read."""
    heard = live.latest(page_view.id)
    if heard is None or (page_view.seed_runs and not heard.seed_runs):
        return page_view  # the list's view of it, before its first answer: no seed runs
    return heard


def detail(page_view: AttemptView) -> None:
    live.look()
    if live.changes != ss.attempts_changes_seen:
        st.rerun()  # a status changed: redraw the whole page so the selector says so too
    view = newest(page_view)
    scores_section(view)
    seeds_section(view)
    output_section(view)
    if live.error:
        st.caption(f"Live updates paused: {live.error}")
    st.subheader("All my attempts")
    st.dataframe(views.attempts_frame([newest(v) for v in mine]), hide_index=True,
                 width="stretch",
                 column_config={"accuracy": st.column_config.NumberColumn(format="%.3f"),
                                "submitted": st.column_config.DatetimeColumn(
                                    format="YYYY-MM-DD HH:mm:ss")})


def show_diff(diff: str, same: str) -> None:
    if diff:
        st.code(diff, language="diff")
    else:
        st.info(same)


if chosen in {v.id for v in mine}:  # the list leaves out seed runs and metrics
    view = state.fetch(client.attempt, chosen) or view
live.watch([view, *mine])  # the full view first: it carries the live report's version
active = any(v.status not in TERMINAL for v in [view, *mine])
st.fragment(run_every=REDRAW_S if active else None)(detail)(view)


with st.expander("Code"):
    st.code(source, language="python")
if view.parent_id:
    parent, error = state.call(client.attempt, view.parent_id)
    st.subheader(f"Changes since `{views.short(view.parent_id)}`")
    st.page_link("app_pages/attempts.py", label=f"open {views.short(view.parent_id)}",
                 query_params={"attempt": view.parent_id})
    if parent is not None:
        show_diff(views.source_diff(parent, view), "Same code as the attempt it came from.")

if len(mine) >= 2:
    with st.expander("Compare any two attempts"):
        d1, d2 = st.columns(2)
        ids = list(by_id)
        a = d1.selectbox("From", ids, index=1, format_func=lambda i: views.attempt_label(
            by_id[i]), key="attempts_diff_a")
        b = d2.selectbox("To", ids, index=0, format_func=lambda i: views.attempt_label(
            by_id[i]), key="attempts_diff_b")
        show_diff(views.source_diff(by_id[a], by_id[b]), "These two attempts have identical "
                                                         "code.")

