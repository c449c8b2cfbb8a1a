"""``teardown_platform`` run for real with Prefect on an in-process sandbox.

The whole platform is brought up (the gateway has a LoadBalancer Service, Prometheus, Loki
and the data services have volumes, Mimir and Loki have buckets). A teardown with a wrong
or missing confirmation must fail before any call. The teardown must then delete the
LoadBalancer Services and wait for their cloud load balancers before anything else,
uninstall releases dependants first, and leave nothing; a second one changes nothing. A
load balancer left without its Service, or tagged for a cluster out of reach, is deleted
directly.

The test plays the cloud's load balancer controller, which the sandbox does not simulate:
it creates a network load balancer for each LoadBalancer Service, tagged for the cluster,
and deletes it a moment after its Service is gone, as the controller would.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from kubernetes import client, config, watch
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    ArtifactFilterKey,
    FlowRunFilter,
    FlowRunFilterId,
)
from prefect.client.schemas.objects import TaskRun
from prefect.states import State

from blocks.target import PlatformTarget
from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from blueprint.plan import resolve_needs
from blueprint.spec import WORKFLOWS, bucket_name
from flows.platform import bootstrap_platform
from flows.teardown import teardown_platform
from sandbox.aws.moto_app import ACCOUNT_ID
from sandbox.settings import SandboxSettings
from sandbox.stack import SandboxStack
from tasks.aws.account import check_account
from tasks.aws.clients import aws_clients
from tasks.aws.iam import role_names
from tasks.aws.identity import PART_TAG, Identity, tag_dict
from tasks.aws.inventory import aws_inventory
from tasks.aws.loadbalancers import CONTROLLER_CLUSTER_TAG
from tasks.aws.permissions import (
    UnknownOperation,
    actions_of,
    grants_of,
    iam_policy,
    policy_actions,
)
from tasks.aws.s3 import ensure_bucket
from tasks.aws.volumes import volume_tags
from tasks.helm import MANAGED_BY
from tasks.runner import IN_CLUSTER, RUNNER_ENV
from tests.e2e.prefect_queries import task_run_messages

pytestmark = pytest.mark.e2e

SPEC = load_spec("sandbox")
CATALOGUE = load_catalogue()
NEEDS = resolve_needs(SPEC, CATALOGUE)
RELEASES = {
    c.chart.release: c.name for c in CATALOGUE.components if c.kind == "helm-release" and c.chart
}
CLUSTER = SPEC.eks.cluster_name
FLOW_TIME_SCALE = 0.05  # polls of 0.05 s; budgets keep their 30 s floor
CONTROLLER_DELAY = 1.0  # how long the played controller takes to delete a load balancer
READ_ONLY = ("Describe", "List", "Get", "Head")
MANAGED = ",".join(f"{k}={v}" for k, v in MANAGED_BY.items())
STEPS = [
    "load-balancer-services",
    "cloud-load-balancers",
    "helm-releases",
    "namespaces",
    "cluster-objects",
    "eks-addons",
    "node-groups",
    "ebs-volumes",
    "eks-cluster",
    "iam",
    "network",
    "bucket-mimir",
    "bucket-loki",
]
IN_CLUSTER_STEPS = ("load-balancer-services", "helm-releases", "namespaces", "cluster-objects")


class AwsCalls:
    """A ``before-call`` hook recording when the flow's AWS clients call what."""

    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    def __call__(self, model: Any, **_: Any) -> None:
        self.calls.append((time.monotonic(), f"{model.service_model.service_name}:{model.name}"))

    def take(self) -> list[tuple[float, str]]:
        taken, self.calls = self.calls, []
        return taken


def mutating(calls: list[tuple[float, str]]) -> list[str]:
    return [op for _, op in calls if not op.split(":", 1)[1].startswith(READ_ONLY)]


def first_call(calls: list[tuple[float, str]], operation: str) -> float:
    return next(at for at, op in calls if op == operation)


