"""Entry point: `ARENA_URL=http://127.0.0.1:8765 streamlit run participants/workspace/app.py`.

Signed out, the only page is sign-in; signed in, the navigation lists the research pages, and
the analyst view only for analysts and admins (the server enforces the role anyway).
"""

from __future__ import annotations

import streamlit as st

from participants.workspace import editor, state

st.set_page_config(page_title="w2s-arena workspace", page_icon="🧪", layout="wide")
state.init()
editor.init()

if not state.signed_in():
    pages: list[st.Page] | dict[str, list[st.Page]] = [
        st.Page("app_pages/sign_in.py", title="Sign in", icon=":material/login:")]
else:
    pages = {
        "Research": [
            st.Page("app_pages/brief.py", title="Task brief", icon=":material/menu_book:",
                    default=True),
            st.Page("app_pages/editor.py", title="Method editor", icon=":material/code:"),
            st.Page("app_pages/attempts.py", title="Attempts", icon=":material/science:"),
        ],
        "Study": [
            st.Page("app_pages/leaderboard.py", title="Leaderboard",
                    icon=":material/leaderboard:"),
            st.Page("app_pages/forum.py", title="Forum", icon=":material/forum:"),
            st.Page("app_pages/clock.py", title="Clock", icon=":material/schedule:"),
        ],
    }
    if state.is_staff():
        pages["Analysis"] = [
            st.Page("app_pages/analyst.py", title="Analyst view", icon=":material/monitoring:"),
            st.Page("app_pages/gap_closure.py", title="Gap closure",
                    icon=":material/trending_up:"),
            st.Page("app_pages/agent_usage.py", title="Agents' usage",
                    icon=":material/smart_toy:"),
        ]
    who = state.me().participant
    with st.sidebar:
        st.caption(f"Signed in as **{who.display_name}** · {who.role.value}"
                   + (f" · arm {who.arm}" if who.arm else ""))
        st.caption(f"Server: `{state.server_url()}`")
        if st.button("Sign out", icon=":material/logout:", key="auth_sign_out"):
            state.sign_out()
            st.rerun()

st.navigation(pages).run()
