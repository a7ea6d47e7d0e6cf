"""Attempt and forum records → rows, labels and diffs for the pages (pure, no Streamlit)."""

from __future__ import annotations

import datetime as dt
import difflib
import re

import pandas as pd

from participants.workspace.errors import format_seconds
from study.records import ACTIVE, AttemptStatus, AttemptView, ForumPostView, SeedRunView

FORUM_KINDS = ("result", "hypothesis", "insight", "error")


_MARKDOWN = re.compile(r"([\\`*_{}\[\]()#+\-.!|<>~$])")


def plain(text: str | None) -> str:
    """Text a method or a participant wrote, escaped for Streamlit's markdown: an exception
    message shows as typed and cannot draw a link or load an image into the page."""
    return _MARKDOWN.sub(r"\\\1", text or "")


def short(attempt_id: str) -> str:
    return attempt_id[:12]


def status_label(view: AttemptView) -> str:
    # Plain words, no emoji: a browser without an emoji font would show empty boxes.
    label = view.status.value.replace("_", " ")
    if view.status is AttemptStatus.QUEUED and view.queue_position is not None:
        label += f" (#{view.queue_position} in queue)"
    return label


def pgr_text(view: AttemptView) -> str:
    """`0.31 [0.22, 0.40]` (the 95% interval), `0.31 ± 0.04` (SE) where the server gave no
    interval, or why there is no score yet."""
    score = view.public
    if score and score.shown:
        return score.shown  # the server's one way of writing a score and its interval
    if score and score.pgr is not None:
        if score.pgr_ci95 is not None:
            return f"{score.pgr:.2f} [{score.pgr_ci95[0]:.2f}, {score.pgr_ci95[1]:.2f}]"
        se = f" ± {score.pgr_se:.2f}" if score.pgr_se is not None else ""
        return f"{score.pgr:.2f}{se}"
    if view.public_withheld:
        return f"withheld: {view.public_withheld}"
    return "—"


def attempt_label(view: AttemptView) -> str:
    """One line for select boxes: id, task, time, note. No status or score: a select box
    keeps the label it was drawn with, and a "running" that stays after the attempt scored
    misleads; the live table and the attempt's own header carry those."""
    when = view.submitted_at.strftime("%m-%d %H:%M")
    note = f" · {view.note[:40]}" if view.note else ""
    return f"{short(view.id)} · {view.task} · {when}{note}"


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


def attempt_link(attempt_id: str) -> str:
    """The attempt page's own URL for one attempt (relative: it works behind any host)."""
    return f"attempts?attempt={attempt_id}"


def post_link(post_id: str) -> str:
    return f"forum?post={post_id}"


def post_header(post: ForumPostView, *, mine: bool = False) -> str:
    """Kind, author, time, and the linked attempt with the server's score: a link to the
    attempt page for its author (nobody else may open it)."""
    arm = f" ({post.arm})" if post.arm else ""
    link = ""
    if post.attempt_id:
        score = (f"public PGR {post.attempt_public_pgr:.2f}"
                 if post.attempt_public_pgr is not None else "no public score")
        name = f"`{short(post.attempt_id)}`"
        if mine:
            name = f"[{name}]({attempt_link(post.attempt_id)})"
        link = f" · linked attempt {name} — {score}"
    when = post.created_at.strftime("%Y-%m-%d %H:%M")
    return f"**{post.kind.upper()}** · {post.display_name}{arm} · {when}{link}"


def seed_progress(run: SeedRunView) -> tuple[float, str]:
    """(fraction for a progress bar, words) for one seed: its last ctx.progress while it runs."""
    state = run.state.replace("_", " ")
    if run.state == "running" and run.total:
        done = run.done or 0.0
        return done / run.total, f"seed {run.seed} · running · {done:g} / {run.total:g}"
    if run.state == "running":
        return 0.0, f"seed {run.seed} · running (the method reports no ctx.progress)"
    if run.state == "pending":
        return 0.0, f"seed {run.seed} · waiting for the seed before it"
    wall = f" in {format_seconds(run.wall_seconds)}" if run.wall_seconds is not None else ""
    return (1.0 if run.state == "ok" else 0.0), f"seed {run.seed} · {state}{wall}"


def per_seed_frame(view: AttemptView) -> pd.DataFrame:
    """One row per seed: state, wall time and, where the server shows it, its public PGR."""
    scores = view.public.pgr_per_seed if view.public else []
    rows = [{"seed": r.seed, "state": r.state,
             "wall": format_seconds(r.wall_seconds) if r.wall_seconds is not None else "",
             "public PGR": scores[i] if i < len(scores) else None}
            for i, r in enumerate(view.seed_runs)]
    frame = pd.DataFrame(rows, columns=["seed", "state", "wall", "public PGR"])
    return frame if scores else frame.drop(columns=["public PGR"])


IDLE_AFTER = dt.timedelta(minutes=10)  # no model turn for this long: the agent is idle


def agent_status(turns: int, last_turn_at: dt.datetime | None, stopped: str | None, *,
                 now: dt.datetime | None = None) -> str:
    """running, idle (for how long) or stopped (and why), from the agent's last model turn
    and its harness's last stop note; "no turns" for a participant without model turns."""
    if stopped:
        return f"stopped: {stopped}"
    if turns == 0 or last_turn_at is None:
        return "no turns"
    quiet = (now or dt.datetime.now(dt.UTC)) - last_turn_at
    if quiet < IDLE_AFTER:
        return "running"
    return f"idle for {format_seconds(quiet.total_seconds())}"
