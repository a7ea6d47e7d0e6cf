"""GPU facts that only the method process can see, passed to the runner as one small report.

The child sends a "gpu" report over the result channel (peak memory torch allocated); the parent
reads it with the channel's size cap and keeps only a sane number. It is informational: what a
GPU study charges is the wall time the runner measured itself times the GPUs the slot held, so a
method that lies here gains nothing.
Nothing here imports torch unless the method already did.
"""

from __future__ import annotations

import math
import sys

# No GPU has more than this; a larger figure is a method writing nonsense into its report.
MAX_PLAUSIBLE_MB = 16 * 1024 * 1024


def _torch_cuda():
    """torch.cuda if the method imported torch and used CUDA, else None (never imports it)."""
    torch = sys.modules.get("torch")
    if torch is None:
        return None
    try:
        return torch.cuda if torch.cuda.is_initialized() else None
    except Exception:  # a method may have broken torch in any way; no report then
        return None


def write_gpu_report(channel) -> None:
    """Sends the report over the result channel (a ChannelWriter) as REPORT "gpu"."""
    cuda = _torch_cuda()
    if cuda is None:
        return
    try:
        peak = max(cuda.max_memory_allocated(i) for i in range(cuda.device_count()))
        name = cuda.get_device_name(0)
    except Exception:  # a lost GPU or an exhausted one: the seed's error says why
        return
    from runner.method.channel import REPORT as REPORT_FRAME

    channel.send_json(REPORT_FRAME, {"name": "gpu",
                                     "data": {"peak_mb": peak / 2**20, "device": name}})


def is_cuda_oom(exc: BaseException) -> bool:
    """torch's out-of-memory error (CUDA's allocator), without importing torch to check."""
    torch = sys.modules.get("torch")
    oom = getattr(torch, "OutOfMemoryError", None) if torch is not None else None
    return oom is not None and isinstance(exc, oom)


def oom_message(exc: BaseException) -> str:
    first = str(exc).strip().splitlines()[0][:300] if str(exc).strip() else ""
    return ("the method ran out of GPU memory (CUDA out of memory); the next seed and the next "
            f"attempt start in a fresh process with the whole GPU. {first}").strip()


def read_gpu_report(raw: object) -> float | None:
    """Peak GPU memory in MB from the child's report (the channel's "gpu" REPORT, already
    size-capped and parsed), or None when absent or not believable."""
    value = raw.get("peak_mb") if isinstance(raw, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value) if 0 <= value <= MAX_PLAUSIBLE_MB else None
