"""The model pair a protocol names: a catalogue pair (`model_pair`) or any two causal LMs
(`[models]`, by catalogue name, local folder or hub id), with its `[lm]` fine-tuning recipe."""

from __future__ import annotations

from runner.models.catalog import PAIR_RECIPES, PAIRS, model_from_reference
from runner.models.resolve import ResolvedModel, materialize, resolve_model
from runner.teacher import ModelPair, lm_pair, resolve_pair
from study.errors import ModelUnavailableError
from study.protocol_lm import LMRecipe


def _resolve_reference(ref: str) -> ResolvedModel:
    spec, folder = model_from_reference(ref)
    if not spec.is_lm:
        raise ModelUnavailableError(f"[models] names causal LMs; {ref!r} is a sentence encoder "
                                    "(use model_pair for the encoder pairs)")
    return materialize(resolve_model(spec, local_path=folder))


def pair_for_protocol(protocol) -> ModelPair:
    """Hub-only LMs are downloaded here, once, so sandboxed methods find them on disk."""
    if protocol.models is not None:
        weak = _resolve_reference(protocol.models.weak)
        strong = _resolve_reference(protocol.models.strong)
        return lm_pair(f"{weak.spec.name}->{strong.spec.name}", weak, strong,
                       LMRecipe(**protocol.lm))
    if protocol.model_pair not in PAIRS:
        raise ModelUnavailableError(f"unknown model_pair {protocol.model_pair!r}; known: "
                                    f"{sorted(PAIRS)} (or name two LMs in [models])")
    # The pair's own recipe (AAR's, or the tiny one), with what the [lm] table sets on top.
    recipe = LMRecipe(**{**PAIR_RECIPES.get(protocol.model_pair, {}), **protocol.lm})
    pair = resolve_pair(protocol.model_pair, lm=recipe)
    if pair.lm is None:
        return pair
    return lm_pair(pair.name, materialize(pair.weak), materialize(pair.strong), pair.lm)
