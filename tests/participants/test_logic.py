"""The workspace's pure helpers: messages, uploads, diffs, labels and the best-so-far frame."""

from __future__ import annotations

import datetime as dt

import httpx
import pandas as pd

from participants.sdk import ArenaAPIError
from participants.workspace import charts, views
from participants.workspace.editor import check_upload, precheck
from participants.workspace.errors import describe_error, format_seconds
from study.records import AttemptStatus, AttemptView, ScoreView, SeedRunView

T0 = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def attempt(i: int, *, pgr: float | None = None, status=AttemptStatus.SCORED,
            source: str = "", who: str = "p1", **extra) -> AttemptView:
    return AttemptView(
        id=f"att_{i:012d}", participant_id=who, task="rt_sentiment", status=status,
        code_sha256="0" * 64, submitted_at=T0 + dt.timedelta(minutes=i),
        finished_at=T0 + dt.timedelta(minutes=i, seconds=30) if pgr is not None else None,
        public=ScoreView(pgr=pgr, pgr_se=0.02, accuracy=0.7, n=100,
                         subsets={"ood": {"n": 40, "accuracy": 0.6, "pgr": 0.1}})
        if pgr is not None else None, source=source, **extra)


def test_error_messages_say_what_to_do():
    assert "Sign in again" in describe_error(ArenaAPIError(401, "auth", "this token was revoked"))
    quota = describe_error(ArenaAPIError(429, "quota", "daily quota used: 5 of 5",
                                         retry_after=3700))
    assert "quota is used up" in quota and "5 of 5" in quota and "1h 01m" in quota
    assert "too large" in describe_error(ArenaAPIError(413, "too_large", "20001 bytes"))
    down = describe_error(httpx.ConnectError("refused"), url="http://x:1")
    assert "http://x:1 cannot be reached" in down and "editor text is kept" in down


def test_format_seconds():
    assert [format_seconds(s) for s in (0, 12.4, 250, 3 * 3600 + 300)] == [
        "0s", "12s", "4m 10s", "3h 05m"]


def test_uploads_are_checked_before_they_replace_the_editor_text():
    assert check_upload("m.py", b"def run(ctx): ...\n", 100) == ("def run(ctx): ...\n", None)
    text, error = check_upload("big.py", b"#" * 101, 100)
    assert text is None and "101 bytes" in error and "up to 100 bytes" in error
    assert "not UTF-8" in check_upload("bin.py", b"\xff\xfe\x00", 100)[1]
    assert "empty" in check_upload("e.py", b"  \n", 100)[1]


def test_precheck_catches_empty_and_oversized_code():
    assert "empty" in precheck(" \n", 100)
    assert "up to 100 bytes" in precheck("é" * 51, 100)  # bytes, not characters
    assert precheck("def run(ctx): pass", 100) is None


def test_diff_of_two_attempts():
    a = attempt(1, source="x = 1\ny = 2\n")
    b = attempt(2, source="x = 1\ny = 3\n")
    diff = views.source_diff(a, b)
    assert "-y = 2" in diff and "+y = 3" in diff and "attempt att_00000000" in diff
    assert views.source_diff(a, a) == ""


def test_labels_show_queue_position_score_and_withheld():
    queued = attempt(1, status=AttemptStatus.QUEUED, queue_position=3)
    assert views.status_label(queued) == "queued (#3 in queue)"
    assert views.pgr_text(attempt(2, pgr=0.31)) == "0.31 ± 0.02"
    assert views.pgr_text(attempt(3, public_withheld="below your best + 0.02")).startswith(
        "withheld")
    assert views.subsets_frame(attempt(4, pgr=0.2)).to_dict("records") == [
        {"subset": "ood", "n": 40, "accuracy": 0.6, "PGR": 0.1}]
    assert views.any_active([queued]) and not views.any_active([attempt(5, pgr=0.1)])
    # The selector's label names no status: a select box keeps the label it was drawn with,
    # so "running" would stay after the attempt scored.
    running = attempt(6, status=AttemptStatus.RUNNING)
    scored = attempt(6, pgr=0.3)
    assert views.attempt_label(running) == views.attempt_label(scored)
    assert "running" not in views.attempt_label(running)


def test_best_so_far_is_a_running_max_in_finishing_order():
    runs = [attempt(1, pgr=0.2), attempt(2, pgr=0.1), attempt(3, pgr=0.4),
            attempt(4, status=AttemptStatus.FAILED), attempt(5, pgr=0.3)]
    frame = charts.scored_frame(runs)
    assert frame["pgr"].tolist() == [0.2, 0.1, 0.4, 0.3]
    assert frame["best"].tolist() == [0.2, 0.2, 0.4, 0.4]
    assert len(charts.best_so_far(runs).data) == 2


