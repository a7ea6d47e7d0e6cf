"""Who is signed in, the shared SDK client, and one guarded way to call the server.

The token lives only in `st.session_state` (never in the URL or query string). The client is a
`cache_resource` keyed by (url, token): one httpx connection pool per token, shared by reruns.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import streamlit as st

from participants.sdk import DEFAULT_URL, ArenaAPIError, ArenaClient
from participants.workspace.errors import describe_error
from study.records import MeView, Role

T = TypeVar("T")

TOKEN, ME, NOTICE = "auth_token", "auth_me", "auth_notice"


def server_url() -> str:
    return (os.environ.get("ARENA_URL") or DEFAULT_URL).rstrip("/")


@st.cache_resource(show_spinner=False)
def _client(url: str, token: str) -> ArenaClient:
    # One retry only: a page should say "server unreachable" within a second, not after the
    # SDK's full back-off meant for unattended agents.
    return ArenaClient(url, token, retries=1, timeout=20)


def init() -> None:
    """Session keys shared by every page, set once per browser session."""
    st.session_state.setdefault(TOKEN, None)
    st.session_state.setdefault(ME, None)
    st.session_state.setdefault(NOTICE, None)


def signed_in() -> bool:
    return bool(st.session_state.get(TOKEN)) and st.session_state.get(ME) is not None


def client() -> ArenaClient:
    return _client(server_url(), st.session_state[TOKEN])


def me() -> MeView:
    return st.session_state[ME]


def is_staff() -> bool:
    return signed_in() and me().participant.role in (Role.ANALYST, Role.ADMIN)


def sign_in(token: str) -> str | None:
    """Check the token with `/v1/me`; returns an error message, or None when signed in."""
    token = token.strip()
    if not token:
        return "Paste your participant token first."
    try:
        view = _client(server_url(), token).me()
    except (ArenaAPIError, httpx.TransportError) as exc:
        return describe_error(exc, url=server_url())
    st.session_state[TOKEN], st.session_state[ME] = token, view
    st.session_state[NOTICE] = None
    return None


def sign_out(notice: str | None = None) -> None:
    st.session_state[TOKEN], st.session_state[ME] = None, None
    st.session_state[NOTICE] = notice


def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T | None, str | None]:
    """Run one SDK call; server and network failures come back as a message, not a crash.

    A 401 mid-session (the admin revoked the token) signs out, so the next rerun shows the
    sign-in page with the reason.
    """
    try:
        return fn(*args, **kwargs), None
    except (ArenaAPIError, httpx.TransportError) as exc:
        message = describe_error(exc, url=server_url())
        if isinstance(exc, ArenaAPIError) and exc.status == 401:
            sign_out(message)
        return None, message


def fetch(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T | None:
    """`call` that shows its error in the page and returns None."""
    value, error = call(fn, *args, **kwargs)
    if error:
        st.error(error, icon=":material/error:")
    return value
