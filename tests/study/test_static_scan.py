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


def test_the_attacks_on_the_runner_are_flagged():
    """Special files, raw channel writes, os._exit, ctx's plumbing, runner file names."""
    rules = {f.rule for name in ("special_files", "forged_channel", "exit_137", "fingerprint")
             for f in scan_source((REPO / "tests" / "attacks" / f"{name}.py").read_text())}
    assert {"call os.mkfifo", "call os.symlink", "call os.write", "call os._exit",
            "ctx._bundle", "runner file", "system path"} <= rules


def test_private_ctx_attributes_are_flagged_but_dunders_and_the_api_are_not():
    source = ("def run(ctx):\n    a = ctx._channel\n    b = ctx.__class__\n"
              "    return ctx.strong_features('test')[:, 0]\n")
    assert [(f.line, f.rule) for f in scan_source(source)] == [(2, "ctx._channel")]


def test_writes_to_the_old_output_folder_and_links_are_flagged():
    source = ('import os\nimport numpy as np\n\ndef run(ctx):\n'
              '    np.save("out/probs.npy", [1.0])\n'
              '    open(os.path.join(os.getcwd(), "out", "error.json"), "w").write("[]")\n'
              '    os.link("/w2s/bundle/meta.json", "x")\n'
              '    (ctx.scratch / "m").symlink_to(ctx.scratch)\n'
              '    os._exit(137)\n')
    assert [(f.line, f.rule) for f in scan_source(source)] == [
        (5, "runner file"), (6, "runner file"), (7, "call os.link"), (7, "system path"),
        (8, "call .symlink_to"), (9, "call os._exit")]
