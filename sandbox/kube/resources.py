"""The resource types the simulated API server serves: built-ins plus registered CRDs.

A ``ResourceType`` is one served (group, version, plural). Objects are stored per
(group, plural), so the versions of a custom resource share their objects.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

STATUS = frozenset({"status"})
STATUS_SCALE = frozenset({"status", "scale"})


@dataclass(frozen=True)
class ResourceType:
    group: str  # "" for the core group
    version: str
    kind: str
    plural: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()  # e.g. {"status", "scale"}
    short_names: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()  # "all" makes `kubectl get all` include it
    singular: str = ""  # defaults to the lower-cased kind
    custom: bool = False  # served from a CustomResourceDefinition

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def singular_name(self) -> str:
        return self.singular or self.kind.lower()

    @property
    def storage_key(self) -> tuple[str, str]:
        """Objects are shared by all versions of a group's resource."""
        return (self.group, self.plural)

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def describe(self) -> str:
        """``plural.group`` as the API server names resources in messages."""
        return f"{self.plural}.{self.group}" if self.group else self.plural


_VERSION = re.compile(r"^v(\d+)(?:(alpha|beta)(\d+))?$")


def version_priority(version: str) -> tuple[int, int, int, str]:
    """Sort key putting versions in Kubernetes order: v2 > v1 > v1beta2 > v1beta1 > v1alpha1."""
    match = _VERSION.match(version)
    if not match:
        return (3, 0, 0, version)  # non-Kubernetes versions last, alphabetically
    major, stage, minor = match.groups()
    rank = {None: 0, "beta": 1, "alpha": 2}[stage]
    return (rank, -int(major), -int(minor or 0), version)


class Registry:
    """The served resource types; thread-safe because CRDs come and go while serving."""

    def __init__(self, types: list[ResourceType] | None = None):
        self._lock = threading.Lock()
        self._by_path: dict[tuple[str, str, str], ResourceType] = {}
        self._by_kind: dict[tuple[str, str], ResourceType] = {}
        for rt in types or []:
            self.add(rt)

    def by_path(self, group: str, version: str, plural: str) -> ResourceType | None:
        with self._lock:
            return self._by_path.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> ResourceType | None:
        with self._lock:
            return self._by_kind.get((api_version, kind))

    def add(self, rt: ResourceType) -> None:
        with self._lock:
            old = self._by_path.get((rt.group, rt.version, rt.plural))
            if old is not None:
                self._by_kind.pop((old.api_version, old.kind), None)
            self._by_path[(rt.group, rt.version, rt.plural)] = rt
            self._by_kind[(rt.api_version, rt.kind)] = rt

    def remove(self, rt: ResourceType) -> None:
        with self._lock:
            if self._by_path.get((rt.group, rt.version, rt.plural)) == rt:
                del self._by_path[(rt.group, rt.version, rt.plural)]
            if self._by_kind.get((rt.api_version, rt.kind)) == rt:
                del self._by_kind[(rt.api_version, rt.kind)]

    def all(self) -> list[ResourceType]:
        with self._lock:
            return list(self._by_path.values())

    def versions(self, group: str) -> list[str]:
        """Served versions of a group, preferred first."""
        found = {rt.version for rt in self.all() if rt.group == group}
        return sorted(found, key=version_priority)

    def groups(self) -> list[str]:
        """Named groups (not the core group) in registration order."""
        seen: dict[str, None] = {}
        for rt in self.all():
            if rt.group:
                seen.setdefault(rt.group, None)
        return list(seen)

    def storage_types(self) -> list[ResourceType]:
        """One type per stored resource (the preferred version of each)."""
        best: dict[tuple[str, str], ResourceType] = {}
        for rt in self.all():
            current = best.get(rt.storage_key)
            if current is None or version_priority(rt.version) < version_priority(current.version):
                best[rt.storage_key] = rt
        return list(best.values())


def _rt(
    api_version: str,
    kind: str,
    plural: str,
    namespaced: bool = True,
    subresources: frozenset[str] = frozenset(),
    short_names: tuple[str, ...] = (),
    categories: tuple[str, ...] = (),
) -> ResourceType:
    group, _, version = api_version.rpartition("/")
    return ResourceType(
        group, version, kind, plural, namespaced, subresources, short_names, categories
    )


ALL = ("all",)

