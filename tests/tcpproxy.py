"""A TCP forwarder on 127.0.0.1 that can stall: the network between one client and a server.

`stall()` stops forwarding bytes in both directions without closing anything, as a
partition would: the client's requests and the server's answers wait in the middle.
`resume()` ends the stall the way a long partition usually ends, with the connections
that lived through it broken (what they held is dropped) and new connections
forwarded again.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from types import TracebackType
from typing import Self

__all__ = ["TcpProxy"]

CHUNK_BYTES = 65536


class TcpProxy:
    """Forwards connections to 127.0.0.1:`port` on to `target`, each in two threads."""

    def __init__(self, target: tuple[str, int]) -> None:
        self._target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._connections: list[socket.socket] = []

    def start(self) -> Self:
        threading.Thread(target=self._accept, name="tcp-proxy", daemon=True).start()
        return self

    def stall(self) -> None:
        """Hold every byte, of open and of new connections, until `resume()`."""
        self._flowing.clear()

    def resume(self) -> None:
        """Break the connections that lived through the stall; forward new ones again."""
        self._cut_all()
        self._flowing.set()

    def close(self) -> None:
        self._listener.close()
        self.resume()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            # Registered at once, so that a resume() from now on breaks it.
            with self._lock:
                self._connections.append(client)
            try:
                server = socket.create_connection(self._target)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections.append(server)
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                data = source.recv(CHUNK_BYTES)
                # A stall holds what was read, and the end of the stream, here.
                self._flowing.wait()
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass  # cut by resume() or by the other side
        finally:
            self._cut(source, sink)

    def _cut_all(self) -> None:
        with self._lock:
            connections, self._connections = self._connections, []
        self._cut(*connections)

    def _cut(self, *connections: socket.socket) -> None:
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the other pump
                connection.shutdown(socket.SHUT_RDWR)  # wakes a pump blocked in recv()
            connection.close()
