"""Serves a chart repository folder (index.yaml and archives) as a classic helm repository."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any


class ChartRequestHandler(SimpleHTTPRequestHandler):
    """Static files of the repository folder; subclass it to add routes."""

    extensions_map = {
        **SimpleHTTPRequestHandler.extensions_map,
        ".tgz": "application/gzip",
        ".yaml": "application/x-yaml",
    }

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: helm's requests are not worth a log line each."""


class _Server(ThreadingHTTPServer):
    # The default backlog of 5 drops connections when clients fetch in parallel, and a
    # dropped SYN costs the client a one-second retry.
    request_queue_size = 64
    # Request threads are joined on close, so none outlives stop().
    daemon_threads = False


class ChartRepository:
    """A threaded HTTP server on ``host``; ``port=0`` picks a free port."""

    handler_class: type[ChartRequestHandler] = ChartRequestHandler

    def __init__(self, directory: Path, host: str = "127.0.0.1", port: int = 0):
        self.directory = Path(directory)
        self.host = host
        self.port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("the chart repository is not started")
        return f"http://{self.host}:{self._server.server_address[1]}"

    def start(self) -> ChartRepository:
        if self._server is not None:
            return self
        if not self.directory.is_dir():
            raise FileNotFoundError(f"chart repository folder {self.directory} does not exist")
        handler = partial(self.handler_class, directory=str(self.directory))
        server = _Server((self.host, self.port), handler)
        self._server = server
        # A short poll interval keeps stop() quick.
        self._thread = threading.Thread(
            target=server.serve_forever, args=(0.05,), name="chart-repository", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is None:
            return
        server.shutdown()
        server.server_close()
        if thread is not None:
            thread.join()

    def __enter__(self) -> ChartRepository:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
