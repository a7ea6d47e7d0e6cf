"""Host paths out of what participants read: tracebacks and logs name the method's file and
the libraries it called, not where this server keeps its checkout, cache or interpreter.

Paths are replaced by labels (`<arena>/runner/...`, `<site-packages>/numpy/...`), so a frame
still says which library and line failed; the layout of the host does not leak, and a
traceback reads the same on every machine.
"""

from __future__ import annotations

import os
import re
import site
import sys
import sysconfig
import tempfile
from functools import lru_cache
from pathlib import Path

from study.settings import cache_dir

REPO = Path(__file__).resolve().parent.parent
# The staged method, wherever the runner put it (an attempt-*/dryrun-* folder, any seed).
_METHOD = re.compile(r"(?:/[^\s\"'/]+)+/method/method\.py")


@lru_cache(maxsize=1)
def _prefixes() -> tuple[tuple[str, str], ...]:
    """(host prefix, label), longest first so the most specific label wins."""
    pairs = [(str(REPO), "<arena>"), (str(cache_dir()), "<cache>"),
             (tempfile.gettempdir(), "<tmp>"), (sys.prefix, "<python>"),
             (sys.base_prefix, "<python>"), (os.path.expanduser("~"), "~")]
    for path in {*site.getsitepackages(), sysconfig.get_paths()["purelib"],
                 sysconfig.get_paths()["platlib"]}:
        pairs.append((path, "<site-packages>"))
    for path in (sysconfig.get_paths()["stdlib"],):
        pairs.append((path, "<stdlib>"))
    real = [(os.path.realpath(p), label) for p, label in pairs]
    unique = {p.rstrip("/"): label for p, label in [*pairs, *real] if len(p.rstrip("/")) > 1}
    return tuple(sorted(unique.items(), key=lambda kv: -len(kv[0])))


def strip_host_paths(text: str | None) -> str | None:
    """`text` with the method's staged path shown as `method.py` and host prefixes as labels."""
    if not text:
        return text
    text = _METHOD.sub("method.py", text)
    for prefix, label in _prefixes():
        text = text.replace(prefix, label)
    return text
