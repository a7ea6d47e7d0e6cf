"""The study's records as frames, built from the server's Parquet exports (bytes in, frames
out) or from a DuckDB file opened read-only when no server holds it."""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.stats import ItemResults


@dataclass
class StudyData:
    study_start: pd.Timestamp
    study_end: pd.Timestamp
    attempts: pd.DataFrame
    sessions: pd.DataFrame
    flags: pd.DataFrame
    usage: pd.DataFrame = field(default_factory=pd.DataFrame)
    generalization: pd.DataFrame = field(default_factory=pd.DataFrame)
    # Everyone enrolled (so a participant or an arm with no finished attempt still counts),
    # and the protocol's pre-registered [analysis] plan and arms.
    participants: pd.DataFrame | None = None
    plan: dict = field(default_factory=dict)
    arms: list[str] = field(default_factory=list)
    hill_climb: list[str] = field(default_factory=list)  # the protocol's live tasks
    # Unscored runs that used compute (the server's `dry_runs` and `experiments` records).
    dry_runs: pd.DataFrame = field(default_factory=pd.DataFrame)
    experiments: pd.DataFrame = field(default_factory=pd.DataFrame)


def _frame(data: bytes) -> pd.DataFrame:
    return pd.read_parquet(io.BytesIO(data))


def from_exports(fetch: Callable[[str], bytes], *, study_start: pd.Timestamp,
                 study_end: pd.Timestamp, generalization: list[dict] | None = None,
                 plan: dict | None = None, arms: list[str] | None = None,
                 hill_climb: list[str] | None = None) -> StudyData:
    """`fetch(table)` returns the Parquet export of that table (e.g. ArenaClient.export);
    `plan` and `arms` come from the study view (the protocol's [analysis] table)."""
    usage = _frame(fetch("usage"))[["participant_id", "recorded_at", "cost_usd"]]
    return StudyData(study_start=study_start, study_end=study_end,
                     attempts=_frame(fetch("attempts")), sessions=_frame(fetch("sessions")),
                     flags=_frame(fetch("flags")), usage=usage,
                     generalization=pd.DataFrame(generalization or []),
                     participants=_frame(fetch("participants")), plan=plan or {},
                     arms=arms or [], hill_climb=hill_climb or [],
                     dry_runs=_frame(fetch("dry_runs")), experiments=_frame(fetch("experiments")))


def from_duckdb(path: Path) -> StudyData:
    import duckdb

    con = duckdb.connect(str(path), read_only=True)
    try:
        start, end = con.execute("SELECT starts_at, ends_at FROM study").fetchone()
        attempts = con.execute(
            "SELECT a.*, p.display_name, p.arm, p.kind AS participant_kind FROM attempts a "
            "JOIN participants p ON p.id = a.participant_id").df()
        sessions = con.execute("SELECT * FROM sessions").df()
        flags = con.execute("SELECT * FROM flags").df()
        usage = con.execute("SELECT participant_id, recorded_at, cost_usd FROM usage").df()
        participants = con.execute("SELECT * FROM participants").df()
        unscored = {table: con.execute(f"SELECT * FROM {table}").df()
                    for table in _tables(con, "dry_runs", "experiments")}
    finally:
        con.close()
    return StudyData(study_start=pd.Timestamp(start), study_end=pd.Timestamp(end),
                     attempts=attempts, sessions=sessions, flags=flags, usage=usage,
                     participants=participants, **unscored)


def _tables(con, *names: str) -> list[str]:
    """Those of `names` this database has (a file from before a migration lacks some)."""
    have = {row[0] for row in con.execute("SELECT table_name FROM information_schema.tables")
            .fetchall()}
    return [name for name in names if name in have]


def items_from_payload(payload: dict, *, part: str = "all") -> ItemResults:
    """The server's per-item payload → ItemResults on the public, private or whole test set."""
    mask = np.asarray(payload["public"], dtype=bool)
    cols = {"public": mask, "private": ~mask, "all": np.ones_like(mask)}[part]
    return ItemResults(correct=np.asarray(payload["correct"], dtype=float)[:, cols],
                       weak=np.asarray(payload["weak"], dtype=float)[cols],
                       ceiling=np.asarray(payload["ceiling"], dtype=float)[cols])
