"""The protocol tables of the language-model testbed: tasks read from data folders, the LM pair
named by hub id or local path, and how its fixed baselines are fine-tuned.

All optional with defaults, so a protocol without them (the embedded default) loads unchanged.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DatasetSpec(_Strict):
    """A task read from a folder in the AAR layout (train_label / train_unlabel / test .jsonl).

    `folder` may use environment variables (`${ARENA_AAR_DATA}/chat`): they are expanded when
    the task is built, so the protocol (and its hash) stays the same on every machine while
    the task's content hash pins the data itself.
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_-]{0,63}$")
    kind: Literal["classify", "pairwise", "verify"]
    folder: str = Field(min_length=1)
    description: str = ""
    label_names: tuple[str, str] = ("0", "1")
    # The task's content hash, pinned into the frozen protocol when a study is created: a
    # folder whose rows changed since is refused, never silently re-baselined mid-study.
    content_hash: str | None = Field(None, pattern=r"^[0-9a-f]{16}$")


class ModelsSpec(_Strict):
    """Any two causal LMs: a catalogue name, a local folder, or a hub id (fetched once, when
    the platform prepares; methods always run offline)."""

    weak: str = Field(min_length=1)
    strong: str = Field(min_length=1)


class LMRecipe(_Strict):
    """How the fixed baselines of an LM pair are fine-tuned; the defaults are the AAR
    release's recipe."""

    baseline_seeds: int = Field(16, ge=1, le=64)  # teachers and ceilings, one per seed
    epochs: int = Field(5, ge=1, le=100)  # the release's BASELINE_EPOCHS and RunConfig.epochs
    lr: float = Field(1e-4, gt=0, le=1)
    warmup_ratio: float = Field(0.1, ge=0, lt=1)  # linear warm-up, then linear decay to 0
    batch_size: int = Field(32, ge=1, le=4096)
    max_length: int = Field(512, ge=8, le=32768)
    lora_r: int = Field(32, ge=1, le=1024)
    lora_alpha: int = Field(32, ge=1, le=4096)
    readout: Literal["head", "tokens"] = "head"
    answers: tuple[str, str] = ("No", "Yes")  # the "tokens" readout's words for label 0, 1


def inherit_dataset_pins(new: list[DatasetSpec], pinned: list[DatasetSpec]
                         ) -> list[DatasetSpec]:
    """An amended protocol's [[datasets]] (written without hashes) take the study's pins, so
    the same folders compare equal and a changed one still does not."""
    pins = {d.model_copy(update={"content_hash": None}): d.content_hash for d in pinned}
    return [d if d.content_hash is not None else d.model_copy(update={"content_hash": pins.get(d)})
            for d in new]


def check_recipe_overrides(value: dict[str, Any]) -> dict[str, Any]:
    """The protocol's `[lm]` table: only the keys it sets, each checked as part of a recipe.

    Kept as given (not filled with defaults) so that the frozen protocol, read back from the
    study file, still says which keys it set: the others come from the pair (the tiny pair has
    its own learning rate), and they must come out the same at prepare time and at serve time.
    """
    LMRecipe(**value)  # raises the validation error, with the key named
    return value
