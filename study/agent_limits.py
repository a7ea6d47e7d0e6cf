"""Limits on what participants send besides methods — usage reports, transcripts, forum posts —
and a check of usage, which an agent's harness reports about itself.

Each has a per-participant daily cap from the protocol ([limits]), enforced inside the writing
transaction and refused with a 429 that says when the window frees up. A usage report is stored
as self-reported: its model must be in the price table, its token counts plausible for one
report (a turn, or a Claude Code session), and its price is recomputed here (the figure the
harness sent is kept beside it).
"""

from __future__ import annotations

import datetime as dt

from study.errors import InvalidError, QuotaError
from study.prices import turn_cost
from study.records import UsageSpec

DAY = dt.timedelta(days=1)
# One report is one model turn, or one Claude Code session (many turns, cache reads summed):
# figures past these are a harness's bug or a lie, not a session.
MAX_TURN_INPUT_TOKENS = 200_000_000
MAX_TURN_OUTPUT_TOKENS = 5_000_000


def server_cost(spec: UsageSpec) -> float:
    """The turn's price from the study's table; InvalidError for an unknown model or an
    implausible token count."""
    read = spec.input_tokens + spec.cache_read_tokens + spec.cache_write_tokens
    if read > MAX_TURN_INPUT_TOKENS:
        raise InvalidError(f"{read} input tokens in one report is not plausible "
                           f"(at most {MAX_TURN_INPUT_TOKENS})")
    if spec.output_tokens > MAX_TURN_OUTPUT_TOKENS:
        raise InvalidError(f"{spec.output_tokens} output tokens in one report is not "
                           f"plausible (at most {MAX_TURN_OUTPUT_TOKENS})")
    try:
        return turn_cost(spec.model, input_tokens=spec.input_tokens,
                         output_tokens=spec.output_tokens,
                         cache_read_tokens=spec.cache_read_tokens,
                         cache_write_tokens=spec.cache_write_tokens)
    except ValueError as exc:
        raise InvalidError(str(exc)) from None


def _refuse(what: str, used: float, cap: float, unit: str, oldest: dt.datetime | None,
            now: dt.datetime) -> QuotaError:
    retry = max(1.0, ((oldest + DAY) - now).total_seconds()) if oldest is not None else None
    return QuotaError(f"{what}: {used:g} of {cap:g} {unit} in the last 24 h are used; the "
                      "protocol's [limits] set this cap", retry_after=retry)


def check_daily_rows(cur, *, table: str, participant_id: str, now: dt.datetime, cap: int,
                     what: str, time_column: str = "recorded_at") -> None:
    """Refuse one more row of `table` when the participant already wrote `cap` today."""
    used, oldest = cur.execute(
        f"SELECT count(*), min({time_column}) FROM {table} WHERE participant_id = ? AND "
        f"{time_column} >= ?", [participant_id, now - DAY]).fetchone()
    if used + 1 > cap:
        raise _refuse(what, used, cap, "per day", oldest, now)


def check_daily_bytes(cur, *, participant_id: str, now: dt.datetime, adding: int,
                      cap_mb: float) -> None:
    """Refuse transcript entries that would take the participant past `cap_mb` today."""
    used, oldest = cur.execute(
        "SELECT coalesce(sum(strlen(content)), 0), min(recorded_at) FROM transcripts "
        "WHERE participant_id = ? AND recorded_at >= ?", [participant_id, now - DAY]).fetchone()
    if used + adding > cap_mb * 1024 * 1024:
        raise _refuse("transcript bytes", round((used + adding) / 2**20, 2), cap_mb,
                      "MB per day (with this request)", oldest, now)
