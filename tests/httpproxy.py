"""A plain-HTTP proxy on 127.0.0.1 in front of the API server that can answer in its place.

Clients speak HTTP to it with no credentials; it sends each request on over TLS with the
client certificate of a kubeconfig, streaming the answers (watches included).
`answer_for(picks, body)` makes it answer the requests `picks` chooses itself, with
200 and `body`, as a broken proxy or a confused server would.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import Self

import urllib3
import yaml

from regcred.kube.client import load_api_client

__all__ = ["HttpProxy"]

CHUNK_BYTES = 65536
# Headers about one connection, not the request: never passed on. Date and Server are
# the proxy's own (http.server writes them).
HOP_BY_HOP = frozenset({
    "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "te", "trailer",
    "transfer-encoding", "upgrade", "host", "content-length", "date", "server",
})

Picks = Callable[[str, str], bool]


class HttpProxy:
    """Forwards plain-HTTP requests on 127.0.0.1:`port` to the kubeconfig's API server."""

    def __init__(self, kubeconfig: Path) -> None:
        configuration = load_api_client(str(kubeconfig)).configuration
        self._upstream = configuration.host.rstrip("/")
        self._pool = urllib3.PoolManager(
            maxsize=64, ca_certs=configuration.ssl_ca_cert,
            cert_file=configuration.cert_file, key_file=configuration.key_file, retries=False,
        )
        self._lock = threading.Lock()
        self._answer: tuple[Picks, bytes] | None = None
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                proxy._handle(self)

            do_POST = do_PUT = do_PATCH = do_DELETE = do_GET  # noqa: N815

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                pass  # a watch-heavy client makes thousands of lines

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port: int = self._server.server_address[1]

    def start(self) -> Self:
        threading.Thread(target=self._server.serve_forever, name="http-proxy", daemon=True).start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def answer_for(self, picks: Picks, body: bytes) -> None:
        """From now on answer the requests `picks(method, path)` chooses with 200 and `body`."""
        with self._lock:
            self._answer = (picks, body)

    def kubeconfig(self, source: Path, path: Path) -> Path:
        """A copy of `source` whose clusters are reached through this proxy, in plain HTTP."""
        document = yaml.safe_load(source.read_text())
        for entry in document["clusters"]:
            entry["cluster"] = {"server": f"http://127.0.0.1:{self.port}"}
        path.write_text(yaml.safe_dump(document))
        return path

    # -- one request -----------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        with self._lock:
            answer = self._answer
        if answer is not None and answer[0](handler.command, handler.path):
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(answer[1])))
            handler.end_headers()
            handler.wfile.write(answer[1])
            return
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in HOP_BY_HOP}
        try:
            upstream = self._pool.urlopen(
                handler.command, self._upstream + handler.path, body=body, headers=headers,
                preload_content=False, redirect=False, timeout=urllib3.Timeout(connect=5.0, read=None),
            )
        except urllib3.exceptions.HTTPError:
            handler.send_error(502)
            return
        try:
            handler.send_response(upstream.status)
            for name, value in upstream.headers.items():
                if name.lower() not in HOP_BY_HOP:
                    handler.send_header(name, value)
            # Re-chunked as it arrives, so that a watch's events pass one by one.
            handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            for chunk in upstream.stream(CHUNK_BYTES, decode_content=False):
                if chunk:
                    handler.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    handler.wfile.flush()
            handler.wfile.write(b"0\r\n\r\n")
        except (OSError, urllib3.exceptions.HTTPError):
            handler.close_connection = True  # the client or the server went away mid-answer
        finally:
            upstream.release_conn()
