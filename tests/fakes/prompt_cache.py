"""Prompt caching as the Messages API documents it, for the fake Messages API: so a test can see
whether a client's cache breakpoints would be read, and a benchmark can price a run.

The rules modelled (Anthropic's prompt-caching guide):
- The prompt is read in the order tools → system → messages; a `cache_control` block marks a
  breakpoint, and the cached prefix is everything up to and including that block.
- At most 4 breakpoints a request; more is a 400.
- A prefix shorter than the model's minimum cacheable length is not cached (silently).
- On each request the longest prefix already cached is read, looked for at each breakpoint and
  at the block boundaries up to 20 blocks before it; the prefix at each cacheable breakpoint is
  (re)written; entries live 5 minutes, refreshed by each read.
- usage: cache_read_input_tokens (read), cache_creation_input_tokens (written beyond what was
  read) and input_tokens (the rest: after the last breakpoint), which add up to the prompt.
Tokens are counted as one per 4 characters of each block's JSON (no tokenizer offline): the
costs it gives are the API's rules on an approximate length, fine for comparing two clients.
"""

from __future__ import annotations

import hashlib
import json
import math
import threading
import time
from typing import Any

MAX_BREAKPOINTS = 4
LOOKBACK = 20  # blocks before a breakpoint where a cached prefix is still found
TTL_S = 300.0
# The documented minimum cacheable prompt length per model; others have 1024.
MIN_CACHEABLE = {"claude-opus-4-6": 4096, "claude-opus-4-5": 4096, "claude-haiku-4-5": 4096}


class CacheRuleError(ValueError):
    """A request the real API refuses (400 invalid_request_error)."""


def prompt_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The request's prompt as a sequence of blocks, in the order the cache reads it."""
    blocks = list(body.get("tools") or [])
    system = body.get("system")
    if isinstance(system, str):
        system = [{"type": "text", "text": system}]
    blocks += list(system or [])
    for message in body.get("messages") or []:
        content = message["content"]
        if isinstance(content, str):
            content = [{"type": "text", "text": content}]
        blocks += [{"role": message["role"], **b} for b in content]
    return blocks


class PromptCache:
    def __init__(self) -> None:
        self._entries: dict[str, float] = {}  # prefix hash → expiry (monotonic)
        self._lock = threading.Lock()

    def account(self, body: dict[str, Any]) -> dict[str, int]:
        """The usage (input, cache read, cache creation tokens) of this request; updates the
        cache as the API would."""
        blocks = prompt_blocks(body)
        marks = [i for i, b in enumerate(blocks) if "cache_control" in b]
        if len(marks) > MAX_BREAKPOINTS:
            raise CacheRuleError(f"A maximum of {MAX_BREAKPOINTS} blocks with cache_control "
                                 f"may be provided. Found {len(marks)}.")
        ends, hashes, digest, total = [], [], hashlib.sha256(body["model"].encode()), 0
        for block in blocks:
            text = json.dumps({k: v for k, v in block.items() if k != "cache_control"},
                              sort_keys=True)
            digest.update(text.encode())
            total += math.ceil(len(text) / 4)
            ends.append(total)
            hashes.append(digest.copy().hexdigest())
        minimum = MIN_CACHEABLE.get(body["model"], 1024)
        now = time.monotonic()
        with self._lock:
            read_at = self._longest_hit(marks, hashes, now)
            read = ends[read_at] if read_at is not None else 0
            written = [m for m in marks if ends[m] >= minimum]
            for m in written:
                self._entries[hashes[m]] = now + TTL_S
            if read_at is not None:
                self._entries[hashes[read_at]] = now + TTL_S
        creation = max(0, ends[written[-1]] - read) if written else 0
        return {"input_tokens": total - read - creation, "cache_read_input_tokens": read,
                "cache_creation_input_tokens": creation}

    def _longest_hit(self, marks: list[int], hashes: list[str], now: float) -> int | None:
        candidates = sorted({i for m in marks for i in range(max(0, m - LOOKBACK + 1), m + 1)},
                            reverse=True)
        for i in candidates:
            if self._entries.get(hashes[i], 0.0) > now:
                return i
        return None
