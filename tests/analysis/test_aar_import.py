"""AAR results in the release layout (`cache_results/<dataset>_<idea>/<key>/seed_<n>.json`), with
its real key names, read into the right attempts with per-seed PGRs; bad files are skipped with
a reason, never aborting the batch."""

import json

import pytest

from study.aar_import import parse_results, read_release, require_attempts
from study.errors import InvalidError

WEAK, STRONG = 0.5279592240696753, 0.7325316706254948
VANILLA_KEY = "Qwen_Qwen3_4B_Base_Qwen_Qwen1_5_0_5B_Chat_e5_lr0.0001_bs32_schlinear"
CRITIC_KEY = VANILLA_KEY + "_grpo_kl_penalty0.02_grpo_lr1e-05_grpo_max_steps50"


def seed_file(idea="vanilla_w2s", seed=42, transfer=0.5688, pgr=None, dataset="chat-0115",
              **extra):
    """One per-seed result with the release's field names (vanilla_w2s style)."""
    return {"idea_name": idea, "weak_model": "Qwen/Qwen1.5-0.5B-Chat",
            "strong_model": "Qwen/Qwen3-4B-Base", "weak_acc": 0.5439, "strong_acc": 0.7300,
            "transfer_acc": transfer,
            "pgr": (transfer - WEAK) / (STRONG - WEAK) if pgr is None else pgr,
            "fixed_weak_baseline": WEAK, "fixed_strong_baseline": STRONG,
            "training_time": 6350.0, "aar_mode": False,
            "cached_at": f"2026-01-16 11:0{seed - 40}:25", "dataset_name": dataset,
            "hyperparam_config_key": VANILLA_KEY, "seed": seed, **extra}


def write(root, folder, key, seed, data):
    path = root / "cache_results" / folder / key / f"seed_{seed}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data) if isinstance(data, dict) else data)


@pytest.fixture
def release(tmp_path):
    """Two ideas and a second dataset whose files share base names, a critic file, a file whose
    stated PGR was rounded to 4 decimals, a ceiling (no PGR) and an unreadable file."""
    transfers = {42: 0.6040, 43: 0.5700, 44: 0.5518}
    for seed, t in transfers.items():
        write(tmp_path, "chat-0115_vanilla_w2s", VANILLA_KEY, seed, seed_file(seed=seed,
                                                                              transfer=t))
        write(tmp_path, "math-0115_vanilla_w2s", VANILLA_KEY, seed,
              seed_file(seed=seed, transfer=t + 0.01, dataset="math-0115"))
    # The release's ue_zeroshot files say idea_name "vanilla_w2s" and state rounded PGRs.
    exact = (0.5202058590656373 - WEAK) / (STRONG - WEAK)
    write(tmp_path, "chat-0115_ue_zeroshot", VANILLA_KEY, 42,
          seed_file(seed=42, transfer=0.5202058590656373, pgr=round(exact, 4)))
    critic = seed_file(idea="critic", seed=42, transfer=0.5043547110055424,
                       experiment_uid="6fecd44b", total_training_time=15138.97,
                       hyperparam_config_key=CRITIC_KEY, step1_5_sft_critic_on_weak_demos={
                           "enabled": True, "checkpoint_path": None})
    del critic["training_time"], critic["aar_mode"]
    critic["weak_model"] = None
    write(tmp_path, "chat-0115_critic", CRITIC_KEY, 42, critic)
    write(tmp_path, "chat-0115_train_ceiling", "Qwen_Qwen3_4B_Base_e5_lr0.0001_bs32_schlinear", 42,
          {"idea_name": "train_ceiling", "strong_model": "Qwen/Qwen3-4B-Base", "weak_model": None,
           "strong_acc": 0.73, "training_time": 6297.9, "cached_at": "2026-01-16 10:00:00",
           "dataset_name": "chat-0115", "seed": 42})
    write(tmp_path, "chat-0115_critic", CRITIC_KEY, 43, "{ truncated")
    return tmp_path / "cache_results", transfers


def test_the_release_layout_imports_to_the_right_attempts(release):
    root, transfers = release
    files, unreadable = read_release(root)
    assert [s.path for s in unreadable] == [
        f"cache_results/chat-0115_critic/{CRITIC_KEY}/seed_43.json"]
    assert len(files) == 9  # same base names in five folders: none collapsed
    report = parse_results(list(files.items()))
    by = {(a.task, a.idea_name): a for a in report.attempts}
    assert set(by) == {("chat-0115", "vanilla_w2s"), ("math-0115", "vanilla_w2s"),
                       ("chat-0115", "ue_zeroshot"), ("chat-0115", "critic")}
    vanilla = by[("chat-0115", "vanilla_w2s")]
    assert vanilla.seeds == [42, 43, 44] and vanilla.hyperparam_key == VANILLA_KEY
    want = [(t - WEAK) / (STRONG - WEAK) for t in transfers.values()]
    assert vanilla.pgr_per_seed == pytest.approx(want)
    assert vanilla.pgr == pytest.approx(sum(want) / 3) and vanilla.pgr_se is not None
    assert by[("math-0115", "vanilla_w2s")].pgr > vanilla.pgr  # never merged across datasets
    critic = by[("chat-0115", "critic")]
    assert critic.wall_seconds == pytest.approx(15138.97)
    assert critic.hyperparam_key == CRITIC_KEY
    rounded = by[("chat-0115", "ue_zeroshot")].per_seed[0]
    assert rounded.stated_pgr == round(rounded.pgr, 4) and rounded.stated_pgr != rounded.pgr
    (ceiling,) = report.skipped
    assert "train_ceiling" in ceiling.path and "states no PGR" in ceiling.reason


def test_a_duplicate_seed_is_refused_not_averaged_twice(release):
    root, _ = release
    files, _ = read_release(root)
    twin = f"elsewhere/chat-0115_vanilla_w2s/{VANILLA_KEY}/seed_42.json"
    files[twin] = seed_file(seed=42, transfer=0.70)
    report = parse_results(list(files.items()))
    vanilla = next(a for a in report.attempts
                   if (a.task, a.idea_name) == ("chat-0115", "vanilla_w2s"))
    assert vanilla.seeds == [42, 43, 44]
    assert any(s.path == twin and "seed 42 is already imported" in s.reason
               for s in report.skipped)


def test_a_file_whose_name_and_contents_disagree_on_the_seed_is_skipped():
    """The release's ue_zeroshot seed_43.json says "seed": 42 inside."""
    path = f"cache_results/chat-0115_ue_zeroshot/{VANILLA_KEY}/seed_43.json"
    report = parse_results([(path, seed_file(seed=42))])
    assert report.attempts == []
    assert report.skipped[0].reason == "its name says seed 43, its contents say seed 42"


def test_a_pgr_that_disagrees_beyond_rounding_is_skipped_with_its_figures():
    report = parse_results([("bad.json", seed_file(pgr=0.9)),
                            ("ok.json", seed_file(seed=43))])
    assert [a.seeds for a in report.attempts] == [[43]]
    (bad,) = report.skipped
    assert bad.path == "bad.json" and "the file says pgr 0.9" in bad.reason


def test_a_file_missing_fields_is_named_and_nothing_left_is_an_error():
    broken = seed_file()
    del broken["transfer_acc"]
    report = parse_results([("broken.json", broken)])
    assert "transfer_acc" in report.skipped[0].reason
    with pytest.raises(InvalidError, match=r"nothing to import \(broken\.json: not an AAR"):
        require_attempts(report)
