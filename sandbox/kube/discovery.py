"""API discovery documents: legacy (/api, /apis, per group-version) and aggregated (v2).

kubectl and helm (client-go 0.32) ask for the aggregated form first, which answers all of
discovery in two requests; older clients and the Python client read the legacy documents.
"""

from __future__ import annotations

import hashlib
from typing import Any

from sandbox.kube.resources import Registry, ResourceType

VERBS = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"]
AGGREGATED_GROUP = "apidiscovery.k8s.io"
AGGREGATED_KIND = "APIGroupDiscoveryList"
AGGREGATED_VERSIONS = ("v2", "v2beta1")

# What each subresource answers with and allows: (group, version, kind or None for the
# parent's kind, verbs).
_SUBRESOURCES: dict[str, tuple[str | None, str | None, str | None, list[str]]] = {
    "status": (None, None, None, ["get", "patch", "update"]),
    "scale": ("autoscaling", "v1", "Scale", ["get", "patch", "update"]),
    "log": ("", "v1", "Pod", ["get"]),
    "proxy": ("", "v1", "ServiceProxyOptions", ["create", "delete", "get", "patch", "update"]),
}


def _storage_hash(rt: ResourceType) -> str:
    digest = hashlib.sha256(f"{rt.group}/{rt.version}/{rt.kind}".encode()).digest()
    return digest[:8].hex()


def _ordered(types: list[ResourceType]) -> list[ResourceType]:
    return sorted(types, key=lambda rt: rt.plural)


def api_versions(server_address: str) -> dict[str, Any]:
    return {
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [
            {"clientCIDR": "0.0.0.0/0", "serverAddress": server_address}
        ],
    }


def api_group(registry: Registry, group: str) -> dict[str, Any] | None:
    versions = registry.versions(group)
    if not versions:
        return None
    entries = [{"groupVersion": f"{group}/{v}", "version": v} for v in versions]
    return {
        "kind": "APIGroup",
        "apiVersion": "v1",
        "name": group,
        "versions": entries,
        "preferredVersion": entries[0],
    }


def group_list(registry: Registry) -> dict[str, Any]:
    groups = [api_group(registry, g) for g in registry.groups()]
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [g for g in groups if g]}


def resource_list(registry: Registry, group: str, version: str) -> dict[str, Any] | None:
    types = _ordered([rt for rt in registry.all() if rt.group == group and rt.version == version])
    if not types:
        return None
    resources: list[dict[str, Any]] = []
    for rt in types:
        entry: dict[str, Any] = {
            "name": rt.plural,
            "singularName": rt.singular_name,
            "namespaced": rt.namespaced,
            "kind": rt.kind,
            "verbs": VERBS,
            "storageVersionHash": _storage_hash(rt),
        }
        if rt.short_names:
            entry["shortNames"] = list(rt.short_names)
        if rt.categories:
            entry["categories"] = list(rt.categories)
        resources.append(entry)
        for sub in sorted(rt.subresources):
            sub_group, sub_version, sub_kind, verbs = _SUBRESOURCES.get(
                sub, (None, None, None, ["get"])
            )
            item: dict[str, Any] = {
                "name": f"{rt.plural}/{sub}",
                "singularName": "",
                "namespaced": rt.namespaced,
                "kind": sub_kind or rt.kind,
                "verbs": verbs,
            }
            if sub_group is not None:
                item["group"], item["version"] = sub_group, sub_version
            resources.append(item)
    return {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": f"{group}/{version}" if group else version,
        "resources": resources,
    }


def _aggregated_resource(rt: ResourceType) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "resource": rt.plural,
        "responseKind": {"group": rt.group, "version": rt.version, "kind": rt.kind},
        "scope": "Namespaced" if rt.namespaced else "Cluster",
        "singularResource": rt.singular_name,
        "verbs": VERBS,
    }
    if rt.short_names:
        entry["shortNames"] = list(rt.short_names)
    if rt.categories:
        entry["categories"] = list(rt.categories)
    subresources = []
    for sub in sorted(rt.subresources):
        sub_group, sub_version, sub_kind, verbs = _SUBRESOURCES.get(
            sub, (None, None, None, ["get"])
        )
        subresources.append(
            {
                "subresource": sub,
                "responseKind": {
                    "group": rt.group if sub_group is None else sub_group,
                    "version": rt.version if sub_version is None else sub_version,
                    "kind": sub_kind or rt.kind,
                },
                "verbs": verbs,
            }
        )
    if subresources:
        entry["subresources"] = subresources
    return entry


def aggregated(registry: Registry, core: bool, version: str = "v2") -> dict[str, Any]:
    """The APIGroupDiscoveryList for /api (``core``) or /apis."""
    groups = [""] if core else registry.groups()
    items = []
    for group in groups:
        versions = []
        for v in registry.versions(group):
            types = [rt for rt in registry.all() if rt.group == group and rt.version == v]
            versions.append(
                {
                    "version": v,
                    "resources": [_aggregated_resource(rt) for rt in _ordered(types)],
                    "freshness": "Current",
                }
            )
        if versions:
            items.append(
                {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}
            )
    return {
        "kind": AGGREGATED_KIND,
        "apiVersion": f"{AGGREGATED_GROUP}/{version}",
        "metadata": {},
        "items": items,
    }
