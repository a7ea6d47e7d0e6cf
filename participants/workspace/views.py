"""Attempt and forum records → rows, labels and diffs for the pages (pure, no Streamlit)."""

from __future__ import annotations

import difflib

import pandas as pd

from participants.workspace.errors import format_seconds
from study.records import ACTIVE, AttemptStatus, AttemptView, ForumPostView

FORUM_KINDS = ("result", "hypothesis", "insight", "error")


def short(attempt_id: str) -> str:
    return attempt_id[:12]


def status_label(view: AttemptView) -> str:
    # Plain words, no emoji: a browser without an emoji font would show empty boxes.
    label = view.status.value.replace("_", " ")
    if view.status is AttemptStatus.QUEUED and view.queue_position is not None:
        label += f" (#{view.queue_position} in queue)"
    return label


def pgr_text(view: AttemptView) -> str:
    """`0.31 ± 0.04`, or why there is none yet."""
    if view.public and view.public.pgr is not None:
        se = f" ± {view.public.pgr_se:.2f}" if view.public.pgr_se is not None else ""
        return f"{view.public.pgr:.2f}{se}"
    if view.public_withheld:
        return f"withheld: {view.public_withheld}"
    return "—"


def attempt_label(view: AttemptView) -> str:
    """One line for select boxes: id, task, status, score, time."""
    when = view.submitted_at.strftime("%m-%d %H:%M")
    return f"{short(view.id)} · {view.task} · {view.status.value} · PGR {pgr_text(view)} · {when}"


def attempts_frame(views: list[AttemptView]) -> pd.DataFrame:
    rows = [{
        "attempt": short(v.id),
        "task": v.task,
        "status": status_label(v),
        "public PGR": pgr_text(v),
        "accuracy": v.public.accuracy if v.public else None,
        "submitted": v.submitted_at,
        "wall": format_seconds(v.wall_seconds) if v.wall_seconds is not None else "",
        "note": v.note or "",
        "error": (v.error or "")[:120],
    } for v in views]
    return pd.DataFrame(rows, columns=["attempt", "task", "status", "public PGR", "accuracy",
                                       "submitted", "wall", "note", "error"])


def subsets_frame(view: AttemptView) -> pd.DataFrame:
    """Per-subset public accuracy and PGR (e.g. in- vs out-of-distribution)."""
    subsets = view.public.subsets if view.public else {}
    rows = [{"subset": name, "n": s.get("n"), "accuracy": s.get("accuracy"), "PGR": s.get("pgr")}
            for name, s in sorted(subsets.items())]
    return pd.DataFrame(rows, columns=["subset", "n", "accuracy", "PGR"])


def any_active(views: list[AttemptView]) -> bool:
    return any(v.status in ACTIVE for v in views)


def source_diff(a: AttemptView, b: AttemptView) -> str:
    """A unified diff of two attempts' code; empty when they are identical."""
    lines = difflib.unified_diff(
        (a.source or "").splitlines(keepends=True), (b.source or "").splitlines(keepends=True),
        fromfile=f"attempt {short(a.id)}", tofile=f"attempt {short(b.id)}")
    return "".join(lines)


def post_header(post: ForumPostView) -> str:
    arm = f" ({post.arm})" if post.arm else ""
    link = ""
    if post.attempt_id:
        score = (f"public PGR {post.attempt_public_pgr:.2f}"
                 if post.attempt_public_pgr is not None else "no public score")
        link = f" · linked attempt `{short(post.attempt_id)}` — {score}"
    when = post.created_at.strftime("%Y-%m-%d %H:%M")
    return f"**{post.kind.upper()}** · {post.display_name}{arm} · {when}{link}"
