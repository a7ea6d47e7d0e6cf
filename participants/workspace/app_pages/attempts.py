"""My attempts, live: status and queue position, scores, failures, diffs, resubmit."""

import streamlit as st

from participants.workspace import editor, state, views
from participants.workspace.errors import format_seconds
from study.records import TERMINAL

REFRESH_S = 2.0
client = state.client()
ss = st.session_state
ss.setdefault("attempts_flash", None)

st.title("My attempts")


@st.fragment(run_every=REFRESH_S)
def live_table() -> None:
    """Only this table and the detail below re-run every few seconds, not the whole page."""
    mine = state.fetch(client.attempts)
    if mine is None:
        return
    if not mine:
        st.info("No attempts yet: submit a method from the Method editor.")
        return
    st.dataframe(views.attempts_frame(mine), hide_index=True, width="stretch",
                 column_config={"accuracy": st.column_config.NumberColumn(format="%.3f"),
                                "submitted": st.column_config.DatetimeColumn(
                                    format="YYYY-MM-DD HH:mm:ss")})


@st.fragment(run_every=REFRESH_S)
def live_detail(attempt_id: str) -> None:
    view = state.fetch(client.attempt, attempt_id)
    if view is None:
        return
    c1, c2, c3, c4 = st.columns(4)
    c1.metric("Status", views.status_label(view))
    c2.metric("Public PGR ± SE", views.pgr_text(view))
    c3.metric("Public accuracy", f"{view.public.accuracy:.3f}"
              if view.public and view.public.accuracy is not None else "—")
    c4.metric("Wall time", format_seconds(view.wall_seconds)
              if view.wall_seconds is not None else "—")
    if view.status not in TERMINAL:
        st.progress(0.5 if view.started_at else 0.1,
                    text="running its seeds" if view.started_at else "waiting for a worker")
    subsets = views.subsets_frame(view)
    if len(subsets):
        st.caption("Per-subset public scores")
        st.dataframe(subsets, hide_index=True)
    if view.error:
        st.error(f"{view.error_kind or 'error'}: {view.error}", icon=":material/error:")
    if view.traceback:
        with st.expander("Traceback", expanded=True):
            st.code(view.traceback, language="python")
    if view.log_tail:
        with st.expander("Log tail"):
            st.code(view.log_tail, language="text")
    st.caption(f"seeds {view.seeds} · tries {view.tries} · code sha256 "
               f"{view.code_sha256[:12]}" + (f" · note: {view.note}" if view.note else ""))


live_table()

# Selectors use one snapshot per page run; the fragments above keep their content fresh.
mine = state.fetch(client.attempts) or []
if mine:
    by_id = {v.id: v for v in mine}
    st.subheader("Details")
    chosen = st.selectbox("Attempt", list(by_id), format_func=lambda i: views.attempt_label(
        by_id[i]), key="attempts_chosen")
    live_detail(chosen)
    source = by_id[chosen].source or ""
    with st.expander("Code"):
        st.code(source, language="python")
    b1, b2, _ = st.columns([1, 1, 3])
    if b1.button("Open in editor", icon=":material/edit:", key="attempts_open"):
        editor.load(source, f"attempt {views.short(chosen)}")
        st.switch_page("app_pages/editor.py")
    if b2.button("Resubmit as is", icon=":material/replay:", key="attempts_resubmit"):
        again, error = state.call(client.submit, source, by_id[chosen].task,
                                  note=f"resubmit of {views.short(chosen)}")
        ss.attempts_flash = error or f"Resubmitted as `{views.short(again.id)}`."
        st.rerun()
    if ss.attempts_flash:
        st.info(ss.attempts_flash)

    if len(mine) >= 2:
        st.subheader("Compare two attempts")
        d1, d2 = st.columns(2)
        ids = list(by_id)
        a = d1.selectbox("From", ids, index=1, format_func=lambda i: views.attempt_label(
            by_id[i]), key="attempts_diff_a")
        b = d2.selectbox("To", ids, index=0, format_func=lambda i: views.attempt_label(
            by_id[i]), key="attempts_diff_b")
        diff = views.source_diff(by_id[a], by_id[b])
        if diff:
            st.code(diff, language="diff")
        else:
            st.info("These two attempts have identical code.")
