"""Import the participant pages' heavy modules once per workspace process, in the background,
from the first page run (the sign-in form): otherwise the first visit to a page with a chart
(the leaderboard, an attempt) waited on plotly's import, most of a second on a loaded machine.

A page that needs one of these while the import is still running waits on Python's import lock
for the rest of it, never imports it twice.
"""

from __future__ import annotations

import importlib
import threading

import streamlit as st

MODULES = ("plotly.graph_objects", "plotly.express", "participants.workspace.charts",
           "participants.workspace.views")


def _import_all() -> None:
    for name in MODULES:
        importlib.import_module(name)


@st.cache_resource(show_spinner=False)
def start() -> threading.Thread:
    """Once per process: the import thread (a daemon, so it never holds up shutdown)."""
    thread = threading.Thread(target=_import_all, name="workspace-warm-imports", daemon=True)
    thread.start()
    return thread
