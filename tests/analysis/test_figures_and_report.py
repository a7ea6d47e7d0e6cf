"""Charts an analyst can trust (lines to now, one colour per arm, reference lines, "no data",
who leads, zoom after the frontier) and a report whose primary comparison is confirmatory only
once the window has closed."""

import numpy as np
import pandas as pd
import pytest

from analysis.data import StudyData
from analysis.figures import (
    attempts_over_time_figure,
    frontier_figure,
    participant_figure,
    trajectories_figure,
    who_leads,
)
from analysis.palette import ARM_COLORS, arm_color
from analysis.report import build_tables, write_report
from tests.analysis.synthetic import synthetic_study
from tests.analysis.test_curves_and_stats import T0, log


def _one_improvement() -> pd.DataFrame:
    rows = [("h1", "human", 10.0, 0.8, 0.8), ("h1", "human", 60.0, 0.3, 0.3),
            ("g1", "ai", 5.0, 0.2, 0.2), ("g1", "ai", 40.0, 0.5, 0.45)]
    return pd.DataFrame([
        {"attempt_id": f"{pid}-{i}", "participant_id": pid, "display_name": pid, "arm": arm,
         "kind": "agent", "status": "scored", "calendar_hours": x, "public_pgr": pub,
         "private_pgr": priv, "flagged": False, "note": None, "code_sha256": "abc",
         "clocked_out": False}
        for i, (pid, arm, x, pub, priv) in enumerate(rows)])


def _traces(fig, name_part):
    return [t for t in fig.data if name_part in (t.name or "")]


def test_an_arm_with_one_improvement_is_a_line_to_now():
    fig = frontier_figure(_one_improvement(), x="calendar_hours", until=168.0)
    (human,) = _traces(fig, "human median")
    assert human.line.shape == "hv"
    assert list(human.x)[-1] == 168.0 and list(human.y)[-1] == pytest.approx(0.8)
    assert len(human.x) > 1  # a line, not a single dot
    assert _traces(fig, "human 95% band") and _traces(fig, "human best in arm (n = 1)")


def test_one_colour_per_arm_everywhere():
    fig = frontier_figure(_one_improvement(), x="calendar_hours", until=168.0)
    for trace in fig.data:
        if trace.legendgroup in ("human", "ai") and trace.line and trace.line.color:
            assert trace.line.color == ARM_COLORS[trace.legendgroup]
    bars = attempts_over_time_figure(_one_improvement().assign(status="scored"))
    assert {b.name: b.marker.color for b in bars.data} == {"ai": ARM_COLORS["ai"],
                                                          "human": ARM_COLORS["human"]}
    assert arm_color("new-arm") == arm_color("new-arm") and arm_color("new-arm").startswith("#")


def test_reference_lines_legend_below_and_who_leads():
    fig = frontier_figure(_one_improvement(), x="calendar_hours", until=168.0,
                          references={"weak floor": 0.0, "best baseline": 0.35,
                                      "ceiling": 1.0})
    assert sorted(s.y0 for s in fig.layout.shapes) == [0.0, 0.35, 1.0]
    labels = {a.text for a in fig.layout.annotations}
    assert {"weak floor", "best baseline", "ceiling"} <= labels
    assert fig.layout.legend.y < 0 and fig.layout.margin.b >= 100
    assert "human leads by 0.35" in fig.layout.title.text  # 0.8 vs 0.45 at hour 168


def test_zooming_happens_after_the_frontier_is_built():
    fig = frontier_figure(_one_improvement(), x="calendar_hours", until=168.0,
                          zoom=(50.0, 168.0))
    (human,) = _traces(fig, "human median")
    xs, ys = np.array(human.x, float), np.array(human.y, float)
    assert ys[xs >= 50].min() == pytest.approx(0.8)  # reached at 10, still 0.8 in view
    assert list(fig.layout.xaxis.range) == [50.0, 168.0]