class Deletions:
    """Watches one kind across namespaces and records its DELETED events in the order the
    API server made them, each with when it arrived; ``on_deleted`` runs for each key (in
    the watcher's thread)."""

    def __init__(
        self,
        list_all: Callable[..., Any],
        key: Callable[[Any], str | None],
        on_deleted: Callable[[str], None] | None = None,
        **selector: str,
    ):
        self._list, self._key, self._selector = list_all, key, selector
        self._on_deleted = on_deleted
        self.order: list[str] = []
        self.gone: dict[str, float] = {}
        self.errors: list[Exception] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._version = list_all(**selector).metadata.resource_version

    def _run(self) -> None:
        stream = watch.Watch()
        while not self._stop.is_set():  # each stream ends after a second: check the flag
            try:
                for event in stream.stream(
                    self._list, resource_version=self._version, timeout_seconds=1, **self._selector
                ):
                    self._seen(event)
            except Exception as exc:  # resumed from the last version seen; kept for the report
                self.errors.append(exc)

    def _seen(self, event: dict[str, Any]) -> None:
        self._version = event["object"].metadata.resource_version
        key = self._key(event["object"])
        if event["type"] == "DELETED" and key is not None and key not in self.gone:
            self.gone[key] = time.monotonic()
            self.order.append(key)
            if self._on_deleted is not None:
                self._on_deleted(key)

    def __enter__(self) -> Deletions:
        self._thread.start()
        return self

    def __exit__(self, *_: Any) -> None:
        self._stop.set()
        self._thread.join()


@dataclass
class Teardown:
    state: State
    calls: list[tuple[float, str]]
    services_gone: dict[str, float]
    releases_gone: Deletions
    balancers_gone: dict[str, float]

    @property
    def result(self) -> dict[str, Any]:
        return self.state.result()

    def deleted(self, step: str) -> list[str]:
        return next(s["deleted"] for s in self.result["steps"] if s["step"] == step)


# ---------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SandboxStack]:
    with SandboxStack(tmp_path_factory.mktemp("sandbox"), SandboxSettings()) as running:
        yield running


@pytest.fixture(scope="module")
def core(stack: SandboxStack) -> Iterator[client.CoreV1Api]:
    assert stack.target is not None
    api = config.new_client_from_config(config_file=stack.target.kubeconfig)
    try:
        yield client.CoreV1Api(api)
    finally:
        api.close()


@pytest.fixture(scope="module")
def cloud(stack: SandboxStack) -> Callable[[str], Any]:
    """boto3 clients of the test's own, outside the flow's (its hook does not see them)."""
    assert stack.target is not None
    endpoints = stack.target.to_dict()

    def make(service: str) -> Any:
        return boto3.client(
            service,
            endpoint_url=endpoints["aws_endpoint_url"],
            region_name=SPEC.platform.region,
            aws_access_key_id=endpoints["aws_access_key_id"],
            aws_secret_access_key=endpoints["aws_secret_access_key"],
        )

    return make


@pytest.fixture(scope="module")
def aws_calls(target: PlatformTarget) -> AwsCalls:
    calls = AwsCalls()
    aws_clients(target.aws_credentials, target.region).register("before-call", calls)
    return calls


@pytest.fixture(scope="module")
def every_call(target: PlatformTarget) -> AwsCalls:
    """Every operation the product calls in this module, from the account check on: the
    run, its convergence, the teardowns, the inventories (never taken, kept whole)."""
    calls = AwsCalls()
    aws = aws_clients(target.aws_credentials, target.region)
    aws.register("before-call", calls)
    check_account(SPEC, aws)  # what `platformctl plan --check-account` does first
    return calls


