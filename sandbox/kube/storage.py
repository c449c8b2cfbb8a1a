"""PersistentVolumeClaims: each pending claim gets a dynamically provisioned EBS volume.

Binding modes are not checked: every claim is bound at once to a new PersistentVolume
``pvc-<claim uid>`` of the requested size, backed by the EBS CSI driver. As that driver
does, the volume is an EBS volume in the local AWS (through the cluster source), tagged
with the claim's StorageClass ``tagSpecification_N: "key=value"`` parameters and the
driver's own ``kubernetes.io/created-for/pvc/*`` tags. It is deleted with its claim
(reclaim policy Delete, as for gp2/gp3 classes); a claim the simulator never sees deleted
leaves its EBS volume behind, as on AWS.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

from sandbox.kube.objects import (
    Key,
    deep,
    delete_quietly,
    key_of,
    stable_hex,
    uid,
)
from sandbox.kube.reconciler import Reconciler
from sandbox.kube.store import ApiError, Event

CSI_DRIVER = "ebs.csi.aws.com"
DEFAULT_SIZE = "1Gi"
TAG_PARAMETER = "tagSpecification_"
GIB_PER_UNIT = {
    "Ki": 1 / 2**20,
    "Mi": 1 / 2**10,
    "Gi": 1,
    "Ti": 2**10,
    "M": 1e6 / 2**30,
    "G": 1e9 / 2**30,
}


def size_gib(size: str) -> int:
    """A storage quantity in whole GiB, rounded up as EBS sizes are."""
    unit = next((u for u in sorted(GIB_PER_UNIT, key=len, reverse=True) if size.endswith(u)), "")
    number = float(size[: len(size) - len(unit)] or 0)
    return max(1, math.ceil(number * GIB_PER_UNIT[unit] if unit else number / 2**30))


def requested_tags(parameters: dict[str, str]) -> dict[str, str]:
    pairs = [v.partition("=") for k, v in parameters.items() if k.startswith(TAG_PARAMETER)]
    return {key: value for key, _, value in pairs if key}


def volume_name(claim: dict[str, Any]) -> str:
    return f"pvc-{uid(claim)}"


class Claims(Reconciler):
    name = "claims"

    def resume(self) -> Iterable[Key]:
        return self._all_keys(self.kinds.pvc)

    def keys_for(self, event: Event) -> Iterable[Key]:
        return [key_of(event.obj)] if event.resource == self.kinds.pvc else ()

    def reconcile(self, key: Key) -> float | None:
        claim = self.store.get(self.kinds.pvc, *key)
        if claim is None:
            self._release(key)
            return None
        if (claim.get("status") or {}).get("phase") == "Bound":
            return None
        spec = claim.get("spec") or {}
        size = ((spec.get("resources") or {}).get("requests") or {}).get("storage", DEFAULT_SIZE)
        access_modes = spec.get("accessModes") or ["ReadWriteOnce"]
        volume = self._provision(claim, size, access_modes)
        if not spec.get("volumeName"):
            bound = deep(claim)
            bound["spec"]["volumeName"] = volume
            annotations = bound["metadata"].setdefault("annotations", {})
            annotations["pv.kubernetes.io/bind-completed"] = "yes"
            annotations["pv.kubernetes.io/bound-by-controller"] = "yes"
            annotations["volume.kubernetes.io/storage-provisioner"] = CSI_DRIVER
            try:
                self.store.replace(self.kinds.pvc, bound)
            except ApiError as error:
                if error.code in (404, 409):
                    return 0.1
                raise
        status = deep(claim.get("status") or {})
        status.update(phase="Bound", accessModes=access_modes, capacity={"storage": size})
        self.store.set_status(self.kinds.pvc, *key, status)
        return None

    def _release(self, key: Key) -> None:
        """Delete the volumes of a deleted claim (reclaim policy Delete)."""
        volumes, _ = self.store.list(self.kinds.pv)
        for volume in volumes:
            ref = (volume.get("spec") or {}).get("claimRef") or {}
            if (ref.get("namespace"), ref.get("name")) == key:
                delete_quietly(self.store, self.kinds.pv, "", volume["metadata"]["name"])
                self._cloud_delete((volume.get("spec") or {}).get("csi", {}).get("volumeHandle"))

    def _cloud_delete(self, handle: str | None) -> None:
        if handle and self.ctx.cluster_source is not None:
            self.ctx.cluster_source.delete_volume(handle)

    def _storage_class(self, name: str | None) -> dict[str, Any]:
        """The claim's class; without a name, the default one (as admission would set it)."""
        if name:
            return self.store.get(self.kinds.storage_class, None, name) or {}
        classes, _ = self.store.list(self.kinds.storage_class)
        default = "storageclass.kubernetes.io/is-default-class"
        return next(
            (c for c in classes if (c["metadata"].get("annotations") or {}).get(default) == "true"),
            {},
        )

    def _cloud_volume(self, claim: dict[str, Any], size: str) -> str:
        """The EBS volume's id, made in the local AWS when there is one."""
        fallback = "vol-" + stable_hex(uid(claim), length=17)
        source = self.ctx.cluster_source
        if source is None:
            return fallback
        spec, meta = claim.get("spec") or {}, claim["metadata"]
        tags = {
            **requested_tags(
                self._storage_class(spec.get("storageClassName")).get("parameters") or {}
            ),
            "kubernetes.io/created-for/pvc/namespace": meta["namespace"],
            "kubernetes.io/created-for/pvc/name": meta["name"],
            "kubernetes.io/created-for/pv/name": volume_name(claim),
        }
        return source.create_volume(size_gib(size), tags) or fallback

    def _provision(self, claim: dict[str, Any], size: str, access_modes: list[str]) -> str:
        name = volume_name(claim)
        if self.store.get(self.kinds.pv, None, name) is not None:
            return name
        spec = claim.get("spec") or {}
        volume: dict[str, Any] = {
            "apiVersion": "v1",
            "kind": "PersistentVolume",
            "metadata": {
                "name": name,
                "annotations": {"pv.kubernetes.io/provisioned-by": CSI_DRIVER},
            },
            "spec": {
                "capacity": {"storage": size},
                "accessModes": access_modes,
                "persistentVolumeReclaimPolicy": "Delete",
                "volumeMode": spec.get("volumeMode", "Filesystem"),
                "claimRef": {
                    "apiVersion": "v1",
                    "kind": "PersistentVolumeClaim",
                    "name": claim["metadata"]["name"],
                    "namespace": claim["metadata"]["namespace"],
                    "uid": uid(claim),
                },
                "csi": {
                    "driver": CSI_DRIVER,
                    "fsType": "ext4",
                    "volumeHandle": self._cloud_volume(claim, size),
                },
            },
            "status": {"phase": "Bound"},
        }
        if spec.get("storageClassName"):
            volume["spec"]["storageClassName"] = spec["storageClassName"]
        self.store.create(self.kinds.pv, volume)
        return name
