"""Where the platform goes: the target block a run loads by its environment's name.

A deployment's ``environment`` parameter names both the spec overlay and the
``platform-target`` block holding that environment's access, so a run started from the UI,
a schedule or CI carries no credentials in its parameters. The block names the region and
refers to the blocks holding access: a prefect-aws ``AwsCredentials`` (its client
parameters carry an endpoint URL for a local AWS), and optionally a prefect-kubernetes
``KubernetesClusterConfig``. Without one, the cluster's API is reached through EKS itself
(endpoint and CA from DescribeCluster, a token signed with the AWS credentials), the way
``aws eks get-token`` does it.
"""

from __future__ import annotations

from prefect.blocks.core import Block
from prefect.exceptions import ObjectNotFound
from prefect_aws import AwsCredentials
from prefect_kubernetes.credentials import KubernetesClusterConfig
from pydantic import Field

from blueprint.pace import REAL_TIME


class PlatformTarget(Block):
    """The AWS account, region and cluster access a platform run acts on."""

    _block_type_name = "Platform Target"
    _block_type_slug = "platform-target"
    _description = "Environment, region and the credentials blocks of a platform deployment."

    environment: str = Field(description="Spec environment overlay, e.g. sandbox or production")
    region: str = Field(description="AWS region the platform lives in")
    aws_credentials: AwsCredentials = Field(description="prefect-aws credentials block")
    cluster_config: KubernetesClusterConfig | None = Field(
        default=None,
        description="Kubeconfig of the cluster; empty: reach it through EKS with the AWS "
        "credentials",
    )
    chart_repository: str | None = Field(
        default=None,
        description="Chart repository override: install every chart from this helm "
        "repository URL (a mirror) instead of its upstream repository",
    )
    time_scale: float = Field(
        default=REAL_TIME,
        gt=0,
        description="Wall seconds per guide minute for polls and budgets: 60 on real AWS; a "
        "sandbox, whose control planes run faster, publishes its own",
    )


class TargetNotFound(ValueError):
    pass


async def load_target(environment: str) -> PlatformTarget:
    """The ``platform-target`` block named after ``environment``."""
    try:
        return await PlatformTarget.aload(environment)
    except (ValueError, ObjectNotFound):
        raise TargetNotFound(
            f"environment {environment!r}: no platform-target block of that name "
            "(`platformctl sandbox up` saves the sandbox's; see README, Blocks)"
        ) from None


def sandbox_target(
    environment: str, region: str, endpoints: dict[str, str], time_scale: float
) -> PlatformTarget:
    """A target from the endpoints a running sandbox publishes (its ``target.json``):
    an AWS endpoint with dummy credentials and a chart repository. The cluster is reached
    through EKS, as on AWS: its endpoint, an EKS token and an access entry (the sandbox's
    kubeconfig is for people and their kubectl)."""
    from prefect_aws.client_parameters import AwsClientParameters

    return PlatformTarget(
        environment=environment,
        region=region,
        aws_credentials=AwsCredentials(
            aws_access_key_id=endpoints["aws_access_key_id"],
            aws_secret_access_key=endpoints["aws_secret_access_key"],
            region_name=region,
            aws_client_parameters=AwsClientParameters(endpoint_url=endpoints["aws_endpoint_url"]),
        ),
        chart_repository=endpoints["chart_repository"],
        time_scale=time_scale,
    )


def aws_target(environment: str, region: str) -> PlatformTarget:
    """A target in a real AWS account, credentials from the default chain (environment,
    profile, instance role); the cluster is reached through EKS."""
    return PlatformTarget(
        environment=environment, region=region, aws_credentials=AwsCredentials(region_name=region)
    )
