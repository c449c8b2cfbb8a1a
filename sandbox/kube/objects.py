"""Helpers for the plain-dict Kubernetes objects the simulated controllers read and write."""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from sandbox.kube.resources import ResourceType
from sandbox.kube.store import ApiError, Store, copy_json

Key = tuple[str, str]  # (namespace, name); namespace "" for cluster-scoped objects

# The alphabet Kubernetes uses in generated names: no vowels, no look-alike characters.
NAME_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def labels(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("labels") or {}


def annotations(obj: dict[str, Any]) -> dict[str, str]:
    return obj.get("metadata", {}).get("annotations") or {}


def key_of(obj: dict[str, Any]) -> Key:
    metadata = obj.get("metadata", {})
    return metadata.get("namespace") or "", metadata["name"]


def uid(obj: dict[str, Any]) -> str:
    return obj.get("metadata", {}).get("uid", "")


def owner_reference(owner: dict[str, Any], rt: ResourceType) -> dict[str, Any]:
    return {
        "apiVersion": rt.api_version,
        "kind": rt.kind,
        "name": owner["metadata"]["name"],
        "uid": uid(owner),
        "controller": True,
        "blockOwnerDeletion": True,
    }


def controller_ref(obj: dict[str, Any]) -> dict[str, Any] | None:
    for ref in obj.get("metadata", {}).get("ownerReferences") or []:
        if ref.get("controller"):
            return ref
    return None


def controller_key(obj: dict[str, Any], kind: str) -> Key | None:
    """The key of the object's controlling owner when that owner is of ``kind``."""
    ref = controller_ref(obj)
    if ref is None or ref.get("kind") != kind:
        return None
    return obj["metadata"].get("namespace") or "", ref["name"]


def controlled_by(obj: dict[str, Any], owner: dict[str, Any]) -> bool:
    ref = controller_ref(obj)
    return ref is not None and ref.get("uid") == uid(owner)


def owned(
    store: Store, rt: ResourceType, owner: dict[str, Any], namespace: str | None = None
) -> list[dict[str, Any]]:
    """Objects of ``rt`` whose controlling owner is ``owner`` (same namespace by default)."""
    ns = owner["metadata"].get("namespace") if namespace is None else namespace
    items, _ = store.list(rt, ns or None)
    return [item for item in items if controlled_by(item, owner)]


def template_hash(template: dict[str, Any]) -> str:
    """A stable 10-character name suffix for a pod template (like pod-template-hash)."""
    digest = hashlib.sha256(json.dumps(template, sort_keys=True).encode()).digest()
    return "".join(NAME_ALPHABET[b % len(NAME_ALPHABET)] for b in digest[:10])


def stable_hex(*parts: str, length: int = 32) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:length]


def stable_uuid(*parts: str) -> str:
    return str(uuid.UUID(hex=stable_hex(*parts)))


def deep(obj: Any) -> Any:
    """A deep copy of JSON-shaped data, to change an object read from the store."""
    return copy_json(obj)


def condition(conditions: list[dict[str, Any]] | None, kind: str) -> dict[str, Any] | None:
    for item in conditions or []:
        if item.get("type") == kind:
            return item
    return None


def merge_conditions(
    previous: list[dict[str, Any]] | None,
    desired: list[dict[str, Any]],
    *,
    update_time: bool = False,
) -> list[dict[str, Any]]:
    """Desired conditions with their timestamps carried over while nothing changed.

    ``lastTransitionTime`` moves when the status flips; ``lastUpdateTime`` (Deployments only)
    when status, reason or message change. Keeping them stable keeps status writes idempotent.
    """
    stamp = now()
    merged = []
    for want in desired:
        old = condition(previous, want["type"]) or {}
        item = dict(want)
        same_status = old.get("status") == want["status"]
        item["lastTransitionTime"] = (same_status and old.get("lastTransitionTime")) or stamp
        if update_time:
            same = same_status and all(old.get(k) == want.get(k) for k in ("reason", "message"))
            item["lastUpdateTime"] = (same and old.get("lastUpdateTime")) or stamp
        merged.append(item)
    return merged


def is_ready(pod: dict[str, Any]) -> bool:
    ready = condition((pod.get("status") or {}).get("conditions"), "Ready")
    return ready is not None and ready.get("status") == "True"


def is_terminal(pod: dict[str, Any]) -> bool:
    return (pod.get("status") or {}).get("phase") in ("Succeeded", "Failed")


def delete_quietly(store: Store, rt: ResourceType, namespace: str, name: str) -> None:
    """Delete, treating an object that is already gone as deleted."""
    try:
        store.delete(rt, namespace or None, name)
    except ApiError as error:
        if error.code != 404:
            raise


def omit_zeros(status: dict[str, Any], *fields: str) -> dict[str, Any]:
    """Drop zero counts the API serializes with omitempty, so clients see what they would."""
    return {k: v for k, v in status.items() if not (k in fields and v == 0)}
