"""Deployments and their ReplicaSets.

A Deployment owns one ReplicaSet per pod template, named ``<deployment>-<template hash>``
with the ``pod-template-hash`` label, exactly what ``helm --wait`` and ``kubectl rollout
status`` look for. The rollout is simplified: RollingUpdate scales the new ReplicaSet to the
full count at once and the old ones to zero once the new one is fully Ready; Recreate scales
the old ones to zero first. ``minReadySeconds`` is not modelled (Ready counts as available).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from sandbox.kube.objects import (
    Key,
    annotations,
    condition,
    controller_key,
    deep,
    delete_quietly,
    is_ready,
    key_of,
    labels,
    merge_conditions,
    omit_zeros,
    owned,
    owner_reference,
    template_hash,
)
from sandbox.kube.resources import ResourceType
from sandbox.kube.store import Event
from sandbox.kube.workloads import (
    REFUSED_RETRY_SECONDS,
    WorkloadReconciler,
    desired_replicas,
    pod_from_template,
    resolve_scaled,
)

HASH_LABEL = "pod-template-hash"
REVISION = "deployment.kubernetes.io/revision"


def _revision(rs: dict[str, Any]) -> int:
    try:
        return int(annotations(rs).get(REVISION, "0"))
    except ValueError:
        return 0


def _removal_order(pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Which pods a shrinking ReplicaSet removes first: unbound, then unready, then newest."""
    newest_first = sorted(
        pods, key=lambda p: p["metadata"].get("creationTimestamp", ""), reverse=True
    )
    return sorted(newest_first, key=lambda p: (bool(p["spec"].get("nodeName")), is_ready(p)))


def _condition(kind: str, state: tuple[str, str, str]) -> dict[str, str]:
    status, reason, message = state
    return {"type": kind, "status": status, "reason": reason, "message": message}


class ReplicaSets(WorkloadReconciler):
    name = "replicasets"

    @property
    def rt(self) -> ResourceType:
        return self.kinds.replica_set

    def reconcile(self, key: Key) -> float | None:
        rs = self.store.get(self.rt, *key)
        if rs is None:
            return None
        pods = self.live_pods(rs)
        want = desired_replicas(rs)
        template = rs["spec"].get("template") or {}
        refused = False
        for _ in range(want - len(pods)):
            pod = pod_from_template(template, rs, self.rt)
            pod["metadata"]["generateName"] = f"{rs['metadata']['name']}-"
            created = self.create_pod(pod)
            if created is None:
                refused = True
                break
            pods.append(created)
        if len(pods) > want:
            pods = _removal_order(pods)
            for pod in pods[: len(pods) - want]:
                delete_quietly(self.store, self.kinds.pod, *key_of(pod))
            pods = pods[len(pods) - want :]
        template_labels = (template.get("metadata") or {}).get("labels") or {}
        ready = sum(1 for p in pods if is_ready(p))
        status = deep(rs.get("status") or {})
        status.update(
            replicas=len(pods),
            fullyLabeledReplicas=sum(
                1 for p in pods if template_labels.items() <= labels(p).items()
            ),
            readyReplicas=ready,
            availableReplicas=ready,
            observedGeneration=rs["metadata"].get("generation", 1),
        )
        status = omit_zeros(status, "fullyLabeledReplicas", "readyReplicas", "availableReplicas")
        self.store.set_status(self.rt, *key, status)
        return REFUSED_RETRY_SECONDS if refused else None


