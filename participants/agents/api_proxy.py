"""The sandboxed Claude Code's way to the Messages API: a reverse proxy outside the sandbox.

Inside, Claude Code speaks plain HTTP to http://127.0.0.1:PORT (netbridge carries it to a Unix
socket); here each request is read as HTTP and sent again to the real Messages API base URL —
over HTTPS with the certificate verified and the upstream's own host name as SNI and Host (a
raw TCP bridge could not: TLS, and a Host header naming the sandbox's loopback). Responses come
back as they arrive, chunk by chunk, so a streamed reply (server-sent events) is never held.

Only Messages API paths (/v1/messages…) go through; anything else is a 403 here. The API key
is the operator's, set here: the sandbox holds a placeholder, so an agent that reads its own
environment learns nothing it could use elsewhere.
"""

from __future__ import annotations

import json
import logging
import posixpath
import socket
import socketserver
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import httpx

log = logging.getLogger("w2s_arena.agents.api_proxy")
ALLOWED_PREFIX = "/v1/messages"
# Hop-by-hop headers (RFC 9110 §7.6.1) belong to one connection, never forwarded; Host is the
# upstream's; the key is set here, never the sandbox's.
HOP = {"connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te",
       "trailer", "transfer-encoding", "upgrade", "host", "content-length"}
SECRETS = {"x-api-key", "authorization"}
PLACEHOLDER_KEY = "sk-ant-sandbox-placeholder"  # what the sandbox sees as its API key
MAX_BODY = 32 * 2**20  # the Messages API's own request limit; more is refused, never read
# After refusing a body, what the client still sends is read and dropped for at most this long
# and this much: closing with unread input makes the kernel reset the connection, and the
# client would lose the refusal (nginx's "lingering close").
LINGER_S, LINGER_BYTES = 2.0, 2 * MAX_BODY


def allowed(path: str) -> bool:
    """/v1/messages and below, spelled plainly: no dot segments, no escapes, no double slash
    (each could name another path once the upstream normalises it)."""
    bare = path.split("?", 1)[0]
    plain = "%" not in bare and posixpath.normpath(bare) == bare
    return plain and (bare == ALLOWED_PREFIX or bare.startswith(ALLOWED_PREFIX + "/"))


def upstream_client(*, ca_file: str | None = None) -> httpx.Client:
    """Verified TLS: the system's trust (or `ca_file`'s, for a gateway with its own CA)."""
    verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca_file) if ca_file \
        else True
    return httpx.Client(verify=verify, trust_env=False, follow_redirects=False,
                        timeout=httpx.Timeout(connect=30, read=900, write=60, pool=60))


class _Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    proxy: MessagesProxy  # set on the subclass each proxy makes

    def log_message(self, *args: Any) -> None:  # a Unix peer has no address to log
        pass

    def do_POST(self) -> None:
        self._forward()

    do_GET = do_DELETE = do_POST

    def _forward(self) -> None:
        if not allowed(self.path):
            log.warning("refused a request for %s %s", self.command, self.path)
            self._error(403, "permission_error", f"{self.path} is not a Messages API path; "
                        "this sandbox reaches only /v1/messages")
            return
        body = self._body()
        if body is None:
            return
        try:
            response = self.proxy.send(self.command, self.path, self._headers(), body)
        except httpx.HTTPError as exc:
            self._error(502, "api_error", f"the Messages API could not be reached: {exc}")
            return
        try:
            self._relay(response)
        except OSError:
            self.close_connection = True  # the sandbox hung up: nothing to answer
        finally:
            response.close()

    def _body(self) -> bytes | None:
        """The request body, at most MAX_BODY (the sandbox is not trusted with our memory)."""
        try:
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                return self._chunked_body()
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 <= length <= MAX_BODY:
                raise ValueError(f"a body of {length} bytes")
            return self.rfile.read(length)
        except ValueError as exc:
            self.close_connection = True
            self._error(413 if "bytes" in str(exc) else 400, "invalid_request_error",
                        f"bad request body ({exc}); at most {MAX_BODY} bytes")
            self._linger()
            return None

    def _linger(self) -> None:
        """The refusal is sent; drop what the client still sends, bounded, then let it close."""
        deadline, dropped = time.monotonic() + LINGER_S, 0
        try:
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_WR)
            while dropped < LINGER_BYTES and (left := deadline - time.monotonic()) > 0:
                self.connection.settimeout(left)
                data = self.connection.recv(1 << 16)
                if not data:
                    break
                dropped += len(data)
        except OSError:  # a timeout or a client already gone: nothing more to do
            pass

    def _chunked_body(self) -> bytes:
        parts, total = [], 0
        while size := int(self.rfile.readline(100).split(b";")[0].strip() or b"0", 16):
            total += size
            if total > MAX_BODY:
                raise ValueError(f"a body of over {total} bytes")
            parts.append(self.rfile.read(size))
            self.rfile.readline(100)
        while self.rfile.readline(1000) not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return b"".join(parts)

    def _headers(self) -> list[tuple[str, str]]:
        kept = [(k, v) for k, v in self.headers.items() if k.lower() not in HOP | SECRETS]
        return [*kept, ("x-api-key", self.proxy.api_key)]

    def _relay(self, response: httpx.Response) -> None:
        """Status and headers, then the body re-chunked as it arrives (never buffered)."""
        self.send_response_only(response.status_code)
        for key, value in response.headers.multi_items():
            if key.lower() not in HOP:
                self.send_header(key, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in response.iter_raw():
            if chunk:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        self.wfile.write(b"0\r\n\r\n")

    def _error(self, status: int, kind: str, message: str) -> None:
        data = json.dumps({"type": "error", "error": {"type": kind, "message": message}}
                          ).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class MessagesProxy:
    """Serves the Unix socket at `path`; forwards Messages API requests to `upstream` (a base
    URL, https://api.anthropic.com or a gateway's) with `api_key`."""

    def __init__(self, path: Path, upstream: str, *, api_key: str,
                 ca_file: str | None = None) -> None:
        self.path, self.upstream, self.api_key = path, upstream.rstrip("/"), api_key
        self.client = upstream_client(ca_file=ca_file)
        path.unlink(missing_ok=True)
        handler = type("Handler", (_Handler,), {"proxy": self})
        self._server = _Server(str(path), handler)
        path.chmod(0o666)  # the sandbox's user is not ours
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def send(self, method: str, path: str, headers: list[tuple[str, str]],
             body: bytes) -> httpx.Response:
        request = self.client.build_request(method, self.upstream + path, headers=headers,
                                            content=body)
        return self.client.send(request, stream=True)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self.client.close()
        self.path.unlink(missing_ok=True)