def helm_list(helm: str, stack: SandboxStack) -> dict[str, dict[str, Any]]:
    assert stack.target is not None
    out = subprocess.run(
        [helm, "list", "-A", "-a", "-o", "json", "--kubeconfig", stack.target.kubeconfig],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert out.returncode == 0, out.stderr
    return {row["name"]: row for row in json.loads(out.stdout)}


def inventory(target: PlatformTarget) -> list[dict[str, str]]:
    return aws_inventory(SPEC, aws_clients(target.aws_credentials, target.region))


def load_balancer_services(core: client.CoreV1Api) -> set[str]:
    return {key for s in core.list_service_for_all_namespaces().items if (key := service_key(s))}


def service_key(service: Any) -> str | None:
    """``<namespace>/<name>`` of a LoadBalancer Service, None for other Services."""
    if service.spec.type != "LoadBalancer":
        return None
    return f"{service.metadata.namespace}/{service.metadata.name}"


def release_of(secret: Any) -> str | None:
    """The release a helm release record (a Secret) belongs to."""
    return (secret.metadata.labels or {}).get("name")


def teardown(confirm: str = "sandbox") -> State:
    return asyncio.run(teardown_platform(environment="sandbox", confirm=confirm, return_state=True))


@pytest.fixture(scope="module")
def platform(
    dns_token_block: str,
    helm_binary: str,
    stack: SandboxStack,
    target: PlatformTarget,
    every_call: AwsCalls,
) -> None:
    """The whole platform, up."""
    state = asyncio.run(
        bootstrap_platform(environment="sandbox", workflows=list(WORKFLOWS), return_state=True)
    )
    assert state.is_completed(), state.message
    assert sorted(helm_list(helm_binary, stack)) == sorted(RELEASES)


@pytest.fixture(scope="module")
def converged(
    platform: None,
    cloud: Callable[[str], Any],
    target: PlatformTarget,
    every_call: AwsCalls,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """Drift of each kind a run puts back, made behind the platform's back, then put back
    by a run of the foundation and of the buckets, so that the product's repair calls are
    among those recorded. The Mimir bucket is left holding object versions, as Mimir would,
    for the teardown to empty."""
    ec2, iam, eks, s3 = (cloud(s) for s in ("ec2", "iam", "eks", "s3"))
    me = Identity.of(SPEC)
    (vpc,) = ec2.describe_vpcs(Filters=me.filters("vpc"))["Vpcs"]
    tables = {
        tag_dict(t["Tags"])[PART_TAG]: t
        for t in ec2.describe_route_tables(Filters=me.filters("vpc"))["RouteTables"]
    }
    public, private = tables["public"], tables["private"]
    gateway = next(
        r["GatewayId"] for r in public["Routes"] if r.get("GatewayId", "").startswith("igw-")
    )
    # the private default route to the internet gateway instead of the NAT
    ec2.replace_route(
        RouteTableId=private["RouteTableId"], DestinationCidrBlock="0.0.0.0/0", GatewayId=gateway
    )
    # a private subnet moved to a route table that is not the platform's
    stranger = ec2.create_route_table(VpcId=vpc["VpcId"])["RouteTable"]["RouteTableId"]
    moved = next(a for a in private["Associations"] if a.get("SubnetId"))
    ec2.replace_route_table_association(
        AssociationId=moved["RouteTableAssociationId"], RouteTableId=stranger
    )
    # the S3 endpoint taken off the public route table
    (endpoint,) = ec2.describe_vpc_endpoints(Filters=me.filters("vpc"))["VpcEndpoints"]
    ec2.modify_vpc_endpoint(
        VpcEndpointId=endpoint["VpcEndpointId"], RemoveRouteTableIds=[public["RouteTableId"]]
    )
    # the node role trusting a service it should not
    lambdas = {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}}
    trust = {"Version": "2012-10-17", "Statement": [{**lambdas, "Action": "sts:AssumeRole"}]}
    iam.update_assume_role_policy(
        RoleName=role_names(SPEC)["node"], PolicyDocument=json.dumps(trust)
    )
    # the cluster's logging cut down, a node group scaled off the spec, a launch template
    # version made by hand, the EBS CSI add-on given another role
    eks.update_cluster_config(
        name=CLUSTER, logging={"clusterLogging": [{"types": ["api"], "enabled": True}]}
    )
    group = next(iter(SPEC.node_groups))
    eks.update_nodegroup_config(
        clusterName=CLUSTER,
        nodegroupName=group,
        scalingConfig={"minSize": 1, "maxSize": 5, "desiredSize": 1},
    )
    ec2.create_launch_template_version(
        LaunchTemplateName=f"{me.prefix}-{group}",
        SourceVersion="$Latest",
        VersionDescription="made by hand",
        LaunchTemplateData={},
    )
    node_role = iam.get_role(RoleName=role_names(SPEC)["node"])["Role"]["Arn"]
    eks.update_addon(
        clusterName=CLUSTER, addonName="aws-ebs-csi-driver", serviceAccountRoleArn=node_role
    )
    # an admin principal of the spec without its entry, and an entry of the platform's
    # whose principal has left the spec
    admin, gone = (
        iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust))["Role"]["Arn"]
        for name in ("ci-runner", "former-operator")
    )
    eks.create_access_entry(clusterName=CLUSTER, principalArn=gone, tags=me.tags("eks"))
    spec_file = tmp_path_factory.mktemp("converged") / "admins.yaml"
    spec_file.write_text(json.dumps({"eks": {"admin_principals": [admin]}}))
    # the Mimir bucket versioned, without its component tag, holding objects
    bucket = bucket_name(SPEC, "mimir", ACCOUNT_ID)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_tagging(
        Bucket=bucket,
        Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in me.owner_tags().items()]},
    )
    for body in (b"one", b"two"):
        s3.put_object(Bucket=bucket, Key="blocks/meta.json", Body=body)

    state = asyncio.run(
        bootstrap_platform(
            environment="sandbox",
            workflows=["foundation"],
            spec_file=str(spec_file),
            return_state=True,
        )
    )
    entries = eks.list_access_entries(clusterName=CLUSTER)["accessEntries"]
    assert admin in entries and gone not in entries
    changes = ensure_bucket(SPEC, aws_clients(target.aws_credentials, target.region), "mimir")
    ec2.delete_route_table(RouteTableId=stranger)  # empty again: the run moved the subnet back
    assert state.is_completed(), state.message
    assert changes.changes == ["tags", "versioning suspended"]


