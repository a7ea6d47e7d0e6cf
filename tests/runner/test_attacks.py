"""The attack suite: every attack fails with a clear reason, and the runner keeps serving."""

import os
import socket
import threading

import pytest

from runner.method.sandbox import RUNNER_DIR
from study.settings import cache_dir
from study.tasks.catalog import task_folder
from tests.conftest import REPO

ATTACKS = REPO / "tests" / "attacks"


def _source(name: str, target) -> str:
    text = (ATTACKS / f"{name}.py").read_text()
    return text.replace("TARGET = None", f"TARGET = {target!r}", 1)


@pytest.fixture(scope="module")
def listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    accepted = []
    threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True).start()
    yield server.getsockname()[1], accepted
    server.close()


def _failure(run_source, name, target, **kwargs):
    result = run_source(_source(name, target), **kwargs)
    assert result.status == "failed", f"{name} was not stopped"
    return result.outcomes[0]


def test_reading_gold_labels_by_path(run_source, rt_task):
    gold = task_folder(rt_task.name, rt_task.info.content_hash) / "test.jsonl"
    assert gold.exists()
    out = _failure(run_source, "read_gold_by_path", str(gold))
    assert out.error.startswith("FileNotFoundError") and "test.jsonl" in out.error


def test_opening_the_study_database(run_source, tmp_path):
    db = tmp_path / "study" / "study.duckdb"
    db.parent.mkdir()
    db.write_bytes(b"DUCK" * 10)
    out = _failure(run_source, "open_duckdb", str(db))
    assert out.error.startswith("FileNotFoundError")


def test_reading_another_participants_code(run_source):
    other = cache_dir() / "attempt-someone-else" / "method" / "method.py"
    other.parent.mkdir(parents=True, exist_ok=True)
    other.write_text("SECRET_IDEA = 42\n")
    try:
        out = _failure(run_source, "read_other_code", str(other))
    finally:
        other.unlink()
        other.parent.rmdir()
        other.parent.parent.rmdir()
    assert out.error.startswith("FileNotFoundError") and "SECRET_IDEA" not in out.log_tail


def test_connecting_to_a_loopback_port(run_source, listener):
    port, accepted = listener
    out = _failure(run_source, "connect_loopback", port)
    assert "ConnectionRefusedError" in out.error
    assert accepted == []  # nothing reached the listener


def test_connecting_to_a_registry_host(run_source):
    out = _failure(run_source, "connect_registry", None)
    assert out.error.startswith(("gaierror", "OSError")), out.error


def test_writing_outside_scratch(run_source):
    target = RUNNER_DIR / "evil.py"
    out = _failure(run_source, "write_outside_scratch", str(target))
    assert "Read-only file system" in out.error
    assert not target.exists()


def test_a_fork_bomb_is_capped(run_source):
    out = _failure(run_source, "fork_bomb", None, seconds=60)
    assert out.error_kind == "processes" or "Resource temporarily unavailable" in out.error
    assert "processes" in out.error or "Resource temporarily" in out.error


def test_a_gigabyte_to_stdout_keeps_only_the_tail(run_source):
    out = _failure(run_source, "flood_stdout", 1024, seconds=120)
    assert "flooded stdout, then failed on purpose" in out.error
    assert "FLOOD DONE" in out.log_tail and len(out.log_tail) < 70_000


def test_signalling_the_parent(run_source):
    out = _failure(run_source, "signal_parent", os.getpid())
    assert out.error.startswith("ProcessLookupError")


def test_reading_proc_of_other_processes(run_source):
    out = _failure(run_source, "read_proc", os.getpid())
    assert out.error.startswith("FileNotFoundError")
    assert "visible pids: [1]" in out.log_tail


def test_the_runner_still_serves_after_the_suite(run_source):
    source = (REPO / "baselines" / "vanilla.py").read_text()
    assert run_source(source).status == "scored"
