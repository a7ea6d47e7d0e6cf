"""Checks of a method's source that need no runner: it parses, and it defines `run`.

The server applies them before an attempt is created, so a typo or a missing `run(ctx)` costs
no attempt and no compute; the workspace applies the same functions as the researcher types,
to mark the offending line. Pure functions, no I/O.
"""

from __future__ import annotations

import ast
from typing import NamedTuple


class SourceProblem(NamedTuple):
    line: int  # 1-based, as the server's "method.py line N" messages
    column: int  # 0-based
    message: str
    kind: str = "syntax"  # or "no_run"


def _defines_run(tree: ast.Module) -> bool:
    """A top-level `def run`, or a top-level name `run` bound by assignment or import (a
    method may alias a helper: `run = make_method(...)`, `from helpers import fit as run`)."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and node.name == "run":
            return True
        if isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "run" for t in targets):
                return True
        if isinstance(node, ast.Import | ast.ImportFrom) and any(
                (alias.asname or alias.name) == "run" for alias in node.names):
            return True
    return False


def find_problem(source: str) -> SourceProblem | None:
    """The first reason this source cannot be a method, or None."""
    try:
        tree = ast.parse(source, filename="method.py")
    except SyntaxError as exc:
        return SourceProblem(exc.lineno or 1, max((exc.offset or 1) - 1, 0),
                             f"method.py line {exc.lineno}: {exc.msg}")
    except ValueError as exc:  # NUL bytes
        return SourceProblem(1, 0, f"method.py cannot be compiled: {exc}")
    if not _defines_run(tree):
        return SourceProblem(1, 0, "method.py defines no top-level `run`: the runner calls "
                                   "`run(ctx)` and scores what it returns. Add "
                                   "`def run(ctx):` at the top level.", kind="no_run")
    return None


def missing_run(source: str) -> str | None:
    """The message for a source that parses but defines no `run`, else None."""
    problem = find_problem(source)
    return problem.message if problem and problem.kind == "no_run" else None
