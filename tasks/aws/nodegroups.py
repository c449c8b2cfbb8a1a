"""Managed node groups from the spec, each with a launch template whose node bootstrap
applies the guide's kubelet reservations (1Gi/100m reserved, eviction at 100Mi, static
CPU manager, CFS quota)."""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import yaml

from blueprint.instance_types import INSTANCE_TYPES
from blueprint.pace import Pace
from blueprint.spec import NodeGroup, NodeReservations, PlatformSpec
from tasks.aws.clients import AwsClients
from tasks.aws.errors import AwsError, PermanentAwsError, aws_call, create_or_adopt
from tasks.aws.identity import COMPONENT_TAG, Identity
from tasks.aws.updates import wait_update
from tasks.aws.vpc import Network

COMPONENT = "node-groups"
CREATE_BUDGET_SECONDS = 20 * 60  # field reports: 1.5 to 10 min
MIME_BOUNDARY = "PLATFORMNODECONFIG"
AMI_TYPES = {"x86_64": "AL2023_x86_64_STANDARD", "arm64": "AL2023_ARM_64_STANDARD"}


def node_config(node: NodeReservations) -> dict[str, Any]:
    """The nodeadm NodeConfig fragment EKS merges into its own on AL2023 nodes."""
    return {
        "apiVersion": "node.eks.aws/v1alpha1",
        "kind": "NodeConfig",
        "spec": {
            "kubelet": {
                "config": {
                    "kubeReserved": {"cpu": node.cpu_reserved, "memory": node.memory_reserved},
                    "evictionHard": {"memory.available": node.eviction_memory_available},
                    "cpuManagerPolicy": node.cpu_manager_policy,
                    "cpuCFSQuota": node.cpu_cfs_quota,
                }
            }
        },
    }


def user_data(node: NodeReservations) -> str:
    """Launch template user data (base64 MIME multi-part, as EKS requires)."""
    body = yaml.safe_dump(node_config(node), sort_keys=True)
    mime = (
        "MIME-Version: 1.0\n"
        f'Content-Type: multipart/mixed; boundary="{MIME_BOUNDARY}"\n\n'
        f"--{MIME_BOUNDARY}\n"
        "Content-Type: application/node.eks.aws\n\n"
        f"---\n{body}\n"
        f"--{MIME_BOUNDARY}--\n"
    )
    return base64.b64encode(mime.encode()).decode()


def _template_data(spec: PlatformSpec, name: str, group: NodeGroup) -> dict[str, Any]:
    me = Identity.of(spec)
    return {
        "UserData": user_data(spec.resource_allocation.node),
        "BlockDeviceMappings": [
            {
                "DeviceName": "/dev/xvda",
                "Ebs": {"VolumeSize": group.disk_size_gib, "VolumeType": "gp3", "Encrypted": True},
            }
        ],
        # IMDSv2 only, with a hop limit that lets pods on the node reach it.
        "MetadataOptions": {"HttpTokens": "required", "HttpPutResponseHopLimit": 2},
        "TagSpecifications": [
            {"ResourceType": "instance", "Tags": me.tag_list(COMPONENT, name)},
        ],
    }


@dataclass
class NodeGroups:
    groups: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> summary
    changes: list[str] = field(default_factory=list)


