"""A tiny HTTP server for the kubelet's probes: /healthz (liveness) and /readyz (readiness).

Each path maps to a check returning (ok, message). Probes answer 200 or 503
with the message as plain text; anything else is 404.
"""

from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["Check", "HealthServer", "parse_address"]

log = logging.getLogger(__name__)

Check = Callable[[], tuple[bool, str]]


def parse_address(address: str) -> tuple[str, int]:
    """'HOST:PORT' (HOST may be empty for all interfaces, or a bracketed IPv6 address) -> (host, port)."""
    host, _, port = address.rpartition(":")
    return host.strip("[]") or "0.0.0.0", int(port)


class _IPv6HTTPServer(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class HealthServer:
    def __init__(self, address: str, checks: Mapping[str, Check]) -> None:
        routes = dict(checks)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                check = routes.get(self.path.split("?", 1)[0])
                if check is None:
                    self._answer(404, "not found")
                    return
                try:
                    ok, message = check()
                except Exception as error:  # a failing check is an unhealthy answer, not a crash
                    ok, message = False, f"check failed: {type(error).__name__}"
                self._answer(200 if ok else 503, message)

            def _answer(self, code: int, message: str) -> None:
                body = (message + "\n").encode()
                self.send_response(code)
                self.send_header("Content-Type", "text/plain; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                log.debug("probe %s", format % args)

        host, port = parse_address(address)
        server_class = _IPv6HTTPServer if ":" in host else ThreadingHTTPServer
        self._server = server_class((host, port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, name="health", daemon=True)

    @property
    def port(self) -> int:
        return self._server.server_address[1]

    def start(self) -> HealthServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
