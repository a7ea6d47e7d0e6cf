"""Entry point: `ARENA_URL=http://127.0.0.1:8765 streamlit run participants/workspace/app.py`.

Every page has its own URL (`/editor`, `/attempts?attempt=att_…`, `/forum?post=post_…`), so a
page, an attempt or a post can be reopened or shared. Signed out, every one of those URLs shows
the sign-in form and, once signed in, the page it names. The analyst pages are listed only for
analysts and admins (the server enforces the role anyway).
"""

from __future__ import annotations

import streamlit as st

from participants.workspace import editor, sidebar, state, warm

# (file, title, icon, url path): the research pages every participant sees.
RESEARCH = [("app_pages/brief.py", "Task brief", ":material/menu_book:", "brief"),
            ("app_pages/editor.py", "Method editor", ":material/code:", "editor"),
            ("app_pages/attempts.py", "Attempts", ":material/science:", "attempts")]
STUDY = [("app_pages/leaderboard.py", "Leaderboard", ":material/leaderboard:", "leaderboard"),
         ("app_pages/forum.py", "Forum", ":material/forum:", "forum"),
         ("app_pages/clock.py", "Clock", ":material/schedule:", "clock")]
ANALYSIS = [("app_pages/analyst.py", "Analyst view", ":material/monitoring:", "analyst"),
            ("app_pages/gap_closure.py", "Gap closure", ":material/trending_up:", "gap-closure"),
            ("app_pages/agent_usage.py", "Agents' usage", ":material/smart_toy:", "agents")]
OPTIONAL = [("app_pages/experiments.py", "Experiments", ":material/biotech:", "experiments")]


def _pages(specs: list[tuple[str, str, str, str]]) -> list[st.Page]:
    return [st.Page(path, title=title, icon=icon, url_path=url, default=url == "brief")
            for path, title, icon, url in specs]


def _sign_in_everywhere() -> list[st.Page]:
    """The sign-in form under every page's URL, so a deep link survives signing in."""
    urls = [url for *_, url in RESEARCH + STUDY + ANALYSIS + OPTIONAL]
    return [st.Page("app_pages/sign_in.py", title="Sign in", icon=":material/login:",
                    default=True)] + [
        st.Page("app_pages/sign_in.py", title="Sign in", url_path=url) for url in urls]


st.set_page_config(page_title="w2s-arena workspace", page_icon="🧪", layout="wide")
warm.start()
state.init()
state.write_cookie()

if not state.signed_in():
    nav = st.navigation(_sign_in_everywhere(), position="hidden")
else:
    editor.init()
    research = RESEARCH + [p for p in OPTIONAL if (editor.APP_DIR / p[0]).exists()]
    pages = {"Research": _pages(research), "Study": _pages(STUDY)}
    if state.is_staff():
        pages["Analysis"] = _pages(ANALYSIS)
    nav = st.navigation(pages)
    sidebar.render()
nav.run()
