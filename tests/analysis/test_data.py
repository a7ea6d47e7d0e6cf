"""The study's records read from the DuckDB file (read-only, no server holding it): dry runs and
experiments come with them, so their compute counts."""

import datetime as dt

import pandas as pd
import pytest

from analysis.data import from_duckdb
from analysis.frames import DataWarning, attempts_frame
from study.protocol import load_protocol
from study.server import create_study, db_path
from study.store.db import Database
from tests.conftest import REPO


def test_from_duckdb_reads_dry_runs_and_experiments(tmp_path):
    create_study(tmp_path, load_protocol(REPO / "tests/protocols/small.toml"))
    db = Database(db_path(tmp_path))
    start = db.scalar("SELECT starts_at FROM study")
    at = start + dt.timedelta(hours=1)
    with db.transaction() as cur:
        cur.execute("INSERT INTO participants (id, display_name, role, arm, kind, created_at) "
                    "VALUES ('p1', 'ann', 'participant', 'human', 'human', ?)", [at])
        cur.execute("INSERT INTO dry_runs (id, participant_id, task, code_sha256, "
                    "request_sha256, status, created_at, finished_at, cpu_seconds, "
                    "slot_seconds) VALUES ('d1', 'p1', 't', 'x', 'y', 'ok', ?, ?, 1800, 2000)",
                    [at, at + dt.timedelta(minutes=1)])
        cur.execute("INSERT INTO experiments (id, participant_id, task, code_sha256, source, "
                    "status, seed, submitted_at, finished_at, cpu_seconds) VALUES "
                    "('e1', 'p1', 't', 'x', 'def run(ctx): pass', 'finished', 1, ?, ?, 900)",
                    [at, at + dt.timedelta(minutes=2)])
    db.close()
    data = from_duckdb(db_path(tmp_path))
    assert list(data.dry_runs["id"]) == ["d1"] and list(data.experiments["id"]) == ["e1"]
    attempt = pd.DataFrame([{
        "id": "a1", "participant_id": "p1", "display_name": "ann", "arm": "human",
        "participant_kind": "human", "task": "t", "status": "scored",
        "submitted_at": pd.Timestamp(at + dt.timedelta(hours=1)),
        "finished_at": pd.Timestamp(at + dt.timedelta(hours=2)), "public_pgr": 0.5,
        "private_pgr": 0.5, "cpu_seconds": 0.0}])
    with pytest.warns(DataWarning, match="no clock events"):
        frame = attempts_frame(attempt, study_start=data.study_start,
                               dry_runs=data.dry_runs, experiments=data.experiments)
    assert frame["compute_hours"].iloc[0] == pytest.approx(0.75)
