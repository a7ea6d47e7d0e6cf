"""Model resolution order, pinned hashes, and that no network is needed for packaged models."""

import dataclasses
import shutil
import subprocess
import sys

import numpy as np
import pytest

from runner.models import get_model, load_encoder, resolve_model
from runner.models.resolve import packaged_folder
from study.errors import IntegrityError, ModelUnavailableError


@pytest.fixture
def empty_hf_cache(tmp_path, monkeypatch):
    cache = tmp_path / "hf"
    cache.mkdir()
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def test_packaged_copy_when_nothing_else(empty_hf_cache):
    resolved = resolve_model("minilm-l6")
    assert resolved.source == "package"
    assert (resolved.path / "model.safetensors").exists()


def test_local_folder_beats_everything(empty_hf_cache, tmp_path):
    local = tmp_path / "my-l6"
    shutil.copytree(resolve_model("minilm-l6").path, local)
    resolved = resolve_model("minilm-l6", local_path=local)
    assert (resolved.source, resolved.path) == ("local", local.resolve())
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        resolve_model("minilm-l6", local_path=tmp_path / "nowhere")


def test_hugging_face_cache_beats_the_package(empty_hf_cache):
    """A real hub-cache layout (refs/main → snapshot) found by huggingface_hub itself."""
    repo = empty_hf_cache / "models--sentence-transformers--all-MiniLM-L6-v2"
    snapshot = repo / "snapshots" / "0123456789abcdef"
    shutil.copytree(resolve_model("minilm-l6").path, snapshot)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text("0123456789abcdef")
    resolved = resolve_model("minilm-l6")
    assert resolved.source == "hf-cache" and resolved.path == snapshot
    vectors = load_encoder(resolved).embed(["a fine film"])
    assert vectors.shape == (1, 384)


def test_hub_only_model_fails_clearly_offline(empty_hf_cache, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    resolved = resolve_model("qwen3-4b-base")
    assert resolved.source == "hub" and resolved.path is None
    with pytest.raises(ModelUnavailableError, match=r"Qwen/Qwen3-4B-Base.*HF_HUB_OFFLINE"):
        load_encoder(resolved)


def test_a_tampered_weight_file_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("ARENA_CACHE_DIR", str(tmp_path / "cache"))
    spec = get_model("minilm-l3")
    bad = dataclasses.replace(spec, pins={**spec.pins, "model.onnx": "0" * 64})
    with pytest.raises(IntegrityError, match=r"model\.onnx has sha256 b388816f"):
        packaged_folder(bad)
    assert not (tmp_path / "cache" / "models" / "minilm-l3").exists()


def test_packaged_models_load_with_no_network_at_all(tmp_path):
    """Resolve and embed inside a network namespace with no interface but loopback."""
    code = ("from runner.models import resolve_model, load_encoder\n"
            "for name in ('minilm-l3', 'minilm-l6'):\n"
            "    r = resolve_model(name)\n"
            "    assert r.source == 'package', r\n"
            "    print(name, load_encoder(r).embed(['no network here']).shape)\n")
    proc = subprocess.run(["bwrap", "--dev-bind", "/", "/", "--unshare-net", sys.executable,
                           "-c", code], capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "minilm-l3 (1, 384)" in proc.stdout and "minilm-l6 (1, 384)" in proc.stdout


def test_onnx_l3_pooling_matches_the_exported_sentence_embedding():
    encoder = load_encoder(resolve_model("minilm-l3"))
    texts = ["a gorgeous, witty, seductive movie.", "the film is a mess"]
    encs = encoder.tokenizer.encode_batch(texts)
    feeds = {"input_ids": np.array([e.ids for e in encs]),
             "attention_mask": np.array([e.attention_mask for e in encs])}
    pooled = next(o.name for o in encoder.session.get_outputs() if len(o.shape) == 2
                  and o.shape[1] == 384)
    (reference,) = encoder.session.run([pooled], feeds)
    np.testing.assert_allclose(encoder.embed(texts), reference, atol=1e-5)
