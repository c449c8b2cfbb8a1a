"""``LocalAws``: moto behind the sandbox's middleware, served over HTTP on 127.0.0.1.

Clients need nothing but an endpoint URL (see ``client_env``). moto keeps its resources per
process, so one LocalAws runs per process at a time; each start begins with empty backends.
"""

from __future__ import annotations

import logging
import threading
import time
import urllib.request
from typing import Any

from werkzeug.serving import ThreadedWSGIServer

from sandbox.aws.cluster_source import AwsClusterSource
from sandbox.aws.eks_api import EksApi
from sandbox.aws.eks_model import EksModel
from sandbox.aws.middleware import HEALTH_PATH, AwsFrontend
from sandbox.aws.moto_app import MotoRequestHandler, create_moto_app, reset_moto
from sandbox.aws.moto_eks import MotoEks
from sandbox.connections import ClosableConnections
from sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

DEFAULT_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
START_TIMEOUT = 10.0
SHUTDOWN_POLL = 0.05  # how often the accept loop checks for stop(): stop's latency

DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # ignores *_proxy

_running_lock = threading.Lock()
_running: LocalAws | None = None


def client_env(url: str, region: str = DEFAULT_REGION) -> dict[str, str]:
    """Environment variables that point boto3 (and the AWS CLI) at a local AWS."""
    return {"AWS_ENDPOINT_URL": url, **DUMMY_CREDENTIALS, "AWS_DEFAULT_REGION": region}


class QuietRequestHandler(MotoRequestHandler):
    """moto's handler, logging through ``logging`` instead of printing every request."""

    protocol_version = "HTTP/1.1"  # what werkzeug picks for threaded servers (chunked bodies)

    def log(self, type: str, message: str, *args: Any) -> None:
        level = logging.WARNING if type == "error" else logging.DEBUG
        log.log(level, "%s " + message, self.address_string(), *args)


class LocalServer(ClosableConnections, ThreadedWSGIServer):
    """A threaded WSGI server whose connection threads all end when it is closed."""

    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads

    def __init__(self, host: str, port: int, app: Any):
        super().__init__(host, port, app, handler=QuietRequestHandler)


class LocalAws:
    def __init__(self, settings: SandboxSettings, host: str = "127.0.0.1", port: int = 0):
        self.settings = settings
        self.host = host
        self.port = port
        self._server: LocalServer | None = None
        self._thread: threading.Thread | None = None
        self._model: EksModel | None = None
        self._eks: EksApi | None = None
        self._frontend: AwsFrontend | None = None
        self._kube_url: str | None = None
        self._kube_ca_data: str | None = None

    # ---------------------------------------------------------------- lifecycle

    def start(self) -> LocalAws:
        global _running
        with _running_lock:
            if _running is not None:
                raise RuntimeError(
                    f"a LocalAws is already running at {_running.url}; moto's state is "
                    "per process, so stop it first"
                )
            _running = self
        try:
            self._start()
        except BaseException:
            self._release()
            raise
        return self

    def _start(self) -> None:
        moto_app = create_moto_app()
        reset_moto(moto_app)
        self._model = EksModel(self.settings, MotoEks(moto_app))
        self._eks = EksApi(self._model, moto_app)
        self._eks.kube_url = self._kube_url
        self._eks.kube_ca_data = self._kube_ca_data
        self._frontend = AwsFrontend(moto_app, self._eks, self.settings)
        try:
            self._server = LocalServer(self.host, self.port, self._frontend)
        except SystemExit as error:  # werkzeug exits when it cannot bind
            raise OSError(f"local AWS cannot listen on {self.host}:{self.port}") from error
        self.port = self._server.server_port
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": SHUTDOWN_POLL},
            name=f"local-aws-{self.port}",
            daemon=True,
        )
        self._thread.start()
        self._wait_healthy()
        log.info("local AWS listening on %s", self.url)

    def _wait_healthy(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            try:
                with DIRECT.open(self.url + HEALTH_PATH, timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                if time.monotonic() > deadline:
                    self.stop()
                    raise
            time.sleep(0.02)

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.close_connections()
            server.server_close()
        if thread is not None:
            thread.join()
        self._release()

    def _release(self) -> None:
        global _running
        with _running_lock:
            if _running is self:
                _running = None

    def __enter__(self) -> LocalAws:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ---------------------------------------------------------------- clients

    @property
    def url(self) -> str:
        if self._server is None:
            raise RuntimeError("LocalAws is not running")
        return f"http://{self.host}:{self.port}"

    def env(self, region: str = DEFAULT_REGION) -> dict[str, str]:
        return client_env(self.url, region)

    @property
    def kube_url(self) -> str | None:
        """The Kubernetes API DescribeCluster reports as every cluster's endpoint."""
        return self._kube_url

    @kube_url.setter
    def kube_url(self, url: str | None) -> None:
        self._kube_url = url
        if self._eks is not None:
            self._eks.kube_url = url

    @property
    def kube_ca_data(self) -> str | None:
        """Base64 PEM CA DescribeCluster reports (default: a placeholder certificate)."""
        return self._kube_ca_data

    @kube_ca_data.setter
    def kube_ca_data(self, data: str | None) -> None:
        self._kube_ca_data = data
        if self._eks is not None:
            self._eks.kube_ca_data = data

    def cluster_source(self) -> AwsClusterSource:
        if self._model is None:
            raise RuntimeError("start LocalAws before asking for its cluster source")
        return AwsClusterSource(self._model, self.url)

    def calls(self) -> dict[str, int]:
        """Calls per ``service:Operation`` since start (faulted ones included)."""
        return self._frontend.calls() if self._frontend else {}
