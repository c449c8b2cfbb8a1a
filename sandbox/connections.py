"""Servers whose open connections can be cut, so ``stop()`` never waits on an idle client."""

from __future__ import annotations

import contextlib
import socket
import threading
from typing import Any


class ClosableConnections:
    """Mixin for a ``socketserver`` server: tracks live connections; ``close_connections``
    shuts them down, which unblocks connection threads waiting in a read (idle keep-alives,
    half-sent requests) so joining them on close does not hang."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        super().__init__(*args, **kwargs)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)  # type: ignore[misc]

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)  # type: ignore[misc]

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):  # already closed by the client
                connection.shutdown(socket.SHUT_RDWR)
