"""The sidebar of every signed-in page: who is signed in, the clock, the server's state, sign out.

The clock is here, not only on its page, because active time is an x-axis of the analysis:
someone who forgot to clock in should see it wherever they are.
"""

from __future__ import annotations

import datetime as dt

import streamlit as st

from participants.workspace import state
from participants.workspace.errors import format_seconds
from study.records import Role


def render() -> None:
    who = state.me().participant
    with st.sidebar:
        st.caption(f"Signed in as **{who.display_name}** · {who.role.value}"
                   + (f" · arm {who.arm}" if who.arm else ""))
        if who.role is Role.PARTICIPANT:
            clock_badge()
        server_status()
        c1, c2 = st.columns(2)
        c1.caption(f"[API docs]({state.server_url()}/docs)")
        if c2.button("Sign out", icon=":material/logout:", key="auth_sign_out"):
            state.sign_out()
            st.rerun()


@st.fragment(run_every=30.0)
def clock_badge() -> None:
    view, error = state.call(state.client().clock)
    if view is None:
        st.caption(f"Clock: unknown ({error})")
        return
    if view.clocked_in_since:
        session = (dt.datetime.now(dt.UTC) - view.clocked_in_since).total_seconds()
        st.success(f"Clocked in · {format_seconds(session)}", icon=":material/timer:")
        if st.button("Clock out", key="sidebar_clock_out", width="stretch"):
            state.call(state.client().clock_out)
            st.rerun()
    else:
        st.warning("Clocked out: your work now does not count as active time.",
                   icon=":material/timer_off:")
        if st.button("Clock in", key="sidebar_clock_in", type="primary", width="stretch"):
            state.call(state.client().clock_in)
            st.rerun()


@st.fragment(run_every=30.0)
def server_status() -> None:
    """Say so when attempts cannot run now (a Ray head away, a stalled worker, a full disk):
    submissions are still accepted and wait in the queue."""
    report, error = state.call(state.client().health_report)
    if report is None:
        st.error(f"Server: unreachable ({error})", icon=":material/cloud_off:")
        return
    for problem in report.get("problems", []):
        st.error(f"Server: {problem}", icon=":material/error:")
    for warning in report.get("warnings", []):
        st.warning(f"Runner: {warning}", icon=":material/hourglass_top:")
