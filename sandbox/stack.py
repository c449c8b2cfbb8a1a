"""The whole sandbox in one process: local AWS, Kubernetes simulator, charts, control.

``SandboxStack`` is used in-process by tests and by ``python -m sandbox`` (what
``platformctl sandbox up`` starts in the background). It writes what the product reads
(the target: AWS endpoint and dummy credentials, kubeconfig, chart repository URL) into
its state folder.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sandbox.aws.server import LocalAws
from sandbox.charts.build import build_repository
from sandbox.charts.server import ChartRepository
from sandbox.control_api import ControlServer
from sandbox.kube.server import KubeSimulator
from sandbox.settings import SandboxSettings

# Dummy credentials: the local AWS accepts any; real-looking names keep boto3 happy.
SANDBOX_REGION = "us-east-1"
DUMMY_CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}
TARGET_FILE = "target.json"
TARGET_ENV_FILE = "target.env"
KUBECONFIG_FILE = "kubeconfig"
PODS_FOLDER = "pods"  # a folder per pod that runs as a process: its cwd, logs, token


@dataclass
class Target:
    """Where the product finds the sandbox: nothing but endpoints and files."""

    aws_endpoint_url: str
    aws_region: str
    kubeconfig: str
    chart_repository: str
    control_url: str

    def to_dict(self) -> dict[str, Any]:
        return {**self.__dict__, **DUMMY_CREDENTIALS}

    def environment(self) -> dict[str, str]:
        return {
            "AWS_ENDPOINT_URL": self.aws_endpoint_url,
            "AWS_DEFAULT_REGION": self.aws_region,
            "AWS_ACCESS_KEY_ID": DUMMY_CREDENTIALS["aws_access_key_id"],
            "AWS_SECRET_ACCESS_KEY": DUMMY_CREDENTIALS["aws_secret_access_key"],
            "KUBECONFIG": self.kubeconfig,
            "PLATFORM_CHART_REPOSITORY": self.chart_repository,
        }


class SandboxStack:
    def __init__(self, state_dir: Path, settings: SandboxSettings | None = None):
        self.state_dir = state_dir
        self.settings = settings or SandboxSettings()
        self.aws: LocalAws | None = None
        self.kube: KubeSimulator | None = None
        self.charts: ChartRepository | None = None
        self.control: ControlServer | None = None
        self.target: Target | None = None
        self.startup_seconds: dict[str, float] = {}

    def start(self) -> Target:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._timed("aws", self._start_aws)
            self._timed("kube", self._start_kube)
            self._timed("charts", self._start_charts)
            self._timed("control", self._start_control)
        except BaseException:
            self.stop()
            raise
        assert self.aws and self.kube and self.charts and self.control
        self.aws.kube_url = self.kube.url
        self.aws.kube_ca_data = self.kube.ca_data
        kubeconfig = self.kube.write_kubeconfig(self.state_dir / KUBECONFIG_FILE)
        self.target = Target(
            aws_endpoint_url=self.aws.url,
            aws_region=SANDBOX_REGION,
            kubeconfig=str(kubeconfig.resolve()),
            chart_repository=self.charts.url,
            control_url=self.control.url,
        )
        self._write_target(self.target)
        return self.target

    def _timed(self, name: str, start) -> None:
        began = time.monotonic()
        start()
        self.startup_seconds[name] = round(time.monotonic() - began, 3)

    def _start_aws(self) -> None:
        self.aws = LocalAws(self.settings)
        self.aws.start()

    def _start_kube(self) -> None:
        assert self.aws
        self.kube = KubeSimulator(
            self.settings,
            self.aws.cluster_source(),
            tls=True,
            work_dir=self.state_dir / PODS_FOLDER,
        )
        self.kube.start()

    def _start_charts(self) -> None:
        directory = build_repository(self.state_dir / "charts")
        self.charts = ChartRepository(directory)
        self.charts.start()

    def _start_control(self) -> None:
        self.control = ControlServer(self.settings)
        self.control.start()

    def _write_target(self, target: Target) -> None:
        (self.state_dir / TARGET_FILE).write_text(json.dumps(target.to_dict(), indent=2) + "\n")
        lines = [f"export {k}={v}" for k, v in target.environment().items()]
        (self.state_dir / TARGET_ENV_FILE).write_text("\n".join(lines) + "\n")

    def stop(self) -> None:
        """Stop in reverse order; every server joins its threads and closes its socket."""
        for server in (self.control, self.charts, self.kube, self.aws):
            if server is not None:
                server.stop()
        self.control = self.charts = self.kube = self.aws = None

    def __enter__(self) -> SandboxStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def read_target(state_dir: Path) -> Target:
    data = json.loads((state_dir / TARGET_FILE).read_text())
    for key in DUMMY_CREDENTIALS:
        data.pop(key, None)
    return Target(**data)
