"""The optional LLM review goes through the real anthropic SDK to a fake Messages API."""

import json

import pytest

from participants.sdk import ArenaAPIError
from tests.e2e.conftest import VANILLA, make_server
from tests.fakes.anthropic_server import FakeMessagesAPI, text_reply

CHEAT = "def run(ctx):\n    return [float(l) for l in open('/data/test_labels.txt')]\n"


def test_review_flags_a_hack_and_clears_a_clean_method(tmp_path, rt_task):
    with FakeMessagesAPI() as fake:
        server = make_server(tmp_path)
        server.start(env={"ANTHROPIC_API_KEY": "sk-ant-fake", "ANTHROPIC_BASE_URL": fake.url})
        try:
            pam = server.participant("pam")
            cheat, clean = (pam.submit(src, "rt_sentiment").id for src in (CHEAT, VANILLA))
            fake.replies.append(text_reply(json.dumps({"verdict": "hack", "findings": [
                {"hack": 1, "evidence": "open('/data/test_labels.txt')",
                 "explanation": "reads gold labels from disk"}]}), input_tokens=812))
            fake.replies.append(text_reply('{"verdict": "clean", "findings": []}'))
            fake.replies.append(text_reply("I think it is fine."))  # not JSON
            with server.admin() as admin:
                verdict = admin.review(cheat, transcript="agent: let me look for labels")
                assert verdict["verdict"] == "hack" and verdict["input_tokens"] == 812
                assert admin.review(clean)["verdict"] == "clean"
                with pytest.raises(ArenaAPIError) as info:
                    admin.review(clean)
                assert info.value.status == 502 and "did not answer in JSON" in \
                    info.value.message
                flags = [f for f in admin.flags() if f.kind == "llm_review"]
            assert [f.attempt_id for f in flags] == [cheat]
            assert flags[0].detail["findings"][0]["hack"] == 1
            first = fake.requests[0]
            assert first["path"] == "/v1/messages"
            headers = first["headers"]
            assert "sk-ant-fake" in (headers.get("x-api-key", ""),
                                     headers.get("authorization", "").removeprefix("Bearer "))
            assert first["body"]["model"] == "claude-opus-4-6"
            user = first["body"]["messages"][0]["content"]
            assert CHEAT in user and "let me look for labels" in user
            assert "known hacks" in first["body"]["system"]
        finally:
            server.stop()


def test_review_without_a_key_is_a_clear_conflict(server):
    qin = server.participant("qin")
    attempt = qin.submit(VANILLA, "rt_sentiment")
    with server.admin() as admin, pytest.raises(ArenaAPIError) as info:
        admin.review(attempt.id)
    assert info.value.status == 409 and "ANTHROPIC_API_KEY" in info.value.message
