"""The method editor's state: its text survives reruns, page switches, failed submits and a
server outage because it lives in `st.session_state`, not only inside the browser component.

The code editor component (`streamlit-code-editor`, Ace with Python highlighting) ignores new
`code` arguments once mounted, so loading a baseline, an upload or an old attempt bumps a
version that is part of the widget key: a fresh editor mounts with the new text.
"""

from __future__ import annotations

import hashlib
import uuid

import streamlit as st
from code_editor import code_editor

SOURCE, VERSION, ORIGIN, SEEN, NONCE = (
    "editor_source", "editor_version", "editor_origin", "editor_seen", "editor_nonce")


def init() -> None:
    st.session_state.setdefault(SOURCE, "")
    st.session_state.setdefault(VERSION, 0)
    st.session_state.setdefault(ORIGIN, "empty")
    st.session_state.setdefault(SEEN, "")
    st.session_state.setdefault(NONCE, uuid.uuid4().hex)


def source() -> str:
    return st.session_state[SOURCE]


def load(text: str, origin: str) -> None:
    """Replace the editor's text (a baseline, an uploaded file, an earlier attempt)."""
    st.session_state[SOURCE] = text
    st.session_state[ORIGIN] = origin
    st.session_state[VERSION] += 1
    st.session_state[SEEN] = ""


# An in-editor button: text and intent arrive in one message, so a click can never race the
# debounce that syncs the text (Ctrl+Enter does the same; it is the component's "submit").
SUBMIT_BUTTON = [{"name": "Submit", "feather": "Send", "primary": True, "hasText": True,
                  "showWithIcon": True, "commands": ["submit"],
                  "style": {"bottom": "0.4rem", "right": "0.4rem"}}]


def render(height: tuple[int, int] = (22, 40)) -> bool:
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
               "enableLiveAutocompletion": False, "enableBasicAutocompletion": True},
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
    """Cheap checks before a round trip; the server still validates everything itself."""
    if not text.strip():
        return "The editor is empty: write a method with `def run(ctx):` or load a baseline."
    size = len(text.encode("utf-8"))
    if max_bytes is not None and size > max_bytes:
        return (f"The method is {size:,} bytes; this study takes methods up to {max_bytes:,} "
                "bytes. The editor keeps its text.")
    return None


def idempotency_key(text: str, task: str) -> str:
    """Same text, same task, no success since: same key, so a retried click after a network
    failure never makes two attempts. A success bumps the nonce for the next submit."""
    raw = f"{st.session_state[NONCE]}\0{task}\0{text}".encode()
    return "ws-" + hashlib.sha256(raw).hexdigest()[:32]


def submitted() -> None:
    st.session_state[NONCE] = uuid.uuid4().hex
