"""The checks that run before an attempt exists: a source must parse and define `run`."""

from __future__ import annotations

import pytest

from study.method_source import find_problem, missing_run


@pytest.mark.parametrize("source", [
    "def run(ctx):\n    return ctx\n",
    "async def run(ctx):\n    return ctx\n",
    "def helper(ctx):\n    return ctx\nrun = helper\n",
    "from numpy import zeros as run\n",
    "run: object = print\n",
])
def test_sources_that_define_run_pass(source):
    assert find_problem(source) is None and missing_run(source) is None


@pytest.mark.parametrize("source", [
    "def fit(ctx):\n    return ctx\n",
    "class Method:\n    def run(self, ctx):\n        return ctx\n",  # not top level
    "if False:\n    def run(ctx):\n        return ctx\n",  # only maybe defined
    "# def run(ctx):\n",
])
def test_sources_without_a_top_level_run_are_refused(source):
    problem = find_problem(source)
    assert problem is not None and problem.kind == "no_run"
    assert "def run(ctx):" in problem.message and missing_run(source) == problem.message


def test_a_syntax_error_names_its_line_and_column():
    problem = find_problem("import numpy\n\ndef run(ctx):\n    return numpy.zeros(3\n")
    assert problem.kind == "syntax" and problem.line >= 4
    assert problem.message.startswith(f"method.py line {problem.line}:")
    assert missing_run("def run(ctx)\n") is None  # a syntax error is not "missing run"


def test_nul_bytes_are_a_problem_not_a_crash():
    assert find_problem("def run(ctx):\n    return 1\x00\n") is not None
