"""EKS access entries, which moto does not serve, and who the Kubernetes API lets in.

A cluster's ``accessConfig.authenticationMode`` is CONFIG_MAP unless CreateCluster names
another (the EKS API's default); access entries need API or API_AND_CONFIG_MAP, and the
mode only moves forward (CONFIG_MAP -> API_AND_CONFIG_MAP -> API). With
``bootstrapClusterCreatorAdminPermissions`` (default true) the creating principal gets an
entry with AmazonEKSClusterAdminPolicy; in CONFIG_MAP mode it is the cluster's admin
without one, as on EKS. Principals are IAM ARNs: an assumed role acts as its role.

The Kubernetes simulator asks ``grant`` on each request that carries an EKS token: a
principal without an entry is unauthenticated (401); one whose entry has no policy that
covers the request is forbidden (403).
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from moto.sts.models import sts_backends

from sandbox.aws.errors import AwsError
from sandbox.aws.moto_app import ACCOUNT_ID
from sandbox.cluster import AccessGrant, AccessPolicy

POLICY_PREFIX = "arn:aws:eks::aws:cluster-access-policy/"
POLICIES = {
    "AmazonEKSClusterAdminPolicy",
    "AmazonEKSAdminPolicy",
    "AmazonEKSEditPolicy",
    "AmazonEKSViewPolicy",
}
CREATOR = AccessPolicy("AmazonEKSClusterAdminPolicy", ())  # CONFIG_MAP's hidden admin
MODES = ("CONFIG_MAP", "API_AND_CONFIG_MAP", "API")  # the only way they may move
PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/[\w+=,.@/-]+$")
ASSUMED = re.compile(r"^arn:(?P<p>aws[a-z-]*):sts::(?P<a>\d{12}):assumed-role/(?P<r>[^/]+)/.+$")
STS_USER = re.compile(r"^arn:(?P<p>aws[a-z-]*):sts::(?P<a>\d{12}):user/(?P<u>.+)$")
ACCESS_KEY = re.compile(r"Credential=(?P<key>[^/,\s]+)/")


def principal_of(access_key: str, region: str) -> str:
    """The IAM principal an access key acts as (moto's STS answer, an assumed role as its
    role, as EKS matches access entries)."""
    _, arn, _ = sts_backends[ACCOUNT_ID]["global"].get_caller_identity(access_key, region)
    if match := ASSUMED.match(arn):
        return f"arn:{match['p']}:iam::{match['a']}:role/{match['r']}"
    if match := STS_USER.match(arn):  # moto's answer for keys it did not issue
        return f"arn:{match['p']}:iam::{match['a']}:user/{match['u']}"
    return arn


def caller(environ: dict[str, Any], region: str) -> str | None:
    """The principal that signed a request, None when it is not signed."""
    match = ACCESS_KEY.search(environ.get("HTTP_AUTHORIZATION") or "")
    return principal_of(match["key"], region) if match else None


def mode_of(access: dict[str, Any]) -> str:
    """The authentication mode an accessConfig asks for (CONFIG_MAP when it names none)."""
    mode = access.get("authenticationMode") or "CONFIG_MAP"
    if mode not in MODES:
        raise AwsError(
            400, "InvalidParameterException", f"authenticationMode {mode!r} is not one of {MODES}"
        )
    return mode


def _now() -> str:
    return datetime.now(UTC).isoformat()


@dataclass
class Entry:
    cluster: str
    principal: str
    type: str
    groups: list[str]
    username: str
    tags: dict[str, str]
    created: str = field(default_factory=_now)
    policies: dict[str, dict[str, Any]] = field(default_factory=dict)  # arn -> access scope

    def view(self, region: str) -> dict[str, Any]:
        return {
            "clusterName": self.cluster,
            "principalArn": self.principal,
            "kubernetesGroups": self.groups,
            "accessEntryArn": f"arn:aws:eks:{region}:{ACCOUNT_ID}:access-entry/{self.cluster}/"
            f"{self.principal.rsplit(':', 1)[1]}",
            "createdAt": self.created,
            "modifiedAt": self.created,
            "tags": self.tags,
            "username": self.username,
            "type": self.type,
        }


def _policy(arn: str) -> str:
    name = arn.removeprefix(POLICY_PREFIX)
    if not arn.startswith(POLICY_PREFIX) or name not in POLICIES:
        raise AwsError(404, "ResourceNotFoundException", f"The access policy {arn} was not found.")
    return name


def _scope(scope: dict[str, Any]) -> dict[str, Any]:
    kind = scope.get("type")
    namespaces = list(scope.get("namespaces") or [])
    if kind not in ("cluster", "namespace") or (kind == "namespace") != bool(namespaces):
        raise AwsError(
            400,
            "InvalidParameterException",
            "accessScope: type cluster takes no namespaces; type namespace needs at least one",
        )
    return {"type": kind, "namespaces": namespaces}


class AccessEntries:
    """Per (region, cluster): its authentication mode and its access entries."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._modes: dict[tuple[str, str], str] = {}
        self._entries: dict[tuple[str, str], dict[str, Entry]] = {}
        self._creators: dict[tuple[str, str], str] = {}

    # ----------------------------------------------------------- cluster life

    def cluster_created(
        self, region: str, cluster: str, access: dict[str, Any], creator: str | None
    ) -> None:
        mode = mode_of(access)
        with self._lock:
            self._modes[(region, cluster)] = mode
            self._entries[(region, cluster)] = {}
            if creator:
                self._creators[(region, cluster)] = creator
        if (
            creator
            and mode != "CONFIG_MAP"
            and access.get("bootstrapClusterCreatorAdminPermissions", True)
        ):
            entry = self.create(region, cluster, {"principalArn": creator})
            self.associate(
                region,
                cluster,
                entry.principal,
                {
                    "policyArn": POLICY_PREFIX + "AmazonEKSClusterAdminPolicy",
                    "accessScope": {"type": "cluster"},
                },
            )

    def cluster_deleted(self, region: str, cluster: str) -> None:
        with self._lock:
            self._modes.pop((region, cluster), None)
            self._entries.pop((region, cluster), None)
            self._creators.pop((region, cluster), None)

    def access_config(self, region: str, cluster: str) -> dict[str, Any]:
        return {
            "authenticationMode": self._modes.get((region, cluster), "CONFIG_MAP"),
        }

    def change_mode(self, region: str, cluster: str, mode: str) -> None:
        current = self._modes.get((region, cluster), "CONFIG_MAP")
        if MODES.index(mode) < MODES.index(current):
            raise AwsError(
                400,
                "InvalidParameterException",
                f"Unsupported authentication mode update from {current} to {mode}",
            )
        self._modes[(region, cluster)] = mode

    # ----------------------------------------------------------- the API

    def _cluster_entries(self, region: str, cluster: str) -> dict[str, Entry]:
        if self._modes.get((region, cluster), "CONFIG_MAP") == "CONFIG_MAP":
            raise AwsError(
                400,
                "InvalidRequestException",
                "The cluster's authentication mode must be set to one of [API, "
                "API_AND_CONFIG_MAP] to perform this operation.",
            )
        return self._entries.setdefault((region, cluster), {})

    def entry(self, region: str, cluster: str, principal: str) -> Entry:
        found = self._cluster_entries(region, cluster).get(principal)
        if found is None:
            raise AwsError(
                404,
                "ResourceNotFoundException",
                f"The specified principalArn could not be found: {principal}",
            )
        return found

    def create(self, region: str, cluster: str, body: dict[str, Any]) -> Entry:
        principal = body.get("principalArn") or ""
        if not PRINCIPAL.match(principal):
            raise AwsError(
                400,
                "InvalidParameterException",
                f"The specified principalArn is invalid: {principal!r}",
            )
        with self._lock:
            entries = self._cluster_entries(region, cluster)
            if principal in entries:
                raise AwsError(
                    409,
                    "ResourceInUseException",
                    "The specified access entry resource is already in use on this cluster.",
                )
            kind = body.get("type") or "STANDARD"
            entries[principal] = Entry(
                cluster=cluster,
                principal=principal,
                type=kind,
                groups=list(body.get("kubernetesGroups") or []),
                username=body.get("username") or principal,
                tags=dict(body.get("tags") or {}),
            )
            return entries[principal]

    def delete(self, region: str, cluster: str, principal: str) -> None:
        with self._lock:
            self.entry(region, cluster, principal)
            del self._entries[(region, cluster)][principal]

    def principals(self, region: str, cluster: str) -> list[str]:
        return sorted(self._cluster_entries(region, cluster))

    def associate(
        self, region: str, cluster: str, principal: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        arn = body.get("policyArn") or ""
        _policy(arn)
        scope = _scope(body.get("accessScope") or {})
        with self._lock:
            entry = self.entry(region, cluster, principal)
            if entry.type != "STANDARD":
                raise AwsError(
                    400,
                    "InvalidParameterException",
                    f"Access policies can only be associated with STANDARD access entries "
                    f"({principal} is {entry.type})",
                )
            entry.policies[arn] = scope
        return self.associated(arn, scope)

    @staticmethod
    def associated(arn: str, scope: dict[str, Any]) -> dict[str, Any]:
        return {
            "policyArn": arn,
            "accessScope": scope,
            "associatedAt": _now(),
            "modifiedAt": _now(),
        }

    def disassociate(self, region: str, cluster: str, principal: str, arn: str) -> None:
        with self._lock:
            entry = self.entry(region, cluster, principal)
            if entry.policies.pop(arn, None) is None:
                raise AwsError(
                    404, "ResourceNotFoundException", f"{arn} is not associated with {principal}"
                )

    # ------------------------------------------------- for the Kubernetes API

    def grant(self, region: str, cluster: str, access_key: str) -> AccessGrant:
        """What the principal of ``access_key`` may do in the cluster."""
        principal = principal_of(access_key, region)
        with self._lock:
            mode = self._modes.get((region, cluster))
            entry = (self._entries.get((region, cluster)) or {}).get(principal)
            if mode == "CONFIG_MAP" and principal == self._creators.get((region, cluster)):
                return AccessGrant(principal, entry=True, policies=(CREATOR,))
            if mode is None or entry is None:
                return AccessGrant(principal, entry=False)
            policies = tuple(
                AccessPolicy(arn.removeprefix(POLICY_PREFIX), tuple(scope["namespaces"]))
                for arn, scope in entry.policies.items()
            )
        return AccessGrant(principal, entry=True, policies=policies)

    # ------------------------------------------------------- the EKS operations

    def handle(self, operation: str, region: str, labels: dict[str, str], body: dict) -> dict:
        """The answer to one access-entry operation of an existing cluster."""
        cluster = labels["name"]
        principal = labels.get("principalArn", "")
        if operation == "CreateAccessEntry":
            return {"accessEntry": self.create(region, cluster, body).view(region)}
        if operation == "DescribeAccessEntry":
            return {"accessEntry": self.entry(region, cluster, principal).view(region)}
        if operation == "ListAccessEntries":
            return {"accessEntries": self.principals(region, cluster)}
        if operation == "DeleteAccessEntry":
            self.delete(region, cluster, principal)
            return {}
        if operation == "AssociateAccessPolicy":
            return {
                "clusterName": cluster,
                "principalArn": principal,
                "associatedAccessPolicy": self.associate(region, cluster, principal, body),
            }
        if operation == "DisassociateAccessPolicy":
            self.disassociate(region, cluster, principal, labels["policyArn"])
            return {}
        assert operation == "ListAssociatedAccessPolicies", operation
        entry = self.entry(region, cluster, principal)
        return {
            "clusterName": cluster,
            "principalArn": principal,
            "associatedAccessPolicies": [
                self.associated(arn, scope) for arn, scope in entry.policies.items()
            ],
        }


OPERATIONS = (
    "CreateAccessEntry",
    "DescribeAccessEntry",
    "ListAccessEntries",
    "DeleteAccessEntry",
    "AssociateAccessPolicy",
    "DisassociateAccessPolicy",
    "ListAssociatedAccessPolicies",
)
