"""Turn what the SDK raises into one sentence a researcher can act on (pure, no Streamlit)."""

from __future__ import annotations

import datetime as dt

import httpx

from participants.sdk import ArenaAPIError

# What to do next, per HTTP status; the server's own message says what went wrong.
_HINTS = {
    401: "Your token was not accepted (wrong, revoked or expired). Sign in again with a valid "
         "token from the study admin.",
    403: "This is not allowed for your role.",
    404: "Not found.",
    409: "Not possible right now.",
    413: "The method is too large for this study.",
    422: "The server rejected this input.",
    429: "Your quota is used up for now.",
}


def describe_error(exc: BaseException, *, url: str = "") -> str:
    """A short message for the page. Unknown exceptions are re-raised by the caller, not here."""
    if isinstance(exc, httpx.TransportError):
        where = f" at {url}" if url else ""
        return (f"The study server{where} cannot be reached right now ({type(exc).__name__}). "
                "Nothing is lost — your editor text is kept; try again when it is back.")
    if isinstance(exc, ArenaAPIError):
        hint = _HINTS.get(exc.status, f"The server answered {exc.status}.")
        text = f"{hint} {exc.message}".strip()
        if exc.status == 429 and exc.retry_after:
            text += f" Try again in {format_seconds(exc.retry_after)}."
        return text
    return f"Unexpected error: {exc}"


def format_seconds(seconds: float) -> str:
    """`3h 05m`, `4m 10s`, `12s`: readable durations for quotas, clocks and wall times."""
    seconds = max(0, round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h {minutes:02d}m"
    if minutes:
        return f"{minutes}m {secs:02d}s"
    return f"{secs}s"


def format_when(when: dt.datetime | None) -> str:
    return when.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC") if when else "—"
