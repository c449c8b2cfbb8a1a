"""The sandbox's own control endpoint: read and change faults and latency while it runs,
and a stand-in for a chat webhook (Slack, Teams) that records the notifications it gets."""

from __future__ import annotations

import json
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from sandbox.settings import DEFAULT_MINUTES, Fault, SandboxSettings, SettingsError


class ControlServer:
    """``GET /status``, ``GET|POST|DELETE /faults``, ``PUT /latency`` and
    ``GET|POST /notifications`` on 127.0.0.1."""

    def __init__(self, settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0):
        self.settings = settings
        self.notifications: list[Any] = []
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sandbox-control", daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        settings, notifications = self.settings, self.notifications

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the sandbox log for errors
                pass

            def _send(self, code: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _body(self) -> Any:
                length = int(self.headers.get("Content-Length") or 0)
                return json.loads(self.rfile.read(length) or b"{}")

            def _faults(self) -> list[dict[str, Any]]:
                return settings.to_dict()["faults"]

            def do_GET(self) -> None:
                path = urlparse(self.path).path
                if path == "/status":
                    self._send(200, {**settings.to_dict(), "fired": dict(settings.faults.fired)})
                elif path == "/faults":
                    self._send(200, self._faults())
                elif path == "/notifications":
                    self._send(200, list(notifications))
                else:
                    self._send(404, {"error": f"no route {path}"})

            def do_POST(self) -> None:
                path = urlparse(self.path).path
                if path == "/notifications":
                    try:
                        notifications.append(self._body())
                    except ValueError as exc:
                        self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                        return
                    self._send(201, {"received": len(notifications)})
                    return
                if path != "/faults":
                    self._send(404, {"error": "no route"})
                    return
                try:
                    body = self._body()
                    settings.faults.add(Fault(**body))
                except (SettingsError, TypeError, ValueError) as exc:
                    self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                    return
                self._send(201, self._faults())

            def do_DELETE(self) -> None:
                url = urlparse(self.path)
                if url.path != "/faults":
                    self._send(404, {"error": "no route"})
                    return
                name = parse_qs(url.query).get("name", [None])[0]
                settings.faults.clear(name)
                self._send(200, self._faults())

            def do_PUT(self) -> None:
                if urlparse(self.path).path != "/latency":
                    self._send(404, {"error": "no route"})
                    return
                try:
                    body = self._body()
                    scale = float(body.get("time_scale", settings.latency.time_scale))
                    minutes = body.get("latency_minutes") or {}
                    unknown = set(minutes) - set(DEFAULT_MINUTES)
                    if scale < 0 or unknown:
                        raise SettingsError(f"bad time_scale {scale} or keys {sorted(unknown)}")
                except (SettingsError, TypeError, ValueError) as exc:
                    self._send(HTTPStatus.BAD_REQUEST, {"error": str(exc)})
                    return
                # The servers hold this same Latency object, so the change is live.
                settings.latency.time_scale = scale
                settings.latency.minutes.update({k: float(v) for k, v in minutes.items()})
                self._send(200, settings.to_dict())

        return Handler
