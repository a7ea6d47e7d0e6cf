"""Best public PGR per participant on one task (what the protocol lets me see), with its
interval, every attempt counted, the task's fixed baselines as reference rows, and my curve."""

import pandas as pd
import streamlit as st

from participants.workspace import charts, state

client = state.client()
st.title("Leaderboard")

study = state.cached("study", client.study)
tasks = {t.name: t for t in state.cached("tasks", client.tasks) or []}
names = (study.tasks.get("hill_climb") or []) if study else []
# Shown even for one task: the board is per task, and it should say which.
task = st.selectbox("Task", names, key="leaderboard_task")


def reference_rows(name: str | None) -> list[dict]:
    """The fixed baselines every PGR is measured against: the weak teacher is PGR 0 and the
    strong model trained on gold labels is PGR 1, by definition."""
    info = tasks.get(name or "")
    if info is None or info.weak is None or info.ceiling is None:
        return []
    return [{"rank": None, "participant": f"weak teacher (accuracy {info.weak:.3f})",
             "arm": "baseline", "kind": "reference", "best public PGR": "0.00 (by definition)",
             "attempts": None, "best at": None},
            {"rank": None, "participant": f"ceiling: strong on gold labels (accuracy "
                                          f"{info.ceiling:.3f})",
             "arm": "baseline", "kind": "reference", "best public PGR": "1.00 (by definition)",
             "attempts": None, "best at": None}]


@st.fragment(run_every=10.0)
def live_board() -> None:
    rows = state.fetch(client.leaderboard, task)
    if rows is None:
        return
    me = state.me().participant.id
    table = [{"rank": r.rank, "participant": r.display_name + (" (me)" if r.participant_id == me
                                                                 else ""),
              "arm": r.arm, "kind": r.kind,
              "best public PGR": r.shown or (f"{r.best_pgr:.2f}" if r.best_pgr is not None
                                             else "—"),
              "attempts": r.attempts, "best at": r.best_at} for r in rows]
    if not rows:
        st.info("No scored attempts on this task yet.")
    st.dataframe(pd.DataFrame(table + reference_rows(task)), hide_index=True, width="stretch",
                 column_config={
                     "best public PGR": st.column_config.TextColumn(
                         help="the mean over seeds and, in brackets, its 95% interval"),
                     "attempts": st.column_config.NumberColumn(
                         help="all attempts on this task, scored or not"),
                     "best at": st.column_config.DatetimeColumn(format="YYYY-MM-DD HH:mm")})


live_board()

st.subheader("My best so far")
mine = state.fetch(client.attempts, task=task)
if mine is not None:
    if charts.scored_frame(mine).empty:
        st.info("Your curve starts with your first scored attempt.")
    else:
        st.plotly_chart(charts.best_so_far(mine), width="stretch")
