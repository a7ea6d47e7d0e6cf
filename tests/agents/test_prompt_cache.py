"""Prompt caching: the fake Messages API accounts it by the API's documented rules, and the
harness's requests (the moving breakpoint on the conversation) are read from the cache on later
turns — the whole conversation so far, not only the system prompt and the tools."""

import anthropic
import pytest

from benchmarks.bench_prompt_cache import run_scripted
from tests.fakes.anthropic_server import FakeMessagesAPI, text_reply
from tests.fakes.prompt_cache import PromptCache

EPHEMERAL = {"type": "ephemeral"}


def _request(model, *texts, marks=()):
    """A request whose user message has one text block per `texts`; `marks` are the indexes of
    the blocks that carry a breakpoint."""
    blocks = [{"type": "text", "text": t, **({"cache_control": EPHEMERAL} if i in marks else {})}
              for i, t in enumerate(texts)]
    return {"model": model, "messages": [{"role": "user", "content": blocks}]}


def test_a_prefix_is_read_back_and_only_the_new_part_is_written():
    cache = PromptCache()
    first = cache.account(_request("claude-sonnet-4-5", "a" * 8000, "b" * 40, marks=(0,)))
    assert first["cache_read_input_tokens"] == 0 and first["cache_creation_input_tokens"] > 2000
    second = cache.account(_request("claude-sonnet-4-5", "a" * 8000, "b" * 40, "c" * 8000,
                                    marks=(0, 2)))
    assert second["cache_read_input_tokens"] == first["cache_creation_input_tokens"]
    assert second["cache_creation_input_tokens"] > 2000 and second["input_tokens"] == 0
    other_model = cache.account(_request("claude-sonnet-4-0", "a" * 8000, marks=(0,)))
    assert other_model["cache_read_input_tokens"] == 0  # caches are per model


def test_a_prefix_below_the_models_minimum_is_not_cached():
    cache = PromptCache()
    text = "a" * 8000  # about 2,000 tokens: enough for Sonnet (1,024), not for Opus (4,096)
    opus = cache.account(_request("claude-opus-4-6", text, marks=(0,)))
    assert opus["input_tokens"] > 2000 and opus["cache_creation_input_tokens"] == 0
    assert cache.account(_request("claude-opus-4-6", text, marks=(0,))
                         )["cache_read_input_tokens"] == 0
    cache.account(_request("claude-sonnet-4-5", text, marks=(0,)))
    assert cache.account(_request("claude-sonnet-4-5", text, marks=(0,))
                         )["cache_read_input_tokens"] == opus["input_tokens"]


def test_a_cached_prefix_is_found_up_to_twenty_blocks_back():
    head = ["h" * 8000]
    tail = [f"turn {i}" for i in range(30)]
    for gap, found in ((19, True), (20, False)):
        cache = PromptCache()
        cache.account(_request("claude-sonnet-4-5", *head, marks=(0,)))
        later = cache.account(_request("claude-sonnet-4-5", *head, *tail[:gap], marks=(gap,)))
        assert (later["cache_read_input_tokens"] > 0) is found, gap


def test_more_than_four_breakpoints_is_refused_as_the_api_does():
    with FakeMessagesAPI(cache=True) as fake:
        fake.script(text_reply("never sent"))
        llm = anthropic.Anthropic(api_key="sk-ant-fake", base_url=fake.url, max_retries=0)
        body = _request("claude-sonnet-4-5", *["x"] * 5, marks=range(5))
        with pytest.raises(anthropic.BadRequestError, match="maximum of 4"):
            llm.messages.create(max_tokens=10, **body)
        assert fake.replies  # the scripted reply was not used up


@pytest.mark.parametrize("model", ["claude-opus-4-6", "claude-sonnet-4-5"])
def test_later_turns_read_the_whole_conversation_from_the_cache(server, tmp_path, model):
    client = server.participant(f"cacher-{model}", arm="ai", kind="agent")
    _, usages = run_scripted(client, tmp_path / "agent", model=model, cache_conversation=True)
    prompts = [sum(u.values()) for u in usages]
    cached = [i for i, u in enumerate(usages) if u["cache_creation_input_tokens"]]
    assert cached, usages  # the prompt grew past the model's minimum: the breakpoint moved in
    for before, after in zip(usages[cached[0]:], usages[cached[0] + 1:], strict=False):
        # each turn reads everything the turn before it read or wrote
        assert after["cache_read_input_tokens"] == (before["cache_read_input_tokens"]
                                                   + before["cache_creation_input_tokens"])
    assert usages[-1]["cache_read_input_tokens"] > 0.9 * prompts[-1]


def test_without_the_moving_breakpoint_the_conversation_is_billed_again(server, tmp_path):
    client = server.participant("fixed", arm="ai", kind="agent")
    _, usages = run_scripted(client, tmp_path / "agent", model="claude-sonnet-4-5",
                             cache_conversation=False)
    reads = {u["cache_read_input_tokens"] for u in usages[1:]}
    assert len(reads) == 1  # only the system prompt and the tools, every turn
    assert usages[-1]["input_tokens"] > 0.5 * sum(usages[-1].values())
