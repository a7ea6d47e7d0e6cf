"""The LM testbed's runner parts on the tiny random Qwen2/Qwen3 models: deterministic builds,
LoRA classifiers with both readouts and the head losses, the activation cache, and the errors a
method or an operator meets."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from runner.lib.finetune import LoraSpec, Readout, train_lm_classifier
from runner.lib.lm import load_tokenizer
from runner.lib.losses import LogConf
from runner.models import resolve_model
from runner.models.catalog import model_from_reference
from runner.models.resolve import materialize
from runner.models.tiny import build_tiny
from study.errors import ModelUnavailableError
from tests.conftest import REPO
from tests.lm_data import write_keyword_task

FAST = {"epochs": 3, "lr": 3e-3, "batch_size": 16, "max_length": 32}


@pytest.fixture(scope="module")
def keywords(tmp_path_factory):
    folder = write_keyword_task(tmp_path_factory.mktemp("kw"), noise=0.0)
    rows = {name: [json.loads(line) for line in (folder / name).read_text().splitlines()]
            for name in ("train_unlabel.jsonl", "test.jsonl")}
    return {split: ([r["text"] for r in rows[name]], np.array([r["label"] for r in rows[name]]))
            for split, name in (("train", "train_unlabel.jsonl"), ("test", "test.jsonl"))}


def test_tiny_models_build_the_same_bytes_twice_from_a_config(tmp_path):
    digests = []
    for i in range(2):
        dest = tmp_path / f"build{i}"
        dest.mkdir()
        build_tiny("tiny-qwen2", dest)
        digests.append(hashlib.sha256((dest / "model.safetensors").read_bytes()).hexdigest())
    assert digests[0] == digests[1]
    config = json.loads((dest / "config.json").read_text())
    assert config["model_type"] == "qwen2" and config["vocab_size"] == 30522
    assert (dest / "model.safetensors").stat().st_size < 10_000_000
    tokenizer = load_tokenizer(dest)
    # Words, not characters: the folder's own (BERT) tokenizer, whatever qwen2 maps to.
    assert tokenizer.tokenize("wonderful film") == ["wonderful", "film"]
    assert tokenizer.padding_side == "right"


@pytest.mark.parametrize("model, readout", [("tiny-qwen3", Readout()),
                                            ("tiny-qwen3", Readout(kind="tokens"))])
def test_a_lora_classifier_learns_the_keyword_rule(keywords, model, readout):
    texts, labels = keywords["train"]
    steps = []
    clf = train_lm_classifier(resolve_model(model).path, texts, labels, seed=3, readout=readout,
                              on_step=lambda s, total, loss: steps.append((s, total, loss)),
                              **FAST)
    test_texts, test_labels = keywords["test"]
    accuracy = ((clf.predict_proba(test_texts) >= 0.5) == test_labels).mean()
    assert accuracy >= 0.9, accuracy
    assert steps[-1][0] == steps[-1][1] == 3 * 15  # 240 items / 16 per batch × 3 epochs
    assert np.mean([s[2] for s in steps[-5:]]) < np.mean([s[2] for s in steps[:5]])


def test_losses_and_weights_change_training_and_seeds_are_reproducible(keywords):
    texts, labels = keywords["train"]
    folder = resolve_model("tiny-qwen2").path
    soft = np.where(labels == 1, 0.7, 0.3)
    run = lambda **kw: train_lm_classifier(folder, texts, soft, seed=5, **FAST,  # noqa: E731
                                           **kw).predict_proba(keywords["test"][0])
    plain = run()
    assert np.array_equal(plain, run())  # same seed, same model: same predictions
    confident = run(loss=LogConf(alpha=0.75))
    # LogConf pulls towards hard labels: predictions move further from 0.5 than plain CE's.
    assert np.abs(confident - 0.5).mean() > np.abs(plain - 0.5).mean()
    only_half = np.r_[np.ones(120), np.zeros(120)]
    assert not np.allclose(run(sample_weight=only_half), plain)
    with pytest.raises(ValueError, match="probabilities"):
        train_lm_classifier(folder, texts, labels * 2.0, **FAST)
    with pytest.raises(ValueError, match="one token per answer"):
        train_lm_classifier(folder, texts, labels, readout=Readout(kind="tokens",
                            answers=("no", "tedious")), **FAST)
    lora = LoraSpec(r=4, alpha=8, target_modules=("q_proj", "v_proj"))
    assert run(lora=lora).shape == plain.shape


def test_the_activation_cache_reads_last_token_and_mean_states(tmp_path, monkeypatch):
    from runner.features import ensure_features
    from study.tasks.datadir import load_data_dir

    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    task = load_data_dir(write_keyword_task(tmp_path / "data"), name="kw", kind="classify")
    model = resolve_model("tiny-qwen3")
    paths = ensure_features(model, task, ("train", "test"))
    features = np.load(paths["test"])
    assert features.shape == (160, 2 * 64)  # [last token | mean] of the 64-d hidden states
    stamp = paths["test"].stat().st_mtime_ns
    assert ensure_features(model, task, ("test",))["test"].stat().st_mtime_ns == stamp


def test_unknown_and_offline_missing_models_say_where_they_looked(monkeypatch, tmp_path):
    with pytest.raises(ModelUnavailableError, match="neither a catalogue name"):
        model_from_reference("no such model")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    spec, folder = model_from_reference("Qwen/Qwen3-4B-Base")
    with pytest.raises(ModelUnavailableError) as err:
        materialize(resolve_model(spec, local_path=folder))
    assert "Hugging Face cache" in str(err.value.message)
    assert str(tmp_path / "hub") in err.value.message and "HF_HUB_OFFLINE" in err.value.message
    local, path = model_from_reference(str(resolve_model("tiny-qwen2").path))
    assert local.is_lm and path is not None
    # Online, a hub that cannot be reached (a closed local port stands in for it): the places
    # looked in, then why the download failed.
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    online = subprocess.run(
        [sys.executable, "-c", "from runner.models.catalog import model_from_reference as m\n"
         "from runner.models.resolve import materialize, resolve_model\n"
         "spec, folder = m('org/nosuch')\n"
         "materialize(resolve_model(spec, local_path=folder))"],
        env={**env, "HF_ENDPOINT": "http://127.0.0.1:9", "HF_HUB_CACHE": str(tmp_path / "hub")},
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert "ModelUnavailableError: nosuch (org/nosuch) was not found in a local folder" \
        in online.stderr, online.stderr
    assert f"the Hugging Face cache ({tmp_path / 'hub'}), and the download failed" \
        in online.stderr


def test_finetune_on_an_encoder_pair_is_a_clear_error(run_source):
    """The default pairs are frozen encoders: finetune says so instead of a transformers
    traceback (the ONNX weak model, the MiniLM-L6 strong encoder)."""
    result = run_source("""
        def run(ctx):
            for which in ("strong", "weak"):
                try:
                    ctx.lib.finetune(ctx, ctx.weak_soft_labels, model=which)
                except Exception as exc:
                    print(which, type(exc).__name__, exc)
            return [0.5] * len(ctx.texts("test"))
    """, seconds=120)
    assert result.status == "scored", result.error
    tail = result.outcomes[0].log_tail
    assert "strong MethodAPIError" in tail and "is a frozen sentence encoder" in tail
    assert "weak MethodAPIError" in tail and "ships as ONNX" in tail


def _lm_bundle(folder, keywords) -> dict:
    """A participant bundle of the tiny pair, written as runner.bundle lays it out."""
    texts = {s: keywords[s][0] for s in ("train", "test")}
    (folder / "task.json").write_text(json.dumps({
        "name": "kw", "kind": "classify", "description": "", "label_names": ["n", "p"],
        "sizes": {s: len(t) for s, t in texts.items()}}))
    for split, items in texts.items():
        (folder / f"texts_{split}.json").write_text(json.dumps(items))
    entry = lambda name: {"name": name, "hub_id": "", "normalize": False,  # noqa: E731
                          "folder": str(resolve_model(name).path), "max_length": 32,
                          "kind": "causal-lm"}
    (folder / "models.json").write_text(json.dumps({"weak": entry("tiny-qwen2"),
                                                    "strong": entry("tiny-qwen3")}))
    (folder / "lm_recipe.json").write_text(json.dumps({"epochs": 3, "lr": 3e-3,
                                                       "batch_size": 16, "max_length": 32}))
    return {"bundle": str(folder), "seed": 7, "budget": {}, "scratch": str(folder / "s")}


def test_ctx_gives_the_causal_lm_its_features_and_finetune_on_an_lm_pair(tmp_path, keywords):
    from runner.method.context import Context

    ctx = Context(_lm_bundle(tmp_path, keywords))
    model, tokenizer = ctx.strong_model()
    assert type(model).__name__ == "Qwen3ForCausalLM" and tokenizer.padding_side == "right"
    assert model.config._attn_implementation == "sdpa"
    assert ctx.embed(["a wonderful film", "a film"]).shape == (2, 128)
    assert ctx.lm_recipe["lr"] == 3e-3
    tuned = ctx.lib.finetune(ctx, keywords["train"][1].astype(float))  # the recipe's defaults
    probs = tuned.predict_proba("test")
    assert ((probs >= 0.5) == keywords["test"][1]).mean() >= 0.9
    assert tuned.predict_proba(["a wonderful film"]).shape == (1,)


def test_defaults_are_the_aar_recipe_and_batches_group_similar_lengths():
    from runner.lib.finetune import linear_schedule
    from runner.lib.lm import length_batches
    from runner.models.catalog import PAIR_RECIPES, PAIRS
    from study.protocol_lm import LMRecipe

    aar = LMRecipe(**PAIR_RECIPES.get("aar", {}))
    assert (aar.baseline_seeds, aar.lora_r, aar.lora_alpha, aar.lr, aar.batch_size,
            aar.readout, aar.epochs, aar.warmup_ratio) == (16, 32, 32, 1e-4, 32, "head", 5, 0.1)
    # transformers' linear schedule with warm-up, as the release trains: 0 → 1 → 0.
    assert [linear_schedule(s, warmup=2, total=6) for s in range(7)] == [
        0.0, 0.5, 1.0, 0.75, 0.5, 0.25, 0.0]
    assert (LoraSpec().r, LoraSpec().alpha, Readout().kind) == (32, 32, "head")
    assert PAIRS["aar"] == ("qwen1.5-0.5b-chat", "qwen3-4b-base")
    # Padding is most of the cost of short texts: a batch holds texts of similar length.
    assert length_batches([9, 1, 5, 2, 8, 4], 2) == [[1, 3], [5, 2], [4, 0]]


def test_a_protocol_names_lms_by_folder_and_unknown_pairs_are_refused():
    from runner.pairs import pair_for_protocol
    from study.protocol import ProtocolSpec, parse_protocol

    base = 'name = "x"\n[tasks]\nhill_climb = ["rt_sentiment"]\n[[arms]]\nname = "h"\n'
    folders = (resolve_model("tiny-qwen2").path, resolve_model("tiny-qwen3").path)
    pair = pair_for_protocol(parse_protocol(
        base + f'[models]\nweak = "{folders[0]}"\nstrong = "{folders[1]}"\n[lm]\nlr = 0.01\n'))
    assert (pair.weak.source, pair.strong.path) == ("local", folders[1])
    assert pair.lm is not None and pair.lm.lr == 0.01
    other = pair_for_protocol(parse_protocol(
        base + f'[models]\nweak = "{folders[0]}"\nstrong = "{folders[1]}"\n'))
    assert other.key != pair.key  # the recipe is part of the baselines' cache key
    # The tiny pair's own recipe under what [lm] sets, the same whether the protocol is read
    # from its TOML (arena prepare) or from the study file (the server): one cache key.
    tiny = parse_protocol(base.replace('name = "x"', 'name = "x"\nmodel_pair = "tiny-lm"')
                          + "[lm]\nepochs = 5\n")
    recipe = pair_for_protocol(tiny).lm
    assert (recipe.epochs, recipe.lr, recipe.lora_r) == (5, 3e-3, 8)
    frozen = ProtocolSpec.model_validate_json(tiny.model_dump_json())
    assert pair_for_protocol(frozen).key == pair_for_protocol(tiny).key
    with pytest.raises(ModelUnavailableError, match="unknown model_pair 'nope'"):
        pair_for_protocol(parse_protocol(base.replace('name = "x"', 'name = "x"\n'
                                                      'model_pair = "nope"')))
    with pytest.raises(ModelUnavailableError, match="is a sentence encoder"):
        pair_for_protocol(parse_protocol(base + '[models]\nweak = "minilm-l6"\nstrong = "mpnet"\n'))


OWN_LOOP = """
import os

