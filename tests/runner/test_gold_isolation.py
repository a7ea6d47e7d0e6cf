"""A method must not reach gold labels: not by path, search, environment or arguments.

The same searching method runs twice: sandboxed it must find nothing; unsandboxed (the control)
it must find the gold files, which proves the search itself works and the test can fail.
"""

import json

from study.settings import cache_dir
from study.tasks.catalog import task_folder

SEARCH = """
import json, os, sys

MARKERS = json.loads({markers!r})
SKIP = ("/proc", "/sys", "/dev", "/usr", "/lib", "/lib64", "/bin", "/sbin", "/etc", "/boot")

def run(ctx):
    found, visited = [], 0
    for root in MARKERS["roots"]:
        for folder, dirs, files in os.walk(root):
            dirs[:] = [d for d in dirs
                       if not os.path.join(folder, d).startswith(SKIP)
                       and "site-packages" not in d and d not in (".git", "pip", "models")]
            for name in files:
                visited += 1
                path = os.path.join(folder, name)
                if name in ("test.jsonl", "weak_train.jsonl", "baselines.json"):
                    found.append(("name", path))
                try:
                    if os.path.getsize(path) > 5_000_000:
                        continue
                    with open(path, "rb") as fh:
                        data = fh.read()
                except OSError:
                    continue
                if MARKERS["gold_line"].encode() in data:
                    found.append(("content", path))
    blob = json.dumps(dict(os.environ)) + " ".join(sys.argv)
    for arg in sys.argv[1:]:
        if os.path.exists(arg):
            blob += open(arg).read()
    for key in ("ARENA_TOKEN", "ANTHROPIC_API_KEY", MARKERS["secret"], MARKERS["gold_line"]):
        if key in blob:
            found.append(("environment/arguments", key))
    print("SEARCH-REPORT " + json.dumps({{"visited": visited, "found": found}}))
    return [0.5] * len(ctx.texts("test"))
"""


def _report(result):
    line = next(x for x in result.outcomes[0].log_tail.splitlines()
                if x.startswith("SEARCH-REPORT "))
    return json.loads(line.removeprefix("SEARCH-REPORT "))


def test_a_searching_method_finds_no_gold_label(run_source, rt_task, monkeypatch):
    example = rt_task.splits["test"][0]
    gold_line = json.dumps({"text": example.inputs["text"], "label": example.label})[:-1]
    assert (task_folder(rt_task.name, rt_task.info.content_hash) / "test.jsonl").exists()
    markers = {"gold_line": gold_line, "secret": "sk-ant-test-secret", "roots": ["/"]}
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-secret")

    sandboxed = run_source(SEARCH.format(markers=json.dumps(markers)), seconds=120)
    assert sandboxed.status == "scored", sandboxed.error
    report = _report(sandboxed)
    assert report["found"] == []
    assert report["visited"] > 5  # it did look: the bundle, the runner package, scratch

    # The control searches only the data cache: the whole host is most of this test's time, and
    # what it must prove is that the same search finds gold files where they are visible.
    control_markers = {**markers, "roots": [str(cache_dir())]}
    control = run_source(SEARCH.format(markers=json.dumps(control_markers)), seconds=300,
                         sandbox=False)
    found = _report(control)["found"]
    assert any(kind == "name" and str(cache_dir()) in path for kind, path in found), found
    assert any(kind == "content" for kind, _ in found), found
