"""A fake Anthropic Messages API on loopback: real HTTP, scripted replies, recorded requests.

Tests point the real `anthropic` SDK at it through `base_url` (or ANTHROPIC_BASE_URL). Each
scripted reply is a Messages API response body, an (HTTP status, body) pair to exercise the
SDK's error handling and retries, or a function of the request body returning either (for turns
that depend on earlier tool results). `hold` makes requests hang until `release` (the test
kills the caller meanwhile); a held request is then dropped without using a scripted reply.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def text_reply(text: str, *, model: str = "claude-opus-4-6", input_tokens: int = 100,
               output_tokens: int = 20) -> dict[str, Any]:
    return {"id": "msg_fake", "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}


def tool_use_reply(*calls: tuple[str, dict[str, Any]], text: str = "",
                   input_tokens: int = 100, output_tokens: int = 20,
                   cache_read: int = 0, cache_write: int = 0) -> dict[str, Any]:
    content: list[dict[str, Any]] = [{"type": "text", "text": text}] if text else []
    for i, (name, args) in enumerate(calls):
        content.append({"type": "tool_use", "id": f"toolu_{name}_{i}_{len(str(args))}",
                        "name": name, "input": args})
    return {"id": "msg_fake", "type": "message", "role": "assistant",
            "model": "claude-opus-4-6", "content": content, "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens,
                      "cache_creation_input_tokens": cache_write,
                      "cache_read_input_tokens": cache_read}}


def last_tool_results(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The tool_result blocks of the request's last user message."""
    last = body["messages"][-1]
    return [b for b in last["content"] if isinstance(b, dict) and b.get("type") == "tool_result"]


class FakeMessagesAPI:
    def __init__(self) -> None:
        self.replies: deque[dict[str, Any] | tuple[int, dict[str, Any]]] = deque()
        self.requests: list[dict[str, Any]] = []
        self.hold = threading.Event()  # set: the next request waits for `release`
        self.release = threading.Event()
        self.held = threading.Event()  # set once a request is being held
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append({"path": self.path,
                                      "headers": {k.lower(): v for k, v in self.headers.items()},
                                      "body": body})
                if fake.hold.is_set():
                    fake.held.set()
                    fake.release.wait(60)
                    return  # the caller was killed meanwhile: nothing to answer, nothing used
                reply = fake.replies.popleft() if fake.replies else (
                    500, {"type": "error", "error": {"type": "api_error",
                                                     "message": "no scripted reply left"}})
                if callable(reply):
                    reply = reply(body)
                status, payload = reply if isinstance(reply, tuple) else (200, reply)
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeMessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
