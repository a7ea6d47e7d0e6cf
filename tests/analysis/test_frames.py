"""Missing data is said, not zeroed: clocks merged and capped, imported results without the axes
they lack, every run counted in compute, prices kept apart, attempts after the window out."""

import numpy as np
import pandas as pd
import pytest

from analysis.frames import DataWarning, Prices, attempts_frame, exposure

T0 = pd.Timestamp("2026-12-01 00:00", tz="UTC")


def h(hours: float) -> pd.Timestamp:
    return T0 + pd.Timedelta(hours=hours)


def attempt(aid, pid, *, kind="human", arm="human", status="scored", submitted=1.0,
            finished=2.0, pgr=0.5, cpu=3600.0, gpu=None):
    row = {"id": aid, "participant_id": pid, "display_name": pid, "arm": arm,
           "participant_kind": kind, "task": "t", "status": status, "submitted_at": h(submitted),
           "finished_at": h(finished), "public_pgr": pgr, "private_pgr": pgr, "cpu_seconds": cpu}
    if gpu is not None:
        row["gpu_seconds"] = gpu
    return row


def sessions(*spans):
    return pd.DataFrame([{"participant_id": pid, "started_at": h(a),
                          "ended_at": None if b is None else h(b)} for pid, a, b in spans])


def build(rows, **kwargs):
    return attempts_frame(pd.DataFrame(rows), study_start=T0, **kwargs).set_index("attempt_id")


def test_no_clock_events_give_nan_with_a_warning():
    with pytest.warns(DataWarning, match="no clock events for ann"):
        frame = build([attempt("a1", "ann")])
    assert np.isnan(frame.loc["a1", "active_hours"])


def test_overlapping_sessions_are_merged_not_summed():
    spans = sessions(("ann", 0.0, 4.0), ("ann", 1.0, 3.0), ("ann", 2.0, 5.0))
    frame = build([attempt("a1", "ann", submitted=4.5, finished=6.0)], sessions=spans)
    assert frame.loc["a1", "active_hours"] == pytest.approx(5.0)  # 0→5, once


def test_a_never_closed_session_is_capped_and_flagged():
    spans = sessions(("ann", 0.0, None))
    with pytest.warns(DataWarning, match="never-closed clock-ins capped for ann"):
        frame = build([attempt("a1", "ann", submitted=1.0, finished=2.0),
                       attempt("a2", "ann", submitted=1.5, finished=30.0)],
                      sessions=spans, max_open_hours=12.0)
    assert frame.loc["a1", "active_hours"] == pytest.approx(2.0)
    assert frame["clock_capped"].all()
    # a2 was submitted inside the (capped) session; its active hours stop at the cap
    assert frame.loc["a2", "active_hours"] == pytest.approx(12.0)


def test_attempts_made_while_clocked_out_are_flagged_and_off_the_axis():
    spans = sessions(("ann", 0.0, 1.0))
    with pytest.warns(DataWarning, match="1 attempt.* submitted while clocked out"):
        frame = build([attempt("a1", "ann", submitted=0.5, finished=2.0),
                       attempt("a2", "ann", submitted=3.0, finished=4.0)], sessions=spans)
    assert not frame.loc["a1", "clocked_out"] and frame.loc["a1", "active_hours"] == 1.0
    assert frame.loc["a2", "clocked_out"] and np.isnan(frame.loc["a2", "active_hours"])


def test_imported_results_have_no_active_compute_or_dollar_axis():
    frame = build([attempt("i1", "aar", kind="imported", arm="imported", submitted=0.0,
                           finished=5.0)], prices=Prices(cpu_hour=3.0))
    row = frame.loc["i1"]
    assert row["calendar_hours"] == pytest.approx(5.0)
    assert np.isnan(row["active_hours"]) and np.isnan(row["compute_hours"])
    assert np.isnan(row["dollars"])


def test_cancelled_attempts_dry_runs_and_experiments_count_in_compute():
    spans = sessions(("ann", 0.0, 10.0))
    rows = [attempt("a1", "ann", status="cancelled", finished=1.0, cpu=1800.0),
            attempt("a2", "ann", finished=3.0, cpu=3600.0),
            attempt("a3", "ann", finished=6.0, cpu=0.0)]
    # As the server stores them (dry_runs, migration 0017; experiments): a lost or running
    # dry run measured nothing; a run counts when it ended.
    dry = pd.DataFrame([
        {"participant_id": "ann", "status": "ok", "created_at": h(1.5),
         "finished_at": h(2.0), "cpu_seconds": 900.0, "slot_seconds": 1000.0},
        {"participant_id": "ann", "status": "lost", "created_at": h(2.5),
         "finished_at": None, "cpu_seconds": None, "slot_seconds": None},
        {"participant_id": "ann", "status": "ok", "created_at": h(2.9),
         "finished_at": h(4.0), "cpu_seconds": 360.0, "slot_seconds": 400.0}])
    experiments = pd.DataFrame([{"participant_id": "ann", "status": "finished",
                                 "submitted_at": h(0.5), "finished_at": h(2.5),
                                 "cpu_seconds": 720.0}])
    frame = build(rows, sessions=spans, dry_runs=dry, experiments=experiments,
                  prices=Prices(cpu_hour=4.0))
    assert list(frame.index) == ["a2", "a3"]  # the cancelled attempt is no result
    assert frame.loc["a2", "compute_hours"] == pytest.approx(0.5 + 0.25 + 0.2 + 1.0)
    assert frame.loc["a3", "compute_hours"] == pytest.approx(0.5 + 0.25 + 0.2 + 1.0 + 0.1)
    assert frame.loc["a3", "dollars"] == pytest.approx(4.0 * 2.05)


