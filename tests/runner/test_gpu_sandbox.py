"""CUDA inside bubblewrap, tested on a CPU machine: the argv binds exactly the slot's device nodes
and the driver libraries, a real sandbox sees only its own GPU, GPU-seconds are measured by the
runner, CUDA out-of-memory is the method's error, and a vanished GPU is the runner's."""

import textwrap
import threading
from pathlib import Path

import pytest

from runner.attempt import run_attempt
from runner.gpu import GpuDevice, Slot, gpu_mounts, parse_ldconfig
from runner.method import Budget
from runner.method.gpu_report import read_gpu_report
from runner.method.sandbox import SYSTEM_DIRS, Mounts, sandbox_argv
from tests.fakes.gpus import make_fake_gpus


def ldconfig_text(outside: Path) -> str:
    return textwrap.dedent(f"""\
        1234 libs found in cache `/etc/ld.so.cache'
        \tlibcuda.so.1 (libc6,x86-64) => /usr/lib/x86_64-linux-gnu/libcuda.so.1
        \tlibcudart.so.12 (libc6,x86-64) => {outside}/libcudart.so.12
        \tlibnvidia-ml.so.1 (libc6,x86-64) => {outside}/libnvidia-ml.so.1
        \tlibnvidia-ptxjitcompiler.so.1 (libc6,x86-64) => {outside}/libnvidia-ptxjitcompiler.so.1
        \tlibnvidia-ml.so.1 (libc6) => /usr/lib/i386-linux-gnu/libnvidia-ml.so.1
        \tlibz.so.1 (libc6,x86-64) => /lib/x86_64-linux-gnu/libz.so.1
        """)


@pytest.fixture
def fake(tmp_path):
    fake = make_fake_gpus(tmp_path / "machine", 2)
    libs = tmp_path / "nvidia-libs"
    libs.mkdir()
    for name in ("libcudart.so.12", "libnvidia-ml.so.1", "libnvidia-ptxjitcompiler.so.1"):
        (libs / name).write_text("driver")
    fake.libs = libs
    return fake


def slot_for(fake, *indices) -> Slot:
    return Slot(0, tuple(GpuDevice(i, fake.uuid(i), "H100", 81559) for i in indices),
                str(fake.dev_root))


def test_driver_libraries_are_libcuda_and_libnvidia_only(fake):
    found = parse_ldconfig(ldconfig_text(fake.libs))
    assert found == sorted([Path("/usr/lib/x86_64-linux-gnu/libcuda.so.1"),
                            Path("/usr/lib/i386-linux-gnu/libnvidia-ml.so.1"),
                            fake.libs / "libnvidia-ml.so.1",
                            fake.libs / "libnvidia-ptxjitcompiler.so.1"])


def test_the_argv_binds_this_slots_gpu_and_nothing_of_the_others(fake):
    mounts = gpu_mounts(slot_for(fake, 1), ldconfig_text=ldconfig_text(fake.libs),
                        bound_dirs=SYSTEM_DIRS)
    dev = str(fake.dev_root)
    assert mounts.devices == ((f"{dev}/nvidiactl", "/dev/nvidiactl"),
                              (f"{dev}/nvidia-uvm", "/dev/nvidia-uvm"),
                              (f"{dev}/nvidia-uvm-tools", "/dev/nvidia-uvm-tools"),
                              (f"{dev}/nvidia1", "/dev/nvidia1"))
    # Libraries under /usr are visible already (and the i386 one does not exist here).
    assert mounts.libraries == (fake.libs / "libnvidia-ml.so.1",
                                fake.libs / "libnvidia-ptxjitcompiler.so.1")
    argv = sandbox_argv(Mounts(readonly=mounts.libraries, writable=(), devices=mounts.devices,
                               masked=("/proc/driver/nvidia/gpus",)), {}, cwd=Path("/tmp"))
    text = " ".join(argv)
    assert f"--dev-bind {dev}/nvidia1 /dev/nvidia1" in text
    assert "nvidia0" not in text and "nvidia-modeset" not in text
    assert argv.index("--dev") < argv.index("--dev-bind")  # joins bwrap's minimal /dev
    assert f"--ro-bind {fake.libs}/libnvidia-ml.so.1 {fake.libs}/libnvidia-ml.so.1" in text
    assert "libcudart" not in text  # the CUDA runtime comes with torch, not the driver
    assert argv.index("--proc") < argv.index("--tmpfs", argv.index("--dev-bind"))
    assert "--share-net" not in argv and "--unshare-all" in argv
    assert argv[argv.index("--uid") + 1] == "65534"


