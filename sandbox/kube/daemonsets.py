"""DaemonSets: one pod on every Ready node the pod template fits (taints, nodeSelector,
required node affinity), bound to its node directly. A template change replaces pods one
node at a time while the others are Ready (maxUnavailable is taken as 1).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sandbox.kube.objects import (
    Key,
    deep,
    delete_quietly,
    is_ready,
    key_of,
    labels,
    omit_zeros,
    template_hash,
)
from sandbox.kube.resources import ResourceType
from sandbox.kube.scheduling import node_fits
from sandbox.kube.store import Event
from sandbox.kube.workloads import REFUSED_RETRY_SECONDS, WorkloadReconciler, pod_from_template

REVISION_LABEL = "controller-revision-hash"
GENERATION_LABEL = "pod-template-generation"


class DaemonSets(WorkloadReconciler):
    name = "daemonsets"

    @property
    def rt(self) -> ResourceType:
        return self.kinds.daemon_set

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == self.kinds.node:
            return self._all_keys(self.rt)
        return super().keys_for(event)

    def reconcile(self, key: Key) -> float | None:
        ds = self.store.get(self.rt, *key)
        if ds is None:
            return None
        template = ds["spec"].get("template") or {}
        revision = template_hash(template)
        nodes, _ = self.store.list(self.kinds.node)
        eligible = {
            n["metadata"]["name"] for n in nodes if node_fits(template.get("spec") or {}, n)
        }
        on_node: dict[str, dict[str, Any]] = {}
        for pod in self.live_pods(ds):
            node = pod["spec"].get("nodeName")
            if node in eligible and node not in on_node:
                on_node[node] = pod
            else:  # misplaced, or a duplicate
                delete_quietly(self.store, self.kinds.pod, *key_of(pod))
        refused = False
        for node in sorted(eligible - on_node.keys()):
            created = self._create_pod(ds, node, revision)
            if created is None:
                refused = True
                break
            on_node[node] = created
        self._roll(ds, on_node, revision)
        self._write_status(ds, on_node, len(eligible), revision)
        if refused:
            return REFUSED_RETRY_SECONDS
        return None

    def _create_pod(self, ds: dict[str, Any], node: str, revision: str) -> dict[str, Any] | None:
        extra = {
            REVISION_LABEL: revision,
            GENERATION_LABEL: str(ds["metadata"].get("generation", 1)),
        }
        pod = pod_from_template(ds["spec"].get("template") or {}, ds, self.rt, extra)
        pod["spec"]["nodeName"] = node
        pod["metadata"]["generateName"] = f"{ds['metadata']['name']}-"
        return self.create_pod(pod)

    def _roll(self, ds: dict[str, Any], on_node: dict[str, dict], revision: str) -> None:
        strategy = (ds["spec"].get("updateStrategy") or {}).get("type") or "RollingUpdate"
        if strategy != "RollingUpdate" or not all(is_ready(p) for p in on_node.values()):
            return
        stale = sorted(n for n, p in on_node.items() if labels(p).get(REVISION_LABEL) != revision)
        if stale:
            delete_quietly(self.store, self.kinds.pod, *key_of(on_node.pop(stale[0])))

    def _write_status(
        self, ds: dict[str, Any], on_node: dict[str, dict], desired: int, revision: str
    ) -> None:
        ready = sum(1 for p in on_node.values() if is_ready(p))
        status = deep(ds.get("status") or {})
        status.update(
            observedGeneration=ds["metadata"].get("generation", 1),
            desiredNumberScheduled=desired,
            currentNumberScheduled=len(on_node),
            numberMisscheduled=0,
            numberReady=ready,
            numberAvailable=ready,
            numberUnavailable=max(desired - ready, 0),
            updatedNumberScheduled=sum(
                1 for p in on_node.values() if labels(p).get(REVISION_LABEL) == revision
            ),
        )
        status = omit_zeros(
            status, "numberAvailable", "numberUnavailable", "updatedNumberScheduled"
        )
        self.store.set_status(self.rt, *key_of(ds), status)
