"""moto's server as a WSGI application, configured the way the sandbox needs it.

moto reads some settings from the environment when it is imported, so this module sets
them before it imports moto (import moto through here): AWS-managed IAM policies exist, so
their ARNs can be attached; ACM certificates are ISSUED at once instead of after 60 s; and
every request is in moto's default account, which spares moto a search of all IAM backends
(and loading the managed policies of every partition) to map the access key to an account.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.test import EnvironBuilder, run_wsgi_app

ACCOUNT_ID = "123456789012"  # moto's default account: every request acts in it
MOTO_ENVIRONMENT = {
    "MOTO_IAM_LOAD_MANAGED_POLICIES": "true",
    "MOTO_ACM_VALIDATION_WAIT": "0",
    "MOTO_ACCOUNT_ID": "123456789012",
}
os.environ.update(MOTO_ENVIRONMENT)

from moto import settings  # noqa: E402
from moto.moto_server.werkzeug_app import (  # noqa: E402
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)

__all__ = ["MotoRequestHandler", "WsgiApp", "create_moto_app", "reset_moto"]

log = logging.getLogger(__name__)

WsgiApp = Callable[[dict[str, Any], Callable], Iterable[bytes]]


def create_moto_app() -> WsgiApp:
    if settings.ACM_VALIDATION_WAIT != 0:
        log.warning(
            "moto was imported before the sandbox set MOTO_ACM_VALIDATION_WAIT=0: "
            "ACM certificates stay PENDING_VALIDATION for %s s",
            settings.ACM_VALIDATION_WAIT,
        )
    return DomainDispatcherApplication(create_backend_app)


def reset_moto(app: WsgiApp) -> None:
    """Empties every moto backend (moto keeps its resources per process)."""
    environ = EnvironBuilder(path="/moto-api/reset", method="POST").get_environ()
    chunks, status, _ = run_wsgi_app(app, environ, buffered=True)
    if not status.startswith("200"):
        raise RuntimeError(f"moto reset failed: {status} {b''.join(chunks)[:200]!r}")


def forward(app: WsgiApp, environ: dict[str, Any], start_response: Callable) -> tuple[Any, bool]:
    """Pass a request to moto; also whether moto answered it with success (2xx), for rules
    that complete what moto did."""
    status: list[str] = []

    def remember(code: str, headers: list, *rest: Any) -> Any:
        status.append(code)
        return start_response(code, headers, *rest)

    body = app(environ, remember)
    return body, bool(status) and status[0].startswith("2")
