from study.static_scan import scan_source
from tests.conftest import REPO

SNEAKY = """import os
import socket

def run(ctx):
    for root, dirs, files in os.walk("/"):
        pass
    here = __file__
    data = open("/root/.cache/w2s-arena/tasks/test.jsonl").read()
    return [0.5] * 10
"""


def test_the_scan_quotes_each_suspect_line():
    findings = scan_source(SNEAKY)
    rules = {(f.line, f.rule) for f in findings}
    assert (2, "import socket") in rules
    assert (5, "call os.walk") in rules
    assert (7, "__file__") in rules
    assert (8, "open absolute path") in rules
    walk = next(f for f in findings if f.rule == "call os.walk")
    assert walk.code == 'for root, dirs, files in os.walk("/"):'


def test_the_shipped_baselines_are_clean():
    for path in (REPO / "baselines").glob("*.py"):
        assert scan_source(path.read_text()) == [], path.name