def test_a_cpu_slot_binds_no_device(fake):
    mounts = gpu_mounts(Slot(0), ldconfig_text=ldconfig_text(fake.libs))
    assert (mounts.devices, mounts.libraries, mounts.masked) == ((), (), ())


VIEW = """
import os
from pathlib import Path

def run(ctx):
    dev = sorted(n for n in os.listdir("/dev") if n.startswith("nvidia"))
    seen = {{"device": ctx.device, "dev": dev,
            "visible": os.environ.get("CUDA_VISIBLE_DEVICES"),
            "lib": Path("{lib}").read_text(),
            "host_dev": os.path.exists("{host_dev}")}}
    expected = {expected!r}
    if seen != expected:
        raise AssertionError(f"{{seen}} != {{expected}}")
    return [0.5] * len(ctx.texts("test"))
"""


def run_on(slot, source, tmp_path, rt_task, small_pair, seconds=60):
    path = tmp_path / "method.py"
    path.write_text(textwrap.dedent(source))
    return run_attempt(path, rt_task, seeds=[5], pair=small_pair, slot=slot,
                       budget=Budget(seconds=seconds, memory_mb=2048))


def test_inside_the_sandbox_the_method_sees_only_its_own_gpu(fake, tmp_path, rt_task, small_pair,
                                                             monkeypatch):
    import runner.gpu

    monkeypatch.setattr(runner.gpu, "ldconfig_listing", lambda: ldconfig_text(fake.libs))
    slot = slot_for(fake, 1)
    expected = {"device": "cuda", "dev": ["nvidia-uvm", "nvidia-uvm-tools", "nvidia1",
                                          "nvidiactl"],
                "visible": fake.uuid(1), "lib": "driver", "host_dev": False}
    result = run_on(slot, VIEW.format(lib=fake.libs / "libnvidia-ml.so.1",
                                      host_dev=fake.dev_root, expected=expected),
                    tmp_path, rt_task, small_pair)
    (outcome,) = result.outcomes
    assert outcome.status == "ok", (outcome.error, outcome.log_tail)
    assert outcome.sandboxed
    assert outcome.gpu_s == pytest.approx(outcome.wall_s)
    assert outcome.peak_gpu_mb is None  # the method never initialised CUDA


def test_gpu_seconds_are_wall_time_times_the_gpus_held(fake, tmp_path, rt_task, small_pair):
    source = "import time\ndef run(ctx):\n    time.sleep(1)\n    return [0.5] * 2000\n"
    (outcome,) = run_on(slot_for(fake, 0, 1), source, tmp_path, rt_task, small_pair).outcomes
    assert outcome.status == "ok", outcome.error
    assert outcome.wall_s >= 1.0 and outcome.gpu_s == pytest.approx(2 * outcome.wall_s)
    (cpu,) = run_on(None, source, tmp_path, rt_task, small_pair).outcomes
    assert cpu.gpu_s == 0.0 and cpu.peak_gpu_mb is None


def test_cuda_out_of_memory_fails_the_seed_with_that_reason(tmp_path, rt_task, small_pair):
    result = run_on(None, """
        import torch
        def run(ctx):
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 20.00 GiB")
    """, tmp_path, rt_task, small_pair)
    (outcome,) = result.outcomes
    assert outcome.error_kind == "gpu_memory"
    assert "ran out of GPU memory" in outcome.error
    assert "Tried to allocate 20.00 GiB" in outcome.error
    assert result.status == "failed"


def test_a_method_cannot_fake_a_lost_gpu(fake, tmp_path, rt_task, small_pair):
    (outcome,) = run_on(slot_for(fake, 0), """
        def run(ctx):
            raise RuntimeError("CUDA error: GPU is lost; unspecified launch failure")
    """, tmp_path, rt_task, small_pair).outcomes
    assert outcome.error_kind == "exception"  # the GPU is still there: the method's own error