class Deployments(WorkloadReconciler):
    name = "deployments"

    @property
    def rt(self) -> ResourceType:
        return self.kinds.deployment

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == self.rt:
            return [key_of(event.obj)]
        if event.resource == self.kinds.replica_set:
            owner = controller_key(event.obj, self.rt.kind)
            return [owner] if owner else []
        return ()

    def reconcile(self, key: Key) -> float | None:
        dep = self.store.get(self.rt, *key)
        if dep is None:
            return None
        sets = owned(self.store, self.kinds.replica_set, dep)
        template = dep["spec"].get("template") or {}
        wanted_hash = template_hash(template)
        new = next((rs for rs in sets if labels(rs).get(HASH_LABEL) == wanted_hash), None)
        old = [rs for rs in sets if rs is not new]
        want = desired_replicas(dep)
        if not dep["spec"].get("paused"):
            newest = max((_revision(rs) for rs in sets), default=0)
            if new is None:
                new = self._create_replica_set(dep, wanted_hash, newest + 1)
            elif _revision(new) < newest:  # a rollback brings an old template back
                new = self._scale(new, desired_replicas(new), revision=newest + 1)
            new, old = self._roll(dep, new, old, want)
        return self._write_status(dep, new, [new, *old] if new else old, want)

    def _roll(
        self, dep: dict[str, Any], new: dict[str, Any], old: list[dict[str, Any]], want: int
    ) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        strategy = (dep["spec"].get("strategy") or {}).get("type") or "RollingUpdate"
        if strategy == "Recreate":
            old = [self._scale(rs, 0) for rs in old]
            old_running = any((rs.get("status") or {}).get("replicas", 0) for rs in old)
            return self._scale(new, 0 if old_running else want), old
        new = self._scale(new, want)
        status = new.get("status") or {}
        new_ready = (
            status.get("observedGeneration") == new["metadata"].get("generation")
            and status.get("readyReplicas", 0) >= want
        )
        if new_ready:
            old = [self._scale(rs, 0) for rs in old]
        return new, old

    def _create_replica_set(self, dep: dict[str, Any], pod_hash: str, revision: int) -> dict:
        template = deep(dep["spec"].get("template") or {})
        template.setdefault("metadata", {}).setdefault("labels", {})[HASH_LABEL] = pod_hash
        selector = deep(dep["spec"].get("selector") or {})
        selector.setdefault("matchLabels", {})[HASH_LABEL] = pod_hash
        rs_labels = {**template["metadata"]["labels"]}
        rs = {
            "apiVersion": self.kinds.replica_set.api_version,
            "kind": "ReplicaSet",
            "metadata": {
                "name": f"{dep['metadata']['name']}-{pod_hash}",
                "namespace": dep["metadata"]["namespace"],
                "labels": rs_labels,
                "annotations": {REVISION: str(revision)},
                "ownerReferences": [owner_reference(dep, self.rt)],
            },
            "spec": {"replicas": 0, "selector": selector, "template": template},
        }
        return self.store.create(self.kinds.replica_set, rs)

    def _scale(self, rs: dict[str, Any], replicas: int, revision: int | None = None) -> dict:
        if rs["spec"].get("replicas") == replicas and revision is None:
            return rs
        updated = deep(rs)
        updated["spec"]["replicas"] = replicas
        if revision is not None:
            updated["metadata"].setdefault("annotations", {})[REVISION] = str(revision)
        return self.store.replace(self.kinds.replica_set, updated)

    def _write_status(
        self, dep: dict[str, Any], new: dict[str, Any] | None, sets: list[dict], want: int
    ) -> float | None:
        def total(field: str, items: list[dict]) -> int:
            return sum((rs.get("status") or {}).get(field, 0) for rs in items)

        replicas = total("replicas", sets)
        updated = total("replicas", [new]) if new else 0
        available = total("availableReplicas", sets)
        spec = dep["spec"]
        strategy = spec.get("strategy") or {}
        max_unavailable = 0
        if (strategy.get("type") or "RollingUpdate") == "RollingUpdate":
            rolling = strategy.get("rollingUpdate") or {}
            max_unavailable = resolve_scaled(rolling.get("maxUnavailable", "25%"), want, False)
        status = deep(dep.get("status") or {})
        previous = status.get("conditions")
        if available >= want - max_unavailable:
            availability = (
                "True",
                "MinimumReplicasAvailable",
                "Deployment has minimum availability.",
            )
        else:
            availability = (
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.",
            )
        progress, recheck = self._progress(dep, new, replicas, updated, available, want)
        status["conditions"] = merge_conditions(
            previous,
            [
                _condition("Available", availability),
                _condition("Progressing", progress),
            ],
            update_time=True,
        )
        status.update(
            observedGeneration=dep["metadata"].get("generation", 1),
            replicas=replicas,
            updatedReplicas=updated,
            readyReplicas=total("readyReplicas", sets),
            availableReplicas=available,
            unavailableReplicas=max(sum(desired_replicas(rs) for rs in sets) - available, 0),
        )
        status = omit_zeros(
            status,
            "replicas",
            "updatedReplicas",
            "readyReplicas",
            "availableReplicas",
            "unavailableReplicas",
        )
        self.store.set_status(self.rt, *key_of(dep), status)
        return recheck

    def _progress(
        self,
        dep: dict[str, Any],
        new: dict[str, Any] | None,
        replicas: int,
        updated: int,
        available: int,
        want: int,
    ) -> tuple[tuple[str, str, str], float | None]:
        """The Progressing condition and when to look again for the progress deadline."""
        if dep["spec"].get("paused"):
            return ("Unknown", "DeploymentPaused", "Deployment is paused"), None
        name = new["metadata"]["name"] if new else dep["metadata"]["name"]
        if updated == want and replicas == want and available == want:
            return (
                "True",
                "NewReplicaSetAvailable",
                f'ReplicaSet "{name}" has successfully progressed.',
            ), None
        progressing = ("True", "ReplicaSetUpdated", f'ReplicaSet "{name}" is progressing.')
        deadline = dep["spec"].get("progressDeadlineSeconds")
        old = condition((dep.get("status") or {}).get("conditions"), "Progressing") or {}
        if deadline is None:
            return progressing, None
        same_rollout = (dep.get("status") or {}).get("observedGeneration") == dep["metadata"].get(
            "generation"
        )
        if old.get("reason") == "ProgressDeadlineExceeded" and same_rollout:
            return (old["status"], old["reason"], old.get("message", "")), None
        since = old.get("lastUpdateTime") if old.get("reason") == "ReplicaSetUpdated" else None
        if since is None:
            return progressing, float(deadline)
        started = datetime.strptime(since, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        left = int(deadline) - (datetime.now(UTC) - started).total_seconds()
        if left <= 0:
            return (
                "False",
                "ProgressDeadlineExceeded",
                f'ReplicaSet "{name}" has timed out progressing.',
            ), None
        return progressing, left
