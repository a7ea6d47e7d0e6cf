"""A whole 40-attempt padded probing campaign through the service's real scoring path (a real
DuckDB study file; the runner's outcomes are built here from synthetic predictions, so the 40
attempts take seconds): flagged within its first five attempts, while an honest participant's
series is not."""

import numpy as np
import pytest

from runner.attempt import AttemptResult, SeedOutcome
from study.protocol import parse_protocol
from study.records import ParticipantSpec, SubmitSpec
from study.scoring import score_predictions
from study.server import create_study, db_path
from study.service import ArenaService
from study.store import Database, Store

N = 2000
PROTOCOL = parse_protocol("""
name = "campaign"
seeds_per_attempt = 1
[tasks]
hill_climb = ["rt_sentiment"]
[[arms]]
name = "human"
[budgets.default]
attempts_per_day = 100
compute_seconds_per_day = 10000000
[audits]
teacher_ablation = false
""")


@pytest.fixture
def study(tmp_path):
    create_study(tmp_path, PROTOCOL)
    db = Database(db_path(tmp_path))
    service = ArenaService(Store(db), PROTOCOL)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, N)
    public = rng.random(N) < 0.5  # the server's secret split, unknown to the participants
    service.public_mask_for = lambda task: public
    yield service, labels, public
    db.close()


def _score(service, labels, public, participant, probs: np.ndarray) -> str:
    view, _ = service.submit(participant, SubmitSpec(task="rt_sentiment",
                                                      source="def run(ctx):\n    return []\n"))
    job = service.claim()
    assert job.attempt_id == view.id
    weak = np.where(np.random.default_rng(1).random(N) < 0.65, labels, 1 - labels)
    ceiling = np.where(np.random.default_rng(2).random(N) < 0.75, labels, 1 - labels)
    scores = score_predictions([probs], labels, [None] * N, public, weak[None, :].astype(float),
                               ceiling[None, :].astype(float))
    outcome = SeedOutcome(seed=job.seeds[0], status="ok", wall_s=1.0, cpu_s=1.0, peak_mb=1.0,
                          sandboxed=True, accuracy=float(((probs >= 0.5) == labels).mean()),
                          probs=probs.tolist())
    service.finish(job, AttemptResult(task="rt_sentiment", task_hash="h", code_sha256="c",
                                      status="scored", seeds=job.seeds, outcomes=[outcome],
                                      weak=0.65, ceiling=0.75, scores=scores), None)
    return view.id


def _participant(service, name):
    return service.add_participant(ParticipantSpec(display_name=name, arm="human"),
                                   actor=None).participant


def _flagged(service, participant) -> set[str]:
    rows = service.store.db.rows("SELECT attempt_id FROM flags WHERE participant_id = ? AND "
                                 "kind IN ('probing', 'probing_chain')", [participant.id])
    return {r["attempt_id"] for r in rows}


def test_a_40_attempt_padded_campaign_is_flagged_within_its_first_five(study):
    service, labels, public = study
    mal = _participant(service, "mal")
    rng = np.random.default_rng(3)
    base = np.where(rng.random(N) < 0.7, labels, 1 - labels).astype(float)
    ids = [_score(service, labels, public, mal, base)]
    for target in range(39):  # one target flip, 24 random padding flips (≈12 public)
        probe = base.copy()
        flips = [target, *rng.choice(np.arange(100, N), size=24, replace=False)]
        probe[flips] = 1 - probe[flips]
        ids.append(_score(service, labels, public, mal, probe))
    flagged = _flagged(service, mal)
    first = next(i for i, a in enumerate(ids, 1) if a in flagged)
    assert first <= 5, first
    assert set(ids[first - 1:]) <= flagged  # every later probe of the campaign is flagged too


def test_an_honest_series_is_not_flagged(study):
    service, labels, public = study
    ann = _participant(service, "ann")
    rng = np.random.default_rng(4)
    truth_like = np.where(rng.random(N) < 0.7, labels, 1 - labels).astype(float)
    ids = []
    for _ in range(8):  # two retrains differ on ~40 public items, as vanilla's did (30-45)
        moved = truth_like.copy()
        flips = rng.choice(N, size=40, replace=False)
        moved[flips] = 1 - moved[flips]
        ids.append(_score(service, labels, public, ann, moved))
    assert _flagged(service, ann) == set()