def test_a_gpu_that_vanishes_mid_seed_is_an_infrastructure_fault(fake, tmp_path, rt_task,
                                                                  small_pair):
    timer = threading.Timer(1.5, fake.lose, args=(0,))
    timer.start()
    try:
        (outcome,) = run_on(slot_for(fake, 0), """
            import time
            def run(ctx):
                time.sleep(4)
                raise RuntimeError("CUDA error: unspecified launch failure")
        """, tmp_path, rt_task, small_pair).outcomes
    finally:
        timer.cancel()
    assert outcome.error_kind == "infrastructure"
    assert "stopped answering" in outcome.error and "GPU 0" in outcome.error


def test_the_childs_gpu_report_is_read_defensively():
    assert read_gpu_report(None) is None
    assert read_gpu_report({"peak_mb": 1234.5, "device": "H100"}) == 1234.5
    for bad in ({"peak_mb": 1e30}, {"peak_mb": -1}, {"peak_mb": "big"}, [1], {"peak_mb": True},
                "not json", {"peak_mb": float("nan")}, {"peak_mb": float("inf")}):
        assert read_gpu_report(bad) is None, bad


def test_a_driver_outside_the_ld_cache_is_found_through_ld_library_path(fake, tmp_path,
                                                                         monkeypatch):
    driver = tmp_path / "usr-local-nvidia" / "lib64"
    driver.mkdir(parents=True)
    for name in ("libcuda.so.1", "libnvidia-ml.so.1", "libcudart.so.12", "libz.so.1"):
        (driver / name).write_text("driver")
    monkeypatch.setenv("LD_LIBRARY_PATH", f"/nonexistent:{fake.libs}:{driver}")
    slot = slot_for(fake, 0)
    assert slot.env()["LD_LIBRARY_PATH"] == str(driver)  # only the folder with libcuda
    mounts = gpu_mounts(slot, ldconfig_text="", bound_dirs=SYSTEM_DIRS)
    assert mounts.libraries == (driver / "libcuda.so.1", driver / "libnvidia-ml.so.1")


def processes_holding(dev_root: Path) -> list[int]:
    """Sandboxes (and anything else) whose command line binds this fake machine's nodes."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and str(dev_root).encode() in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_a_method_that_hangs_with_threads_left_is_killed_and_the_slot_serves_on(
        fake, tmp_path, rt_task, small_pair):
    slot = slot_for(fake, 1)
    (hung,) = run_on(slot, """
        import threading, time
        def spin():
            while True:
                pass
        def run(ctx):
            for _ in range(2):  # threads left busy (on a GPU: kernels queued behind them)
                threading.Thread(target=spin).start()
            time.sleep(3600)
    """, tmp_path, rt_task, small_pair, seconds=4).outcomes
    assert hung.status == "timeout", (hung.error, hung.log_tail)
    assert hung.gpu_s == pytest.approx(hung.wall_s) and hung.wall_s >= 4  # the GPU was held
    assert processes_holding(fake.dev_root) == []  # the whole sandbox went with it
    (after,) = run_on(slot, """
        import os
        def run(ctx):
            gpus = [n for n in os.listdir("/dev") if n[6:].isdigit() and n.startswith("nvidia")]
            assert ctx.device == "cuda" and gpus == ["nvidia1"], (ctx.device, gpus)
            return [0.5] * len(ctx.texts("test"))
    """, tmp_path, rt_task, small_pair).outcomes
    assert after.status == "ok", (after.error, after.log_tail)


def test_a_gpu_gone_before_its_seed_starts_leaves_no_descriptor_open(fake, tmp_path, rt_task,
                                                                      small_pair):
    import os

    fake.lose(0)
    before = sorted(os.listdir("/proc/self/fd"))
    try:
        result = run_on(slot_for(fake, 0), "def run(ctx):\n    return None\n", tmp_path,
                        rt_task, small_pair)
    except Exception as exc:  # the runner's refusal, whichever way it surfaces
        assert "missing" in str(exc)
    else:
        (outcome,) = result.outcomes
        assert outcome.status != "ok"
    assert sorted(os.listdir("/proc/self/fd")) == before  # the result pipe did not outlive it
