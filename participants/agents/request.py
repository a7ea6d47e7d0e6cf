"""What the harness sends to the Messages API: the system prompt, the tool schemas, the model
options, and prompt-cache breakpoints.

Caching: the system prompt and the tool list are a stable prefix (two breakpoints); a third
breakpoint moves to the end of the conversation every turn, so the next turn reads the whole
conversation so far from the cache instead of paying for it again. It is only placed once the
prompt is long enough for the model to cache at all (its minimum cacheable length).
"""

from __future__ import annotations

import copy
from typing import Any

from participants.agents.pricing import price_of
from participants.tools import TOOLS

SYSTEM = """You are an AI researcher in a weak-to-strong supervision race against human
researchers. A weak model's labels must train a stronger model; your score is PGR, the share of
the gap between the weak teacher and a strong model trained on gold labels that your method
recovers. You submit methods (Python files with run(ctx)) that the study server runs and scores
on its own seeds; you see public scores only. Work like a careful scientist: read the brief,
form hypotheses, write methods in your workspace, dry-run them, submit the promising ones, wait
for their scores, and record what you learn in NOTEBOOK.md (it is all you keep between
iterations). The forum is mirrored into your workspace as files under forum/ (refreshed every
minute). Share real findings on the forum; a result post must link a scored attempt of yours.
Never try to read labels or game the scorer: attempts are audited."""

EPHEMERAL = {"type": "ephemeral"}


def tool_schemas() -> list[dict[str, Any]]:
    schemas = [{"name": t.name, "description": t.description,
                "input_schema": t.input.model_json_schema()} for t in TOOLS]
    schemas[-1]["cache_control"] = EPHEMERAL  # the tool list is a stable prefix
    return schemas


def with_moving_breakpoint(messages: list[dict[str, Any]], *, prompt_tokens: int,
                           model: str) -> list[dict[str, Any]]:
    """A copy of `messages` whose last block carries a cache breakpoint, when the prompt
    (estimated by the tokens of the previous request, which it extends) reaches the model's
    minimum cacheable length. The stored conversation is never marked: old breakpoints would
    pile up past the API's limit of four."""
    if not messages or prompt_tokens < price_of(model).min_cache:
        return messages
    marked = copy.deepcopy(messages)
    last = marked[-1]
    if isinstance(last["content"], str):
        last["content"] = [{"type": "text", "text": last["content"]}]
    last["content"][-1]["cache_control"] = EPHEMERAL
    return marked


def model_options(*, max_tokens: int, thinking: str | None, effort: str | None
                  ) -> dict[str, Any]:
    """`thinking`: None (off), "adaptive", or a token budget ("8000"); `effort`: low … max."""
    options: dict[str, Any] = {"max_tokens": max_tokens}
    if thinking == "adaptive":
        options["thinking"] = {"type": "adaptive"}
    elif thinking:
        budget = int(thinking)
        if not 1024 <= budget < max_tokens:
            raise ValueError(f"a thinking budget must be ≥ 1024 and below max_tokens "
                             f"({max_tokens}); got {budget}")
        options["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if effort:
        options["output_config"] = {"effort": effort}
    return options


def build_request(*, model: str, messages: list[dict[str, Any]], prompt_tokens: int,
                  options: dict[str, Any], cache_conversation: bool = True) -> dict[str, Any]:
    """`cache_conversation=False` leaves the conversation unmarked (only the system prompt and
    the tools are cached): what the moving breakpoint saves is measured against it."""
    if cache_conversation:
        messages = with_moving_breakpoint(messages, prompt_tokens=prompt_tokens, model=model)
    return {"model": model, **options,
            "system": [{"type": "text", "text": SYSTEM, "cache_control": EPHEMERAL}],
            "tools": tool_schemas(), "messages": messages}
