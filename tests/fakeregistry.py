"""Registries that are not: a tarpit that never answers, and a recorder that answers
`GET /v2/` as a registry would (Basic or Bearer challenge) and counts every connection.

Both listen on 127.0.0.1 only, on a free port, in daemon threads, until `close()`.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["RecordingRegistry", "Tarpit"]


class Tarpit:
    """A 'registry' on 127.0.0.1 that accepts connections and never answers, until closed."""

    def __init__(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.address = f"127.0.0.1:{self._listener.getsockname()[1]}"
        self.accepted = threading.Event()
        self.hung_up = threading.Event()  # a client gave up waiting
        self._held: list[socket.socket] = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # closed
            self._held.append(connection)
            self.accepted.set()
            threading.Thread(target=self._hold, args=(connection,), daemon=True).start()

    def _hold(self, connection: socket.socket) -> None:
        try:
            while connection.recv(4096):
                pass
        except OSError:
            return
        self.hung_up.set()

    def close(self) -> None:
        self._listener.close()
        for connection in self._held:
            with contextlib.suppress(OSError):  # the client may have gone already
                connection.shutdown(socket.SHUT_RDWR)  # wakes the holding thread
            connection.close()


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, challenge: str) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.challenge = challenge
        self.connections = 0
        self.paths: list[str] = []
        self.lock = threading.Lock()

    def verify_request(self, request: object, client_address: object) -> bool:
        with self.lock:
            self.connections += 1
        return True


class _Handler(BaseHTTPRequestHandler):
    server: _Recorder

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        with self.server.lock:
            self.server.paths.append(self.path)
        if self.headers.get("Authorization"):
            self._answer(200, b'{"token": "a-token"}')
        else:
            self._answer(401, b"{}", {"WWW-Authenticate": self.server.challenge})

    def _answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (http.server's name)
        return


class RecordingRegistry:
    """Plain HTTP on 127.0.0.1: 401 with `challenge` without credentials, 200 (and a token) with any.

    `connections` counts every connection accepted, TLS handshakes it cannot serve included.
    """

    def __init__(self, challenge: str = 'Basic realm="recording"') -> None:
        self._server = _Recorder(challenge)
        self.port = self._server.server_address[1]
        self.address = f"127.0.0.1:{self.port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def connections(self) -> int:
        with self._server.lock:
            return self._server.connections

    @property
    def paths(self) -> list[str]:
        with self._server.lock:
            return list(self._server.paths)

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
