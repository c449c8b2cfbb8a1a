"""What the workload controllers share: pods from a template, owned pods, scaled values."""

from __future__ import annotations

import logging
from abc import abstractmethod
from collections.abc import Iterable
from typing import Any

from sandbox.kube.errors import ApiError
from sandbox.kube.objects import (
    Key,
    controller_key,
    deep,
    is_terminal,
    key_of,
    owned,
    owner_reference,
)
from sandbox.kube.pod_security import admit_pod
from sandbox.kube.reconciler import Reconciler
from sandbox.kube.resources import ResourceType
from sandbox.kube.store import Event

log = logging.getLogger(__name__)
REFUSED_RETRY_SECONDS = 1.0  # a workload whose pod was refused is looked at again this soon


def desired_replicas(obj: dict[str, Any]) -> int:
    replicas = (obj.get("spec") or {}).get("replicas")
    return 1 if replicas is None else int(replicas)


def pod_from_template(
    template: dict[str, Any],
    owner: dict[str, Any],
    owner_rt: ResourceType,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A new pod of ``owner`` (name left to the caller), as its controller would create it."""
    metadata = deep(template.get("metadata") or {})
    pod_labels = {**(metadata.get("labels") or {}), **(extra_labels or {})}
    pod_meta: dict[str, Any] = {
        "namespace": owner["metadata"]["namespace"],
        "labels": pod_labels,
        "ownerReferences": [owner_reference(owner, owner_rt)],
    }
    if metadata.get("annotations"):
        pod_meta["annotations"] = metadata["annotations"]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": pod_meta,
        "spec": deep(template.get("spec") or {}),
    }


def resolve_scaled(value: Any, total: int, round_up: bool) -> int:
    """An IntOrString like maxUnavailable ("25%" or 1) against a total."""
    if value is None:
        return 0
    if isinstance(value, str) and value.endswith("%"):
        share = int(value[:-1]) * total
        return -(-share // 100) if round_up else share // 100
    return int(value)


class WorkloadReconciler(Reconciler):
    """A controller of one workload kind whose pods name it as their controller."""

    @property
    @abstractmethod
    def rt(self) -> ResourceType:
        """The workload kind."""

    def resume(self) -> Iterable[Key]:
        return self._all_keys(self.rt)

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == self.rt:
            return [key_of(event.obj)]
        if event.resource == self.kinds.pod:
            owner = controller_key(event.obj, self.rt.kind)
            return [owner] if owner else []
        return ()

    def owned_pods(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        return owned(self.store, self.kinds.pod, owner)

    def create_pod(self, pod: dict[str, Any]) -> dict[str, Any] | None:
        """Create a pod as its controller does, through Pod Security Admission: None when
        the namespace's standard refuses it (the controller's FailedCreate; it tries again
        after ``REFUSED_RETRY_SECONDS``, as a label may change)."""
        try:
            admit_pod(self.store, pod)
        except ApiError as refused:
            log.info("%s: FailedCreate: %s", self.rt.kind, refused.message)
            return None
        return self.store.create(self.kinds.pod, pod)

    def live_pods(self, owner: dict[str, Any]) -> list[dict[str, Any]]:
        """Owned pods that have not finished (Succeeded or Failed)."""
        return [p for p in self.owned_pods(owner) if not is_terminal(p)]
