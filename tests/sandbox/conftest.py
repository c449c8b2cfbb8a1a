"""Fixtures shared by the sandbox tests: a live Kubernetes API simulator and clients for it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from sandbox.charts.build import build_repository
from sandbox.charts.server import ChartRepository
from sandbox.kube.server import KubeSimulator
from sandbox.settings import SandboxSettings
from tests.sandbox.foundation_sandbox import Sandbox, running_sandbox


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """A local AWS and a simulator wired as EKS wires them, one per module."""
    with running_sandbox(tmp_path_factory.mktemp("sandbox")) as running:
        yield running


@pytest.fixture(scope="module")
def kube_api() -> Iterator[KubeSimulator]:
    """The API server alone (no simulated controllers), so tests own every object's status."""
    simulator = KubeSimulator(SandboxSettings(), run_controllers=False).start()
    try:
        yield simulator
    finally:
        simulator.stop()


@pytest.fixture(scope="module")
def kubeconfig(kube_api: KubeSimulator, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return kube_api.write_kubeconfig(tmp_path_factory.mktemp("kube") / "config")


@pytest.fixture(scope="module")
def api_client(kubeconfig: Path) -> Iterator[client.ApiClient]:
    api = config.new_client_from_config(config_file=str(kubeconfig))
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def repository(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartRepository]:
    """The stand-in chart repository, served on 127.0.0.1 (one per module)."""
    repo = ChartRepository(build_repository(tmp_path_factory.mktemp("charts"))).start()
    try:
        yield repo
    finally:
        repo.stop()
