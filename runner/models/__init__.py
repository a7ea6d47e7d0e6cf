"""Models: the catalog with pinned hashes, resolution in a fixed order, frozen encoders."""

from runner.encoders import Encoder, open_encoder
from runner.models.catalog import MODELS, PAIRS, ModelSpec, get_model
from runner.models.resolve import ResolvedModel, load_encoder, resolve_model

__all__ = ["MODELS", "PAIRS", "Encoder", "ModelSpec", "ResolvedModel", "get_model",
           "load_encoder", "open_encoder", "resolve_model"]
