"""Best public PGR per participant (what the protocol lets me see), and my best-so-far curve."""

import pandas as pd
import streamlit as st

from participants.workspace import charts, state

client = state.client()
st.title("Leaderboard")


@st.fragment(run_every=10.0)
def live_board() -> None:
    rows = state.fetch(client.leaderboard)
    if rows is None:
        return
    if not rows:
        st.info("No scored attempts yet.")
        return
    me = state.me().participant.id
    st.dataframe(pd.DataFrame([{
        "rank": r.rank, "participant": r.display_name + (" (me)" if r.participant_id == me
                                                          else ""),
        "arm": r.arm, "kind": r.kind, "best public PGR": r.best_pgr, "attempts": r.attempts,
        "best at": r.best_at} for r in rows]), hide_index=True, width="stretch",
        column_config={"best public PGR": st.column_config.NumberColumn(format="%.2f"),
                       "best at": st.column_config.DatetimeColumn(
                           format="YYYY-MM-DD HH:mm:ss")})


live_board()

st.subheader("My best so far")
mine = state.fetch(client.attempts)
if mine is not None:
    if charts.scored_frame(mine).empty:
        st.info("Your curve starts with your first scored attempt.")
    else:
        st.plotly_chart(charts.best_so_far(mine), width="stretch")
