"""StatefulSets: pods ``<name>-0..N-1`` with stable identities and their volume claims.

OrderedReady (the default) creates pod i+1 only once pod i is Ready; Parallel creates all at
once. Each pod gets a claim ``<template>-<name>-<ordinal>`` per volumeClaimTemplate, kept
when the pod goes (and owned by the StatefulSet only with whenDeleted: Delete). A template
change replaces pods from the highest ordinal down, one at a time while all are Ready;
revisions are named ``<name>-<template hash>`` (no ControllerRevision objects are kept).
"""

from __future__ import annotations

from typing import Any

from sandbox.kube.objects import (
    Key,
    deep,
    delete_quietly,
    is_ready,
    key_of,
    labels,
    omit_zeros,
    owner_reference,
    template_hash,
)
from sandbox.kube.resources import ResourceType
from sandbox.kube.store import ApiError
from sandbox.kube.workloads import (
    REFUSED_RETRY_SECONDS,
    WorkloadReconciler,
    desired_replicas,
    pod_from_template,
)

REVISION_LABEL = "controller-revision-hash"
POD_NAME_LABEL = "statefulset.kubernetes.io/pod-name"
POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"


def _ordinal(sts_name: str, pod: dict[str, Any]) -> int | None:
    suffix = pod["metadata"]["name"][len(sts_name) + 1 :]
    return int(suffix) if suffix.isdigit() else None


class StatefulSets(WorkloadReconciler):
    name = "statefulsets"

    @property
    def rt(self) -> ResourceType:
        return self.kinds.stateful_set

    def reconcile(self, key: Key) -> float | None:
        sts = self.store.get(self.rt, *key)
        if sts is None:
            return None
        name = sts["metadata"]["name"]
        spec = sts["spec"]
        want = desired_replicas(sts)
        revision = f"{name}-{template_hash(spec.get('template') or {})}"
        pods: dict[int, dict[str, Any]] = {}
        for pod in self.live_pods(sts):
            ordinal = _ordinal(name, pod)
            if ordinal is not None:
                pods[ordinal] = pod
        for ordinal in sorted(o for o in pods if o >= want):
            delete_quietly(self.store, self.kinds.pod, *key_of(pods.pop(ordinal)))
        ordered = spec.get("podManagementPolicy", "OrderedReady") == "OrderedReady"
        refused = False
        for ordinal in range(want):
            if ordinal not in pods:
                created = self._create_pod(sts, ordinal, revision)
                if created is None:
                    refused = True
                    break
                pods[ordinal] = created
                if ordered:
                    break
            elif ordered and not is_ready(pods[ordinal]):
                break
        self._roll(sts, pods, revision, want)
        self._write_status(sts, pods, revision, want)
        return REFUSED_RETRY_SECONDS if refused else None

    def _roll(self, sts: dict[str, Any], pods: dict[int, dict], revision: str, want: int) -> None:
        strategy = sts["spec"].get("updateStrategy") or {}
        if (strategy.get("type") or "RollingUpdate") != "RollingUpdate":
            return
        partition = int((strategy.get("rollingUpdate") or {}).get("partition") or 0)
        if len(pods) < want or not all(is_ready(p) for p in pods.values()):
            return
        stale = [
            o
            for o, p in pods.items()
            if o >= partition and labels(p).get(REVISION_LABEL) != revision
        ]
        if stale:
            victim = pods.pop(max(stale))
            delete_quietly(self.store, self.kinds.pod, *key_of(victim))

    def _create_pod(
        self, sts: dict[str, Any], ordinal: int, revision: str
    ) -> dict[str, Any] | None:
        name = sts["metadata"]["name"]
        pod_name = f"{name}-{ordinal}"
        pod = pod_from_template(
            sts["spec"].get("template") or {},
            sts,
            self.rt,
            {REVISION_LABEL: revision, POD_NAME_LABEL: pod_name, POD_INDEX_LABEL: str(ordinal)},
        )
        pod["metadata"]["name"] = pod_name
        pod_spec = pod["spec"]
        pod_spec.setdefault("hostname", pod_name)
        if sts["spec"].get("serviceName"):
            pod_spec.setdefault("subdomain", sts["spec"]["serviceName"])
        volumes = pod_spec.setdefault("volumes", [])
        for template in sts["spec"].get("volumeClaimTemplates") or []:
            claim = self._ensure_claim(sts, template, ordinal)
            volume_name = template["metadata"]["name"]
            volumes[:] = [v for v in volumes if v.get("name") != volume_name]
            volumes.append({"name": volume_name, "persistentVolumeClaim": {"claimName": claim}})
        return self.create_pod(pod)

    def _ensure_claim(self, sts: dict[str, Any], template: dict[str, Any], ordinal: int) -> str:
        name = f"{template['metadata']['name']}-{sts['metadata']['name']}-{ordinal}"
        namespace = sts["metadata"]["namespace"]
        if self.store.get(self.kinds.pvc, namespace, name) is not None:
            return name
        selector_labels = (sts["spec"].get("selector") or {}).get("matchLabels") or {}
        claim_meta: dict[str, Any] = {
            "name": name,
            "namespace": namespace,
            "labels": {**(template["metadata"].get("labels") or {}), **selector_labels},
        }
        if template["metadata"].get("annotations"):
            claim_meta["annotations"] = template["metadata"]["annotations"]
        retention = sts["spec"].get("persistentVolumeClaimRetentionPolicy") or {}
        if retention.get("whenDeleted") == "Delete":
            claim_meta["ownerReferences"] = [owner_reference(sts, self.rt)]
        claim = {
            "apiVersion": "v1",
            "kind": "PersistentVolumeClaim",
            "metadata": claim_meta,
            "spec": deep(template.get("spec") or {}),
        }
        try:
            self.store.create(self.kinds.pvc, claim)
        except ApiError as error:
            if error.code != 409:  # created meanwhile: fine
                raise
        return name

    def _write_status(
        self, sts: dict[str, Any], pods: dict[int, dict], revision: str, want: int
    ) -> None:
        status = deep(sts.get("status") or {})
        updated = sum(1 for p in pods.values() if labels(p).get(REVISION_LABEL) == revision)
        current_revision = status.get("currentRevision") or revision
        if updated == want == len(pods):
            current_revision = revision
        current = sum(1 for p in pods.values() if labels(p).get(REVISION_LABEL) == current_revision)
        ready = sum(1 for p in pods.values() if is_ready(p))
        status.update(
            observedGeneration=sts["metadata"].get("generation", 1),
            replicas=len(pods),
            readyReplicas=ready,
            currentReplicas=current,
            updatedReplicas=updated,
            availableReplicas=ready,
            currentRevision=current_revision,
            updateRevision=revision,
            collisionCount=0,
        )
        status = omit_zeros(status, "readyReplicas", "currentReplicas", "updatedReplicas")
        self.store.set_status(self.rt, *key_of(sts), status)
