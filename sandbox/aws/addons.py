"""EKS managed add-ons: their record, the request checks EKS makes, and their status.

moto has no add-on API; the local EKS keeps add-ons here. An add-on is CREATING (or
UPDATING) for the latency profile's "addon" time, then ACTIVE - unless it is one that runs a
Deployment (coredns, the EBS CSI controller) and its cluster has no ACTIVE node group with
nodes, or the ``addon-degraded`` fault hit it: then it is DEGRADED with a health issue.
A deleted add-on is DELETING for the same time, then gone.
"""

from __future__ import annotations

import re
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import yaml

from sandbox.aws import eks_catalog
from sandbox.aws.eks_updates import Update
from sandbox.aws.errors import AwsError
from sandbox.settings import Latency

RESOLVE_CONFLICTS = ("OVERWRITE", "NONE", "PRESERVE")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]+$")
# The parameters UpdateAddon reports, by request field.
UPDATE_PARAMS = {
    "addonVersion": "AddonVersion",
    "serviceAccountRoleArn": "ServiceAccountRoleArn",
    "resolveConflicts": "ResolveConflicts",
    "configurationValues": "ConfigurationValues",
}
REPLICAS_ISSUE = {
    "code": "InsufficientNumberOfReplicas",
    "message": "The add-on is unhealthy because it doesn't have the desired number of replicas.",
    "resourceIds": [],
}


@dataclass
class Addon:
    region: str
    cluster: str
    name: str
    version: str
    arn: str
    created: float
    changing: str = "CREATING"  # what it does until its latency has passed: CREATING | UPDATING
    changed: float = 0.0  # when the current create or update began
    deleted: float | None = None
    degraded: bool = False  # hit by the addon-degraded fault at its last create or update
    service_account_role_arn: str | None = None
    configuration_values: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    updates: dict[str, Update] = field(default_factory=dict)

    def settled(self, latency: Latency, now: float) -> bool:
        return latency.done("addon", self.changed, now)

    def gone(self, latency: Latency, now: float) -> bool:
        return self.deleted is not None and latency.done("addon", self.deleted, now)

    def status(self, latency: Latency, has_nodes: bool, now: float) -> tuple[str, list[dict]]:
        """The add-on's status and health issues at ``now``."""
        if self.deleted is not None:
            return "DELETING", []
        if not self.settled(latency, now):
            return self.changing, []
        needs_nodes = eks_catalog.ADDONS[self.name].needs_nodes
        if self.degraded or (needs_nodes and not has_nodes):
            return "DEGRADED", [dict(REPLICAS_ISSUE)]
        return "ACTIVE", []

    def to_api(self, latency: Latency, has_nodes: bool, now: float) -> dict[str, Any]:
        status, issues = self.status(latency, has_nodes, now)
        view: dict[str, Any] = {
            "addonName": self.name,
            "clusterName": self.cluster,
            "status": status,
            "addonVersion": self.version,
            "health": {"issues": issues},
            "addonArn": self.arn,
            "createdAt": self.created,
            "modifiedAt": max(self.changed, self.deleted or 0.0),
            "tags": dict(self.tags),
            "publisher": "eks",
            "owner": "aws",
        }
        if self.service_account_role_arn:
            view["serviceAccountRoleArn"] = self.service_account_role_arn
        if self.configuration_values is not None:
            view["configurationValues"] = self.configuration_values
        return view


def new_addon(region: str, cluster: dict[str, Any], request: dict[str, Any]) -> Addon:
    """An add-on for a CreateAddon request on an ACTIVE cluster, after EKS's checks."""
    name = request.get("addonName") or ""
    if name not in eks_catalog.ADDONS:
        raise invalid_parameter(f"Addon {name} specified is not supported", cluster, name)
    version = checked_version(name, request.get("addonVersion"), cluster)
    if request.get("resolveConflicts") == "PRESERVE":
        raise invalid_parameter("PRESERVE is only supported when updating an addon", cluster, name)
    check_settings(request, cluster, name)
    now = time.time()
    account_scope = cluster["arn"].rsplit(":", 1)[0]
    return Addon(
        region=region,
        cluster=cluster["name"],
        name=name,
        version=version,
        arn=f"{account_scope}:addon/{cluster['name']}/{name}/{uuid.uuid4()}",
        created=now,
        changed=now,
        service_account_role_arn=request.get("serviceAccountRoleArn"),
        configuration_values=request.get("configurationValues"),
        tags=dict(request.get("tags") or {}),
    )


def apply_update(addon: Addon, cluster: dict[str, Any], request: dict[str, Any]) -> Update:
    """Applies an UpdateAddon request to a settled add-on; it is UPDATING from now on."""
    check_settings(request, cluster, addon.name)
    if "addonVersion" in request:
        version = checked_version(addon.name, request["addonVersion"], cluster)
        if version_key(version) < version_key(addon.version):
            raise invalid_parameter(
                f"Updating addon {addon.name} from {addon.version} to {version} is not "
                "supported: an add-on cannot be downgraded",
                cluster,
                addon.name,
            )
        addon.version = version
    if "serviceAccountRoleArn" in request:
        addon.service_account_role_arn = request["serviceAccountRoleArn"] or None
    if "configurationValues" in request:
        addon.configuration_values = request["configurationValues"]
    now = time.time()
    addon.changing, addon.changed = "UPDATING", now
    params = [
        {"type": kind, "value": str(request[key])}
        for key, kind in UPDATE_PARAMS.items()
        if key in request
    ]
    update = Update(str(uuid.uuid4()), "AddonUpdate", params, now, "addon")
    addon.updates[update.id] = update
    return update


def version_key(version: str) -> tuple[int, ...]:
    """``v1.19.2-eksbuild.1`` -> (1, 19, 2, 1): add-on versions in their order."""
    return tuple(int(n) for n in re.findall(r"\d+", version))


def checked_version(name: str, version: str | None, cluster: dict[str, Any]) -> str:
    k8s = cluster.get("version") or ""
    if not version:
        default = eks_catalog.default_addon_version(name, k8s)
        if default is None:
            raise invalid_parameter(
                f"Addon {name} is not supported on Kubernetes version {k8s}", cluster, name
            )
        return default
    if version not in {v.version for v in eks_catalog.addon_versions(name, k8s)}:
        raise invalid_parameter(
            f"Addon version specified is not supported for {name} on Kubernetes {k8s}",
            cluster,
            name,
        )
    return version


def check_settings(request: dict[str, Any], cluster: dict[str, Any], name: str) -> None:
    conflicts = request.get("resolveConflicts")
    if conflicts is not None and conflicts not in RESOLVE_CONFLICTS:
        raise invalid_parameter(
            f"resolveConflicts must be one of {', '.join(RESOLVE_CONFLICTS)}", cluster, name
        )
    role = request.get("serviceAccountRoleArn")
    if role and not ROLE_ARN.match(role):
        raise invalid_parameter(f"serviceAccountRoleArn {role} is not a role ARN", cluster, name)
    values = request.get("configurationValues")
    if values:
        try:
            parsed = yaml.safe_load(values)
        except yaml.YAMLError:
            parsed = None
        if not isinstance(parsed, dict):
            raise invalid_parameter(
                "ConfigurationValue provided in request is not supported: "
                "it must be a JSON or YAML object",
                cluster,
                name,
            )


def invalid_parameter(message: str, cluster: dict[str, Any], addon: str) -> AwsError:
    return AwsError(
        400, "InvalidParameterException", message, clusterName=cluster["name"], addonName=addon
    )
