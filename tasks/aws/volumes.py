"""EBS volumes the EBS CSI driver created for the cluster's PersistentVolumeClaims.

The platform's StorageClass has the driver tag each volume with the platform's tags and the
cluster's (``volume_tags``), so a volume is found after its claim's namespace was skipped
(the cluster out of reach) or the cluster went first: it would otherwise be billed unseen.
"""

from __future__ import annotations

from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from tasks.aws.clients import AwsClients
from tasks.aws.errors import aws_call
from tasks.aws.identity import Identity, tag_dict
from tasks.aws.loadbalancers import CLUSTER_TAG_PREFIX
from tasks.aws.patience import delete_when_free

COMPONENT = "ebs-csi"
PVC_TAGS = ("kubernetes.io/created-for/pvc/namespace", "kubernetes.io/created-for/pvc/name")


def volume_tags(spec: PlatformSpec) -> dict[str, str]:
    me = Identity.of(spec)
    return {**me.tags(COMPONENT), f"{CLUSTER_TAG_PREFIX}{me.cluster}": "owned"}


def platform_volumes(spec: PlatformSpec, aws: AwsClients) -> list[dict]:
    """Volumes with the platform's tags or owned by its cluster, each once."""
    me, ec2 = Identity.of(spec), aws("ec2")
    cluster = [{"Name": f"tag:{CLUSTER_TAG_PREFIX}{me.cluster}", "Values": ["owned"]}]
    found: dict[str, dict] = {}
    for filters in (me.filters(), cluster):
        with aws_call("ec2:DescribeVolumes"):
            for page in ec2.get_paginator("describe_volumes").paginate(Filters=filters):
                found.update({v["VolumeId"]: v for v in page["Volumes"]})
    return [found[k] for k in sorted(found)]


def describe_volume(volume: dict) -> str:
    tags = tag_dict(volume.get("Tags"))
    claim = "/".join(tags[t] for t in PVC_TAGS if t in tags)
    return f"ebs volume {volume['VolumeId']}" + (f" (claim {claim})" if claim else "")


def delete_volumes(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> list[str]:
    """Delete them; one still attached is waited for (its instance is going)."""
    ec2, done = aws("ec2"), []
    for volume in platform_volumes(spec, aws):
        ident = volume["VolumeId"]

        def attached(ident: str = ident) -> list[str]:
            with aws_call("ec2:DescribeVolumes"):
                found = ec2.describe_volumes(VolumeIds=[ident])["Volumes"]
            return [a["InstanceId"] for v in found for a in v.get("Attachments", [])]

        delete_when_free(
            pace,
            f"ec2:DeleteVolume {ident}",
            lambda i=ident: ec2.delete_volume(VolumeId=i),
            attached,
        )
        done.append(describe_volume(volume))
    return done
