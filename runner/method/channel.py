"""The result channel: a pipe the parent owns, the only way a method's results leave its sandbox.

The child (runner.method.child, and ctx.log / ctx.progress) writes frames to the pipe's write
end: one kind byte, a 4-byte big-endian length, the payload. The parent reads them in a thread
with a hard cap per frame and in total, parses each inside one catch-all, and remembers the
first thing that was wrong. Nothing is read from a folder the method can write, so there is no
link to follow, no FIFO to block on, no gigabyte file to load. A method runs in the same process
as the child, so it can write to the pipe too; whatever it writes is parsed like anything else,
and anything malformed is the method's own error.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import re
import struct
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

HEADER = struct.Struct(">cI")
PROBS, ERROR, METRIC, PROGRESS, REPORT = b"P", b"E", b"M", b"G", b"R"
FILE = b"F"  # an experiment's output file: 2-byte name length, the name, the bytes
FILE_CAP = 2 * 1024 * 1024
FRAME_CAPS = {PROBS: 64 * 1024 * 1024, ERROR: 256 * 1024, METRIC: 4096, PROGRESS: 4096,
              REPORT: 64 * 1024, FILE: FILE_CAP + 2 + 100}
MAX_FILES = 16
FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
TOTAL_CAP = 96 * 1024 * 1024  # past this the parent stops reading and closes its end
MAX_METRICS = 1000
MAX_REPORTS = 8
ERROR_KINDS = ("exception", "memory", "invalid_output", "gpu_memory")


class ChannelWriter:
    """The child's end. Thread-safe: a method may log from several threads."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self._lock = threading.Lock()

    def send(self, kind: bytes, payload: bytes) -> None:
        frame = HEADER.pack(kind, len(payload)) + payload
        with self._lock:
            view = memoryview(frame)
            while view:
                view = view[os.write(self.fd, view):]

    def send_json(self, kind: bytes, record: dict[str, Any]) -> None:
        self.send(kind, json.dumps(record).encode())

    def send_file(self, name: str, content: bytes) -> None:
        encoded = name.encode()
        self.send(FILE, struct.pack(">H", len(encoded)) + encoded + content)

    def send_probs(self, array: np.ndarray) -> None:
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array, dtype=np.float64), allow_pickle=False)
        self.send(PROBS, buffer.getvalue())


class ChannelError(Exception):
    """Something the method sent is malformed; the message says what, for the method's author."""


def _finite(value: object) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if isinstance(value, int):
        return abs(value) < 2**63  # float() of a 5,000-digit int would raise
    return math.isfinite(value)


def parse_metric(raw: object) -> dict | None:
    """A ctx.log record {name, value, step, t}; None when it is not one."""
    if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or \
            not _finite(raw.get("value")):
        return None
    step, t = raw.get("step"), raw.get("t")
    return {"name": raw["name"][:100], "value": float(raw["value"]),
            "step": step if isinstance(step, int) and abs(step) < 2**53 else None,
            "t": float(t) if _finite(t) else None}


def parse_progress(raw: object) -> dict[str, float] | None:
    """{"done", "total"}: finite, 0 ≤ done ≤ total; None otherwise."""
    if not isinstance(raw, dict) or not _finite(raw.get("done")) or \
            not _finite(raw.get("total")):
        return None
    done, total = float(raw["done"]), float(raw["total"])
    if not (0 < total < 1e15 and 0 <= done < 1e15):
        return None
    return {"done": min(done, total), "total": total}


def _text(value: object, cap: int) -> str | None:
    return value[-cap:] if isinstance(value, str) else None


def parse_error(raw: object) -> dict[str, str | None]:
    if not isinstance(raw, dict):
        raise ChannelError(f"its error report is a {type(raw).__name__}, not an object")
    kind = raw.get("kind")
    return {"kind": kind if kind in ERROR_KINDS else "exception",
            "message": _text(raw.get("message"), 4000) or "(no message)",
            "traceback": _text(raw.get("traceback"), 20000)}


def parse_probs(payload: bytes) -> np.ndarray:
    try:
        array = np.load(io.BytesIO(payload), allow_pickle=False)
    except Exception as exc:  # any surprise in the method's bytes is its error
        raise ChannelError(f"its predictions are not a readable array: {exc}") from None
    if not isinstance(array, np.ndarray) or array.dtype.kind not in "fiub":
        raise ChannelError("its predictions are not an array of numbers")
    return array


