"""The event log is a hash chain; `arena audit verify` finds the first row edited behind the
server's back (or deleted), and passes an untouched file."""

import subprocess
import sys

import duckdb

from study.protocol import load_protocol
from study.records import ParticipantSpec
from study.server import create_study, db_path
from study.service import ArenaService
from study.store import Database, Store
from tests.conftest import REPO


def _study_with_events(tmp_path):
    data_dir = tmp_path / "study"
    protocol = load_protocol(REPO / "tests" / "protocols" / "small.toml")
    create_study(data_dir, protocol)
    db = Database(db_path(data_dir))
    service = ArenaService(Store(db), protocol)
    for name in ("a", "b", "c"):
        issued = service.add_participant(ParticipantSpec(display_name=name, arm="human"),
                                         actor=None)
        service.clock_in(issued.participant)
    db.close()
    return data_dir


def verify(data_dir):
    return subprocess.run([sys.executable, "-m", "study.cli", "audit", "verify", "--data-dir",
                           str(data_dir)], capture_output=True, text=True, cwd=REPO,
                          check=False, timeout=120)


def test_an_untouched_log_verifies(tmp_path):
    proc = verify(_study_with_events(tmp_path))
    assert proc.returncode == 0 and "chain intact" in proc.stdout


def test_a_row_edited_in_duckdb_is_caught(tmp_path):
    data_dir = _study_with_events(tmp_path)
    con = duckdb.connect(str(db_path(data_dir)))
    count = con.execute("SELECT count(*) FROM events").fetchone()[0]
    assert count >= 9
    con.execute("UPDATE events SET actor = 'someone-else' WHERE id = 5")
    con.close()
    proc = verify(data_dir)
    assert proc.returncode == 1
    assert "broken at event 5" in proc.stdout and "edited" in proc.stdout


def test_a_deleted_row_is_caught(tmp_path):
    data_dir = _study_with_events(tmp_path)
    con = duckdb.connect(str(db_path(data_dir)))
    con.execute("DELETE FROM events WHERE id = 4")
    con.close()
    proc = verify(data_dir)
    assert proc.returncode == 1 and "broken at event 5" in proc.stdout


def test_bulk_appended_events_chain_like_single_ones(tmp_path):
    data_dir = _study_with_events(tmp_path)
    db = Database(db_path(data_dir))
    store = Store(db)
    with db.transaction() as cur:
        store.append_events_bulk(cur, [("bulk", None, f"att_{i}", {"i": i}) for i in range(500)])
        store.append_event(cur, "after_bulk", n=1)
    db.close()
    proc = verify(data_dir)
    assert proc.returncode == 0 and "chain intact" in proc.stdout
