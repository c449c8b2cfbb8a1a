"""The documented path for a private-only cluster (docs/aws-account.md), end to end.

The sandbox environment with ``runner.hand_over`` on: the whole platform is built from
outside the VPC through public access for the build CIDRs alone, and ends by handing the
cluster to its in-cluster worker (public access off). A run from outside then stops at once,
naming the path. The worker, a process the sandbox's kubelet runs for the prefect-worker
pod, takes a run of the whole platform from its Kubernetes work pool and executes it in a
Job's pod: inside the VPC, as the runner's IAM role (IRSA), through an access entry.

AWS credentials come from the default chain, as on AWS: the test process has the sandbox's
keys in its environment, the flow-run pod has what EKS's pod identity webhook gives it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import FlowRun, WorkPoolStatus
from prefect.states import State
from prefect_aws import AwsCredentials

from blocks.target import PlatformTarget
from blueprint.loader import config_dir, load_spec
from blueprint.spec import RUNNER_JOB_ACCOUNT, WORKFLOWS, work_pool
from flows.platform import bootstrap_platform
from flows.revalidate import revalidate_platform
from sandbox.settings import SandboxSettings
from sandbox.stack import DUMMY_CREDENTIALS, SandboxStack
from tasks.runner import IN_CLUSTER, RUNNER_ENV

pytestmark = pytest.mark.e2e

REPOSITORY = Path(__file__).resolve().parents[2]
FLOW_TIME_SCALE = 0.2
SANDBOX_TIME_SCALE = 0.05
IN_CLUSTER_RUN_SECONDS = 300  # a whole-platform run in a Job's pod, with its start


@pytest.fixture(scope="module")
def handing_over(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The sandbox's config with ``runner.hand_over`` on, for this module's runs (and, by
    the deployment's job variables, for the pod's)."""
    folder = tmp_path_factory.mktemp("config")
    for path in config_dir().rglob("*.yaml"):
        copy = folder / path.relative_to(config_dir())
        copy.parent.mkdir(parents=True, exist_ok=True)
        copy.write_text(path.read_text())
    overlay = folder / "environments" / "sandbox.yaml"
    data = yaml.safe_load(overlay.read_text())
    data["runner"]["hand_over"] = True
    overlay.write_text(yaml.safe_dump(data))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PLATFORM_CONFIG_DIR", str(folder))
        yield folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    settings = SandboxSettings()
    settings.latency.time_scale = SANDBOX_TIME_SCALE
    settings.latency.minutes["eks_token"] = 15 * FLOW_TIME_SCALE / SANDBOX_TIME_SCALE
    with SandboxStack(tmp_path_factory.mktemp("sandbox"), settings) as running:
        yield running


@pytest.fixture(scope="module")
def target(prefect_api: None, stack: SandboxStack) -> Iterator[PlatformTarget]:
    """A target whose AWS credentials are the default chain's, as ``aws_target`` makes
    them; the test process's chain finds the sandbox's keys and endpoint."""
    assert stack.target is not None
    region = stack.target.aws_region
    saved = PlatformTarget(
        environment="sandbox",
        region=region,
        aws_credentials=AwsCredentials(region_name=region),
        chart_repository=stack.target.chart_repository,
        time_scale=FLOW_TIME_SCALE,
    )
    saved.save("sandbox", overwrite=True)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_ENDPOINT_URL", stack.target.aws_endpoint_url)
        patch.setenv("AWS_ACCESS_KEY_ID", DUMMY_CREDENTIALS["aws_access_key_id"])
        patch.setenv("AWS_SECRET_ACCESS_KEY", DUMMY_CREDENTIALS["aws_secret_access_key"])
        yield saved


def endpoint(stack: SandboxStack, spec: Any) -> dict[str, Any]:
    import boto3

    assert stack.target is not None
    eks = boto3.client(
        "eks",
        region_name=stack.target.aws_region,
        endpoint_url=stack.target.aws_endpoint_url,
        **DUMMY_CREDENTIALS,
    )
    return eks.describe_cluster(name=spec.eks.cluster_name)["cluster"]["resourcesVpcConfig"]


@pytest.fixture(scope="module")
def built(
    handing_over: Path, dns_token_block: str, helm_binary: str, target: PlatformTarget
) -> State:
    """The whole platform, built from outside through the build CIDRs."""
    return asyncio.run(bootstrap_platform(environment="sandbox", return_state=True))


