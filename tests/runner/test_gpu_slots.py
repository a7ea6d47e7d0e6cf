"""GPU slots on a CPU machine: device lists, `--gpus` requests and their errors, a slot per GPU."""

import time

import pytest

from runner.gpu import (
    GpuDevice,
    GpuMemoryWatch,
    GpuUnavailableError,
    discover_gpus,
    parse_gpu_request,
    parse_nvidia_smi,
    plan_slots,
    resolve_slots,
    select_gpus,
)
from study.errors import InvalidError
from study.protocol import parse_protocol
from tests.fakes.gpus import make_fake_gpus

SMI = """0, GPU-aaaa, NVIDIA H100 80GB HBM3, 81559
1, GPU-bbbb, NVIDIA H100 80GB HBM3, 81559
"""


def gpus(n: int) -> list[GpuDevice]:
    return [GpuDevice(i, f"GPU-{i}", "NVIDIA H200", 143771) for i in range(n)]


def test_nvidia_smi_rows_become_devices_and_a_bad_row_is_an_error():
    assert parse_nvidia_smi(SMI) == [GpuDevice(0, "GPU-aaaa", "NVIDIA H100 80GB HBM3", 81559),
                                     GpuDevice(1, "GPU-bbbb", "NVIDIA H100 80GB HBM3", 81559)]
    with pytest.raises(GpuUnavailableError, match="unexpected row"):
        parse_nvidia_smi("0, GPU-aaaa, [N/A]\n")
    with pytest.raises(GpuUnavailableError, match="unexpected row"):
        parse_nvidia_smi("zero, GPU-aaaa, H100, 80\n")


@pytest.mark.parametrize(("text", "parsed"), [(None, None), ("", None), ("  ", None),
                                              ("all", "all"), ("ALL", "all"),
                                              ("0", [0]), ("3, 1", [3, 1])])
def test_gpu_requests(text, parsed):
    assert parse_gpu_request(text) == parsed


@pytest.mark.parametrize(("text", "why"), [("0,0", "twice"), ("gpu0", "expected 'all'"),
                                           ("-1", "expected 'all'"), ("0,,1", "expected 'all'")])
def test_bad_gpu_requests_say_what_is_wrong(text, why):
    with pytest.raises(GpuUnavailableError, match=why):
        parse_gpu_request(text)


def test_asking_for_gpus_on_a_machine_without_cuda_fails_clearly():
    with pytest.raises(GpuUnavailableError) as err:
        select_gpus("all", [], why_none="nvidia-smi is not installed")
    assert "no CUDA GPU" in err.value.message and "nvidia-smi is not installed" in err.value.message
    assert "Leave --gpus out" in err.value.message


def test_asking_for_a_gpu_the_machine_lacks_names_it():
    with pytest.raises(GpuUnavailableError, match=r"GPU\(s\) \[5\].*has \[0, 1, 2\]"):
        select_gpus([0, 5], gpus(3))
    assert [g.index for g in select_gpus([2, 0], gpus(3))] == [2, 0]
    assert [g.index for g in select_gpus("all", gpus(3)[::-1])] == [0, 1, 2]


