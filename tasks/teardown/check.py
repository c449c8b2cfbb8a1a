"""The last step: nothing of the platform may be left."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NONE

from blueprint.catalogue import Catalogue
from tasks.aws.inventory import aws_inventory
from tasks.aws.loadbalancers import cluster_load_balancers, cluster_target_groups
from tasks.context import RunContext, helm_binary
from tasks.helm import list_releases
from tasks.teardown.base import (
    LeftBehind,
)
from tasks.teardown.releases import managed_namespaces, platform_releases


@task(name="nothing-left", task_run_name="nothing-left", cache_policy=NONE)
async def nothing_left(ctx: RunContext, catalogue: Catalogue, cluster: bool) -> list[str]:
    """What of the platform is still there: AWS by its tags (EBS volumes and the interfaces
    in its VPC included), load balancers and target groups tagged for its cluster and, when
    the cluster still answers, its namespaces and releases. Raises ``LeftBehind`` naming
    each; returns what was checked."""
    logger = get_run_logger()
    left = [
        f"{r['type']} {r['id']}" + (f" ({r['name']})" if r["name"] else "")
        for r in aws_inventory(ctx.spec, ctx.aws)
    ]
    cluster_name = ctx.spec.eks.cluster_name
    left += [b.describe() for b in cluster_load_balancers(ctx.aws, cluster_name)]
    left += [f"target group {name}" for _, name in cluster_target_groups(ctx.aws, cluster_name)]
    checked = [
        "AWS resources tagged for the platform",
        "load balancers and target groups tagged for its cluster",
    ]
    if cluster:
        try:
            with ctx.kube() as api:
                namespaces = managed_namespaces(api)
            with ctx.kubeconfig() as kubeconfig:
                rows = await list_releases(helm_binary(), kubeconfig)
        except Exception as exc:  # the cluster went with EKS: nothing in it can be left
            logger.info("the cluster no longer answers (%s)", type(exc).__name__)
        else:
            left += [f"namespace {n}" for n in namespaces]
            left += [f"release {r.key}" for r in platform_releases(rows, ctx, catalogue, [])]
            checked.append("namespaces and helm releases in the cluster")
    if left:
        raise LeftBehind("left behind after the teardown:\n" + "\n".join(left))
    return checked
