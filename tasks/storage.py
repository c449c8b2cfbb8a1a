"""The shared gp3 StorageClass (default, volume expansion) and its VolumeSnapshotClass."""

from __future__ import annotations

from typing import Any

from kubernetes import client as k8s
from kubernetes.client.exceptions import ApiException

from blueprint.pace import Pace
from blueprint.spec import StorageClassSettings
from tasks.kube import converge_object
from tasks.polling import poll_until

EBS_CSI = "ebs.csi.aws.com"
DEFAULT_CLASS = "storageclass.kubernetes.io/is-default-class"
SNAPSHOT = ("snapshot.storage.k8s.io", "v1", "volumesnapshotclasses")
MANAGED_BY = {"app.kubernetes.io/managed-by": "platform-bootstrap"}


def storage_class_body(
    settings: StorageClassSettings, volume_tags: dict[str, str]
) -> dict[str, Any]:
    # The EBS CSI driver tags each volume it creates with these, so a teardown finds the
    # volumes a claim left behind (tasks/aws/volumes.py).
    tagging = {
        f"tagSpecification_{n}": f"{k}={v}" for n, (k, v) in enumerate(volume_tags.items(), 1)
    }
    return {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "StorageClass",
        "metadata": {
            "name": settings.name,
            "labels": dict(MANAGED_BY),
            "annotations": {DEFAULT_CLASS: str(settings.default).lower()},
        },
        "provisioner": EBS_CSI,
        "parameters": {
            "type": settings.volume_type,
            "encrypted": str(settings.encrypted).lower(),
            "csi.storage.k8s.io/fstype": "ext4",
            **tagging,
        },
        "allowVolumeExpansion": settings.allow_volume_expansion,
        "reclaimPolicy": settings.reclaim_policy,
        "volumeBindingMode": settings.volume_binding_mode,
    }


def snapshot_class_body(settings: StorageClassSettings) -> dict[str, Any]:
    return {
        "apiVersion": "snapshot.storage.k8s.io/v1",
        "kind": "VolumeSnapshotClass",
        "metadata": {
            "name": settings.snapshot_class_name,
            "labels": dict(MANAGED_BY),
            "annotations": {"snapshot.storage.kubernetes.io/is-default-class": "true"},
        },
        "driver": EBS_CSI,
        "deletionPolicy": "Delete",
    }


# Fields a StorageClass cannot change after creation (the API rejects updates to them).
_IMMUTABLE = ("provisioner", "parameters", "reclaimPolicy", "volumeBindingMode")


def ensure_storage_classes(
    api: k8s.ApiClient, settings: StorageClassSettings, pace: Pace, volume_tags: dict[str, str]
) -> list[str]:
    """Converge both objects; returns what changed."""
    storage = k8s.StorageV1Api(api)
    wanted = storage_class_body(settings, volume_tags)

    def update(found: Any) -> str | None:
        current = api.sanitize_for_serialization(found)
        if any(current.get(k) != wanted[k] for k in _IMMUTABLE):
            # Immutable fields changed: replace the class (existing volumes keep theirs).
            storage.delete_storage_class(settings.name)
            storage.create_storage_class(wanted)
            return "replaced"
        annotations = current.get("metadata", {}).get("annotations") or {}
        drifted = current.get("allowVolumeExpansion") != wanted["allowVolumeExpansion"] or any(
            annotations.get(k) != v for k, v in wanted["metadata"]["annotations"].items()
        )
        if not drifted:
            return None
        storage.patch_storage_class(
            settings.name,
            {
                "allowVolumeExpansion": wanted["allowVolumeExpansion"],
                "metadata": {"annotations": wanted["metadata"]["annotations"]},
            },
        )
        return "updated"

    change = converge_object(
        lambda: storage.read_storage_class(settings.name),
        lambda: storage.create_storage_class(wanted),
        update,
    )
    changes = [f"{change} StorageClass {settings.name}"] if change else []
    if settings.snapshots:
        changes += _ensure_snapshot_class(api, settings, pace)
    return changes


def snapshot_api_served(api: k8s.ApiClient) -> bool:
    group, version, plural = SNAPSHOT
    try:
        resources = k8s.CustomObjectsApi(api).get_api_resources(group, version)
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return any(r.name == plural for r in resources.resources)


def _ensure_snapshot_class(
    api: k8s.ApiClient, settings: StorageClassSettings, pace: Pace
) -> list[str]:
    # The snapshot-controller add-on registers the API; discovery can trail it briefly.
    poll_until(
        lambda: True if snapshot_api_served(api) else None,
        pace.budget(120),
        pace.poll(5),
        "the VolumeSnapshot API (snapshot-controller add-on)",
    )
    custom = k8s.CustomObjectsApi(api)
    group, version, plural = SNAPSHOT
    name = settings.snapshot_class_name
    wanted = snapshot_class_body(settings)

    def create() -> None:
        custom.create_cluster_custom_object(group, version, plural, wanted)

    def update(current: dict[str, Any]) -> str | None:
        if current.get("driver") == EBS_CSI and current.get("deletionPolicy") == "Delete":
            return None
        custom.delete_cluster_custom_object(group, version, plural, name)
        create()
        return "replaced"

    change = converge_object(
        lambda: custom.get_cluster_custom_object(group, version, plural, name), create, update
    )
    return [f"{change} VolumeSnapshotClass {name}"] if change else []
