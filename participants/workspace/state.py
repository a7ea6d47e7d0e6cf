"""Who is signed in, the shared SDK client, and one guarded way to call the server.

Signing in trades the participant token for a server-issued workspace session (`POST
/v1/sessions`); the token is then forgotten. The session secret is what the SDK client sends,
and it is kept in a cookie so that a reload of the page stays signed in: the new Streamlit
session reads the cookie and asks `/v1/me`. Nothing secret is ever put in a URL. Sign out ends
the session on the server, so the cookie's secret is worthless after it. The client is a
`cache_resource` keyed by (url, secret): one httpx connection pool per session.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from collections.abc import Callable
from typing import Any, TypeVar

import httpx
import streamlit as st

from participants.sdk import DEFAULT_URL, ArenaAPIError, ArenaClient
from participants.workspace.errors import describe_error
from study.records import MeView, Role

T = TypeVar("T")

TOKEN, ME, NOTICE = "auth_token", "auth_me", "auth_notice"
COOKIE_PENDING, SIGNED_OUT, CACHE = "auth_cookie_pending", "auth_signed_out", "state_cache"
COOKIE = "w2s_session"


def server_url() -> str:
    return (os.environ.get("ARENA_URL") or DEFAULT_URL).rstrip("/")


@st.cache_resource(show_spinner=False)
def _client(url: str, token: str) -> ArenaClient:
    # One retry only: a page should say "server unreachable" within a second, not after the
    # SDK's full back-off meant for unattended agents.
    return ArenaClient(url, token, retries=1, timeout=20)


def init() -> None:
    """Session keys shared by every page, set once per browser session; a fresh session (a
    reload, a new tab) signs in again from the session cookie when it is still good."""
    for key in (TOKEN, ME, NOTICE, COOKIE_PENDING):
        st.session_state.setdefault(key, None)
    st.session_state.setdefault(SIGNED_OUT, False)
    st.session_state.setdefault(CACHE, {})
    if st.session_state[TOKEN] is None and not st.session_state[SIGNED_OUT]:
        _resume(st.context.cookies.get(COOKIE))


def _resume(secret: str | None) -> None:
    if not secret:
        return
    try:
        view = _client(server_url(), secret).me()
    except ArenaAPIError as exc:  # ended, expired, revoked: forget it and say why
        st.session_state[NOTICE] = describe_error(exc)
        st.session_state[COOKIE_PENDING] = ("", 0)
        return
    except httpx.TransportError as exc:
        st.session_state[NOTICE] = describe_error(exc, url=server_url())
        return
    st.session_state[TOKEN], st.session_state[ME] = secret, view


def write_cookie() -> None:
    """Set or clear the session cookie in the browser, once, after a sign-in or sign-out.
    SameSite=Strict: no other site's page can send it along."""
    pending = st.session_state.get(COOKIE_PENDING)
    if pending is None:
        return
    value, max_age = pending
    st.session_state[COOKIE_PENDING] = None
    st.html(f"<script>document.cookie = '{COOKIE}={value}; path=/; max-age={max_age}; "
            "SameSite=Strict';</script>", unsafe_allow_javascript=True)


def cached(name: str, fn: Callable[[], T], ttl: float = 300.0) -> T | None:
    """`fetch` remembered in this session for `ttl` seconds: the brief, the baselines, the
    study's tasks and limits change only by an audited amendment, and refetching them on every
    rerun made each page switch wait on the server."""
    now = time.monotonic()
    hit = st.session_state[CACHE].get(name)
    if hit is not None and now - hit[0] < ttl:
        return hit[1]
    value = fetch(fn)
    if value is not None:
        st.session_state[CACHE][name] = (now, value)
    return value


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
        # The token's own client is used once, to open a session; it is not kept.
        with ArenaClient(server_url(), token, retries=1, timeout=20) as once:
            opened = once.open_session()
        view = _client(server_url(), opened.session).me()
    except (ArenaAPIError, httpx.TransportError) as exc:
        return describe_error(exc, url=server_url())
    st.session_state[TOKEN], st.session_state[ME] = opened.session, view
    st.session_state[NOTICE], st.session_state[SIGNED_OUT] = None, False
    seconds = max(0, int((opened.expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    st.session_state[COOKIE_PENDING] = (opened.session, seconds)
    st.session_state[CACHE] = {}
    return None


def sign_out(notice: str | None = None) -> None:
    """Forget the session here and end it on the server (best effort: an ended or revoked
    session is already worthless)."""
    secret = st.session_state.get(TOKEN)
    if secret and notice is None:
        with contextlib.suppress(ArenaAPIError, httpx.TransportError):
            _client(server_url(), secret).end_session()
    st.session_state[TOKEN], st.session_state[ME] = None, None
    st.session_state[NOTICE], st.session_state[SIGNED_OUT] = notice, True
    st.session_state[COOKIE_PENDING] = ("", 0)
    st.session_state[CACHE] = {}


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
