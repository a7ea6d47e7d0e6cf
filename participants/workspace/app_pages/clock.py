"""Clock in and out: active time is an x-axis of the human-vs-AI analysis."""

import datetime as dt

import streamlit as st

from participants.workspace import state
from participants.workspace.errors import format_seconds, format_when

client = state.client()
ss = st.session_state
ss.setdefault("clock_error", None)

st.title("Clock")
st.write("Clock in while you work on the study and out when you stop; agents are clocked by "
         "their harness, so both arms are compared on active time.")


@st.fragment(run_every=5.0)
def live_clock() -> None:
    view = state.fetch(client.clock)
    if view is None:
        return
    c1, c2 = st.columns(2)
    c1.metric("Active time so far", format_seconds(view.active_seconds))
    if view.clocked_in_since:
        session = (dt.datetime.now(dt.UTC) - view.clocked_in_since).total_seconds()
        c2.metric("This session", format_seconds(session))
        st.success(f"Clocked in since {format_when(view.clocked_in_since)}",
                   icon=":material/timer:")
    else:
        c2.metric("This session", "—")
        st.info("Clocked out.", icon=":material/timer_off:")


live_clock()
b1, b2, _ = st.columns([1, 1, 4])
if b1.button("Clock in", type="primary", key="clock_in"):
    ss.clock_error = state.call(client.clock_in)[1]
    st.rerun()
if b2.button("Clock out", key="clock_out"):
    ss.clock_error = state.call(client.clock_out)[1]
    st.rerun()
if ss.clock_error:
    st.warning(ss.clock_error)