@pytest.fixture(scope="module")
def refused(
    converged: None,
    aws_calls: AwsCalls,
    target: PlatformTarget,
    helm_binary: str,
    stack: SandboxStack,
) -> tuple[list[State], list[tuple[float, str]], bool]:
    """Teardowns whose confirmation names another environment or is missing, and one run
    inside the cluster it would delete, while all is up."""
    before = (inventory(target), helm_list(helm_binary, stack))
    aws_calls.take()
    states = [
        teardown(confirm="production"),
        asyncio.run(teardown_platform(environment="sandbox", return_state=True)),
    ]
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(RUNNER_ENV, IN_CLUSTER)
        states.append(teardown())
    calls = aws_calls.take()
    unchanged = (inventory(target), helm_list(helm_binary, stack)) == before
    return states, calls, unchanged


def balancer_name(service: str) -> str:
    return f"k8s-{service.replace('/', '-')}"[:32]


@pytest.fixture(scope="module")
def first(
    refused: Any, aws_calls: AwsCalls, core: client.CoreV1Api, cloud: Callable[[str], Any]
) -> Teardown:
    """The teardown, with a load balancer per LoadBalancer Service that the played
    controller deletes ``CONTROLLER_DELAY`` after its Service is gone."""
    ec2, elbv2 = cloud("ec2"), cloud("elbv2")
    (vpc,) = ec2.describe_vpcs(Filters=Identity.of(SPEC).filters("vpc"))["Vpcs"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc["VpcId"]]}])
    balancers: dict[str, str] = {}
    for service in sorted(load_balancer_services(core)):
        balancers[service] = elbv2.create_load_balancer(
            Name=balancer_name(service),
            Subnets=[s["SubnetId"] for s in subnets["Subnets"]],
            Type="network",
            Tags=[
                {"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"},
                {"Key": "kubernetes.io/service-name", "Value": service},
            ],
        )["LoadBalancers"][0]["LoadBalancerArn"]
    assert balancers, "the ingress workflow made no LoadBalancer Service"
    balancers_gone: dict[str, float] = {}
    # What a controller out of reach leaves: a volume made for a claim, a target group, an
    # interface detached from a load balancer.
    zone = subnets["Subnets"][0]["AvailabilityZone"]
    ec2.create_volume(
        Size=1,
        AvailabilityZone=zone,
        TagSpecifications=[
            {
                "ResourceType": "volume",
                "Tags": [{"Key": k, "Value": v} for k, v in volume_tags(SPEC).items()],
            }
        ],
    )
    elbv2.create_target_group(
        Name="k8s-left-behind",
        Protocol="TCP",
        Port=80,
        VpcId=vpc["VpcId"],
        Tags=[{"Key": CONTROLLER_CLUSTER_TAG, "Value": CLUSTER}],
    )
    ec2.create_network_interface(SubnetId=subnets["Subnets"][0]["SubnetId"])

    def controller(service: str) -> None:
        if service in balancers:
            time.sleep(CONTROLLER_DELAY)
            elbv2.delete_load_balancer(LoadBalancerArn=balancers[service])
            balancers_gone[service] = time.monotonic()

    aws_calls.take()
    with (
        Deletions(core.list_service_for_all_namespaces, service_key, controller) as services,
        Deletions(
            core.list_secret_for_all_namespaces, release_of, label_selector="owner=helm"
        ) as releases,
    ):
        state = teardown()
    return Teardown(state, aws_calls.take(), services.gone, releases, balancers_gone)


