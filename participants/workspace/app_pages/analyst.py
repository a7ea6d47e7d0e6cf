"""Study overview for analysts: attempts over time per arm and a first frontier plot."""

import streamlit as st

from participants.workspace import charts, state
from participants.workspace.views import attempts_frame

client = state.client()
st.title("Analyst view")

if not state.is_staff():
    st.warning("This view is for analysts and admins.")
    st.stop()

everyone = state.fetch(client.attempts, everyone=True, limit=5000)
people = state.fetch(client.participants) or []
arms = {p.id: p.arm for p in people}
if everyone is not None:
    c1, c2, c3 = st.columns(3)
    c1.metric("Attempts", len(everyone))
    c2.metric("Participants with attempts", len({v.participant_id for v in everyone}))
    c3.metric("Scored", sum(v.status.value == "scored" for v in everyone))
    if everyone:
        st.subheader("Attempts over time, per arm")
        st.plotly_chart(charts.attempts_over_time(everyone, arms), width="stretch")
        st.subheader("Frontier: best public PGR per arm over time")
        if charts.scored_frame(everyone, arms).empty:
            st.info("No scored attempts yet.")
        else:
            st.plotly_chart(charts.frontier(everyone, arms), width="stretch")
        with st.expander("All attempts"):
            st.dataframe(attempts_frame(everyone), hide_index=True, width="stretch")
    else:
        st.info("No attempts yet.")
