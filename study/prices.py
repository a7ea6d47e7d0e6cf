"""Dollar cost of a model turn, from a price table kept in the repo (USD per million tokens).

One table for both sides: an agent's harness prices its turns with it
(participants.agents.pricing re-exports it), and the server recomputes the price of every
usage report with it rather than trusting the figure the harness sent.

Prices as published by Anthropic for these models when this table was written; a study that
uses another model adds a row. Cache writes are the 5-minute ephemeral rate. `min_cache` is the
model's minimum cacheable prompt length: a cache breakpoint on a shorter prefix caches nothing.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Price:
    input: float
    output: float
    cache_write: float
    cache_read: float
    min_cache: int = 1024


PRICES: dict[str, Price] = {
    "claude-opus-4-6": Price(input=5.0, output=25.0, cache_write=6.25, cache_read=0.50,
                             min_cache=4096),
    "claude-opus-4-5": Price(input=5.0, output=25.0, cache_write=6.25, cache_read=0.50,
                             min_cache=4096),
    "claude-sonnet-4-5": Price(input=3.0, output=15.0, cache_write=3.75, cache_read=0.30,
                               min_cache=1024),
    "claude-haiku-4-5": Price(input=1.0, output=5.0, cache_write=1.25, cache_read=0.10,
                              min_cache=4096),
}


def price_of(model: str) -> Price:
    """The model's row; an unknown model is an error before any paid call, not after one."""
    try:
        return PRICES[model]
    except KeyError:
        raise ValueError(f"no price for model {model!r} (priced: {sorted(PRICES)}); add a "
                         f"row to {__name__}.PRICES") from None


def turn_cost(model: str, *, input_tokens: int, output_tokens: int, cache_read_tokens: int = 0,
              cache_write_tokens: int = 0) -> float:
    """USD for one turn; an unknown model is an error, not a silent zero."""
    price = price_of(model)
    return (input_tokens * price.input + output_tokens * price.output
            + cache_read_tokens * price.cache_read
            + cache_write_tokens * price.cache_write) / 1_000_000
