"""The Kubernetes API simulator as a local HTTP server, with its simulated controllers.

One thread per connection (helm and kubectl keep several open and watches are long-lived);
``stop`` ends watches, closes every connection, joins every thread it started and stops
every pod process.
"""

from __future__ import annotations

import logging
import select
import shutil
import socket
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from sandbox.cluster import ClusterSource
from sandbox.connections import ClosableConnections
from sandbox.kube.api import KubeApi, Request, Response, default_pod_log
from sandbox.kube.auth import SANDBOX_TOKEN
from sandbox.kube.objects import uid
from sandbox.kube.peers import ConnectionOrigin
from sandbox.kube.proxy import ProxyHandler, ServiceProxies
from sandbox.kube.runtime import ProcessRuntime
from sandbox.kube.store import Store
from sandbox.kube.tls import server_tls
from sandbox.settings import SandboxSettings

log = logging.getLogger(__name__)

IDLE_CONNECTION_TIMEOUT = 300  # seconds a keep-alive connection may sit idle


class _HttpServer(ClosableConnections, ThreadingHTTPServer):
    daemon_threads = False
    block_on_close = True  # server_close() joins the connection threads
    request_queue_size = 128  # helm and kubectl open bursts of parallel connections

    def __init__(self, address: tuple[str, int], api: KubeApi, runtime: ProcessRuntime):
        self.api = api
        self.runtime = runtime
        super().__init__(address, _Handler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "kube-simulator"
    timeout = IDLE_CONNECTION_TIMEOUT
    # Headers and body go out in separate writes; with Nagle's algorithm the body would wait
    # for the client's delayed ACK (~40 ms per request).
    disable_nagle_algorithm = True
    server: _HttpServer

    def setup(self) -> None:
        super().setup()
        self.origin = ConnectionOrigin(
            self.server.runtime.roots, self.client_address[1], self.server.server_address[1]
        )

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _serve(self) -> None:
        path, query, raw_query = Request.parse_target(self.path)
        request = Request(
            method=self.command,
            path=path,
            query=query,
            headers=self.headers,
            body=self._read_body(),
            host=self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2]),
            raw_query=raw_query,
            inside_vpc_of=self.origin.cluster,
        )
        response = self.server.api.handle(request)
        if response.drop:
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        try:
            if response.stream is None:
                self._send(response)
            else:
                self._stream(response)
        except (OSError, TimeoutError):  # the client went: reset, broken pipe, TLS EOF
            self.close_connection = True

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _client_gone(self) -> bool:
        readable, _, _ = select.select([self.connection], [], [], 0)
        if not readable:
            return False
        try:
            # the TCP stream itself: an SSL socket takes no flags, and this only peeks
            return socket.socket.recv(self.connection, 1, socket.MSG_PEEK) == b""
        except OSError:
            return True

    def _stream(self, response: Response) -> None:
        assert response.stream is not None
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.wfile.flush()
        try:
            for chunk in response.stream:
                if chunk is None:
                    if self._client_gone():
                        self.close_connection = True
                        return
                    continue
                self.wfile.write(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                self.wfile.flush()
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        finally:
            response.stream.close()  # type: ignore[attr-defined]

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = _serve

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s %s", self.address_string(), format % args)


class KubeSimulator:
    """A Kubernetes API (and simulated cluster) on 127.0.0.1 for helm, kubectl and clients."""

    def __init__(
        self,
        settings: SandboxSettings,
        cluster_source: ClusterSource | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        run_controllers: bool = True,
        tls: bool = False,
        work_dir: Path | None = None,
    ):
        """``tls``: serve HTTPS with a CA of its own (``ca_data``), as EKS does.
        ``work_dir``: where pod processes get their folders (a temporary one by default)."""
        self.settings = settings
        self._tls = server_tls(host) if tls else None
        self.cluster_source = cluster_source
        self.store = Store()
        self.proxies = ServiceProxies()
        self._work_dir = work_dir
        self._own_work_dir: Path | None = None
        self.runtime = ProcessRuntime(work_dir or Path(tempfile.gettempdir()))
        self.api = KubeApi(
            self.store,
            self.proxies,
            pod_logs=self._pod_log,
            faults=settings.faults,
            latency=settings.latency,
            cluster_source=cluster_source,
        )
        self._address = (host, port)
        self._run_controllers = run_controllers
        self._httpd: _HttpServer | None = None
        self._thread: threading.Thread | None = None
        self._controllers: Any = None
        self._prometheus: Any = None

    @property
    def url(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the simulator is not running")
        host, port = self._httpd.server_address[:2]
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    @property
    def ca_data(self) -> str | None:
        """The CA of its HTTPS certificate (base64 PEM), None when serving plain HTTP."""
        return self._tls.ca_data if self._tls else None

    @property
    def prometheus(self) -> Any:
        """The Prometheus API servers (``sandbox.kube.prometheus``); None without controllers."""
        return self._prometheus

    def _pod_log(self, pod: dict, container: str) -> str:
        printed = self.runtime.log(uid(pod), container)
        return default_pod_log(pod, container) if printed is None else printed

    def start(self) -> KubeSimulator:
        """Serve (returns once the socket listens) and start the simulated controllers."""
        if self._httpd is not None:
            return self
        self.api.stopping.clear()
        self._httpd = _HttpServer(self._address, self.api, self.runtime)
        if self._tls is not None:
            # the handshake happens in each connection's thread, not in the accept loop
            self._httpd.socket = self._tls.context.wrap_socket(
                self._httpd.socket, server_side=True, do_handshake_on_connect=False
            )
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="kube-simulator",
        )
        self._thread.start()
        if self._run_controllers:
            from sandbox.kube.controllers import Controllers
            from sandbox.kube.prometheus import PrometheusServers

            kubeconfig = self.write_kubeconfig(self._pods_folder() / "kubeconfig")
            self._controllers = Controllers(
                self.store, self.settings, self.cluster_source, self.runtime, kubeconfig
            )
            self._controllers.start()
            # Prometheus resources answer their HTTP API behind the service proxy.
            self._prometheus = PrometheusServers(self.store, self.proxies).start()
        return self

    def _pods_folder(self) -> Path:
        """A fresh folder for the pod processes' folders: those of an earlier run are gone."""
        if self._work_dir is None:
            self._own_work_dir = Path(tempfile.mkdtemp(prefix="sandbox-pods-"))
            self.runtime.work_dir = self._own_work_dir
        else:
            shutil.rmtree(self._work_dir, ignore_errors=True)
            self._work_dir.mkdir(parents=True)
            self.runtime.work_dir = self._work_dir
        return self.runtime.work_dir

    def stop(self) -> None:
        """Stop the controllers, end open watches, close connections, join every thread."""
        if self._prometheus is not None:
            self._prometheus.stop()
            self._prometheus = None
        if self._controllers is not None:
            self._controllers.stop()
            self._controllers = None
        self.runtime.stop_all()
        if self._own_work_dir is not None:
            shutil.rmtree(self._own_work_dir, ignore_errors=True)
            self._own_work_dir = None
        httpd, thread = self._httpd, self._thread
        if httpd is None or thread is None:
            return
        self.api.stopping.set()
        self.store.close_watches()
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> KubeSimulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def register_service_proxy(
        self, namespace: str, service: str, handler: ProxyHandler, port: str | None = None
    ) -> None:
        """Answer ``.../services/<service>[:port]/proxy/...`` with ``handler``."""
        self.proxies.register(namespace, service, handler, port)

    def _cluster_entry(self) -> dict[str, str]:
        entry = {"server": self.url}
        if self.ca_data:
            entry["certificate-authority-data"] = self.ca_data
        return entry

    def write_kubeconfig(
        self, path: Path, cluster: str = "sandbox", context: str = "sandbox"
    ) -> Path:
        """A kubeconfig for this server (its CA when on HTTPS, the sandbox token), mode 0600."""
        user = f"{context}-user"
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": cluster, "cluster": self._cluster_entry()}],
            "users": [{"name": user, "user": {"token": SANDBOX_TOKEN}}],
            "contexts": [
                {
                    "name": context,
                    "context": {"cluster": cluster, "user": user, "namespace": "default"},
                }
            ],
            "current-context": context,
            "preferences": {},
        }
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600, exist_ok=True)
        path.chmod(0o600)  # helm warns about kubeconfigs others can read
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path
