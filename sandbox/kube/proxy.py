"""The service proxy: handlers standing in for what runs behind a Service.

``/api/v1/namespaces/<ns>/services/<name>[:port]/proxy/<path>`` reaches the handler
registered for that service (and port, if one was registered for it); without a handler
the API answers 503 ServiceUnavailable, as for a Service without ready endpoints.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ProxyRequest:
    method: str
    path: str  # the path after ".../proxy", starting with "/"
    query: str  # the raw query string, without "?"
    headers: dict[str, str]
    body: bytes
    port: str | None  # the port named in the URL, if any


@dataclass
class ProxyResponse:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)


ProxyHandler = Callable[[ProxyRequest], ProxyResponse]


def split_service_ref(ref: str) -> tuple[str, str | None]:
    """``name``, ``name:port`` or ``scheme:name:port`` as (name, port)."""
    parts = ref.split(":")
    if len(parts) == 3:
        return parts[1], parts[2] or None
    if len(parts) == 2:
        if parts[0] in ("http", "https"):
            return parts[1], None
        return parts[0], parts[1] or None
    return ref, None


class ServiceProxies:
    """Registered proxy handlers, by (namespace, service, port or None for any port)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._handlers: dict[tuple[str, str, str | None], ProxyHandler] = {}

    def register(
        self, namespace: str, service: str, handler: ProxyHandler, port: str | None = None
    ) -> None:
        with self._lock:
            self._handlers[(namespace, service, port)] = handler

    def unregister(self, namespace: str, service: str, port: str | None = None) -> None:
        with self._lock:
            self._handlers.pop((namespace, service, port), None)

    def lookup(self, namespace: str, service: str, port: str | None) -> ProxyHandler | None:
        with self._lock:
            found = self._handlers.get((namespace, service, port))
            return found or self._handlers.get((namespace, service, None))