def test_cpu_gpu_and_labour_are_priced_apart():
    spans = sessions(("ann", 0.0, 10.0), ("bot", 0.0, 10.0))
    rows = [attempt("a1", "ann", finished=4.0, cpu=3600.0, gpu=7200.0),
            attempt("b1", "bot", kind="agent", arm="ai", finished=4.0, cpu=3600.0, gpu=0.0)]
    usage = pd.DataFrame([{"participant_id": "bot", "recorded_at": h(1.0), "cost_usd": 5.0}])
    frame = build(rows, sessions=spans, usage=usage,
                  prices=Prices(cpu_hour=1.0, gpu_hour=10.0, labour_hour=50.0))
    # ann: 1 CPU h × 1 + 2 GPU h × 10 + 4 active h × 50 (a human's labour)
    assert frame.loc["a1", "dollars"] == pytest.approx(1 + 20 + 200)
    # the compute axis charges the GPU run's GPU time, never CPU + GPU added up
    assert frame.loc["a1", "compute_hours"] == pytest.approx(2.0)
    assert frame.loc["b1", "compute_hours"] == pytest.approx(1.0)
    # the agent: API 5 + 1 CPU h × 1; no labour
    assert frame.loc["b1", "dollars"] == pytest.approx(6.0)


def test_the_old_gpu_price_no_longer_multiplies_cpu_hours():
    spans = sessions(("bot", 0.0, 10.0))
    usage = pd.DataFrame([{"participant_id": "bot", "recorded_at": h(1.0), "cost_usd": 5.0}])
    frame = build([attempt("b1", "bot", kind="agent", arm="ai", cpu=7200.0)], sessions=spans,
                  usage=usage, gpu_hour_price=100.0)
    assert frame.loc["b1", "dollars"] == pytest.approx(5.0)


def test_no_cost_record_and_no_price_is_unknown_not_free():
    spans = sessions(("ann", 0.0, 10.0))
    frame = build([attempt("a1", "ann")], sessions=spans)
    assert np.isnan(frame.loc["a1", "dollars"])


def test_attempts_after_the_window_are_excluded_with_a_warning():
    spans = sessions(("ann", 0.0, 10.0))
    with pytest.warns(DataWarning, match="1 attempt.* after the window"):
        frame = build([attempt("a1", "ann", finished=2.0),
                       attempt("a2", "ann", submitted=9.0, finished=11.0)],
                      sessions=spans, study_end=h(10.0))
    assert list(frame.index) == ["a1"]


def test_disqualified_attempts_are_excluded_but_their_compute_counts():
    spans = sessions(("ann", 0.0, 10.0))
    rows = [{**attempt("a1", "ann", finished=1.0, pgr=0.9), "disqualified": True},
            {**attempt("a2", "ann", finished=2.0, pgr=0.3), "disqualified": False}]
    with pytest.warns(DataWarning, match="1 disqualified attempt"):
        frame = build(rows, sessions=spans)
    assert list(frame.index) == ["a2"]
    assert frame.loc["a2", "compute_hours"] == pytest.approx(2.0)


def test_exposure_is_how_far_each_participant_got_on_every_axis():
    """Where a participant not yet at a threshold is censored: their own clocked hours, the
    compute they used (a dry run after their last attempt too) and dollars — NaN, not 0,
    where the axis is unknown."""
    roster = pd.DataFrame([{"participant_id": p, "kind": k} for p, k in
                           (("ann", "human"), ("bot", "agent"), ("zed", "human"),
                            ("aar", "imported"))])
    rows = [attempt("a1", "ann", submitted=1.0, finished=2.0, cpu=3600.0),
            attempt("b1", "bot", kind="agent", arm="ai", submitted=0.5, finished=1.0,
                    cpu=1800.0)]
    dry = pd.DataFrame([{"participant_id": "ann", "status": "ok", "created_at": h(5.0),
                         "finished_at": h(5.5), "cpu_seconds": 1800.0}])
    usage = pd.DataFrame([{"participant_id": "bot", "recorded_at": h(3.0), "cost_usd": 7.0}])
    got = exposure(roster, pd.DataFrame(rows), study_start=T0, as_of=h(10.0),
                   sessions=sessions(("ann", 0.0, 4.0), ("ann", 6.0, None), ("zed", 8.0, 9.0)),
                   usage=usage, dry_runs=dry, prices=Prices(cpu_hour=2.0), max_open_hours=3.0)
    assert got.loc["ann", "calendar_hours"] == 10.0 and got.loc["ann", "own_hours"] == 10.0
    assert got.loc["ann", "active_hours"] == pytest.approx(4.0 + 3.0)  # open one capped at 3
    assert got.loc["ann", "compute_hours"] == pytest.approx(1.5)  # the later dry run counts
    assert got.loc["ann", "dollars"] == pytest.approx(3.0)
    assert np.isnan(got.loc["bot", "active_hours"])  # no clock events: unknown
    assert got.loc["bot", "own_hours"] == pytest.approx(9.5)
    assert got.loc["bot", "dollars"] == pytest.approx(7.0 + 1.0)
    # zed clocked in but never ran anything: at risk on the active axis, 0 compute used
    assert got.loc["zed", "active_hours"] == 1.0 and got.loc["zed", "compute_hours"] == 0.0
    assert got.loc["aar", ["active_hours", "compute_hours", "dollars"]].isna().all()