@pytest.fixture(scope="module")
def second(first: Teardown, aws_calls: AwsCalls) -> tuple[State, list[tuple[float, str]]]:
    assert first.state.is_completed(), first.state.message
    aws_calls.take()
    state = teardown()
    return state, aws_calls.take()


# ------------------------------------------------------------------ wrong confirmation


def test_a_wrong_confirmation_or_a_run_inside_fails_before_any_call(refused: Any):
    (wrong, missing, inside), calls, unchanged = refused
    assert wrong.is_failed() and missing.is_failed() and inside.is_failed()
    assert "executes inside the cluster it would delete" in inside.message, inside.message
    assert "confirm: type the environment's name 'sandbox'" in wrong.message, wrong.message
    assert "(got 'production'); nothing was touched" in wrong.message
    assert "(got nothing); nothing was touched" in missing.message, missing.message
    assert calls == []  # not even a read
    assert unchanged


# ------------------------------------------------------------------------ the teardown


def test_teardown_completes_and_leaves_nothing(
    first: Teardown, target: PlatformTarget, helm_binary: str, stack: SandboxStack, core
):
    assert first.state.is_completed(), first.state.message
    assert [s["step"] for s in first.result["steps"]] == STEPS
    assert inventory(target) == []
    assert helm_list(helm_binary, stack) == {}
    assert core.list_namespace(label_selector=MANAGED).items == []
    # The cluster went with EKS: nothing in it is left to look at.
    assert first.result["checked"] == [
        "AWS resources tagged for the platform",
        "load balancers and target groups tagged for its cluster",
    ]
    assert sorted(first.deleted("helm-releases")) == sorted(
        f"release {CATALOGUE.component(c).namespace_in(SPEC)}/{r}" for r, c in RELEASES.items()
    )
    for part in ("mimir", "loki"):
        assert first.deleted(f"bucket-{part}") == [f"bucket {bucket_name(SPEC, part, ACCOUNT_ID)}"]
    assert f"cluster {CLUSTER}" in first.deleted("eks-cluster")
    assert any(item.startswith("vpc ") for item in first.deleted("network"))
    # what controllers out of reach left: found by tag and deleted
    assert len(first.deleted("ebs-volumes")) == 1, first.result["steps"]
    assert "target group k8s-left-behind" in first.deleted("network")


