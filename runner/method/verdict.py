"""How a finished method run is judged: from what the runner observed, then what the method sent.

An infrastructure fault (requeued, refunded) is never declared here from an exit code: a method
can end itself with any code, `os._exit(137)` included. The runner's own evidence comes first —
its deadline, a cancellation, the cgroup's pids cap and OOM counter — and anything else that
ends without a well-formed result is the method's failure, charged like any other. (Faults the
runner itself raises, and a GPU the runner finds gone, are judged by the caller.)
"""

from __future__ import annotations

import signal
from dataclasses import dataclass
from typing import TYPE_CHECKING

from runner.method.channel import ChannelResult
from runner.method.context import Budget

if TYPE_CHECKING:
    from runner.method.launch import MethodRun


@dataclass(frozen=True)
class Evidence:
    """What the runner itself saw while the method ran."""

    timed_out: bool = False
    cancelled: bool = False
    too_many_processes: bool = False
    oom_killed: bool = False


def _fail(result: MethodRun, status: str, kind: str, message: str) -> MethodRun:
    result.status, result.error_kind, result.error = status, kind, message  # type: ignore[assignment]
    return result


def judge(result: MethodRun, got: ChannelResult, seen: Evidence, budget: Budget) -> MethodRun:
    if got.error is not None:
        result.traceback = got.error["traceback"]
    if seen.cancelled:
        return _fail(result, "cancelled", "cancelled",
                     "the attempt was cancelled while this seed ran")
    if seen.too_many_processes:
        return _fail(result, "error", "processes",
                     f"the method tried to run more than {budget.max_processes} processes "
                     "(a fork bomb?) and was stopped")
    if seen.timed_out:
        return _fail(result, "timeout", "timeout",
                     f"the method ran past its time budget of {budget.seconds:g} s and was killed")
    if seen.oom_killed:
        return _fail(result, "error", "memory",
                     f"the method's processes together used more than their memory budget of "
                     f"{budget.memory_mb} MB (files written to /tmp count: they are memory) and "
                     "the kernel stopped them")
    if got.problem is not None:
        return _fail(result, "error", "invalid_output",
                     f"the method's output was rejected: {got.problem}")
    if got.error is not None:
        return _fail(result, "error", str(got.error["kind"]), str(got.error["message"]))
    if got.probs is None or result.exit_code != 0:
        cause = _death_cause(result.exit_code)
        return _fail(result, "killed", cause,
                     f"the method process ended without a result ({cause}); this counts as "
                     "the method's failure")
    result.raw = got.probs
    return result


def _death_cause(code: int | None) -> str:
    if code is None:
        return "unknown"
    if code in (-signal.SIGXCPU, 128 + signal.SIGXCPU):
        return "CPU-time limit exceeded"
    if code in (-signal.SIGXFSZ, 128 + signal.SIGXFSZ):
        return "file-size limit exceeded"
    return f"exit code {code}"
