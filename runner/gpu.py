"""GPUs: which ones this machine has, which the operator asked for, one worker slot per GPU, and
exactly what of the host a method needs to reach its GPU inside bubblewrap.

Discovery asks `nvidia-smi` (never CUDA itself: the server must not initialise a CUDA context it
would then carry into every fork-free child it starts). Everything that reads the machine takes
its input as text or a folder, so slot planning and the sandbox binds are tested on a CPU machine
with fake device lists, a fake /dev and a fake `ldconfig -p`.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import threading
from dataclasses import dataclass
from pathlib import Path

from study.errors import ArenaError

# What CUDA opens besides the GPU's own node: the control device and unified memory. Not
# nvidia-modeset (display) and not nvidia-caps (MIG management): a method needs neither.
CONTROL_NODES = ("nvidiactl", "nvidia-uvm", "nvidia-uvm-tools")
# The driver's user-space half, as `ldconfig -p` names it.
DRIVER_LIBRARY = re.compile(r"^lib(cuda|nvidia-[\w.-]+)\.so(\.|$)")
# procfs lists every GPU of the host here; the method's own GPU works without it.
MASKED_PROC = ("/proc/driver/nvidia/gpus",)
SMI_QUERY = ("--query-gpu=index,uuid,name,memory.total", "--format=csv,noheader,nounits")


class GpuUnavailableError(ArenaError):
    """`--gpus` asked for GPUs this machine does not have (or it has no CUDA at all)."""

    code = "gpu_unavailable"


@dataclass(frozen=True)
class GpuDevice:
    index: int  # nvidia-smi's index (PCI bus order), also the number of /dev/nvidiaN
    uuid: str
    name: str
    memory_mb: int


@dataclass(frozen=True)
class Slot:
    """What one worker holds for as long as it lives: a number and, in a GPU study, its GPUs."""

    number: int
    gpus: tuple[GpuDevice, ...] = ()
    dev_root: str = "/dev"  # where its device nodes live on the host (a fake one in tests)

    @property
    def device(self) -> str:
        return "cuda" if self.gpus else "cpu"

    def env(self) -> dict[str, str]:
        """The method process's view: only this slot's GPUs, named by UUID so that CUDA's own
        device order (fastest first) cannot pick another one."""
        if not self.gpus:
            return {}
        env = {"CUDA_VISIBLE_DEVICES": ",".join(g.uuid or str(g.index) for g in self.gpus),
               "CUDA_DEVICE_ORDER": "PCI_BUS_ID"}
        folders = driver_folders(os.environ.get("LD_LIBRARY_PATH"))
        if folders:  # the driver sits outside the ld cache (a container's /usr/local/nvidia)
            env["LD_LIBRARY_PATH"] = ":".join(folders)
        return env

    def describe(self) -> str:
        if not self.gpus:
            return f"slot {self.number}: CPU"
        return f"slot {self.number}: " + ", ".join(
            f"GPU {g.index} ({g.name}, {g.memory_mb} MiB)" for g in self.gpus)


# ------------------------------------------------------------------------------- discovery
def parse_nvidia_smi(text: str) -> list[GpuDevice]:
    """Rows of `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,
    nounits`; a malformed row is an error, not a silently smaller machine."""
    gpus = []
    for line in text.splitlines():
        if not line.strip():
            continue
        fields = [f.strip() for f in line.split(",")]
        if len(fields) != 4:
            raise GpuUnavailableError(f"nvidia-smi printed an unexpected row: {line!r}")
        index, uuid, name, memory = fields
        try:
            gpus.append(GpuDevice(int(index), uuid, name, int(float(memory))))
        except ValueError:
            raise GpuUnavailableError(f"nvidia-smi printed an unexpected row: {line!r}") from None
    return gpus


def discover_gpus() -> tuple[list[GpuDevice], str | None]:
    """The GPUs of this machine, and why there are none when there are none."""
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return [], "nvidia-smi is not installed (no NVIDIA driver on this machine)"
    try:
        done = subprocess.run([smi, *SMI_QUERY], capture_output=True, text=True, timeout=30,
                              check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return [], f"nvidia-smi did not answer: {exc}"
    if done.returncode != 0:
        return [], f"nvidia-smi failed: {(done.stderr or done.stdout).strip()[:300]}"
    gpus = parse_nvidia_smi(done.stdout)
    return gpus, None if gpus else "nvidia-smi lists no GPU"


# ---------------------------------------------------------------------------- the request
def parse_gpu_request(spec: str | None) -> str | list[int] | None:
    """`--gpus`: None or "" (a CPU study), "all", or distinct indices "0,1,3"."""
    if spec is None or not spec.strip():
        return None
    spec = spec.strip().lower()
    if spec == "all":
        return "all"
    indices = []
    for part in spec.split(","):
        part = part.strip()
        if not part.isdigit():
            raise GpuUnavailableError(
                f"--gpus {spec!r}: expected 'all' or GPU indices like '0,1' (got {part!r})")
        indices.append(int(part))
    if len(set(indices)) != len(indices):
        raise GpuUnavailableError(f"--gpus {spec!r} names a GPU twice")
    return indices


def select_gpus(request: str | list[int], available: list[GpuDevice], *,
                why_none: str | None = None) -> list[GpuDevice]:
    """The requested GPUs out of those present, or a clear error saying what is missing."""
    if not available:
        raise GpuUnavailableError(
            f"--gpus {request if request == 'all' else ','.join(map(str, request))} was "
            f"asked for, but this machine has no CUDA GPU ({why_none or 'none found'}). "
            "Leave --gpus out to run a CPU study.")
    if request == "all":
        return sorted(available, key=lambda g: g.index)
    by_index = {g.index: g for g in available}
    missing = [i for i in request if i not in by_index]
    if missing:
        raise GpuUnavailableError(
            f"--gpus names GPU(s) {missing} that this machine does not have; it has "
            f"{sorted(by_index)}")
    return [by_index[i] for i in request]


def plan_slots(gpus: list[GpuDevice], *, gpus_per_slot: int = 1, cpu_slots: int = 1,
               dev_root: str = "/dev") -> list[Slot]:
    """One slot per GPU (or per group of `gpus_per_slot`); without GPUs, `cpu_slots` CPU slots.
    GPUs left over after whole groups are refused rather than silently idle."""
    if not gpus:
        return [Slot(i) for i in range(cpu_slots)]
    if gpus_per_slot < 1:
        raise GpuUnavailableError("gpus_per_attempt must be at least 1")
    if len(gpus) % gpus_per_slot:
        raise GpuUnavailableError(
            f"{len(gpus)} GPU(s) do not split into slots of {gpus_per_slot}: "
            f"{len(gpus) % gpus_per_slot} would sit idle; choose the GPUs with --gpus")
    return [Slot(n, tuple(gpus[n * gpus_per_slot:(n + 1) * gpus_per_slot]), dev_root)
            for n in range(len(gpus) // gpus_per_slot)]


def resolve_slots(request: str | None, *, gpus_per_slot: int = 1, cpu_slots: int = 1,
                  found: tuple[list[GpuDevice], str | None] | None = None,
                  dev_root: str | None = None) -> list[Slot]:
    """`--gpus` text → the worker slots; fails at start, never at the first attempt.
    ARENA_GPU_DEV_ROOT moves the device nodes' folder (tests use a fake /dev)."""
    dev_root = dev_root or os.environ.get("ARENA_GPU_DEV_ROOT", "/dev")
    parsed = parse_gpu_request(request)
    if parsed is None:
        return plan_slots([], cpu_slots=cpu_slots)
    available, why = found if found is not None else discover_gpus()
    slots = plan_slots(select_gpus(parsed, available, why_none=why),
                       gpus_per_slot=gpus_per_slot, dev_root=dev_root)
    for slot in slots:
        gpu_mounts(slot, ldconfig_text="")  # every device node is there, or fail now
    return slots