async def _run_in_cluster(spec: Any, config_folder: Path) -> FlowRun:
    """A deployment of the whole platform on the in-cluster pool, run and waited for."""
    async with get_client() as prefect:
        flow_id = await prefect.create_flow_from_name("bootstrap_platform")
        deployment_id = await prefect.create_deployment(
            flow_id=flow_id,
            name="sandbox-in-cluster",
            entrypoint="flows/platform.py:bootstrap_platform",
            work_pool_name=work_pool(spec),
            parameters={"environment": "sandbox"},
            # The image's project folder, here this checkout.
            pull_steps=[
                {"prefect.deployments.steps.set_working_directory": {"directory": str(REPOSITORY)}}
            ],
            job_variables={"env": {"PLATFORM_CONFIG_DIR": str(config_folder)}},
        )
        run = await prefect.create_flow_run_from_deployment(deployment_id)
        deadline = time.monotonic() + IN_CLUSTER_RUN_SECONDS
        while time.monotonic() < deadline:
            run = await prefect.read_flow_run(run.id)
            if run.state is not None and run.state.is_final():
                return run
            await asyncio.sleep(1)
        return run


@pytest.fixture(scope="module")
def in_cluster_run(built: State, handing_over: Path) -> FlowRun:
    assert built.is_completed(), built.message
    return asyncio.run(_run_in_cluster(load_spec("sandbox"), handing_over))


# ---------------------------------------------------------------- built from outside


def test_the_build_from_outside_completes_and_hands_the_cluster_over(
    built: State, stack: SandboxStack
):
    assert built.is_completed(), built.message
    outcome = built.result()
    assert sorted(w for w in outcome if w in WORKFLOWS) == sorted(WORKFLOWS)
    spec = load_spec("sandbox")
    assert outcome["hand-over"] == [
        f"endpoint of {spec.eks.cluster_name}: public access off, handed to the in-cluster worker"
    ]
    access = endpoint(stack, spec)
    assert access["endpointPublicAccess"] is False
    assert access["endpointPrivateAccess"] is True


def test_the_in_cluster_worker_polls_its_pool(built: State, kube: client.ApiClient):
    assert built.is_completed(), built.message
    spec = load_spec("sandbox")

    async def pool() -> Any:
        async with get_client() as prefect:
            return await prefect.read_work_pool(work_pool(spec))

    found = asyncio.run(pool())
    assert found.type == "kubernetes"
    assert found.status == WorkPoolStatus.READY
    manifest = found.base_job_template["job_configuration"]["job_manifest"]
    container = manifest["spec"]["template"]["spec"]["containers"][0]
    assert {"name": RUNNER_ENV, "value": IN_CLUSTER} in container["env"]
    account = client.CoreV1Api(kube).read_namespaced_service_account(RUNNER_JOB_ACCOUNT, "prefect")
    assert account.metadata.annotations["eks.amazonaws.com/role-arn"].endswith(
        f"role/{spec.platform.name}-{spec.platform.environment}-runner"
    )


def test_a_run_from_outside_then_stops_at_once_naming_the_path(built: State, stack: SandboxStack):
    assert built.is_completed(), built.message
    spec = load_spec("sandbox")
    started = time.monotonic()
    state = asyncio.run(revalidate_platform(environment="sandbox", return_state=True))
    took = time.monotonic() - started
    assert state.is_failed()
    message = state.message or ""
    assert f"work pool {work_pool(spec)!r}" in message
    assert "docs/aws-account.md" in message
    assert took < 30, f"stopped after {took:.0f}s"  # at preflight, not at a client timeout
    assert endpoint(stack, spec)["endpointPublicAccess"] is False  # nothing reopened


# ---------------------------------------------------------------- run by the worker


def test_the_in_cluster_worker_runs_the_whole_platform_inside_the_vpc(
    in_cluster_run: FlowRun, kube: client.ApiClient, stack: SandboxStack
):
    assert in_cluster_run.state is not None
    assert in_cluster_run.state.is_completed(), (
        in_cluster_run.state.name,
        in_cluster_run.state.message,
    )
    # It ran in a Job's pod that the worker made, as the runner's service account.
    # Its only AWS credentials were IRSA's, so the cluster knew it by the runner role's
    # access entry.
    namespace, job_name = (in_cluster_run.infrastructure_pid or ":").split(":", 1)
    batch = client.BatchV1Api(kube)
    job = batch.read_namespaced_job(job_name, namespace)
    assert job.spec.template.spec.service_account_name == RUNNER_JOB_ACCOUNT
    deadline = time.monotonic() + 30  # the process exits just after reporting its state
    while not job.status.succeeded and time.monotonic() < deadline:
        time.sleep(0.5)
        job = batch.read_namespaced_job(job_name, namespace)
    assert job.status.succeeded == 1
    # Inside the VPC nothing reopens the endpoint.
    assert endpoint(stack, load_spec("sandbox"))["endpointPublicAccess"] is False
