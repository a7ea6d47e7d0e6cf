"""Attacks on what the runner reads back and on the budgets of a whole process tree.

Each method (tests/attacks/) tries to jam, forge or overrun the runner; each must fail with a
clear reason that is the method's own (charged, never "infrastructure"), and the runner must
serve the next run.
"""

import json
import os
import re

import pytest

from runner.attempt import run_attempt
from runner.method import cgroup
from runner.method.cgroup import CgroupUnavailableError
from runner.method.context import Budget
from runner.workdir import work_root
from study.protocol import load_protocol
from study.server import create_study, open_platform
from tests.conftest import REPO

ATTACKS = REPO / "tests" / "attacks"


def _source(name: str, target) -> str:
    text = (ATTACKS / f"{name}.py").read_text()
    return text.replace("TARGET = None", f"TARGET = {target!r}", 1)


@pytest.fixture
def attack(tmp_path, rt_task, small_pair):
    def run(name, target=None, *, seconds=60.0, memory_mb=2048, disk_mb=256, permute=None,
            seeds=(11,), cgroups="required"):
        path = tmp_path / "method.py"
        path.write_text(_source(name, target))
        return run_attempt(path, rt_task, seeds=list(seeds), pair=small_pair,
                           budget=Budget(seconds=seconds, memory_mb=memory_mb, disk_mb=disk_mb,
                                         cgroups=cgroups),
                           permute_weak_labels=permute, salt="test-salt")
    return run


def _failed(result):
    assert result.status == "failed"
    out = result.outcomes[0]
    assert out.error_kind != "infrastructure", out.error  # the method's doing: charged
    return out


def test_fifos_and_links_in_the_run_folder_are_never_opened(attack):
    out = _failed(attack("special_files", "/etc/shadow"))
    assert out.status == "error" and out.error_kind == "invalid_output"
    assert "returned None" in out.error
    assert out.wall_s < 55  # it ended by itself: nothing blocked on a FIFO until the deadline
    assert [m["name"] for m in out.metrics] == ["made"]  # ctx.log still came through


def test_a_frame_claiming_gigabytes_is_refused_at_its_header(attack):
    out = _failed(attack("forged_channel", "huge"))
    assert out.error_kind == "invalid_output"
    assert "2147483648-byte report" in out.error and "at most 262144" in out.error


@pytest.mark.parametrize("forgery, says", [
    ("list_error", "its error report is a list"),
    ("pickle", "not a readable array"),
    ("garbage", "unknown frame"),
])
def test_malformed_output_is_the_methods_error(attack, forgery, says):
    out = _failed(attack("forged_channel", forgery))
    assert out.error_kind == "invalid_output" and says in out.error, out.error


def test_a_metric_with_a_giant_integer_is_dropped_not_fatal(attack):
    result = attack("forged_channel", "big_int")
    assert result.status == "scored", result.error
    assert result.outcomes[0].metrics == []


def test_exit_137_is_charged_not_infrastructure(attack):
    out = _failed(attack("exit_137"))
    assert out.status == "killed" and out.error_kind == "exit code 137"
    assert "counts as the method's failure" in out.error


def test_three_forks_together_cannot_pass_the_memory_budget(attack):
    # Each child holds 600 MB, under its own RLIMIT_AS of 1,024 MB; together 1.8 GB.
    out = _failed(attack("memory_forks", 600, memory_mb=1024))
    assert out.error_kind == "memory", out.error
    assert "1024 MB" in out.error


def test_tmp_is_capped_by_disk_mb(attack):
    out = _failed(attack("fill_tmpfs", ("/tmp", 400), disk_mb=128))
    assert "No space left on device" in out.error
    assert out.peak_mb >= 100  # what it did write is counted as its memory


def test_tmpfs_pages_count_against_the_memory_budget(attack):
    out = _failed(attack("fill_tmpfs", ("/dev/shm", 1200), memory_mb=768, disk_mb=2048))
    assert out.error_kind == "memory", out.error


def test_the_run_folder_is_not_on_the_host_disk(attack, tmp_path):
    result = attack("fill_tmpfs", (".", 64), disk_mb=256)
    assert result.status == "scored"
    assert "wrote 64 MB to ." in result.outcomes[0].log_tail
    assert result.outcomes[0].peak_mb >= 60  # the run folder is tmpfs: memory, counted


