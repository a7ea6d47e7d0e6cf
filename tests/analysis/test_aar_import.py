"""AAR per-seed result files: parsed, PGR recomputed and checked, grouped per idea."""

import pytest

from study.aar_import import parse_results
from study.errors import InvalidError


def seed_file(idea="vanilla_w2s", seed=42, transfer=0.5688, pgr=None, **extra):
    weak, strong = 0.528, 0.7325
    data = {"idea_name": idea, "seed": seed, "weak_acc": 0.53, "strong_acc": 0.73,
            "transfer_acc": transfer, "pgr": (transfer - weak) / (strong - weak) if pgr is None
            else pgr, "fixed_weak_baseline": weak, "fixed_strong_baseline": strong,
            "training_time": 6350.0, "cached_at": f"2026-04-0{seed - 40}T12:00:00",
            "dataset_name": "chat", **extra}
    return data


def test_seeds_group_into_one_attempt_with_recomputed_pgr():
    files = [(f"vanilla_{s}.json", seed_file(seed=s, transfer=t))
             for s, t in ((42, 0.5688), (43, 0.5700), (44, 0.5650))]
    files.append(("conf_42.json", seed_file(idea="confident", seed=42, transfer=0.575)))
    attempts = {a.idea_name: a for a in parse_results(files)}
    vanilla = attempts["vanilla_w2s"]
    assert vanilla.seeds == [42, 43, 44] and vanilla.task == "chat"
    expected = sum((t - 0.528) / (0.7325 - 0.528) for t in (0.5688, 0.57, 0.565)) / 3
    assert vanilla.pgr == pytest.approx(expected)
    assert vanilla.pgr_se is not None and attempts["confident"].pgr_se is None
    assert vanilla.finished_at.isoformat() == "2026-04-04T12:00:00+00:00"


def test_a_file_whose_pgr_disagrees_with_its_baselines_is_refused():
    with pytest.raises(InvalidError, match=r"bad\.json: the file says pgr 0\.9"):
        parse_results([("bad.json", seed_file(pgr=0.9))])


def test_a_file_missing_fields_is_named():
    broken = seed_file()
    del broken["transfer_acc"]
    with pytest.raises(InvalidError, match=r"broken\.json: not an AAR seed result .*transfer"):
        parse_results([("broken.json", broken)])
