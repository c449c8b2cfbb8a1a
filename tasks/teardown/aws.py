"""The S3 buckets and the AWS foundation, removed in reverse order by the existing
``delete_*`` functions, and what the cluster's controllers left in AWS: EBS volumes, load
balancers, their target groups and security groups, interfaces and endpoints in the VPC."""

from __future__ import annotations

from prefect import task

from tasks.aws.addons import delete_addons
from tasks.aws.eks import delete_cluster
from tasks.aws.iam import delete_roles, oidc_issuers
from tasks.aws.loadbalancers import (
    cluster_load_balancers,
    delete_load_balancer,
    delete_target_groups,
)
from tasks.aws.nodegroups import delete_node_groups
from tasks.aws.s3 import delete_bucket
from tasks.aws.volumes import delete_volumes
from tasks.aws.vpc import delete_network
from tasks.context import RunContext
from tasks.retries import CONVERGE
from tasks.teardown.cluster import wait_gone


@task(name="s3-bucket", task_run_name="bucket-{part}", **CONVERGE)
def delete_platform_bucket(ctx: RunContext, part: str) -> list[str]:
    """Empty (every version) and delete one of the platform's buckets."""
    return delete_bucket(ctx.spec, ctx.aws, part)


@task(name="eks-addons", task_run_name="eks-addons", **CONVERGE)
def delete_platform_addons(ctx: RunContext) -> list[str]:
    return delete_addons(ctx.spec, ctx.aws, ctx.pace)


@task(name="node-groups", task_run_name="node-groups", **CONVERGE)
def delete_platform_node_groups(ctx: RunContext) -> list[str]:
    """The node groups, then their launch templates."""
    return delete_node_groups(ctx.spec, ctx.aws, ctx.pace)


@task(name="ebs-volumes", task_run_name="ebs-volumes", **CONVERGE)
def delete_platform_volumes(ctx: RunContext) -> list[str]:
    """EBS volumes the CSI driver made for claims that outlived their namespace (or the
    cluster), found by the tags the platform's StorageClass gave them."""
    return delete_volumes(ctx.spec, ctx.aws, ctx.pace)


@task(name="eks-cluster", task_run_name="eks-cluster", **CONVERGE)
def delete_platform_cluster(ctx: RunContext) -> list[str]:
    """The control plane, then its log group."""
    return delete_cluster(ctx.spec, ctx.aws, ctx.pace)


@task(name="iam", task_run_name="iam", **CONVERGE)
def delete_platform_iam(ctx: RunContext) -> list[str]:
    """Every role of the platform and its OIDC providers (found by tag: the cluster that
    named them is gone by now)."""
    issuers = oidc_issuers(ctx.spec, ctx.aws)
    done = delete_roles(ctx.spec, ctx.aws, issuers[0] if issuers else None)
    for issuer in issuers[1:]:
        done += delete_roles(ctx.spec, ctx.aws, issuer)
    return done


@task(name="network", task_run_name="network", **CONVERGE)
def delete_platform_network(ctx: RunContext) -> list[str]:
    """Load balancers still tagged for the cluster first (a controller out of reach may
    have recreated one; with the cluster gone, nothing will again), their target groups,
    then the network with what they left in it."""
    cluster = ctx.spec.eks.cluster_name
    left = cluster_load_balancers(ctx.aws, cluster)
    deleted = [b.describe() for b in left if delete_load_balancer(ctx.aws, b)]
    if left:
        wait_gone(ctx, left, "load balancers deleted")
    deleted += delete_target_groups(ctx.aws, cluster)
    return deleted + delete_network(ctx.spec, ctx.aws, ctx.pace)


# Reverse order of creation. Until the node groups are gone, Mimir and Loki still write to
# their buckets, and the volumes the EBS CSI driver made are still attached.
WHILE_NODES_RUN = (delete_platform_addons, delete_platform_node_groups)
# The volumes and the cluster before the roles it assumes and the network it lives in.
AFTER_NODES = (
    delete_platform_volumes,
    delete_platform_cluster,
    delete_platform_iam,
    delete_platform_network,
)
