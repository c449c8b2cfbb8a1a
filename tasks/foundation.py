"""Prefect tasks of the foundation workflow: one per component kind, plus its validation.

Each task converges its component (``ensure_*``) and records its progress; the flow wires
them by the catalogue's needs. Caching is off: infrastructure state lives in AWS and the
cluster, never in a task cache.
"""

from __future__ import annotations

from typing import Any

from prefect import task

from tasks.aws.addons import ensure_addon
from tasks.aws.eks import Cluster, ensure_cluster, hand_over
from tasks.aws.iam import Roles, ensure_roles
from tasks.aws.nodegroups import NodeGroups, ensure_node_groups
from tasks.aws.volumes import volume_tags
from tasks.aws.vpc import Network, ensure_network
from tasks.context import RunContext
from tasks.progress import board
from tasks.retries import CONVERGE
from tasks.storage import ensure_storage_classes
from tasks.validation import Check, foundation_checks

# Four API calls, each bounded by its request timeout.
VALIDATION_SECONDS = 300


@task(name="vpc", task_run_name="{component}", **CONVERGE)
def converge_vpc(ctx: RunContext, component: str = "vpc") -> Network:
    with board.track(component, "foundation"):
        return ensure_network(ctx.spec, ctx.aws)


@task(name="iam", task_run_name="{component}", **CONVERGE)
def converge_iam(ctx: RunContext, component: str = "iam") -> Roles:
    with board.track(component, "foundation"):
        return ensure_roles(ctx.spec, ctx.aws)


@task(name="eks-cluster", task_run_name="{component}", **CONVERGE)
def converge_eks(
    ctx: RunContext, network: Network, roles: Roles, component: str = "eks"
) -> Cluster:
    with board.track(component, "foundation"):
        return ensure_cluster(ctx.spec, ctx.aws, network, roles, ctx.pace)


@task(name="node-groups", task_run_name="{component}", **CONVERGE)
def converge_node_groups(
    ctx: RunContext,
    network: Network,
    roles: Roles,
    cluster: Cluster,
    component: str = "node-groups",
) -> NodeGroups:
    with board.track(component, "foundation"):
        return ensure_node_groups(ctx.spec, ctx.aws, network, roles.node_role_arn, ctx.pace)


@task(name="eks-addon", task_run_name="{component}", **CONVERGE)
def converge_addon(ctx: RunContext, addon: str, cluster: Cluster, component: str) -> dict[str, Any]:
    with board.track(component, "foundation"):
        result = ensure_addon(
            ctx.spec, ctx.aws, addon, cluster.version, cluster.service_account_roles, ctx.pace
        )
        return result.__dict__


@task(name="storage-class", task_run_name="{component}", **CONVERGE)
def converge_storage_class(ctx: RunContext, component: str = "storage-class") -> list[str]:
    with board.track(component, "foundation"):
        return ensure_storage_classes(
            ctx.kube(), ctx.spec.storage_class, ctx.pace, volume_tags(ctx.spec)
        )


@task(name="hand-over", task_run_name="hand-over", **CONVERGE)
def hand_over_to_runner(ctx: RunContext) -> list[str]:
    """The whole platform is up, built from outside: public access off, so that from now
    on the in-cluster worker, inside the VPC, is the one runner that reaches the API."""
    return hand_over(ctx.spec, ctx.aws, ctx.pace)


@task(
    name="validate foundation",
    task_run_name="validate-foundation",
    cache_policy=CONVERGE["cache_policy"],
    timeout_seconds=VALIDATION_SECONDS,
)
def validate_foundation(ctx: RunContext) -> list[dict[str, Any]]:
    checks: list[Check] = foundation_checks(
        ctx.kube(), ctx.aws, ctx.spec.eks.cluster_name, ctx.spec.validation
    )
    return [c.as_dict() for c in checks]