class _NodeGroups:
    def __init__(self, spec: PlatformSpec, aws: AwsClients, pace: Pace):
        self.spec, self.aws, self.pace = spec, aws, pace
        self.eks, self.ec2 = aws("eks"), aws("ec2")
        self.me = Identity.of(spec)
        self.cluster = spec.eks.cluster_name
        self.changes: list[str] = []

    def launch_template(self, name: str, group: NodeGroup) -> tuple[str, str]:
        template_name = f"{self.me.prefix}-{name}"
        data = _template_data(self.spec, name, group)
        # EC2 echoes template data back in its own shape; a digest of what we asked for,
        # kept as the version's description, is what tells whether it changed.
        digest = (
            "spec-" + hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:16]
        )
        try:
            with aws_call("ec2:DescribeLaunchTemplates"):
                found = self.ec2.describe_launch_templates(LaunchTemplateNames=[template_name])[
                    "LaunchTemplates"
                ][0]
        except AwsError as exc:
            if "NotFound" not in exc.code and "NotFoundException" not in exc.code:
                raise
            created = create_or_adopt(
                "ec2:CreateLaunchTemplate",
                lambda: self.ec2.create_launch_template(
                    LaunchTemplateName=template_name,
                    VersionDescription=digest,
                    LaunchTemplateData=data,
                    TagSpecifications=[
                        {
                            "ResourceType": "launch-template",
                            "Tags": self.me.tag_list(COMPONENT, name),
                        }
                    ],
                )["LaunchTemplate"],
                "InvalidLaunchTemplateName.AlreadyExistsException",
            )
            if created is None:  # made meanwhile: converge it as found
                return self.launch_template(name, group)
            self.changes.append(f"created launch template {template_name}")
            return created["LaunchTemplateId"], str(created["LatestVersionNumber"])
        template_id = found["LaunchTemplateId"]
        with aws_call("ec2:DescribeLaunchTemplateVersions"):
            latest = self.ec2.describe_launch_template_versions(
                LaunchTemplateId=template_id, Versions=["$Latest"]
            )["LaunchTemplateVersions"][0]
        if latest.get("VersionDescription") != digest:
            with aws_call("ec2:CreateLaunchTemplateVersion"):
                version = self.ec2.create_launch_template_version(
                    LaunchTemplateId=template_id, VersionDescription=digest, LaunchTemplateData=data
                )["LaunchTemplateVersion"]["VersionNumber"]
            self.changes.append(f"launch template {template_name} version {version}")
            return template_id, str(version)
        return template_id, str(latest["VersionNumber"])

    def describe(self, name: str) -> dict[str, Any] | None:
        try:
            with aws_call("eks:DescribeNodegroup"):
                return self.eks.describe_nodegroup(clusterName=self.cluster, nodegroupName=name)[
                    "nodegroup"
                ]
        except AwsError as exc:
            if exc.code == "ResourceNotFoundException":
                return None
            raise

    def ensure(self, name: str, group: NodeGroup, network: Network, node_role: str) -> None:
        """Create or update the group; returns without waiting (``wait_active`` waits)."""
        template_id, version = self.launch_template(name, group)
        scaling = {
            "minSize": group.min_size,
            "maxSize": group.max_size,
            "desiredSize": group.desired_size,
        }
        arch = INSTANCE_TYPES[group.instance_types[0]].arch
        current = self.describe(name)
        if current is None:
            created = create_or_adopt(
                "eks:CreateNodegroup",
                lambda: self.eks.create_nodegroup(
                    clusterName=self.cluster,
                    nodegroupName=name,
                    scalingConfig=scaling,
                    subnets=list(network.private_subnets.values()),
                    instanceTypes=list(group.instance_types),
                    amiType=AMI_TYPES[arch],
                    nodeRole=node_role,
                    labels=dict(group.labels),
                    capacityType=group.capacity_type,
                    launchTemplate={"id": template_id, "version": version},
                    updateConfig={"maxUnavailable": 1},
                    tags=self.me.tags(COMPONENT, name),
                ),
                "ResourceInUseException",  # made by an earlier attempt or a killed run
            )
            if created is not None:
                self.changes.append(f"created node group {name}")
                return
            current = self.describe(name)
        if current is not None:
            self._reconcile(name, group, current, scaling, template_id, version)

    def wait_active(self, name: str) -> dict:
        with aws_call("eks:DescribeNodegroup (wait ACTIVE)"):
            self.eks.get_waiter("nodegroup_active").wait(
                clusterName=self.cluster,
                nodegroupName=name,
                WaiterConfig=self.pace.waiter_config(30, CREATE_BUDGET_SECONDS),
            )
        final = self.describe(name) or {}
        return {
            "status": final.get("status"),
            "instance_types": final.get("instanceTypes"),
            "capacity_type": final.get("capacityType"),
            "scaling": final.get("scalingConfig"),
        }

    def _reconcile(
        self,
        name: str,
        group: NodeGroup,
        current: dict,
        scaling: dict,
        template_id: str,
        version: str,
    ) -> None:
        immutable = {
            "instanceTypes": list(group.instance_types),
            "capacityType": group.capacity_type,
        }
        for key, wanted in immutable.items():
            if current.get(key) != wanted:
                raise PermanentAwsError(
                    f"ensure node group {name}",
                    "ImmutableField",
                    f"{key} is {current.get(key)}, the spec says {wanted}; EKS cannot change "
                    f"it in place: drain and delete node group {name}, then converge again",
                )
        update: dict[str, Any] = {}
        if current.get("scalingConfig") != scaling:
            update["scalingConfig"] = scaling
        labels = current.get("labels") or {}
        if labels != group.labels:
            update["labels"] = {
                "addOrUpdateLabels": dict(group.labels),
                "removeLabels": [k for k in labels if k not in group.labels],
            }
        if update:
            with aws_call("eks:UpdateNodegroupConfig"):
                started = self.eks.update_nodegroup_config(
                    clusterName=self.cluster, nodegroupName=name, **update
                )["update"]
            # EKS takes the next update of a node group only once this one has finished
            wait_update(self.aws, self.cluster, started, self.pace, nodegroup=name)
            self.changes.append(f"node group {name}: {', '.join(update)} back to spec")
        template = current.get("launchTemplate") or {}
        if template.get("id") == template_id and str(template.get("version")) != version:
            with aws_call("eks:UpdateNodegroupVersion"):
                self.eks.update_nodegroup_version(
                    clusterName=self.cluster,
                    nodegroupName=name,
                    launchTemplate={"id": template_id, "version": version},
                )
            self.changes.append(f"node group {name}: rolling to launch template {version}")

    def strays(self) -> list[str]:
        """Node groups this platform created that the spec no longer has."""
        with aws_call("eks:ListNodegroups"):
            names = self.eks.list_nodegroups(clusterName=self.cluster)["nodegroups"]
        strays = []
        for name in names:
            if name in self.spec.node_groups:
                continue
            group = self.describe(name) or {}
            if self.me.owns(group.get("tags")) and group.get("tags", {}).get(COMPONENT_TAG):
                strays.append(name)
        return strays


