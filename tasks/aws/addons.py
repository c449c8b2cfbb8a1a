"""EKS managed add-ons: created at the version matching the cluster, waited for ACTIVE.

Ordering lives in the catalogue (vpc-cni and kube-proxy need the cluster; coredns and
ebs-csi need Ready nodes). The add-on API may lag the cluster becoming ACTIVE by minutes,
so creation retries while EKS answers "not ready yet" instead of failing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from blueprint.pace import Pace
from blueprint.spec import PlatformSpec
from tasks.aws.clients import AwsClients
from tasks.aws.eks import owned_cluster
from tasks.aws.errors import AwsError, PermanentAwsError, aws_call
from tasks.aws.identity import Identity
from tasks.polling import WaitTimeout, poll_until

COMPONENT = "add-ons"
# Add-ons that run pods: DEGRADED without Ready nodes, for up to 20 min in the field.
ACTIVE_BUDGET_SECONDS = 20 * 60
LAG_BUDGET_SECONDS = 10 * 60  # how long the add-on API may lag the cluster
IRSA_ROLES = {"aws-ebs-csi-driver": "ebs-csi"}


@dataclass
class AddOn:
    name: str
    version: str
    status: str
    health: list[str] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)


def describe_addon(aws: AwsClients, cluster: str, name: str) -> dict[str, Any] | None:
    try:
        with aws_call("eks:DescribeAddon"):
            return aws("eks").describe_addon(clusterName=cluster, addonName=name)["addon"]
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return None
        raise


def default_version(aws: AwsClients, name: str, kubernetes_version: str) -> str:
    """The add-on version EKS marks default for the cluster's Kubernetes version."""
    with aws_call("eks:DescribeAddonVersions"):
        found = aws("eks").describe_addon_versions(
            addonName=name, kubernetesVersion=kubernetes_version
        )["addons"]
    versions = [v for a in found if a["addonName"] == name for v in a["addonVersions"]]
    if not versions:
        raise PermanentAwsError(
            "eks:DescribeAddonVersions",
            "NoAddonVersion",
            f"no {name} version for Kubernetes {kubernetes_version}",
        )
    for v in versions:
        if any(c.get("defaultVersion") for c in v.get("compatibilities", [])):
            return v["addonVersion"]
    return versions[0]["addonVersion"]


def version_key(version: str) -> tuple[int, ...]:
    """``v1.19.2-eksbuild.1`` -> (1, 19, 2, 1): add-on versions in their order."""
    return tuple(int(n) for n in re.findall(r"\d+", version))


def _health(addon: dict[str, Any]) -> list[str]:
    return [
        f"{i.get('code')}: {i.get('message')}" for i in addon.get("health", {}).get("issues", [])
    ]


def ensure_addon(
    spec: PlatformSpec,
    aws: AwsClients,
    name: str,
    kubernetes_version: str,
    service_account_roles: dict[str, str],
    pace: Pace,
) -> AddOn:
    """Create or update one add-on and wait until it is ACTIVE."""
    cluster = spec.eks.cluster_name
    settings = spec.addons.items[name]
    eks = aws("eks")
    changes: list[str] = []
    version = settings.version or default_version(aws, name, kubernetes_version)
    role = (
        service_account_roles.get(IRSA_ROLES.get(name, ""))
        if settings.service_account_role
        else None
    )
    current = describe_addon(aws, cluster, name)
    if current is not None and version_key(version) < version_key(current["addonVersion"]):
        # EKS does not downgrade add-ons: a newer one (updated by hand, or a default that
        # moved back) is kept and said, never a failed run.
        changes.append(f"add-on {name} runs {current['addonVersion']}, newer than {version}: kept")
        version = current["addonVersion"]
    if current is None:
        request: dict[str, Any] = {
            "clusterName": cluster,
            "addonName": name,
            "addonVersion": version,
            "resolveConflicts": "OVERWRITE",
            "tags": Identity.of(spec).tags(COMPONENT, name),
        }
        if role:
            request["serviceAccountRoleArn"] = role
        _create_through_lag(aws, request, pace)
        changes.append(f"created add-on {name} {version}")
    elif current["addonVersion"] != version or (
        role and current.get("serviceAccountRoleArn") != role
    ):
        update: dict[str, Any] = {"addonVersion": version, "resolveConflicts": "OVERWRITE"}
        if role:
            update["serviceAccountRoleArn"] = role
        with aws_call("eks:UpdateAddon"):
            eks.update_addon(clusterName=cluster, addonName=name, **update)
        changes.append(f"updated add-on {name} to {version}")
    addon = _wait_active(aws, cluster, name, pace)
    return AddOn(name, addon["addonVersion"], addon["status"], _health(addon), changes)


def _create_through_lag(aws: AwsClients, request: dict[str, Any], pace: Pace) -> None:
    deadline = time.monotonic() + pace.budget(LAG_BUDGET_SECONDS)
    while True:
        try:
            with aws_call("eks:CreateAddon"):
                aws("eks").create_addon(**request)
            return
        except AwsError as exc:
            if exc.code == "ResourceInUseException" and "already exists" in exc.aws_message:
                return  # an earlier attempt was created though its answer was lost
            if not exc.transient or time.monotonic() >= deadline:
                raise
        time.sleep(pace.poll(15))


def _wait_active(aws: AwsClients, cluster: str, name: str, pace: Pace) -> dict[str, Any]:
    last: dict[str, Any] = {}

    def active() -> dict[str, Any] | None:
        nonlocal last
        last = describe_addon(aws, cluster, name) or {"status": "MISSING"}
        if last["status"] in ("CREATE_FAILED", "UPDATE_FAILED", "MISSING"):
            raise PermanentAwsError(
                f"eks add-on {name}", last["status"], "; ".join(_health(last)) or "no detail"
            )
        return last if last["status"] == "ACTIVE" else None

    try:
        return poll_until(
            active, pace.budget(ACTIVE_BUDGET_SECONDS), pace.poll(15), f"add-on {name} ACTIVE"
        )
    except WaitTimeout:
        raise PermanentAwsError(
            f"eks add-on {name}",
            last.get("status", "UNKNOWN"),
            f"not ACTIVE within its budget; health: {'; '.join(_health(last)) or 'none'}",
        ) from None


def delete_addons(spec: PlatformSpec, aws: AwsClients, pace: Pace) -> list[str]:
    cluster, eks = spec.eks.cluster_name, aws("eks")
    if owned_cluster(spec, aws) is None:
        return []
    try:
        with aws_call("eks:ListAddons"):
            names = eks.list_addons(clusterName=cluster)["addons"]
    except AwsError as exc:
        if exc.code == "ResourceNotFoundException":
            return []
        raise
    for name in names:
        with aws_call("eks:DeleteAddon"):
            eks.delete_addon(clusterName=cluster, addonName=name)
    for name in names:
        poll_until(
            lambda n=name: True if describe_addon(aws, cluster, n) is None else None,
            pace.budget(10 * 60),
            pace.poll(10),
            f"add-on {name} deleted",
        )
    return [f"add-on {n}" for n in names]
