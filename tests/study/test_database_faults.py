"""DuckDB made to fail on a real full disk (a small tmpfs): a failed write answers the one JSON
error body; a fatal error (a checkpoint that cannot be written) invalidates the database, and
the server reconnects on its next call instead of answering 500 until a restart; a database
that cannot be reopened makes the watchdog stop the server for its supervisor to restart it.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import threading
import time

import duckdb
import httpx
import pytest
import uvicorn

from study.api import ServerSettings, create_app
from study.api_ops import DatabaseWatchdog
from study.protocol import load_protocol
from study.server import create_study, open_platform
from study.store import Database
from tests.conftest import REPO
from tests.e2e.conftest import free_port

SMALL = REPO / "tests" / "protocols" / "small.toml"


@pytest.fixture
def small_disk(tmp_path):
    """A 48 MB tmpfs: a disk that really fills up."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mount)],
                          capture_output=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(disk) -> os.PathLike:
    path = disk / "filler"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT)
    with contextlib.suppress(OSError):
        while True:
            os.write(fd, b"\0" * 65536)
    os.close(fd)
    return path


def make_fatal(db: Database) -> None:
    """The error DuckDB raises when it cannot write a checkpoint (it then invalidates the
    whole database): forced here by checkpointing on the full disk."""
    with pytest.raises(duckdb.FatalException):
        db.rows("CHECKPOINT")
    assert db.broken is not None


def test_a_fatal_error_is_healed_by_reconnecting(small_disk):
    db = Database(small_disk / "x.duckdb")
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t (s VARCHAR)")
        cur.execute("INSERT INTO t VALUES ('kept')")
    filler = fill(small_disk)
    with pytest.raises(duckdb.Error), db.transaction() as cur:
        cur.execute("INSERT INTO t SELECT repeat('x', 1000) FROM range(100000)")
    make_fatal(db)
    os.remove(filler)
    assert db.check() is None and db.broken is None  # reconnected
    with db.transaction() as cur:
        cur.execute("INSERT INTO t VALUES ('after')")
    assert [r["s"] for r in db.rows("SELECT s FROM t ORDER BY s")] == ["after", "kept"]
    db.close()


@pytest.fixture
def live(small_disk, rt_task):
    """A real server (uvicorn, HTTP) on a study whose DuckDB file lives on the small disk,
    with no disk floor, so that DuckDB itself meets the full disk."""
    protocol = small_disk.parent / "p.toml"
    protocol.write_text(SMALL.read_text().replace(
        "dry_runs_per_day = 3", "dry_runs_per_day = 3\nmin_free_disk_mb = 0"))
    data_dir = small_disk / "study"
    admin = create_study(data_dir, load_protocol(protocol)).token
    platform = open_platform(data_dir, start_workers=False)
    app = create_app(ServerSettings(data_dir=data_dir, start_workers=False), platform=platform)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    client = httpx.Client(base_url=f"http://127.0.0.1:{port}",
                          headers={"Authorization": f"Bearer {admin}"}, timeout=30)
    deadline = time.monotonic() + 60
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.05)
    yield platform, client
    client.close()
    server.should_exit = True
    thread.join(30)


def test_a_full_disk_answers_json_and_a_fatal_error_heals(live, small_disk):
    platform, client = live
    assert client.get("/v1/health").status_code == 200
    before = client.post("/v1/admin/participants", json={"display_name": "kept", "arm": "human"})
    assert before.status_code == 201  # in the WAL: a checkpoint has something to write
    filler = fill(small_disk)
    big = {"display_name": "x" * 80, "arm": "human"}
    failed = [client.post("/v1/admin/participants", json=big) for _ in range(200)]
    refused = next(r for r in failed if r.status_code >= 500)
    assert refused.headers["content-type"] == "application/json"
    assert refused.json()["code"] in ("database_error", "database_unavailable")
    make_fatal(platform.db)
    os.remove(filler)
    # While the file cannot be opened, health says so (503) and requests answer JSON errors.
    real = small_disk / "study" / "study.duckdb"
    real.rename(real.with_suffix(".away"))
    real.write_bytes(b"not a database")
    broken = client.get("/v1/health")
    assert broken.status_code == 503 and not broken.json()["database"]["ok"]
    # (A request that reads the database: who holds a token is remembered in memory.)
    listed = client.get("/v1/admin/participants")
    assert listed.json()["code"] in ("database_error", "database_unavailable", "internal")
    real.with_suffix(".away").replace(real)
    # Before: every request answered 500 until a restart. Now the next call reconnects.
    health = client.get("/v1/health")
    assert health.status_code == 200 and health.json()["database"]["ok"], health.text
    names = [p["display_name"] for p in client.get("/v1/admin/participants").json()]
    assert "kept" in names
    added = client.post("/v1/admin/participants", json={"display_name": "after", "arm": "human"})
    assert added.status_code == 201, added.text


def test_a_database_that_cannot_be_reopened_stops_the_server(small_disk):
    path = small_disk / "y.duckdb"
    db = Database(path)
    with db.transaction() as cur:
        cur.execute("CREATE TABLE t (s VARCHAR)")
    filler = fill(small_disk)
    make_fatal(db)
    os.remove(filler)
    path.write_bytes(b"not a database" * 1000)  # and the file itself has gone bad
    stops = []
    app = create_app(ServerSettings(data_dir=small_disk))
    dog = DatabaseWatchdog(app, db, every_s=0.05, exit_after_s=0.3,
                           stop_server=lambda: stops.append(time.monotonic()))
    dog.start()
    dog.join(10)
    assert len(stops) == 1 and "stayed unusable" in app.state.fatal
    assert "not a valid" in app.state.fatal or "IOException" in app.state.fatal