def ensure_node_groups(
    spec: PlatformSpec, aws: AwsClients, network: Network, node_role_arn: str, pace: Pace
) -> NodeGroups:
    """Converge every node group of the spec; they come up side by side."""
    converger = _NodeGroups(spec, aws, pace)
    # All are created (or updated) first, so AWS brings them up side by side; the waits
    # then run in this thread, where the task's timeout can interrupt them.
    for name, group in spec.node_groups.items():
        converger.ensure(name, group, network, node_role_arn)
    groups = {name: converger.wait_active(name) for name in spec.node_groups}
    for name in converger.strays():
        delete_node_group(spec, aws, name, pace)
        converger.changes.append(f"deleted node group {name} (not in the spec)")
    return NodeGroups(groups, converger.changes)


def delete_node_group(spec: PlatformSpec, aws: AwsClients, name: str, pace: Pace) -> None:
    eks, cluster = aws("eks"), spec.eks.cluster_name
    with aws_call("eks:DeleteNodegroup"):
        eks.delete_nodegroup(clusterName=cluster, nodegroupName=name)
    with aws_call("eks:DescribeNodegroup (wait deleted)"):
        eks.get_waiter("nodegroup_deleted").wait(
            clusterName=cluster,
            nodegroupName=name,
            WaiterConfig=pace.waiter_config(30, CREATE_BUDGET_SECONDS),
        )


def delete_node_groups(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> list[str]:
    """Delete every node group of the cluster the platform owns, then their templates."""
    converger = _NodeGroups(spec, aws, pace)
    done = []
    try:
        with aws_call("eks:ListNodegroups"):
            names = aws("eks").list_nodegroups(clusterName=spec.eks.cluster_name)["nodegroups"]
    except AwsError as exc:
        if exc.code != "ResourceNotFoundException":
            raise
        names = []
    for name in names:
        if converger.me.owns((converger.describe(name) or {}).get("tags")):
            delete_node_group(spec, aws, name, pace)
            done.append(f"node group {name}")
    ec2 = aws("ec2")
    with aws_call("ec2:DescribeLaunchTemplates"):
        templates = ec2.describe_launch_templates(Filters=converger.me.filters(COMPONENT))[
            "LaunchTemplates"
        ]
    for template in templates:
        with aws_call("ec2:DeleteLaunchTemplate"):
            ec2.delete_launch_template(LaunchTemplateId=template["LaunchTemplateId"])
        done.append(f"launch template {template['LaunchTemplateName']}")
    return done