def test_no_data_instead_of_empty_axes():
    empty = frontier_figure(_one_improvement().assign(status="failed"), x="calendar_hours")
    assert any("no data" in a.text for a in empty.layout.annotations)
    assert empty.layout.xaxis.visible is False
    no_cost = frontier_figure(_one_improvement().assign(dollars=np.nan), x="dollars")
    assert any("no data" in a.text for a in no_cost.layout.annotations)
    assert any("no finished" in a.text
               for a in attempts_over_time_figure(_one_improvement().iloc[:0]).layout.annotations)


def test_clocked_out_attempts_are_noted_on_the_active_axis():
    frame = _one_improvement().assign(active_hours=[1.0, np.nan, 2.0, 3.0],
                                      clocked_out=[False, True, False, False])
    fig = frontier_figure(frame, x="active_hours")
    assert "1 attempt(s) made while clocked out are not on this axis" in fig.layout.title.text


def test_the_attempt_histogram_stacks_from_zero():
    bars = attempts_over_time_figure(_one_improvement())
    assert bars.layout.barmode == "stack" and bars.layout.yaxis.rangemode == "nonnegative"
    assert bars.layout.xaxis.range[0] == 0


def test_who_leads_says_when_the_bands_overlap():
    summary = pd.DataFrame([
        {"arm": "ai", "x": 0.0, "n": 9, "median": 0.5, "low": 0.4, "high": 0.6},
        {"arm": "human", "x": 0.0, "n": 2, "median": 0.45, "low": 0.2, "high": 0.7}])
    line = who_leads(summary, 168.0, axis="calendar_hours")
    assert "ai leads by 0.05, within the bands" in line and "(n = 2)" in line


def _study(end_hours: float = 168.0, *, sizes: dict[str, int] | None = None,
           skill: dict[str, float] | None = None, plan: dict | None = None) -> StudyData:
    frame = synthetic_study(np.random.default_rng(21), sizes or {"ai": 4, "human": 3},
                            skill=skill, attempts=15)
    attempts = frame.rename(columns={"attempt_id": "id", "kind": "participant_kind"}).assign(
        submitted_at=T0 + pd.to_timedelta(frame["calendar_hours"] - 0.5, unit="h"),
        finished_at=T0 + pd.to_timedelta(frame["calendar_hours"], unit="h"),
        cpu_seconds=60.0, note=None, code_sha256="abc")
    sessions = pd.DataFrame([{"participant_id": p, "started_at": T0,
                              "ended_at": T0 + pd.Timedelta(hours=end_hours)}
                             for p in frame["participant_id"].unique() if p != "human-4"])
    return StudyData(study_start=T0, study_end=T0 + pd.Timedelta(hours=end_hours),
                     attempts=attempts, sessions=sessions, flags=pd.DataFrame(),
                     plan={"arms": ["ai", "human"], **(plan or {})}, arms=["human", "ai"])


def test_the_primary_comparison_is_exploratory_until_the_window_closes():
    data = _study()
    _, open_tables, ctx, notes = build_tables(data, as_of=T0 + pd.Timedelta(hours=100))
    primary = open_tables["primary"].iloc[0]
    assert not ctx.closed and primary["reading"].startswith("EXPLORATORY")
    assert primary["n_a"] == 4 and primary["n_b"] == 3
    assert primary["smallest_p"] == pytest.approx(1 / 35)
    assert "at 100 (hours since the study started)" in primary["summary"]
    assert any("no clock events for human-4" in n for n in notes)
    _, tables, ctx, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=200))
    assert ctx.closed and tables["primary"].iloc[0]["reading"] == "CONFIRMATORY"
    assert "at 168" in tables["primary"].iloc[0]["summary"]
    assert set(tables["participants"]["participant_id"]) == set(
        data.attempts["participant_id"])
    activity = tables["activity"].set_index("arm")
    assert activity.loc["ai", "elapsed_hours"] == 168.0
    assert set(tables["time_to_threshold_km"]["arm"]) == {"ai", "human"}