def test_load_balancers_go_before_the_releases_and_the_vpc(first: Teardown):
    services = first.deleted("load-balancer-services")
    assert services and sorted(services) == sorted(f"Service {s}" for s in first.services_gone)
    # the cloud load balancers were left to their controller, and waited for
    assert sorted(first.deleted("cloud-load-balancers")) == sorted(
        f"load balancer {balancer_name(s)} (Service {s}), by its controller"
        for s in first.services_gone
    )
    assert "elbv2:DeleteLoadBalancer" not in mutating(first.calls)
    assert sorted(first.balancers_gone) == sorted(first.services_gone)
    lb_gone = max(first.balancers_gone.values())
    assert lb_gone < min(first.releases_gone.gone.values())
    assert max(first.services_gone.values()) < first_call(first.calls, "ec2:DeleteVpc")
    assert lb_gone < first_call(first.calls, "ec2:DeleteVpc")


def test_buckets_go_once_the_node_groups_are_gone(first: Teardown):
    """Mimir and Loki write to their buckets until their nodes are gone."""
    last_node_group_call = max(
        at for at, op in first.calls if op.startswith("eks:") and "Nodegroup" in op
    )
    assert last_node_group_call < first_call(first.calls, "s3:DeleteBucket")
    assert last_node_group_call < min(
        at for at, op in first.calls if op in ("s3:DeleteObjects", "s3:ListObjectVersions")
    )


def test_releases_go_dependants_first(first: Teardown):
    order = first.releases_gone.order
    assert sorted(order) == sorted(RELEASES), first.releases_gone.errors
    component_release = {c: r for r, c in RELEASES.items()}

    def needs_of(name: str) -> set[str]:
        found, stack = set(), list(NEEDS[name])
        while stack:
            need = stack.pop()
            if need not in found:
                found.add(need)
                stack.extend(NEEDS[need])
        return found

    pairs = [
        (release, component_release[need])
        for release, component in RELEASES.items()
        for need in needs_of(component)
        if need in component_release
    ]
    assert ("grafana", "prometheus") in pairs and ("ambassador", "cert-manager") in pairs
    for dependant, need in pairs:
        assert order.index(dependant) < order.index(need), f"{need} went before {dependant}"


def recorded_task_runs(flow_run_id: Any) -> list[TaskRun]:
    async def read() -> list[TaskRun]:
        async with get_client() as prefect:
            return await prefect.read_task_runs(
                flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
            )

    deadline = time.monotonic() + 15
    while True:
        runs = asyncio.run(read())
        if all(r.state and r.state.is_final() for r in runs) or time.monotonic() > deadline:
            return runs
        time.sleep(0.2)


def test_each_step_is_a_task_and_independent_releases_go_together(first: Teardown):
    runs = recorded_task_runs(first.state.state_details.flow_run_id)
    names = {r.name for r in runs}
    assert {f"uninstall-{r}" for r in RELEASES} <= names
    assert {"cluster-access", "load-balancer-services", "nothing-left", "network"} <= names
    uninstalls = [r for r in runs if r.name.startswith("uninstall-")]
    overlapping = [
        (a.name, b.name)
        for a in uninstalls
        for b in uninstalls
        if a.name < b.name and a.start_time < b.end_time and b.start_time < a.end_time
    ]
    assert overlapping, "no two uninstalls ran at the same time"


def test_artifact_lists_what_was_deleted(first: Teardown):
    async def read() -> list[Any]:
        async with get_client() as prefect:
            return await prefect.read_artifacts(
                artifact_filter=ArtifactFilter(
                    key=ArtifactFilterKey(any_=["teardown-sandbox"]),
                    flow_run_id=ArtifactFilterFlowRunId(
                        any_=[first.state.state_details.flow_run_id]
                    ),
                )
            )

    (artifact,) = asyncio.run(read())
    markdown = artifact.data
    assert "# Teardown of `sandbox`" in markdown
    for item in first.deleted("load-balancer-services") + first.deleted("network"):
        assert item in markdown
    assert "token-for-the-teardown-test" not in markdown