import torch

GOLD = GOLD_PATHS  # the data folder, the task's cached copy, the teachers: every gold label


def run(ctx):
    seen = [path for path in GOLD if os.path.exists(path)]
    assert not seen, seen  # beside the bound model folders, but not bound themselves
    weak, _ = ctx.weak_model()  # both LMs are there, with trainable weights
    model, tokenizer = ctx.strong_model()
    assert type(weak).__name__ == "Qwen2ForCausalLM", type(weak).__name__
    head = torch.nn.Linear(model.config.hidden_size, 1)
    optim = torch.optim.AdamW([*model.parameters(), *head.parameters()], lr=1e-3)
    texts = ctx.texts("train")[:96]  # a few steps show the loop works; no need to converge
    soft = torch.tensor(ctx.weak_soft_labels[:96], dtype=torch.float32)

    def logits(batch):
        enc = tokenizer(batch, return_tensors="pt", padding=True)
        hidden = model.model(**{k: enc[k] for k in ("input_ids", "attention_mask")})
        last = enc["attention_mask"].sum(1) - 1
        return head(hidden.last_hidden_state[torch.arange(len(batch)), last]).squeeze(-1)

    model.train()
    for step in range(0, len(texts), 32):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(
            logits(texts[step:step + 32]), soft[step:step + 32])
        loss.backward()
        optim.step()
        optim.zero_grad()
        ctx.log("loss", loss.item(), step)
    with torch.no_grad():
        return torch.sigmoid(logits(ctx.texts("test"))).numpy()
