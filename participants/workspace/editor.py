"""The method editor's state: its text survives reruns, page switches, failed submits, a server
outage and a reload, because it lives in `st.session_state` and, as a draft, on the server.

The code editor component (`streamlit-code-editor`, Ace with Python highlighting) ignores new
`code` arguments once mounted, so loading a baseline, an upload, an old attempt or the saved
draft bumps a version that is part of the widget key: a fresh editor mounts with the new text.
"""

from __future__ import annotations

import difflib
import hashlib
import uuid
from pathlib import Path

import streamlit as st
from code_editor import code_editor

from participants.workspace import state
from study.method_source import SourceProblem, find_problem

APP_DIR = Path(__file__).resolve().parent
SOURCE, VERSION, ORIGIN, SEEN, NONCE = (
    "editor_source", "editor_version", "editor_origin", "editor_seen", "editor_nonce")
LOADED, SAVED, DRAFT_READ = "editor_loaded", "editor_saved", "editor_draft_read"
ATTEMPT_ORIGIN = "attempt "  # origin of a text loaded from an attempt: "attempt <full id>"


def init() -> None:
    """Once per browser session (after sign-in): the defaults, then the server's draft."""
    for key, value in ((SOURCE, ""), (VERSION, 0), (ORIGIN, "empty"), (SEEN, ""),
                       (NONCE, uuid.uuid4().hex), (LOADED, ""), (SAVED, ""),
                       (DRAFT_READ, False)):
        st.session_state.setdefault(key, value)
    if st.session_state[DRAFT_READ]:
        return
    draft, error = state.call(state.client().draft)
    if error is None:  # an unreachable server is asked again on the next rerun
        st.session_state[DRAFT_READ] = True
    if draft is not None and not st.session_state[SOURCE]:
        load(draft.source, draft.origin or "your draft")
        st.session_state[SAVED] = _sha(draft.source, draft.origin)
        st.session_state[LOADED] = ""  # a draft is already an edit of its origin


def _sha(text: str, origin: str | None) -> str:
    return hashlib.sha256(f"{origin}\0{text}".encode()).hexdigest()


def source() -> str:
    return st.session_state[SOURCE]


def load(text: str, origin: str) -> None:
    """Replace the editor's text (a baseline, an uploaded file, an earlier attempt)."""
    st.session_state[SOURCE] = st.session_state[LOADED] = text
    st.session_state[ORIGIN] = origin
    st.session_state[VERSION] += 1
    st.session_state[SEEN] = ""


def parent_id() -> str | None:
    """The attempt the text came from, for the server's record and the attempt page's diff."""
    origin = st.session_state[ORIGIN]
    return origin.removeprefix(ATTEMPT_ORIGIN) if origin.startswith(ATTEMPT_ORIGIN) else None


def origin_label() -> str:
    """What the header says the text is: as loaded, edited, or replaced by the researcher."""
    origin, text, loaded = (st.session_state[ORIGIN], st.session_state[SOURCE],
                            st.session_state[LOADED])
    if origin.startswith(ATTEMPT_ORIGIN):
        origin = ATTEMPT_ORIGIN + origin.removeprefix(ATTEMPT_ORIGIN)[:12]
    if text == loaded or origin == "empty":
        return origin if text else "empty"
    if loaded and difflib.SequenceMatcher(None, loaded, text).quick_ratio() < 0.3:
        return f"your own text (replaced {origin})"
    return f"{origin}, edited"


def save_draft(task: str | None) -> None:
    """Send the text to the server when it changed since the last save (the component's
    debounce already limits this to one save per second of typing)."""
    text, origin = st.session_state[SOURCE], st.session_state[ORIGIN]
    digest = _sha(text, origin)
    if digest == st.session_state[SAVED] or not text.strip():
        return
    _, error = state.call(state.client().save_draft, text, task=task, origin=origin)
    if error is None:
        st.session_state[SAVED] = digest


# An in-editor button: text and intent arrive in one message, so a click can never race the
# debounce that syncs the text (Ctrl+Enter does the same; it is the component's "submit").
SUBMIT_BUTTON = [{"name": "Submit", "feather": "Send", "primary": True, "hasText": True,
                  "showWithIcon": True, "commands": ["submit"],
                  "style": {"bottom": "0.4rem", "right": "0.4rem"}}]


def annotations(problem: SourceProblem | None) -> list[dict]:
    """Ace gutter markers: the line the problem is on, with its message on hover."""
    if problem is None:
        return []
    return [{"row": problem.line - 1, "column": problem.column, "type": "error",
             "text": problem.message}]


def render(problem: SourceProblem | None, height: tuple[int, int] = (22, 40)) -> bool:
    """Draw the editor and take in what the researcher typed; True when they asked, from
    inside the editor, to submit it."""
    response = code_editor(
        st.session_state[SOURCE], lang="python", height=list(height), theme="default",
        # debounce: typing reaches Python within a second, so a page switch or a server
        # outage never loses it. Not "blur": its rerun races the click that caused the blur
        # and can swallow a page switch or a button press.
        response_mode="debounce", buttons=SUBMIT_BUTTON,
        options={"wrap": False, "showPrintMargin": False, "showLineNumbers": True},
        # Line numbers match the server's "method.py line N" errors; Ace's top scroll margin
        # would shift the gutter by a line, and live completion steals Enter while typing.
        props={"showGutter": True, "scrollMargin": [0, 0, 0, 0],
               "enableLiveAutocompletion": False, "enableBasicAutocompletion": True,
               "annotations": annotations(problem)},
        key=f"editor_widget_{st.session_state[VERSION]}")
    # A fresh component answers with an empty id until the user edits; a repeated id is an
    # old answer replayed on rerun. Only a new answer may overwrite the stored text.
    if not (response and response.get("id")) or response["id"] == st.session_state[SEEN]:
        return False
    st.session_state[SEEN] = response["id"]
    st.session_state[SOURCE] = response.get("text", "")
    return response.get("type") == "submit"


def check_upload(name: str, data: bytes, max_bytes: int | None) -> tuple[str | None, str | None]:
    """(text, None) for a loadable file, (None, message) otherwise."""
    if max_bytes is not None and len(data) > max_bytes:
        return None, (f"{name} is {len(data):,} bytes; this study takes methods up to "
                      f"{max_bytes:,} bytes. The editor keeps its text.")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        return None, f"{name} is not UTF-8 text, so it cannot be a Python method."
    if not text.strip():
        return None, f"{name} is empty."
    return text, None


def precheck(text: str, max_bytes: int | None) -> str | None:
    """The server's own checks, run here first: an empty, oversized, unparsable source or one
    without `run` is refused before a round trip (and the server refuses it too, uncharged)."""
    if not text.strip():
        return "The editor is empty: write a method with `def run(ctx):` or load a baseline."
    size = len(text.encode("utf-8"))
    if max_bytes is not None and size > max_bytes:
        return (f"The method is {size:,} bytes; this study takes methods up to {max_bytes:,} "
                "bytes. The editor keeps its text.")
    problem = find_problem(text)
    return problem.message if problem else None


def idempotency_key(text: str, task: str) -> str:
    """Same text, same task, no success since: same key, so a retried click after a network
    failure never makes two attempts. A success bumps the nonce for the next submit."""
    raw = f"{st.session_state[NONCE]}\0{task}\0{text}".encode()
    return "ws-" + hashlib.sha256(raw).hexdigest()[:32]


def submitted() -> None:
    st.session_state[NONCE] = uuid.uuid4().hex