def test_kaplan_meier_is_read_on_every_axis_with_missing_participants_counted():
    _, tables, _, _ = build_tables(_study(), as_of=T0 + pd.Timedelta(hours=100))
    km = tables["time_to_threshold_km"]
    assert set(km["axis"]) == {"calendar_hours", "own_hours", "active_hours", "compute_hours",
                               "dollars"}
    active = km[km["axis"].eq("active_hours")].set_index(["arm", "threshold"])
    # human-4 has no clock events: left out of the active-hours estimate and counted as such
    assert (active.xs("human")["missing"] == 1).all() and (active.xs("ai")["missing"] == 0).all()
    assert (active.xs("human")["n"] == 2).all()
    # no prices and no cost records: dollars are unknown for everyone, never 0
    dollars = km[km["axis"].eq("dollars")]
    assert (dollars["n"] == 0).all() and dollars["share_reached"].isna().all()


def test_the_participant_table_counts_compute_used_after_the_last_attempt():
    data = _study()
    last = data.attempts.groupby("participant_id")["finished_at"].max()
    data.dry_runs = pd.DataFrame([{"participant_id": "ai-0", "status": "ok",
                                   "created_at": last["ai-0"] + pd.Timedelta(minutes=1),
                                   "finished_at": last["ai-0"] + pd.Timedelta(minutes=2),
                                   "cpu_seconds": 1800.0}])
    _, tables, _, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=200))
    table = tables["participants"].set_index("participant_id")
    attempts_made = data.attempts.groupby("participant_id").size()
    assert table.loc["ai-0", "compute_hours"] == pytest.approx(
        attempts_made["ai-0"] * 60 / 3600 + 0.5)
    assert table.loc["ai-1", "compute_hours"] == pytest.approx(attempts_made["ai-1"] * 60 / 3600)


def test_a_gpu_study_shows_each_participants_gpu_hours_and_a_cpu_study_none():
    data = _study()
    as_of = T0 + pd.Timedelta(hours=200)
    _, tables, _, _ = build_tables(data, as_of=as_of)
    assert "gpu_hours" not in tables["participants"]  # a CPU study has no GPU-hours to show
    data.attempts["gpu_seconds"] = np.where(data.attempts["participant_id"] == "ai-0", 720.0, 0.0)
    _, tables, _, _ = build_tables(data, as_of=as_of)
    table = tables["participants"].set_index("participant_id")
    made = data.attempts.groupby("participant_id").size()
    assert table.loc["ai-0", "gpu_hours"] == pytest.approx(made["ai-0"] * 0.2)
    assert table.loc["ai-0", "compute_hours"] == table.loc["ai-0", "gpu_hours"]  # GPU charged
    assert table.loc["ai-1", "gpu_hours"] == 0.0


def test_a_planned_interim_look_is_confirmatory_only_with_alpha_spending():
    spending = {"interim_looks": [24.0, 72.0], "spending": "obrien_fleming"}
    data = _study(plan=spending)
    _, before, ctx, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=10))
    assert not ctx.looks and before["primary"].iloc[0]["reading"].startswith("EXPLORATORY")
    assert "sequential" not in before
    _, tables, ctx, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=100))
    primary = tables["primary"].iloc[0]
    assert primary["reading"].startswith("CONFIRMATORY INTERIM (planned look 2")
    assert "at 72 (hours since" in primary["summary"]  # the look, not "now"
    # 4 against 3: 35 relabellings, and O'Brien–Fleming has spent < 1/35 by hour 72.
    assert "Look 2 of 3" in primary["summary"] and "no crossing possible yet" in primary["summary"]
    assert list(tables["sequential"]["t"]) == [24.0, 72.0]
    assert primary["sequential_look"] == 2 and not primary["boundary_crossed"]
    assert not tables["sequential"]["crossed"].any()
    # The same data without a stated spending function stays exploratory.
    _, plain, _, _ = build_tables(_study(), as_of=T0 + pd.Timedelta(hours=100))
    assert plain["primary"].iloc[0]["reading"].startswith("EXPLORATORY")