def test_one_slot_per_gpu_each_seeing_only_its_own():
    slots = plan_slots(gpus(4))
    assert [s.number for s in slots] == [0, 1, 2, 3]
    assert [s.env()["CUDA_VISIBLE_DEVICES"] for s in slots] == ["GPU-0", "GPU-1", "GPU-2", "GPU-3"]
    assert all(s.device == "cuda" and s.env()["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for s in slots)
    pairs = plan_slots(gpus(4), gpus_per_slot=2)
    assert [[g.index for g in s.gpus] for s in pairs] == [[0, 1], [2, 3]]
    assert pairs[1].env()["CUDA_VISIBLE_DEVICES"] == "GPU-2,GPU-3"
    with pytest.raises(GpuUnavailableError, match="1 would sit idle"):
        plan_slots(gpus(3), gpus_per_slot=2)


def test_a_cpu_study_keeps_its_cpu_slots():
    slots = plan_slots([], cpu_slots=3)
    assert [(s.number, s.device, s.env()) for s in slots] == [(0, "cpu", {}), (1, "cpu", {}),
                                                             (2, "cpu", {})]
    assert resolve_slots(None, cpu_slots=2) == plan_slots([], cpu_slots=2)


def test_gpus_are_discovered_through_nvidia_smi(tmp_path, monkeypatch):
    fake = make_fake_gpus(tmp_path, 3)
    monkeypatch.setenv("PATH", fake.env()["PATH"])
    found, why = discover_gpus()
    assert why is None and [g.uuid for g in found] == [fake.uuid(i) for i in range(3)]
    slots = resolve_slots("0,2", dev_root=str(fake.dev_root))
    assert [s.gpus[0].index for s in slots] == [0, 2]
    assert all(s.dev_root == str(fake.dev_root) for s in slots)


def test_a_missing_device_node_fails_at_start_not_at_the_first_attempt(tmp_path, monkeypatch):
    fake = make_fake_gpus(tmp_path, 2)
    monkeypatch.setenv("PATH", fake.env()["PATH"])
    fake.lose(1)
    with pytest.raises(GpuUnavailableError, match=r"nvidia1.*driver loaded"):
        resolve_slots("all", dev_root=str(fake.dev_root))


def test_without_nvidia_smi_there_are_no_gpus_and_a_reason(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    found, why = discover_gpus()
    assert found == [] and "nvidia-smi is not installed" in why
    with pytest.raises(GpuUnavailableError, match="no CUDA GPU"):
        resolve_slots("all")


def test_the_protocol_runner_table():
    base = 'name = "g"\n[tasks]\nhill_climb = ["rt_sentiment"]\n[[arms]]\nname = "human"\n'
    assert parse_protocol(base).runner.gpus is None  # old protocols still load: a CPU study
    spec = parse_protocol(base + '[runner]\ngpus = "all"\ngpus_per_attempt = 2\n')
    assert (spec.runner.gpus, spec.runner.gpus_per_attempt) == ("all", 2)
    with pytest.raises(InvalidError, match=r"runner\.gpus"):
        parse_protocol(base + '[runner]\ngpus = "the big ones"\n')


def test_the_runner_reads_peak_gpu_memory_above_the_start():
    readings = iter([1000.0, 1200.0, 5000.0, 3000.0])
    last = [1000.0]

    def used() -> float:
        last[0] = next(readings, last[0])
        return last[0]

    watch = GpuMemoryWatch.start(None, read_used=used)
    wait_for_readings = 0
    while last[0] != 3000.0 and wait_for_readings < 500:
        time.sleep(0.01)
        wait_for_readings += 1
    assert watch.stop() == 4000.0  # 5000 at the peak, 1000 in use before the method started
    assert GpuMemoryWatch.start(plan_slots([])[0]).stop() is None  # a CPU slot reads nothing


def test_a_gpu_that_stops_answering_keeps_the_peak_seen():
    values = iter([100.0, 900.0])

    def used() -> float:
        value = next(values, None)
        if value is None:
            raise RuntimeError("NVML: GPU is lost")
        return value

    watch = GpuMemoryWatch.start(None, read_used=used)
    time.sleep(0.6)
    assert watch.stop() == 800.0 and watch.failed


@pytest.mark.parametrize("command", ["up", "serve"])
def test_arena_with_gpus_on_a_machine_without_cuda_fails_at_start(tmp_path, command):
    import os
    import subprocess
    import sys

    from tests.conftest import REPO

    data = tmp_path / "data"
    done = subprocess.run(
        [sys.executable, "-m", "study.cli", command, "--gpus", "all", "--data-dir", str(data),
         "--port", "1"], cwd=REPO, capture_output=True, text=True, timeout=120,
        env={**os.environ, "PATH": str(tmp_path), "COLUMNS": "200"})  # no nvidia-smi on it
    assert done.returncode == 2, done.stdout + done.stderr
    assert "gpu_unavailable" in done.stdout and "no CUDA GPU" in done.stdout
    assert not data.exists()  # nothing was created for a study that cannot run
