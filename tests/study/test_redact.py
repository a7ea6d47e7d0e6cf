"""Tracebacks shown to participants name the method and the libraries, not the host."""

from __future__ import annotations

import site
import sys
from pathlib import Path

from study.redact import REPO, strip_host_paths
from study.settings import cache_dir


def test_host_paths_become_labels_and_the_method_becomes_method_py():
    staged = cache_dir() / "attempt-abc123" / "method" / "method.py"
    numpy_file = Path(site.getsitepackages()[0]) / "numpy" / "core" / "fromnumeric.py"
    tb = (f'Traceback (most recent call last):\n'
          f'  File "{REPO}/runner/method/child.py", line 40, in main\n'
          f'  File "{staged}", line 3, in run\n'
          f'  File "{numpy_file}", line 12, in mean\n'
          f'  File "{sys.base_prefix}/lib/python3.11/json/__init__.py", line 1, in loads\n'
          f'ValueError: bad value in {Path.home()}/notes.txt\n')
    shown = strip_host_paths(tb)
    for host in (str(REPO), str(cache_dir()), str(Path.home()), site.getsitepackages()[0]):
        assert host not in shown
    assert 'File "method.py", line 3, in run' in shown
    assert "<arena>/runner/method/child.py" in shown
    assert "<site-packages>/numpy/core/fromnumeric.py" in shown
    assert "ValueError: bad value in" in shown


def test_empty_and_missing_text_pass_through():
    assert strip_host_paths(None) is None and strip_host_paths("") == ""
