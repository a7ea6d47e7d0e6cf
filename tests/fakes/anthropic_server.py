"""A fake Anthropic Messages API on loopback: real HTTP, scripted replies, recorded requests.

Tests point the real `anthropic` SDK at it through `base_url` (or ANTHROPIC_BASE_URL). Each
scripted reply is a Messages API response body, an (HTTP status, body) pair to exercise the
SDK's error handling and retries, or a function of the request body returning either (for turns
that depend on earlier tool results). `hold` makes requests hang until `release` (the test
kills the caller meanwhile); a held request is then dropped without using a scripted reply.
`inject` serves errors (a 529 outage, say) for a number of requests or a stretch of time
before the script resumes, without using up scripted replies. With `cache=True` the fake
accounts prompt caching as the API documents it (tests.fakes.prompt_cache): each reply's input
and cache token counts are computed from the request's breakpoints, and kept in `usages`.
With `tls` (a server-side SSL context) it serves HTTPS at https://localhost:PORT and records
the SNI names clients sent (`sni`); `stream_gap` seconds between streamed events (and
`streamed`, set once the last is sent) show whether a proxy passes a stream on unbuffered.
"""

from __future__ import annotations

import json
import ssl
import threading
import time
from collections import deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.fakes.prompt_cache import CacheRuleError, PromptCache


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


def sse_events(message: dict[str, Any]):
    """(event, data) pairs of the Messages API's streaming form of `message`."""
    usage = message["usage"]
    yield "message_start", {"type": "message_start", "message": {
        **message, "content": [], "stop_reason": None, "stop_sequence": None,
        "usage": {**usage, "output_tokens": 1}}}
    for i, block in enumerate(message["content"]):
        if block["type"] == "text":
            start, delta = {"type": "text", "text": ""}, {"type": "text_delta",
                                                          "text": block["text"]}
        else:
            start = {**block, "input": {}}
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        yield "content_block_start", {"type": "content_block_start", "index": i,
                                      "content_block": start}
        yield "content_block_delta", {"type": "content_block_delta", "index": i,
                                      "delta": delta}
        yield "content_block_stop", {"type": "content_block_stop", "index": i}
    yield "message_delta", {"type": "message_delta",
                            "delta": {"stop_reason": message["stop_reason"],
                                      "stop_sequence": None},
                            "usage": {"output_tokens": usage["output_tokens"]}}
    yield "message_stop", {"type": "message_stop"}


ERROR_TYPES = {400: "invalid_request_error", 429: "rate_limit_error", 500: "api_error",
               529: "overloaded_error"}


def error_reply(status: int, message: str = "injected") -> tuple[int, dict[str, Any]]:
    return status, {"type": "error", "error": {"type": ERROR_TYPES.get(status, "api_error"),
                                               "message": message}}


class FakeMessagesAPI:
    def __init__(self, *, cache: bool = False, tls: ssl.SSLContext | None = None,
                 stream_gap: float = 0.0) -> None:
        self.cache = PromptCache() if cache else None
        self.tls, self.sni = tls, []
        self.stream_gap, self.streamed = stream_gap, threading.Event()
        self.usages: list[dict[str, int]] = []  # computed, with `cache`: one per answered call
        self.replies: deque[dict[str, Any] | tuple[int, dict[str, Any]]] = deque()
        self._outage: tuple[int, int | None, float | None] | None = None
        self.injected = 0  # error replies served by `inject`
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
                reply = fake._injected()
                usage = None
                if reply is None and fake.cache is not None:
                    try:
                        usage = fake.cache.account(body)
                    except CacheRuleError as exc:
                        reply = error_reply(400, str(exc))
                if reply is None:
                    reply = fake.replies.popleft() if fake.replies else error_reply(
                        500, "no scripted reply left")
                if callable(reply):
                    reply = reply(body)
                status, payload = reply if isinstance(reply, tuple) else (200, reply)
                if status == 200 and usage is not None:
                    fake.usages.append(usage)
                    payload = {**payload, "usage": {**payload["usage"], **usage}}
                if status == 200 and body.get("stream"):
                    self._stream(payload)
                    return
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, message: dict[str, Any]) -> None:
                """The same reply as server-sent events, for clients that stream."""
                events = [f"event: {kind}\ndata: {json.dumps(event)}\n\n".encode()
                          for kind, event in sse_events(message)]
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                if not fake.stream_gap:
                    self.send_header("Content-Length", str(sum(map(len, events))))
                self.end_headers()
                for event in events:  # with a gap: one at a time, the body ends at close
                    self.wfile.write(event)
                    self.wfile.flush()
                    time.sleep(fake.stream_gap)
                fake.streamed.set()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if tls is not None:
            tls.sni_callback = lambda _sock, name, _ctx: self.sni.append(name)
            self._server.socket = tls.wrap_socket(self._server.socket, server_side=True)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def script(self, *replies: Any) -> FakeMessagesAPI:
        self.replies.extend(replies)
        return self

    def inject(self, status: int, *, count: int | None = None,
               seconds: float | None = None) -> None:
        """Answer the next `count` requests, or every request for `seconds` from now, with
        `status` (529 overloaded, say); the scripted replies wait meanwhile."""
        until = None if seconds is None else time.monotonic() + seconds
        self._outage = (status, count, until)

    def _injected(self) -> tuple[int, dict[str, Any]] | None:
        if self._outage is None:
            return None
        status, count, until = self._outage
        if (count is not None and count <= 0) or (until is not None
                                                  and time.monotonic() >= until):
            self._outage = None
            return None
        if count is not None:
            self._outage = (status, count - 1, until)
        self.injected += 1
        return error_reply(status)

    @property
    def url(self) -> str:
        port = self._server.server_address[1]
        return f"https://localhost:{port}" if self.tls else f"http://127.0.0.1:{port}"

    def __enter__(self) -> FakeMessagesAPI:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