def test_cpu_of_unreaped_children_is_charged(attack):
    result = attack("hidden_cpu", 1.0)
    assert result.status == "scored", result.error
    # Two children each did about a CPU-second of work that the method never reaped.
    assert result.outcomes[0].cpu_s >= 1.2, result.outcomes[0].cpu_s


def _fingerprint(result) -> dict:
    line = next(x for x in result.outcomes[0].log_tail.splitlines()
                if x.startswith("FINGERPRINT "))
    facts = json.loads(line.removeprefix("FINGERPRINT "))
    # The run's own folder has a random name; everything else must match exactly.
    facts["mountinfo"] = re.sub(r"attempt-\d+-\w+", "RUN", facts["mountinfo"])
    # Mount ids, and the device numbers of anonymous filesystems (tmpfs, proc: 0:N), are handed
    # out machine-wide in mount order: they differ with whatever else mounts meanwhile, for
    # attempts and audits alike.
    facts["mountinfo"] = re.sub(r"^\d+ \d+ (0:\d+ )?", "", facts["mountinfo"], flags=re.M)
    facts["run"] = json.loads(facts["run"])
    facts["run"].pop("channel_fd")
    return facts


def test_nothing_a_method_reads_names_the_task_hash(attack, rt_task):
    facts = _fingerprint(attack("fingerprint"))
    text = json.dumps(facts)
    assert rt_task.info.content_hash not in text
    assert "permuted" not in text and "test-salt" not in text
    where = facts["mountinfo"] + facts["bundle"] + json.dumps(facts["files"])
    assert rt_task.name not in where  # no path names the task (ctx.task says it, by design)
    assert facts["bundle"] == "/w2s/bundle" and facts["cwd"] == "/tmp"


def test_a_teacher_ablation_looks_exactly_like_an_attempt(attack):
    normal = _fingerprint(attack("fingerprint"))
    ablation = _fingerprint(attack("fingerprint", permute=12345))
    assert "permuted" not in json.dumps(ablation)
    assert normal == ablation


def test_each_seeds_folder_is_removed_once_its_outcome_is_read(tmp_path, rt_task, small_pair):
    seen = []

    def look(outcome):  # called as each seed's outcome is read, before the next seed runs
        attempt = list(work_root().glob(f"attempt-{os.getpid()}-*"))
        seen.append((len(attempt), list(work_root().glob(f"attempt-{os.getpid()}-*/seed-*"))))

    path = tmp_path / "method.py"
    path.write_text(_source("fill_tmpfs", (".", 8)))
    result = run_attempt(path, rt_task, seeds=[1, 2], pair=small_pair, salt="test-salt",
                         budget=Budget(disk_mb=64), on_seed=look)
    assert result.status == "scored", result.error
    assert seen == [(1, []), (1, [])]  # the attempt's folder is there; no seed's is left in it


@pytest.fixture
def no_cgroups(monkeypatch, tmp_path):
    """A host without cgroup v1 controllers: the runner's probe finds none mounted."""
    monkeypatch.setattr(cgroup, "ROOT", tmp_path / "sys-fs-cgroup")
    cgroup.cgroup_problem.cache_clear()
    yield
    cgroup.cgroup_problem.cache_clear()  # the next caller probes the real host again


def test_without_cgroups_no_method_runs_unless_the_protocol_allows_it(attack, no_cgroups):
    with pytest.raises(CgroupUnavailableError, match='cgroups = "optional"'):
        attack("fill_tmpfs", (".", 1))
    allowed = attack("fill_tmpfs", (".", 1), cgroups="optional")  # rlimits and the guard only
    assert allowed.status == "scored", allowed.error


def test_without_cgroups_the_server_refuses_to_open_the_study(tmp_path, no_cgroups):
    create_study(tmp_path / "study", load_protocol(REPO / "tests" / "protocols" / "small.toml"))
    with pytest.raises(CgroupUnavailableError, match="not mounted"):
        open_platform(tmp_path / "study", start_workers=False)


def test_the_runner_serves_after_the_attacks(run_source):
    assert run_source((REPO / "baselines" / "vanilla.py").read_text()).status == "scored"
