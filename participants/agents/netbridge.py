"""Network for a sandbox that has none: a Claude Code agent runs in its own network namespace
(bubblewrap --unshare-net), where the only way out is a Unix socket bound in from the host.
Outside, a server on each socket: `UnixToTcp` forwards each connection to one fixed address
(the study's MCP tools, served outside the sandbox with the token), and the Messages API's is
an HTTP reverse proxy (participants.agents.api_proxy) that speaks HTTPS to the real API;
inside, `python -m participants.agents.netbridge PORT SOCKET …` listens on loopback and
forwards to the sockets, then runs the agent. So the agent reaches exactly those services and
nothing else — no other host, no other local port; the base URLs it sees are
http://127.0.0.1:PORT.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import threading
from pathlib import Path


def _pump(src: socket.socket, dst: socket.socket) -> None:
    with contextlib.suppress(OSError):
        while data := src.recv(65536):
            dst.sendall(data)
    with contextlib.suppress(OSError):
        dst.shutdown(socket.SHUT_WR)


def _splice(a: socket.socket, b: socket.socket) -> None:
    """Copy both ways until both sides are done, then close both."""
    back = threading.Thread(target=_pump, args=(b, a), daemon=True)
    back.start()
    _pump(a, b)
    back.join()
    a.close()
    b.close()


def _serve(listener: socket.socket, connect) -> None:
    while True:
        try:
            conn, _ = listener.accept()
        except OSError:
            return  # closed
        try:
            upstream = connect()
        except OSError:
            conn.close()
            continue
        threading.Thread(target=_splice, args=(conn, upstream), daemon=True).start()


class UnixToTcp:
    """A Unix socket at `path` whose every connection goes to (host, port)."""

    def __init__(self, path: Path, host: str, port: int) -> None:
        self.path, self.address = path, (host, port)
        path.unlink(missing_ok=True)
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(path))
        path.chmod(0o666)  # the sandbox's user is not ours
        self._listener.listen(64)
        threading.Thread(target=_serve, daemon=True,
                         args=(self._listener, self._connect)).start()

    def _connect(self) -> socket.socket:
        return socket.create_connection(self.address, timeout=30)

    def close(self) -> None:
        self._listener.close()
        self.path.unlink(missing_ok=True)


def run_inside(pairs: list[tuple[int, str]], command: list[str]) -> int:
    """Listen on 127.0.0.1:port for each (port, unix socket) pair and forward; then run
    `command` (the agent) and return its exit status. Listening first: its first request
    never races the bridge."""
    for port, path in pairs:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen(64)

        def connect(path: str = path) -> socket.socket:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            return s

        threading.Thread(target=_serve, args=(listener, connect), daemon=True).start()
    return subprocess.call(command)


if __name__ == "__main__":  # inside the sandbox: PORT SOCKET [PORT SOCKET …] -- COMMAND …
    args = sys.argv[1:]
    split = args.index("--")
    pairs = [(int(args[i]), args[i + 1]) for i in range(0, split, 2)]
    sys.exit(run_inside(pairs, args[split + 1:]))