def test_frontier_is_per_arm():
    runs = [attempt(1, pgr=0.2, who="h"), attempt(2, pgr=0.5, who="a"),
            attempt(3, pgr=0.3, who="h"), attempt(4, pgr=0.1, who="a")]
    arms = {"h": "human", "a": "ai"}
    frame = charts.scored_frame(runs, arms)
    assert frame.groupby("arm")["best"].max().to_dict() == {"ai": 0.5, "human": 0.3}
    assert {t.name for t in charts.frontier(runs, arms).data} == {"human", "ai"}
    assert {t.name for t in charts.attempts_over_time(runs, arms).data} == {"human", "ai"}


def test_one_improvement_is_held_as_a_line_to_now_in_the_arms_colour():
    runs = [attempt(1, pgr=0.4, who="h")]
    fig = charts.frontier(runs, {"h": "human"})
    [trace] = fig.data
    assert len(trace.x) == 2 and list(trace.y) == [0.4, 0.4]  # a line to now, not a dot
    held_until = pd.Timestamp(trace.x[-1]).tz_localize(None)
    assert held_until > pd.Timestamp(T0).tz_localize(None) + pd.Timedelta(days=300)  # now
    assert trace.line.color == "#1f77b4"  # the analysis' colour for "human"
    steps = charts.best_so_far(runs).data[1]
    assert list(steps.y) == [0.4, 0.4]


def test_seed_progress_and_per_seed_rows():
    run = SeedRunView(seed=7, state="running", done=3, total=8)
    assert views.seed_progress(run) == (3 / 8, "seed 7 · running · 3 / 8")
    assert views.seed_progress(SeedRunView(seed=7, state="running"))[0] == 0.0
    assert views.seed_progress(SeedRunView(seed=7, state="ok", wall_seconds=12))[1] == \
        "seed 7 · ok in 12s"
    done = attempt(8, pgr=0.3, seed_runs=[SeedRunView(seed=1, state="ok", wall_seconds=3),
                                          SeedRunView(seed=2, state="ok", wall_seconds=4)])
    assert list(views.per_seed_frame(done).columns) == ["seed", "state", "wall"]  # hidden
    done.public.pgr_per_seed = [0.25, 0.35]
    assert views.per_seed_frame(done)["public PGR"].tolist() == [0.25, 0.35]


def test_score_text_prefers_the_servers_interval():
    scored = attempt(9, pgr=0.31)
    assert views.pgr_text(scored) == "0.31 ± 0.02"
    scored.public.pgr_ci95 = (0.22, 0.40)
    assert views.pgr_text(scored) == "0.31 [0.22, 0.40]"
    scored.public.shown = "0.31 [0.22, 0.40]"
    assert views.pgr_text(scored) == scored.public.shown


def test_agent_status_running_idle_stopped():
    now = T0 + dt.timedelta(hours=1)
    assert views.agent_status(5, now - dt.timedelta(minutes=2), None, now=now) == "running"
    assert views.agent_status(5, now - dt.timedelta(minutes=30), None, now=now) == \
        "idle for 30m 00s"
    assert views.agent_status(5, now, "dollar budget reached", now=now) == \
        "stopped: dollar budget reached"
    assert views.agent_status(0, None, None, now=now) == "no turns"


def test_text_a_method_wrote_cannot_draw_markdown():
    shown = views.plain("boom ![x](http://evil/p.png) [click](http://e) *b*")
    assert "![x](" not in shown and "[click](" not in shown and "*b*" not in shown
    assert shown.replace("\\", "") == "boom ![x](http://evil/p.png) [click](http://e) *b*"


def test_pgr_charts_draw_the_floor_and_the_ceiling():
    runs = [attempt(1, pgr=0.4, who="h")]
    for fig in (charts.frontier(runs, {"h": "human"}), charts.best_so_far(runs)):
        lines = {shape.y0 for shape in fig.layout.shapes if shape.y0 == shape.y1}
        labels = {a.text for a in fig.layout.annotations}
        assert lines == {0.0, 1.0}, lines
        assert labels == set(charts.PGR_REFERENCES), labels


def test_ctx_log_metrics_are_charted_one_line_per_seed():
    records = [{"name": "loss", "seed": seed, "step": step, "t": step * 0.5,
                "value": 1.0 / (step + 1 + seed)} for seed in (11, 12) for step in range(3)]
    records += [{"name": "acc", "seed": 11, "step": None, "t": 2.0, "value": 0.7}]
    figures = charts.metrics_figures(records)
    assert set(figures) == {"loss", "acc"}
    assert [t.name for t in figures["loss"].data] == ["seed 11", "seed 12"]
    assert list(figures["loss"].data[1].y) == [1 / 13, 1 / 14, 1 / 15]
    assert figures["loss"].layout.xaxis.title.text == "step"
    assert figures["acc"].layout.xaxis.title.text == "seconds into the seed"  # no step given
    assert charts.metrics_figures([]) == {}


def test_the_warm_up_imports_name_real_modules():
    """The background import thread dies quietly on a renamed module; this catches it."""
    import importlib.util

    from participants.workspace import warm
    assert all(importlib.util.find_spec(name) for name in warm.MODULES)