def parse_file(payload: bytes) -> tuple[str, bytes]:
    """(name, content) of an experiment's file; a plain name, never a path."""
    if len(payload) < 2:
        raise ChannelError("it sent a file frame without a name")
    (length,) = struct.unpack(">H", payload[:2])
    try:
        name = payload[2:2 + length].decode()
    except UnicodeDecodeError:
        raise ChannelError("it sent a file whose name is not UTF-8") from None
    if not FILE_NAME.match(name):
        raise ChannelError(f"it sent a file named {name[:100]!r}; names are letters, digits, "
                           "'.', '_' and '-' (no folders)")
    return name, payload[2 + length:]


def _json(payload: bytes) -> object:
    try:
        return json.loads(payload)
    except (ValueError, RecursionError) as exc:
        raise ChannelError(f"it sent a report that is not JSON: {exc}") from None


@dataclass
class ChannelResult:
    probs: np.ndarray | None = None
    error: dict[str, str | None] | None = None
    metrics: list[dict] = field(default_factory=list)
    reports: dict[str, dict] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)  # an experiment's output files
    problem: str | None = None  # the first malformed thing the method sent
    bytes_read: int = 0


class ChannelReader(threading.Thread):
    """The parent's end: reads frames until EOF, a problem, or the total cap."""

    def __init__(self, fd: int, on_live: Callable[[dict], None] | None = None) -> None:
        super().__init__(daemon=True, name="result-channel")
        self.fd, self.on_live = fd, on_live
        self.result = ChannelResult()

    def run(self) -> None:
        try:
            while self._frame():
                pass
        except ChannelError as exc:
            self.result.problem = str(exc)
        except Exception as exc:  # whatever the method sent, the parent lives
            self.result.problem = f"its result channel could not be read: {exc!r}"[:500]
        finally:
            os.close(self.fd)  # a child still writing gets EPIPE, never blocks

    def _read(self, n: int) -> bytes:
        chunks, got = [], 0
        while got < n:
            chunk = os.read(self.fd, min(n - got, 1 << 20))
            if not chunk:
                break
            chunks.append(chunk)
            got += len(chunk)
        self.result.bytes_read += got
        return b"".join(chunks)

    def _frame(self) -> bool:
        header = self._read(HEADER.size)
        if not header:
            return False
        if len(header) < HEADER.size:
            raise ChannelError("its result channel ended inside a frame header")
        kind, length = HEADER.unpack(header)
        cap = FRAME_CAPS.get(kind)
        if cap is None:
            raise ChannelError(f"it wrote an unknown frame {kind!r} to the result channel")
        if length > cap or self.result.bytes_read + length > TOTAL_CAP:
            raise ChannelError(f"it sent a {length}-byte report where at most {cap} bytes "
                               f"(and {TOTAL_CAP} in all) are read")
        payload = self._read(length)
        if len(payload) < length:
            raise ChannelError("its result channel ended inside a frame")
        self._handle(kind, payload)
        return True

    def _handle(self, kind: bytes, payload: bytes) -> None:
        result = self.result
        if kind in (PROBS, ERROR) and (result.probs is not None or result.error is not None):
            raise ChannelError("it sent a second result after its first")
        if kind == PROBS:
            result.probs = parse_probs(payload)
        elif kind == ERROR:
            result.error = parse_error(_json(payload))
        elif kind == METRIC:
            record = parse_metric(_json(payload))
            if record is not None and len(result.metrics) < MAX_METRICS:
                result.metrics.append(record)
                self._live({"metrics": [record]})
        elif kind == PROGRESS:
            progress = parse_progress(_json(payload))
            if progress is not None:
                self._live(progress)
        elif kind == FILE:
            name, content = parse_file(payload)
            if len(result.files) < MAX_FILES:
                result.files[name] = content
        else:
            self._report(_json(payload))

    def _report(self, raw: object) -> None:
        if not isinstance(raw, dict) or not isinstance(raw.get("name"), str) or \
                not isinstance(raw.get("data"), dict):
            raise ChannelError("it sent a report without a name and data")
        if len(self.result.reports) < MAX_REPORTS:
            self.result.reports[raw["name"][:40]] = raw["data"]

    def _live(self, update: dict) -> None:
        if self.on_live is None:
            return
        with contextlib.suppress(Exception):  # the live page is a convenience only
            self.on_live(update)

    def finish(self, timeout: float = 5.0) -> ChannelResult:
        """The outcome once the child is gone; a writer a stray process still holds open
        (possible only unsandboxed) is abandoned after `timeout`."""
        self.join(timeout)
        if self.is_alive() and self.result.problem is None:
            self.result.problem = "its result channel was still held open after it exited"
        return self.result