# ---------------------------------------------------------------------- the sandbox's view
@dataclass(frozen=True)
class GpuMounts:
    devices: tuple[tuple[str, str], ...]  # (host node, path inside) for --dev-bind
    libraries: tuple[Path, ...]  # driver libraries outside the system folders already bound
    masked: tuple[str, ...]  # paths inside covered by an empty tmpfs


def parse_ldconfig(text: str) -> list[Path]:
    """The driver libraries in `ldconfig -p` output: libcuda and libnvidia-*, nothing else."""
    paths = []
    for line in text.splitlines():
        name, sep, target = line.strip().partition(" => ")
        if sep and DRIVER_LIBRARY.match(name.split(" ", 1)[0]):
            paths.append(Path(target.strip()))
    return sorted(set(paths))


def driver_folders(ld_library_path: str | None) -> list[str]:
    """The LD_LIBRARY_PATH folders that hold the driver (libcuda), in their order."""
    folders = []
    for folder in (ld_library_path or "").split(os.pathsep):
        if folder and Path(folder).is_dir() and any(Path(folder).glob("libcuda.so*")):
            folders.append(folder)
    return folders


def folder_libraries(folders: list[str]) -> list[Path]:
    """The driver libraries (libcuda, libnvidia-*) in these folders, nothing else of them."""
    return sorted(p for f in folders for p in Path(f).iterdir() if DRIVER_LIBRARY.match(p.name))