BUILTINS: tuple[ResourceType, ...] = (
    # core/v1
    _rt("v1", "Namespace", "namespaces", False, STATUS, ("ns",)),
    _rt("v1", "Pod", "pods", True, STATUS | {"log"}, ("po",), ALL),
    _rt("v1", "Service", "services", True, STATUS | {"proxy"}, ("svc",), ALL),
    _rt("v1", "Endpoints", "endpoints", True, short_names=("ep",)),
    _rt("v1", "ConfigMap", "configmaps", True, short_names=("cm",)),
    _rt("v1", "Secret", "secrets"),
    _rt("v1", "ServiceAccount", "serviceaccounts", True, short_names=("sa",)),
    _rt("v1", "PersistentVolumeClaim", "persistentvolumeclaims", True, STATUS, ("pvc",)),
    _rt("v1", "PersistentVolume", "persistentvolumes", False, STATUS, ("pv",)),
    _rt("v1", "Node", "nodes", False, STATUS, ("no",)),
    _rt("v1", "Event", "events", True, short_names=("ev",)),
    _rt("v1", "LimitRange", "limitranges", True, short_names=("limits",)),
    _rt("v1", "ResourceQuota", "resourcequotas", True, STATUS, ("quota",)),
    # apps/v1
    _rt("apps/v1", "Deployment", "deployments", True, STATUS_SCALE, ("deploy",), ALL),
    _rt("apps/v1", "ReplicaSet", "replicasets", True, STATUS_SCALE, ("rs",), ALL),
    _rt("apps/v1", "StatefulSet", "statefulsets", True, STATUS_SCALE, ("sts",), ALL),
    _rt("apps/v1", "DaemonSet", "daemonsets", True, STATUS, ("ds",), ALL),
    _rt("apps/v1", "ControllerRevision", "controllerrevisions"),
    # batch/v1
    _rt("batch/v1", "Job", "jobs", True, STATUS, (), ALL),
    _rt("batch/v1", "CronJob", "cronjobs", True, STATUS, ("cj",), ALL),
    # rbac.authorization.k8s.io/v1
    _rt("rbac.authorization.k8s.io/v1", "Role", "roles"),
    _rt("rbac.authorization.k8s.io/v1", "RoleBinding", "rolebindings"),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRole", "clusterroles", False),
    _rt("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", "clusterrolebindings", False),
    # apiextensions.k8s.io/v1
    _rt(
        "apiextensions.k8s.io/v1",
        "CustomResourceDefinition",
        "customresourcedefinitions",
        False,
        STATUS,
        ("crd", "crds"),
    ),
    # storage.k8s.io/v1
    _rt("storage.k8s.io/v1", "StorageClass", "storageclasses", False, short_names=("sc",)),
    _rt("storage.k8s.io/v1", "CSIDriver", "csidrivers", False),
    _rt("storage.k8s.io/v1", "CSINode", "csinodes", False),
    _rt("storage.k8s.io/v1", "VolumeAttachment", "volumeattachments", False, STATUS),
    # networking.k8s.io/v1
    _rt("networking.k8s.io/v1", "Ingress", "ingresses", True, STATUS, ("ing",)),
    _rt("networking.k8s.io/v1", "IngressClass", "ingressclasses", False),
    _rt("networking.k8s.io/v1", "NetworkPolicy", "networkpolicies", True, short_names=("netpol",)),
    # policy/v1
    _rt("policy/v1", "PodDisruptionBudget", "poddisruptionbudgets", True, STATUS, ("pdb",)),
    # admissionregistration.k8s.io/v1
    _rt(
        "admissionregistration.k8s.io/v1",
        "ValidatingWebhookConfiguration",
        "validatingwebhookconfigurations",
        False,
    ),
    _rt(
        "admissionregistration.k8s.io/v1",
        "MutatingWebhookConfiguration",
        "mutatingwebhookconfigurations",
        False,
    ),
    # coordination.k8s.io/v1
    _rt("coordination.k8s.io/v1", "Lease", "leases"),
    # autoscaling/v2
    _rt(
        "autoscaling/v2",
        "HorizontalPodAutoscaler",
        "horizontalpodautoscalers",
        True,
        STATUS,
        ("hpa",),
    ),
    # scheduling.k8s.io/v1
    _rt("scheduling.k8s.io/v1", "PriorityClass", "priorityclasses", False, short_names=("pc",)),
    # discovery.k8s.io/v1
    _rt("discovery.k8s.io/v1", "EndpointSlice", "endpointslices"),
    # apiregistration.k8s.io/v1
    _rt("apiregistration.k8s.io/v1", "APIService", "apiservices", False, STATUS),
)


def builtin_registry() -> Registry:
    """A fresh registry holding the built-in resource types."""
    return Registry(list(BUILTINS))


def crd_resource_types(crd: dict) -> list[ResourceType]:
    """The resource types a CustomResourceDefinition serves (one per served version)."""
    spec = crd.get("spec") or {}
    names = spec.get("names") or {}
    group, plural, kind = spec.get("group", ""), names.get("plural", ""), names.get("kind", "")
    if not (group and plural and kind):
        return []
    types = []
    for version in spec.get("versions") or []:
        if not version.get("served", True) or not version.get("name"):
            continue
        subresources = frozenset((version.get("subresources") or {}).keys())
        types.append(
            ResourceType(
                group=group,
                version=version["name"],
                kind=kind,
                plural=plural,
                namespaced=spec.get("scope", "Namespaced") == "Namespaced",
                subresources=subresources,
                short_names=tuple(names.get("shortNames") or ()),
                categories=tuple(names.get("categories") or ()),
                singular=names.get("singular", ""),
                custom=True,
            )
        )
    return types