"""


@pytest.mark.slow
def test_probe_baselines_and_an_own_loop_run_on_an_lm_pair(tmp_path, monkeypatch):
    """On an LM pair ctx.strong_features are the cached hidden states: the five shipped probe
    baselines run through the real sandboxed method process as they are, and so do
    lora_vanilla.py, the finetune example of docs/method-api.md and a method that writes its
    own training loop from ctx.strong_model().
    The fixed baselines here use the answer-token readout ("B"/"A" logits), the e2e study the
    linear head."""
    import math

    from runner.attempt import run_attempt
    from runner.method import Budget
    from runner.teacher import fixed_baselines, resolve_pair
    from study.protocol_lm import LMRecipe
    from study.tasks.datadir import cache_data_task, load_data_dir

    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    task = load_data_dir(write_keyword_task(tmp_path / "data"), name="kw", kind="classify",
                         role="hill_climb")
    pair = resolve_pair("tiny-lm", lm=LMRecipe(baseline_seeds=2, readout="tokens",
                                               answers=("B", "A"), **FAST))
    record = fixed_baselines(task, pair)
    assert min(record.ceiling_acc) > max(record.weak_acc) and min(record.ceiling_acc) > 0.65
    cache_data_task(task)  # as a server keeps it
    gold = [str(tmp_path / "data" / "test.jsonl"), str(tmp_path / "cache" / "tasks" / "kw"),
            str(tmp_path / "cache" / "baselines")]
    assert all(Path(path).exists() for path in gold)
    (tmp_path / "own_loop.py").write_text(OWN_LOOP.replace("GOLD_PATHS", repr(gold)))
    # The finetune example of docs/method-api.md, as printed there.
    docs = (REPO / "docs" / "method-api.md").read_text().split("## Fine-tuning a language")[1]
    (tmp_path / "docs_example.py").write_text(docs.split("```python\n")[1].split("```")[0])
    methods = [REPO / "baselines" / f"{name}.py" for name in
               ("vanilla", "confident", "logconf", "bootstrap", "zero_shot", "lora_vanilla")]
    reports: dict[str, list[dict]] = {}
    for method in [*methods, tmp_path / "own_loop.py", tmp_path / "docs_example.py"]:
        live = reports.setdefault(method.name, [])
        result = run_attempt(method, task, seeds=[1], pair=pair,
                             budget=Budget(seconds=120, memory_mb=4096),
                             on_progress=lambda seed, report, live=live: live.append(report))
        assert result.status == "scored", (method.name, result.error)
        assert math.isfinite(result.scores["all"].accuracy)
    # finetune reports every step through ctx.progress (240 items / 16 × 3 epochs) and its
    # loss through ctx.log, live, over the method process's channel.
    lora = reports["lora_vanilla.py"]
    assert [(r["done"], r["total"]) for r in lora if "done" in r] == [(s, 45) for s in range(1, 46)]
    assert [m["name"] for r in lora for m in r.get("metrics", [])] == ["loss"] * 45


def test_a_hugging_face_snapshot_folder_binds_its_whole_repo(tmp_path, monkeypatch):
    """Snapshot files link into ../../blobs: the sandbox must see the repo folder, not only
    the snapshot, or every link inside it dangles. A hub id in [models] is found in the
    Hugging Face cache offline (no download) and binds the same way."""
    import os
    import shutil

    from runner.bundle import model_dirs
    from runner.pairs import _resolve_reference
    from runner.teacher import ModelPair

    repo = tmp_path / "hub" / "models--org--tiny"
    snapshot = repo / "snapshots" / "0123abc"
    (repo / "blobs").mkdir(parents=True)
    snapshot.mkdir(parents=True)
    for file in resolve_model("tiny-qwen3").path.iterdir():
        if file.is_file() and not file.name.startswith("."):
            shutil.copyfile(file, repo / "blobs" / file.name)
            os.symlink(f"../../blobs/{file.name}", snapshot / file.name)
    resolved = _resolve_reference(str(snapshot))
    assert resolved.source == "hf-cache" and resolved.spec.is_lm
    assert model_dirs(ModelPair("x", resolved, resolved)) == (repo, repo)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123abc")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    by_id = _resolve_reference("org/tiny")
    assert (by_id.source, by_id.path, by_id.spec.hub_id) == ("hf-cache", snapshot, "org/tiny")
    assert model_dirs(ModelPair("x", by_id, by_id)) == (repo, repo)


def test_a_cuda_out_of_memory_turns_on_activation_checkpointing_once(keywords):
    """Checkpointing costs a second forward pass, so finetune only turns it on when a batch
    runs out of GPU memory. No GPU here: the real OutOfMemoryError is raised from the decoder's
    first forward (what CUDA would do), and the batch must then train with checkpointing on; a
    second OOM with checkpointing already on is not swallowed."""
    import torch

    from runner.lib.finetune import LMClassifier, _Trainer, _with_lora
    from runner.lib.lm import cpu_threads_for, load_causal_lm

    lm, tokenizer = load_causal_lm(resolve_model("tiny-qwen3").path)
    lm = _with_lora(lm, LoraSpec(r=4, alpha=8))
    clf = LMClassifier(lm, tokenizer, readout=Readout(), device="cpu", max_length=32)
    trainer = _Trainer(clf, lr=1e-3, total=3, on_step=None)
    texts, labels = keywords["train"][0][:16], keywords["train"][1][:16].astype(float)
    ooms: list[bool] = []  # was checkpointing on when each OOM struck
    wanted = {"ooms": 0}

    def out_of_memory(module, args, kwargs):
        if len(ooms) < wanted["ooms"]:
            ooms.append(module.is_activation_checkpointing)
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    lm.get_decoder().register_forward_pre_hook(out_of_memory, with_kwargs=True)
    lm.train()
    with cpu_threads_for(lm, "cpu"):  # as finetune runs it (two threads crawl on tiny models)
        _oom_batches(trainer, texts, labels, ooms, wanted)


def _oom_batches(trainer, texts, labels, ooms, wanted) -> None:
    import torch

    lm = trainer.clf.lm
    assert np.isfinite(trainer.run_batch(texts, lambda z, p: labels, np.ones(16)))
    assert not lm.is_activation_checkpointing  # no memory asked for it: off
    wanted["ooms"] = 1
    assert np.isfinite(trainer.run_batch(texts, lambda z, p: labels, np.ones(16)))
    assert ooms == [False] and trainer.checkpointing and lm.is_activation_checkpointing
    assert trainer.step == 2  # and the learning rate decays linearly to 0 at step 3
    assert trainer.optim.param_groups[0]["lr"] == pytest.approx(1e-3 / 3)
    wanted["ooms"] = 2
    with pytest.raises(torch.cuda.OutOfMemoryError):
        trainer.run_batch(texts, lambda z, p: labels, np.ones(16))
    assert ooms == [False, True]
