"""What every end-to-end module shares: a Prefect API of its own, helm for the component
tasks, the sandbox's target block and the DNS token Secret, saved where the flows load them.

Each module brings its own ``stack`` fixture (its sandbox settings differ) and its
``FLOW_TIME_SCALE`` (the pace the target block carries).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kubernetes import client, config
from prefect.blocks.system import Secret
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.testing.utilities import prefect_test_harness

from blocks.target import PlatformTarget, sandbox_target
from blueprint.loader import load_spec
from blueprint.spec import dns_token_block as token_block_of
from sandbox.stack import SandboxStack
from sandbox.tools import ensure_tools
from tasks.context import HELM_ENV
from tests.e2e import prefect_server as servers

DNS_TOKEN = "token-for-the-e2e-tests"


@pytest.fixture(scope="session")
def postgres() -> Iterator[servers.Postgres | None]:
    """A PostgreSQL cluster for the tier's Prefect servers; None when this machine has no
    PostgreSQL (tests/e2e/prefect_server.py)."""
    if servers.postgres_bin() is None:
        yield None
        return
    with servers.postgres() as cluster:
        yield cluster


@pytest.fixture(scope="session")
def prefect_server(
    postgres: servers.Postgres | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str | None]:
    """The tier's Prefect server on PostgreSQL; None without PostgreSQL, and each module
    then starts Prefect's SQLite test server."""
    if postgres is None:
        yield None
        return
    with servers.prefect_server(tmp_path_factory.mktemp("prefect-server"), postgres.url()) as url:
        yield url


@pytest.fixture(scope="module")
def prefect_api(prefect_server: str | None) -> Iterator[None]:
    if prefect_server is None:
        with prefect_test_harness():
            yield
        return
    with temporary_settings(updates={PREFECT_API_URL: prefect_server}):
        yield


@pytest.fixture(scope="module")
def helm_binary() -> Iterator[str]:
    helm = str(ensure_tools()["helm"])
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(HELM_ENV, helm)
        yield helm


@pytest.fixture(scope="module")
def target(
    request: pytest.FixtureRequest, prefect_api: None, stack: SandboxStack
) -> PlatformTarget:
    """The sandbox's target block, saved under the environment's name, at the module's pace."""
    assert stack.target is not None
    region = load_spec("sandbox").platform.region
    scale = request.module.FLOW_TIME_SCALE
    saved = sandbox_target("sandbox", region, stack.target.to_dict(), scale)
    saved.save("sandbox", overwrite=True)
    return saved


@pytest.fixture(scope="module")
def kube(stack: SandboxStack) -> Iterator[client.ApiClient]:
    """The sandbox's own view of the cluster: its kubeconfig, not a cluster's EKS endpoint."""
    assert stack.target is not None
    api = config.new_client_from_config(config_file=stack.target.kubeconfig)
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="module")
def dns_token_block(prefect_api: None) -> str:
    name = token_block_of(load_spec("sandbox"))
    Secret(value=DNS_TOKEN).save(name, overwrite=True)
    return name
