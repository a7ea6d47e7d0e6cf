"""Bad input from a method: each case gets a clear error on the result, and the runner goes on."""

import time

import pytest

from runner.attempt import stage_method
from study.errors import InvalidError

VANILLA = """
def run(ctx):
    head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels, seed=ctx.seed)
    return head.predict_proba(ctx.strong_features("test"))
"""


def only(result):
    assert result.status == "failed", result
    (outcome,) = result.outcomes
    return outcome


def test_vanilla_scores_in_its_own_sandboxed_process(run_source):
    result = run_source(VANILLA, seeds=(1, 2))
    assert result.status == "scored", result.error
    assert all(o.sandboxed and o.status == "ok" for o in result.outcomes)
    assert result.scores["all"].n == 2000
    assert result.scores["public"].n + result.scores["private"].n == 2000
    assert result.outcomes[0].cpu_s > 0.05  # the child's CPU time is measured, not zero


def test_a_method_that_raises_keeps_its_traceback(run_source):
    outcome = only(run_source("""
        def helper():
            raise ValueError("boom in helper")

        def run(ctx):
            print("about to fail")
            helper()
    """))
    assert outcome.error == "ValueError: boom in helper"
    assert "helper()" in outcome.traceback and "method.py" in outcome.traceback
    assert "about to fail" in outcome.log_tail


def test_syntax_error_and_missing_run(run_source):
    assert "SyntaxError" in only(run_source("def run(ctx) return 1\n")).error
    assert "defines no function run(ctx)" in only(run_source("x = 1\n")).error


def test_a_method_that_hangs_is_killed_at_its_budget(run_source):
    started = time.monotonic()
    outcome = only(run_source("""
        import time
        def run(ctx):
            while True:
                time.sleep(0.1)
    """, seconds=3))
    assert outcome.status == "timeout"
    assert "time budget of 3 s" in outcome.error
    assert time.monotonic() - started < 15


def test_a_method_that_allocates_past_its_memory_budget(run_source):
    outcome = only(run_source("""
        def run(ctx):
            blocks = [bytearray(256 * 2**20) for _ in range(16)]  # 4 GiB
            return [0.5] * len(ctx.texts("test"))
    """, memory_mb=1024))
    assert outcome.error_kind == "memory"
    assert "memory budget (1024 MB)" in outcome.error


def test_megabytes_of_output_are_capped_not_fatal(run_source):
    result = run_source("""
        import sys
        def run(ctx):
            for _ in range(50):
                sys.stdout.write("x" * 1_000_000 + "\\n")
            print("LAST LINE")
            head = ctx.lib.train_head(ctx.strong_features("train"), ctx.weak_soft_labels)
            return head.predict_proba(ctx.strong_features("test"))
    """)
    assert result.status == "scored", result.error
    tail = result.outcomes[0].log_tail
    assert "LAST LINE" in tail and "earlier bytes dropped" in tail
    assert len(tail) < 70_000


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ('return "all positive"', "returned str"),
        ("return None", "returned None"),
        ("return [0.5] * 10", "got 10 predictions for 2000 test items"),
        ("return [float('nan')] * 2000", "2000 predictions are NaN or infinite"),
        ("return [2.0] * 2000", "lie outside [0, 1]"),
        ("return [[0.5, 0.5]] * 2000", "shape (2000, 2)"),
        ("return [[0.5], [0.5, 0.5]]", "not an array of numbers"),
        ("return {'probs': [0.5]}", "returned dict"),
    ],
)
def test_garbage_output_gets_a_clear_error(run_source, body, message):
    outcome = only(run_source(f"def run(ctx):\n    {body}\n"))
    assert message in outcome.error


def test_hidden_splits_are_refused_by_the_api(run_source):
    outcome = only(run_source("""
        def run(ctx):
            return ctx.strong_features("weak_train")
    """))
    assert "split 'weak_train' is not visible to methods" in outcome.error


def test_the_runner_keeps_serving_after_failures(run_source):
    only(run_source("def run(ctx):\n    raise SystemExit(3)\n"))
    only(run_source("import os\ndef run(ctx):\n    os._exit(9)\n"))
    assert run_source(VANILLA).status == "scored"


def test_the_method_file_itself_is_checked(tmp_path):
    bad = tmp_path / "m.py"
    bad.write_bytes(b"def run(ctx):\n    return '\xff\xfe'\n")
    with pytest.raises(InvalidError, match="not UTF-8"):
        stage_method(bad, tmp_path / "out")
    big = tmp_path / "big.py"
    big.write_text("#" * 2_000_000)
    with pytest.raises(InvalidError, match="limit"):
        stage_method(big, tmp_path / "out2")
    with pytest.raises(InvalidError, match="no method file"):
        stage_method(tmp_path / "missing.py", tmp_path / "out3")


def test_a_method_can_load_the_strong_model_for_fine_tuning(run_source):
    """ctx.strong_model() gives a fresh Hugging Face model inside the sandbox (offline); the
    ONNX-only weak model says clearly that it has no trainable weights."""
    result = run_source("""
        def run(ctx):
            model, tokenizer = ctx.strong_model()
            batch = tokenizer(ctx.texts("test")[:2], return_tensors="pt", padding=True)
            hidden = model(**batch).last_hidden_state
            print("hidden", tuple(hidden.shape), "device", ctx.device)
            try:
                ctx.weak_model()
            except Exception as exc:
                print("weak:", exc)
            return [0.5] * len(ctx.texts("test"))
    """, seconds=120, memory_mb=4096)
    assert result.status == "scored", result.error
    tail = result.outcomes[0].log_tail
    assert "hidden (2," in tail and "device cpu" in tail
    assert "ships as ONNX" in tail
