"""PersistentVolumeClaims: each pending claim gets a dynamically provisioned EBS volume.

Storage classes and binding modes are not checked: every claim is bound at once to a new
PersistentVolume ``pvc-<claim uid>`` of the requested size, backed by the EBS CSI driver.
The volume is deleted with its claim (reclaim policy Delete, as for gp2/gp3 classes).
"""

from __future__ import annotations

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
                    "volumeHandle": "vol-" + stable_hex(uid(claim), length=17),
                },
            },
            "status": {"phase": "Bound"},
        }
        if spec.get("storageClassName"):
            volume["spec"]["storageClassName"] = spec["storageClassName"]
        self.store.create(self.kinds.pv, volume)
        return name
