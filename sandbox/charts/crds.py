"""Minimal CustomResourceDefinitions for the stand-ins' API groups.

Each is a valid apiextensions.k8s.io/v1 CRD with the real group, kind, plural, scope and
versions, and a schema that accepts any object: enough for the API server to register the
kind and for the product to create its resources; no field validation.
"""

from __future__ import annotations

from typing import Any

from sandbox.charts.standins import CrdGroup, CrdKind, Crds

_VOWELS = "aeiou"


def plural_of(kind: str) -> str:
    """Lower case with English plural rules, as Kubernetes names them (prometheuses)."""
    word = kind.lower()
    if word.endswith(("s", "x", "z", "ch", "sh")):
        return word + "es"
    if word.endswith("y") and len(word) > 1 and word[-2] not in _VOWELS:
        return word[:-1] + "ies"
    return word + "s"


def _any_object() -> dict[str, Any]:
    return {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}}


def crd_document(group: CrdGroup, entry: str | CrdKind) -> dict[str, Any]:
    kind = CrdKind(kind=entry) if isinstance(entry, str) else entry
    plural = kind.plural or plural_of(kind.kind)
    names: dict[str, Any] = {
        "kind": kind.kind,
        "listKind": f"{kind.kind}List",
        "plural": plural,
        "singular": kind.kind.lower(),
    }
    if kind.short_names:
        names["shortNames"] = list(kind.short_names)
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group.group}"},
        "spec": {
            "group": group.group,
            "names": names,
            "scope": kind.scope or group.scope,
            "versions": [
                {"name": version, "served": True, "storage": index == 0, "schema": _any_object()}
                for index, version in enumerate(group.versions)
            ],
        },
    }


def crd_documents(crds: Crds) -> list[dict[str, Any]]:
    """Every CRD of the chart, ordered by name so packages are reproducible."""
    documents = [crd_document(group, kind) for group in crds.groups for kind in group.kinds]
    return sorted(documents, key=lambda document: document["metadata"]["name"])
