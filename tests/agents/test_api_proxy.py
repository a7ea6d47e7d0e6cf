"""The Messages API proxy a sandboxed Claude Code talks to: plain HTTP in on a Unix socket, the
upstream's HTTPS out — certificate verified against the trust it was given, the upstream's host
as SNI and Host, the operator's key instead of the sandbox's placeholder, streams passed on as
they come, and nothing but /v1/messages. The upstream is the fake Messages API over TLS with a
certificate from a CA made in the test; nothing here reaches the internet."""

import socket

import anthropic
import httpx
import httpx2  # the anthropic SDK's HTTP client
import pytest

from participants.agents.api_proxy import PLACEHOLDER_KEY, MessagesProxy, allowed
from tests.fakes.anthropic_server import FakeMessagesAPI, text_reply


def _sandbox_client(socket_path) -> anthropic.Anthropic:
    """What Claude Code inside does: plain HTTP to a loopback base URL, the placeholder key
    (the Unix socket stands for netbridge's loopback port)."""
    http = anthropic.DefaultHttpxClient(transport=httpx2.HTTPTransport(uds=str(socket_path)))
    return anthropic.Anthropic(api_key=PLACEHOLDER_KEY, base_url="http://127.0.0.1:8001",
                               http_client=http, max_retries=0)


@pytest.fixture
def tls_fake(test_ca):
    context, _ = test_ca
    with FakeMessagesAPI(tls=context) as fake:
        yield fake


def test_a_request_goes_out_over_verified_tls_as_the_upstreams_host(tls_fake, test_ca,
                                                                    tmp_path):
    tls_fake.script(text_reply("hello through TLS"))
    proxy = MessagesProxy(tmp_path / "api", tls_fake.url, api_key="sk-ant-operator",
                          ca_file=test_ca[1])
    try:
        reply = _sandbox_client(tmp_path / "api").messages.create(
            model="claude-opus-4-6", max_tokens=20, messages=[{"role": "user", "content": "hi"}])
    finally:
        proxy.close()
    assert reply.content[0].text == "hello through TLS"
    assert tls_fake.url.startswith("https://localhost:")
    assert tls_fake.sni == ["localhost"]
    (request,) = tls_fake.requests
    assert request["headers"]["host"] == tls_fake.url.removeprefix("https://")
    assert request["headers"]["x-api-key"] == "sk-ant-operator"  # never the placeholder
    assert request["body"]["messages"] == [{"role": "user", "content": "hi"}]


def test_a_streamed_reply_is_passed_on_as_it_comes(test_ca, tmp_path):
    context, ca_file = test_ca
    with FakeMessagesAPI(tls=context, stream_gap=0.3) as fake:
        fake.script(text_reply("streamed"))
        proxy = MessagesProxy(tmp_path / "api", fake.url, api_key="k", ca_file=ca_file)
        try:
            with _sandbox_client(tmp_path / "api").messages.stream(
                    model="claude-opus-4-6", max_tokens=20,
                    messages=[{"role": "user", "content": "hi"}]) as stream:
                first = next(iter(stream))
                finished_before_first = fake.streamed.is_set()
                text = stream.get_final_text()
        finally:
            proxy.close()
    assert first.type == "message_start" and text == "streamed"
    assert not finished_before_first  # the first event arrived while the fake still sent


def test_an_upstream_the_proxy_does_not_trust_is_never_sent_the_request(tls_fake, tmp_path):
    tls_fake.script(text_reply("never"))
    proxy = MessagesProxy(tmp_path / "api", tls_fake.url, api_key="sk-ant-operator")
    try:
        with pytest.raises(anthropic.APIStatusError) as refused:
            _sandbox_client(tmp_path / "api").messages.create(
                model="claude-opus-4-6", max_tokens=20,
                messages=[{"role": "user", "content": "hi"}])
    finally:
        proxy.close()
    assert refused.value.status_code == 502
    assert "CERTIFICATE_VERIFY_FAILED" in str(refused.value.body)
    assert tls_fake.requests == []


@pytest.mark.parametrize("path", ["/v1/models", "/v1/complete", "/v1/messages/../models",
                                  "/v1/messages/%2e%2e/models", "/v1//messages",
                                  "/v1/messagesx", "/admin"])
def test_only_messages_api_paths_go_through(tls_fake, test_ca, tmp_path, path):
    proxy = MessagesProxy(tmp_path / "api", tls_fake.url, api_key="k", ca_file=test_ca[1])
    try:
        with httpx.Client(transport=httpx.HTTPTransport(uds=str(tmp_path / "api"))) as http:
            url = httpx.URL("http://127.0.0.1:8001").copy_with(raw_path=path.encode())
            answer = http.post(url, json={})
    finally:
        proxy.close()
    assert answer.status_code == 403 and answer.json()["error"]["type"] == "permission_error"
    assert tls_fake.requests == []


def test_the_messages_paths_claude_code_uses_are_allowed():
    assert allowed("/v1/messages?beta=true")
    assert allowed("/v1/messages/count_tokens?beta=true")


def _raw_post(socket_path, head: bytes, body_chunks) -> bytes:
    """What the proxy answers to a request written by hand: an HTTP client library would stop
    at its own checks (too little data for the declared length), racing the proxy's answer."""
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(30)
        sock.connect(str(socket_path))
        sock.sendall(head)
        try:
            for chunk in body_chunks:
                sock.sendall(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the proxy answered and closed before reading it all: what is tested
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    return answer


def test_a_body_past_the_apis_limit_is_refused_unread(tls_fake, test_ca, tmp_path):
    proxy = MessagesProxy(tmp_path / "api", tls_fake.url, api_key="k", ca_file=test_ca[1])
    start = b"POST /v1/messages HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
    try:
        declared = _raw_post(tmp_path / "api", start + b"Content-Length: %d\r\n\r\n"
                             % (64 * 2**30), [b"{}"])
        mib = b"x" * 2**20
        chunked = _raw_post(tmp_path / "api", start + b"Transfer-Encoding: chunked\r\n\r\n",
                            [b"%x\r\n%s\r\n" % (len(mib), mib)] * 40 + [b"0\r\n\r\n"])
    finally:
        proxy.close()
    assert declared.startswith(b"HTTP/1.1 413") and b"at most" in declared
    assert chunked.startswith(b"HTTP/1.1 413")
    assert tls_fake.requests == []