def ldconfig_listing() -> str:
    for exe in ("/sbin/ldconfig", "/usr/sbin/ldconfig", shutil.which("ldconfig")):
        if exe and os.path.exists(exe):
            done = subprocess.run([exe, "-p"], capture_output=True, text=True, timeout=30,
                                  check=False)
            return done.stdout
    return ""


def _under(path: Path, folders: tuple[str, ...]) -> bool:
    return any(path == Path(f) or Path(f) in path.parents for f in folders)


def gpu_mounts(slot: Slot, *, ldconfig_text: str | None = None,
               bound_dirs: tuple[str, ...] = ()) -> GpuMounts:
    """What a method on `slot` must see of the host: its GPUs' nodes and the control nodes,
    the driver libraries (those not already visible through `bound_dirs`), and no other GPU."""
    if not slot.gpus:
        return GpuMounts((), (), ())
    dev_root = Path(slot.dev_root)
    names = [*CONTROL_NODES, *(f"nvidia{g.index}" for g in slot.gpus)]
    missing = [n for n in names[len(CONTROL_NODES):] if not (dev_root / n).exists()]
    if missing or not (dev_root / "nvidiactl").exists():
        raise GpuUnavailableError(
            f"{slot.describe()}: device node(s) {missing or ['nvidiactl']} are missing under "
            f"{dev_root}; is the NVIDIA driver loaded?")
    devices = tuple((str(dev_root / n), f"/dev/{n}") for n in names if (dev_root / n).exists())
    text = ldconfig_listing() if ldconfig_text is None else ldconfig_text
    found = [*parse_ldconfig(text),
             *folder_libraries(driver_folders(os.environ.get("LD_LIBRARY_PATH")))]
    libraries = tuple(sorted({p for p in found if p.exists() and not _under(p.resolve(), bound_dirs)
                              and not _under(p, bound_dirs)}))
    return GpuMounts(devices, libraries, tuple(p for p in MASKED_PROC if Path(p).is_dir()))


def slot_healthy(slot: Slot) -> bool:
    """After a failed seed: is the slot's GPU still there? Checked by the runner itself, so a
    method cannot fake a lost GPU to win a free retry."""
    if not all(Path(slot.dev_root, f"nvidia{g.index}").exists() for g in slot.gpus):
        return False
    smi = shutil.which("nvidia-smi")
    if smi is None or slot.dev_root != "/dev":  # a fake /dev: its nodes are the whole truth
        return True
    for gpu in slot.gpus:
        try:
            done = subprocess.run([smi, "-i", gpu.uuid or str(gpu.index), "--query-gpu=index",
                                   "--format=csv,noheader"], capture_output=True, timeout=30,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired):
            return False
        if done.returncode != 0:
            return False
    return True


# ------------------------------------------------------------------ the runner's own reading
def nvml_reader(slot: Slot):
    """A function giving the MiB in use on the slot's GPUs, read through NVML (nvidia-ml-py),
    or None where NVML is not installed or does not answer."""
    if not slot.gpus:
        return None
    try:
        import pynvml

        pynvml.nvmlInit()
        handles = [pynvml.nvmlDeviceGetHandleByUUID(g.uuid) if g.uuid.startswith("GPU-")
                   else pynvml.nvmlDeviceGetHandleByIndex(g.index) for g in slot.gpus]
    except Exception:  # no NVML here (or a fake GPU): the method's own report stands
        return None
    return lambda: sum(pynvml.nvmlDeviceGetMemoryInfo(h).used for h in handles) / 2**20


class GpuMemoryWatch:
    """Peak GPU memory a seed used, as the runner sees it: device memory in use, sampled while
    the method runs, above what was in use when it started (the slot's GPU is its alone)."""

    def __init__(self, read_used, *, every_s: float = 0.2) -> None:
        self._read, self._every = read_used, every_s
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._base = self._peak = 0.0
        self.failed = False

    @classmethod
    def start(cls, slot: Slot | None, read_used=None) -> GpuMemoryWatch:
        read = read_used or (nvml_reader(slot) if slot is not None else None)
        watch = cls(read)
        if read is not None:
            watch._base = watch._peak = watch._sample()
            watch._thread = threading.Thread(target=watch._loop, name="gpu-memory", daemon=True)
            watch._thread.start()
        return watch

    def _sample(self) -> float:
        try:
            return float(self._read())
        except Exception:  # the GPU went away mid-run: keep what was seen
            self.failed = True
            return self._peak

    def _loop(self) -> None:
        while not self._stop.wait(self._every):
            self._peak = max(self._peak, self._sample())

    def stop(self) -> float | None:
        """Peak MiB above the start, or None when there was nothing to read."""
        if self._thread is None:
            return None
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._sample())
        return max(0.0, self._peak - self._base)
