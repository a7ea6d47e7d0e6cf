"""Compute the analysis counts, through the real door: a participant's dry run and experiment
(stored by the server, exported to the analyst) add to the compute axis beside the attempt's
own CPU time — unscored runs are not free."""

import pandas as pd
import pytest

from analysis.data import from_exports
from analysis.frames import Prices
from analysis.report import build_frame
from tests.e2e.conftest import VANILLA, wait_for


def test_dry_runs_and_experiments_count_in_compute_and_cost(server):
    ann = server.participant("ann", arm="human")
    dry = ann.dry_run(VANILLA, "rt_sentiment")
    assert dry.ok, dry
    queued = ann.experiment(VANILLA, "rt_sentiment", note="does it run?")
    experiment = wait_for(lambda: (e := ann.get_experiment(queued.id)).status
                          not in ("queued", "running") and e, timeout=300)
    assert experiment.status == "finished", experiment
    attempt = ann.wait(ann.submit(VANILLA, "rt_sentiment").id, poll=0.1)
    with server.admin() as admin:
        study = admin.study()
        data = from_exports(admin.export, study_start=pd.Timestamp(study.starts_at),
                            study_end=pd.Timestamp(study.ends_at), plan=study.analysis,
                            arms=study.arms, hill_climb=study.tasks.get("hill_climb", []))
    assert len(data.dry_runs) == 1 and data.dry_runs["status"].iloc[0] == "ok"
    dry_cpu = float(data.dry_runs["cpu_seconds"].iloc[0])
    assert dry_cpu == pytest.approx(dry.cpu_seconds)
    experiment_cpu = data.experiments.set_index("id").loc[queued.id, "cpu_seconds"]
    attempt_cpu = data.attempts.set_index("id").loc[attempt.id, "cpu_seconds"]
    assert dry_cpu > 0 and experiment_cpu > 0 and attempt_cpu > 0
    frame, _ = build_frame(data, prices=Prices(cpu_hour=2.0),
                           as_of=pd.Timestamp.now(tz="UTC"))
    row = frame.set_index("attempt_id").loc[attempt.id]
    total = (dry_cpu + experiment_cpu + attempt_cpu) / 3600
    assert row["compute_hours"] == pytest.approx(total)
    assert row["dollars"] == pytest.approx(2.0 * total)