# ----------------------------------------------------------------------- the second run


def test_a_second_teardown_completes_and_changes_nothing(second: Any):
    state, calls = second
    assert state.is_completed(), state.message
    result = state.result()
    assert result["deleted"] == 0
    # EKS has no cluster now, so the steps inside one are not taken.
    assert result["cluster"].startswith("out of reach")
    assert {s["step"]: s["deleted"] for s in result["steps"]} == {
        s: [] for s in STEPS if s not in IN_CLUSTER_STEPS
    }
    assert mutating(calls) == []
    assert "ec2:DescribeVpcs" in {op for _, op in calls}


def test_a_load_balancer_without_its_service_is_deleted_directly(
    second: Any, aws_calls: AwsCalls, cloud: Callable[[str], Any]
):
    ec2, elb = cloud("ec2"), cloud("elb")
    vpc = ec2.create_vpc(CidrBlock="10.99.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.99.1.0/24")["Subnet"]["SubnetId"]
    elb.create_load_balancer(
        LoadBalancerName="orphaned-by-a-service",
        Listeners=[{"Protocol": "TCP", "LoadBalancerPort": 80, "InstancePort": 30080}],
        Subnets=[subnet],
        Tags=[{"Key": f"kubernetes.io/cluster/{CLUSTER}", "Value": "owned"}],
    )
    aws_calls.take()
    state = teardown()
    calls = aws_calls.take()

    assert state.is_completed(), state.message
    steps = {s["step"]: s["deleted"] for s in state.result()["steps"]}
    assert steps["cloud-load-balancers"] == ["load balancer orphaned-by-a-service"]
    assert mutating(calls) == ["elb:DeleteLoadBalancer"]
    assert elb.describe_load_balancers()["LoadBalancerDescriptions"] == []


@pytest.fixture
def cluster_out_of_reach(target: PlatformTarget, cloud: Callable[[str], Any]) -> None:
    """The target reaches the cluster through EKS, and EKS has no cluster of that name."""
    assert target.cluster_config is None
    assert CLUSTER not in cloud("eks").list_clusters()["clusters"]


def test_with_the_cluster_out_of_reach_its_load_balancers_are_deleted_directly(
    second: Any, cluster_out_of_reach: None, aws_calls: AwsCalls, cloud: Callable[[str], Any]
):
    ec2, elbv2 = cloud("ec2"), cloud("elbv2")
    vpc = ec2.create_vpc(CidrBlock="10.98.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.98.1.0/24")["Subnet"]["SubnetId"]
    elbv2.create_load_balancer(
        Name="k8s-ingress-gateway",
        Subnets=[subnet],
        Type="network",
        Tags=[
            {"Key": "elbv2.k8s.aws/cluster", "Value": CLUSTER},
            {"Key": "service.k8s.aws/stack", "Value": "ingress/gateway"},
        ],
    )
    aws_calls.take()
    state = teardown()
    calls = aws_calls.take()

    assert state.is_completed(), state.message
    result = state.result()
    assert result["cluster"].startswith("out of reach: "), result["cluster"]
    steps = {s["step"]: s["deleted"] for s in result["steps"]}
    assert list(steps) == [s for s in STEPS if s not in IN_CLUSTER_STEPS]
    assert steps["cloud-load-balancers"] == [
        "load balancer k8s-ingress-gateway (Service ingress/gateway)"
    ]
    assert mutating(calls) == ["elbv2:DeleteLoadBalancer"]
    assert elbv2.describe_load_balancers()["LoadBalancers"] == []
    assert "namespaces and helm releases in the cluster" not in result["checked"]


# ------------------------------------------------------ same names, someone else's


