"""The runner attacks of tests/attacks/ through the real door, one server with one worker: each
attack fails (or is contained) with a clear reason, is charged to its author (counted, its
compute settled, never requeued as an infrastructure fault), and the attempt another
participant submits behind it is scored within one attempt's time limit.

tests/runner/test_result_channel.py shows the same attacks on the runner alone; here the
point is what the study does with them: the booking, and the worker that stays free."""

import time
from pathlib import Path

import numpy as np
import pytest

from study.records import AttemptStatus
from tests.conftest import REPO
from tests.e2e.conftest import running_server

ATTACKS = REPO / "tests" / "attacks"
PROTOCOL = REPO / "tests" / "protocols" / "attacks.toml"
ATTEMPT_SECONDS = 60  # attacks.toml
QUICK = "def run(ctx):\n    return [0.5] * ctx.task.sizes['test']\n"


@pytest.fixture(scope="module")
def live(tmp_path_factory, rt_task):
    with running_server(tmp_path_factory.mktemp("attacks"), PROTOCOL) as server:
        yield server


def _source(name: str, target) -> str:
    text = (ATTACKS / f"{name}.py").read_text()
    return text.replace("TARGET = None", f"TARGET = {target!r}", 1)


def _server_peak_mb(live) -> float:
    """The server process's resident high-water mark (the runner's reads happen in it)."""
    status = Path(f"/proc/{live.proc.pid}/status").read_text()
    return int(next(x for x in status.splitlines() if x.startswith("VmHWM")).split()[1]) / 1024


def _attack_then_next(live, label: str, source: str):
    """The attacker's attempt, then another participant's submitted once the attacker's has
    left the queue (so it runs behind it on the one worker)."""
    mal, joe = live.participant(f"mal-{label}"), live.participant(f"joe-{label}")
    attack = mal.submit(source, "rt_sentiment")
    deadline = time.monotonic() + 120
    while mal.attempt(attack.id).status is AttemptStatus.QUEUED:
        assert time.monotonic() < deadline, "the attack never started"
        time.sleep(0.1)
    asked = time.monotonic()
    nxt = joe.submit(QUICK, "rt_sentiment")
    done = joe.wait(nxt.id, poll=0.2, timeout=4 * ATTEMPT_SECONDS)
    waited = time.monotonic() - asked
    attacked = mal.wait(attack.id, poll=0.2, timeout=60)
    # The next participant is served on time: jammed, the worker would have held joe's
    # attempt until the attack's deadline at least (a FIFO held it forever).
    assert done.status is AttemptStatus.SCORED, done.error
    assert waited < ATTEMPT_SECONDS, waited
    assert done.started_at >= attacked.finished_at  # it really ran behind the attack
    # Charged to its author: counted, compute settled, run once (no infrastructure requeue).
    assert attacked.tries == 1 and attacked.error_kind != "infrastructure", attacked.error
    quota = mal.quota()
    assert quota.attempts_used == 1 and quota.compute_seconds_reserved == 0
    assert quota.compute_seconds_used > 0
    return attacked


@pytest.mark.slow
@pytest.mark.parametrize("name, target, kind, says", [
    # a FIFO where metrics/errors were read, probs.npy a symlink to a host file that would score
    ("special_files", "HOST_NPY", "invalid_output", "returned None"),
    ("forged_channel", "list_error", "invalid_output", "its error report is a list"),
    ("forged_channel", "garbage", "invalid_output", "unknown frame"),
    ("exit_137", None, "exit code 137", "counts as the method's failure"),
    # three processes each under RLIMIT_AS, 1.8 GB together against 1,024 MB
    ("memory_forks", 600, "memory", "1024 MB"),
    ("fill_tmpfs", ("/tmp", 400), "exception", "No space left on device"),  # disk_mb 128
])
def test_an_attack_fails_for_its_own_reason_is_charged_and_the_next_is_served(
        live, name, target, kind, says):
    if target == "HOST_NPY":
        host = live.data_dir / "host_probs.npy"
        np.save(host, np.ones(2000))
        target = str(host)
    view = _attack_then_next(live, f"{name}-{kind}".replace(" ", ""), _source(name, target))
    assert view.status in (AttemptStatus.FAILED, AttemptStatus.TIMED_OUT)
    assert view.error_kind == kind and says in view.error, (view.error_kind, view.error)
    assert view.public is None


@pytest.mark.slow
def test_a_frame_claiming_gigabytes_never_reaches_the_servers_memory(live):
    """The old runner read a 2 GB error.json whole (2.2 GB server RSS)."""
    before = _server_peak_mb(live)
    view = _attack_then_next(live, "huge", _source("forged_channel", "huge"))
    assert view.error_kind == "invalid_output" and "at most 262144" in view.error
    assert _server_peak_mb(live) - before < 256, (before, _server_peak_mb(live))


@pytest.mark.slow
def test_contained_attacks_score_and_are_charged_in_full(live):
    """A metric with a 4,000-digit integer is dropped (it raised in the old runner, booked as
    an infrastructure fault); CPU burnt by children the method never reaped is charged."""
    big = _attack_then_next(live, "bigint", _source("forged_channel", "big_int"))
    assert big.status is AttemptStatus.SCORED and big.metrics == []
    hidden = _attack_then_next(live, "cpu", _source("hidden_cpu", 1.0))
    assert hidden.status is AttemptStatus.SCORED
    assert hidden.cpu_seconds >= 1.2, hidden.cpu_seconds  # two children, ~1 CPU-s each