def test_a_clear_difference_crosses_at_an_interim_look():
    data = _study(sizes={"ai": 6, "human": 6}, skill={"ai": 0.8, "human": 0.3},
                  plan={"interim_looks": [48.0, 96.0], "spending": "pocock"})
    _, tables, _, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=120))
    summary = tables["primary"].iloc[0]["summary"]
    assert "The boundary was crossed at look" in summary and "ai is ahead" in summary
    assert tables["sequential"]["crossed"].sum() == 1
    primary = tables["primary"].iloc[0]
    assert primary["boundary_crossed"] and primary["crossed_at_look"] == (
        tables["sequential"].loc[tables["sequential"]["crossed"], "look"].iloc[0])


def test_the_report_writes_the_primary_comparison_first(tmp_path):
    data = _study()
    paths = write_report(data, tmp_path / "r.html", as_of=T0 + pd.Timedelta(hours=50))
    page = paths[0].read_text()
    assert page.index("Primary comparison") < page.index("Data notes") < page.index("plotly")
    assert "EXPLORATORY" in page and "smallest p this design allows" in page
    assert (tmp_path / "r_tables" / "participants.parquet").exists()


def test_the_report_reads_the_old_log_without_a_plan(tmp_path):
    d = log()
    data = StudyData(study_start=T0, study_end=T0 + pd.Timedelta(hours=10),
                     attempts=d["attempts"], sessions=d["sessions"], flags=d["flags"],
                     usage=d["usage"])
    _, tables, ctx, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=20))
    assert ctx.arms == ["ai", "human"]  # no plan, no protocol arms: the two arms seen
    thresholds = tables["time_to_threshold"]
    dollars = thresholds[(thresholds["axis"] == "dollars") & (thresholds["arm"] == "human")]
    assert set(dollars["status"]) == {"no data"}  # humans have no cost records or price


def test_every_protocol_arm_has_a_row_even_with_nobody_enrolled():
    data = _study()
    data.arms = ["human", "ai", "automated-baseline"]
    _, tables, _, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=50))
    area = tables["area_under_median"].set_index("arm")
    assert np.isnan(area.loc["automated-baseline", "mean_pgr"])
    assert area.loc["ai", "over_hours"] == 50.0  # as of hour 50, not the whole window
    thresholds = tables["time_to_threshold"]
    nobody = thresholds[thresholds["arm"] == "automated-baseline"]
    assert len(nobody) == 15 and set(nobody["status"]) == {"no participants"}
    assert tables["matched_comparison"].set_index("arm").loc["automated-baseline", "n"] == 0


def test_trajectories_one_participant_at_a_time():
    fig = trajectories_figure(_one_improvement())
    assert len(fig.data) == 6  # two participants × (curve, public, private)
    assert [t.visible for t in fig.data] == [True] * 3 + [False] * 3
    (menu,) = fig.layout.updatemenus
    assert [b.label for b in menu.buttons] == ["g1 (ai)", "h1 (human)"]
    assert menu.buttons[1].args[0]["visible"] == [False] * 3 + [True] * 3
    public = [t for t in fig.data if t.name == "public pgr"][1]
    assert list(public.y) == [0.8, 0.3]  # every attempt a point, not only improvements
    one = participant_figure(_one_improvement(), "h1")
    assert one.layout.title.text == "h1 (human)" and len(one.data) == 3


def test_everything_is_read_on_one_task_and_other_tasks_get_a_table():
    data = _study()
    aar = data.attempts[data.attempts["participant_id"] == "ai-0"].assign(
        participant_id="aar", display_name="imported: AAR", arm="imported",
        participant_kind="imported", task="chat-0115", public_pgr=0.97, private_pgr=0.97)
    data.attempts = pd.concat([data.attempts, aar.assign(id="aar-" + aar["id"])])
    data.hill_climb = ["t"]
    frame, tables, ctx, _ = build_tables(data, as_of=T0 + pd.Timedelta(hours=200))
    assert ctx.task == "t" and set(frame["task"]) == {"t"}
    assert "aar" not in set(ctx.roster["participant_id"])  # never on the live task's curves
    other = tables["other_tasks"].set_index("display_name")
    assert other.loc["imported: AAR", "task"] == "chat-0115"
    assert other.loc["imported: AAR", "best_public"] == 0.97