@pytest.fixture
def strangers(second: Any, cloud: Callable[[str], Any]) -> Iterator[dict[str, str]]:
    """A role, a bucket and a cluster with the platform's names, made by someone else in
    the account (without the platform's tags)."""
    ec2, iam, s3, eks = (cloud(s) for s in ("ec2", "iam", "s3", "eks"))
    vpc = ec2.create_vpc(CidrBlock="10.97.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.97.1.0/24")["Subnet"]["SubnetId"]
    role = f"{Identity.of(SPEC).prefix}-eks-node"
    bucket = bucket_name(SPEC, "mimir", ACCOUNT_ID)
    trust = '{"Version": "2012-10-17", "Statement": []}'
    arn = iam.create_role(RoleName=role, AssumeRolePolicyDocument=trust)["Role"]["Arn"]
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="theirs", Body=b"data")
    eks.create_cluster(name=CLUSTER, roleArn=arn, resourcesVpcConfig={"subnetIds": [subnet]})
    yield {"role": role, "bucket": bucket, "cluster": CLUSTER}
    with contextlib.suppress(eks.exceptions.ResourceNotFoundException):  # the test's job
        eks.delete_cluster(name=CLUSTER)
    s3.delete_object(Bucket=bucket, Key="theirs")
    s3.delete_bucket(Bucket=bucket)
    iam.delete_role(RoleName=role)


def test_what_has_the_platforms_names_but_not_its_tags_stops_up_and_teardown_untouched(
    strangers: dict[str, str], aws_calls: AwsCalls, cloud: Callable[[str], Any]
):
    iam, s3 = cloud("iam"), cloud("s3")
    aws_calls.take()
    with_cluster = teardown()
    cloud("eks").delete_cluster(name=strangers["cluster"])  # its owner deletes it
    without_cluster = teardown()
    up = asyncio.run(
        bootstrap_platform(environment="sandbox", workflows=["foundation"], return_state=True)
    )
    calls = aws_calls.take()

    # The teardown stops at the foreign cluster before reaching into it.
    assert with_cluster.is_failed()
    assert f"EKS cluster {CLUSTER} exists, not ours" in with_cluster.message
    # Without it, the teardown names the role and the bucket it left alone.
    assert without_cluster.is_failed()
    for kind in (f"IAM role {strangers['role']}", f"S3 bucket {strangers['bucket']}"):
        assert f"{kind} exists, not ours" in without_cluster.message, without_cluster.message
    # A run of the platform stops at the role instead of taking it over.
    assert up.is_failed()
    messages = asyncio.run(task_run_messages(str(up.state_details.flow_run_id)))
    assert f"IAM role {strangers['role']} exists, not ours" in messages["iam"], messages
    assert [op for op in mutating(calls) if op.startswith("s3:")] == []
    assert (
        iam.get_role(RoleName=strangers["role"])["Role"]["AssumeRolePolicyDocument"]["Statement"]
        == []
    )
    assert iam.list_attached_role_policies(RoleName=strangers["role"])["AttachedPolicies"] == []
    assert s3.get_object(Bucket=strangers["bucket"], Key="theirs")["Body"].read() == b"data"


# ------------------------------------------------------- the runner's IAM policy


def test_the_iam_policy_allows_exactly_what_the_product_called(every_call: AwsCalls):
    """The module's last test: every AWS operation the product called here (the account
    check, the whole platform, the teardowns, a load balancer left without its Service and
    one out of the cluster's reach, the names of someone else's) is in the permission
    table, the policy allows what each needs, and names nothing that was never called.
    An action that fails the last check is named: trim the table, or make a test call it."""
    called = sorted({op for _, op in every_call.calls})
    unknown = []
    for operation in called:
        try:
            grants_of(operation)
        except UnknownOperation:
            unknown.append(operation)
    assert unknown == [], f"called but not in tasks/aws/permissions.py: {unknown}"
    policy = iam_policy(SPEC, ACCOUNT_ID)
    allowed = policy_actions(policy)
    needed = actions_of(called)
    missing, never_called = sorted(needed - allowed), sorted(allowed - needed)
    assert missing == [], f"called but not allowed by the policy: {missing}"
    assert never_called == [], f"in the policy but never called here: {never_called}"
