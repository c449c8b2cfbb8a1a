"""The scheduler and the kubelets: pods get a node, then start, get Ready, and maybe finish.

A pod is bound to the least loaded Ready node it fits on; with none it stays Pending as
Unschedulable and is retried when nodes or pods change. Once bound it is ContainerCreating
for the latency "pod_ready", then Running and Ready, unless the fault "pods-never-ready"
strikes its release (then it runs but never passes its readiness probe). Pods that run to
completion (restartPolicy Never or OnFailure, as Job pods) succeed after the latency "job".
Pods that run Prefect run as local processes instead, and follow them (process_pods.py).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sandbox.kube import pod_env, process_pods
from sandbox.kube.faults import FaultLatch
from sandbox.kube.nodes import cluster_of
from sandbox.kube.objects import (
    ZONES,
    Key,
    annotations,
    controller_ref,
    deep,
    delete_quietly,
    is_ready,
    is_terminal,
    key_of,
    labels,
    merge_conditions,
    now,
    stable_hex,
    uid,
)
from sandbox.kube.pod_commands import runs_processes
from sandbox.kube.reconciler import Context, Reconciler
from sandbox.kube.scheduling import pick_node, unschedulable_message
from sandbox.kube.store import ApiError, Event

RELEASE_LABEL = "app.kubernetes.io/instance"
RELEASE_ANNOTATION = "meta.helm.sh/release-name"
RECHECK_SECONDS = 0.5  # how often a struck or unschedulable pod is looked at again
RETRY_SECONDS = 0.1  # after a write conflict


def _zone_index(node: dict[str, Any]) -> int:
    zone = labels(node).get("topology.kubernetes.io/zone", "")
    return ZONES.index(zone) if zone in ZONES else 0


def _host_ip(node: dict[str, Any]) -> str:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return address["address"]
    return ""


def _image_id(image: str) -> str:
    repository = image.split("@", 1)[0]
    if ":" in repository.rsplit("/", 1)[-1]:
        repository = repository.rsplit(":", 1)[0]
    return f"{repository}@sha256:{stable_hex(image, length=64)}"


class PodLifecycle(Reconciler):
    name = "pods"

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._placement: dict[Key, str] = {}  # live pods bound to a node
        self._unschedulable: set[Key] = set()
        self._bound_at: dict[str, float] = {}  # pod uid -> wall time it got its node
        self._running_at: dict[str, float] = {}
        self._pod_ips: dict[str, str] = {}  # pod uid -> VPC address it was given
        self._never_ready = FaultLatch(ctx.settings.faults, "pods-never-ready")

    # -- events ---------------------------------------------------------------------------

    def resume(self) -> Iterable[Key]:
        pods, _ = self.store.list(self.kinds.pod)
        for pod in pods:
            self._track(pod)
            ip = (pod.get("status") or {}).get("podIP")
            if ip and not (pod.get("spec") or {}).get("hostNetwork"):
                self._pod_ips[uid(pod)] = ip
                self.ctx.vpc.take(ip)
        return [key_of(pod) for pod in pods]

    def keys_for(self, event: Event) -> Iterable[Key]:
        if event.resource == self.kinds.pod:
            key = key_of(event.obj)
            if event.type == "DELETED":
                self._forget(key, event.obj)
                return list(self._unschedulable)  # freed capacity
            self._track(event.obj)
            return [key]
        if event.resource == self.kinds.node:
            if event.type == "DELETED":
                node = event.obj["metadata"]["name"]
                return [key for key, name in self._placement.items() if name == node]
            return list(self._unschedulable)
        return ()

    def _track(self, pod: dict[str, Any]) -> None:
        node = (pod.get("spec") or {}).get("nodeName")
        key = key_of(pod)
        if node and not is_terminal(pod):
            self._placement[key] = node
        else:
            self._placement.pop(key, None)

    def _forget(self, key: Key, pod: dict[str, Any]) -> None:
        self._placement.pop(key, None)
        self._unschedulable.discard(key)
        pod_uid = uid(pod)
        self._bound_at.pop(pod_uid, None)
        self._running_at.pop(pod_uid, None)
        self._never_ready.forget(pod_uid)
        ip = self._pod_ips.pop(pod_uid, None)
        if ip:
            self.ctx.vpc.release(ip)
        if self.ctx.runtime is not None:
            self.ctx.runtime.remove_pod(pod_uid)

    # -- reconcile ------------------------------------------------------------------------

    def reconcile(self, key: Key) -> float | None:
        namespace, name = key
        pod = self.store.get(self.kinds.pod, namespace, name)
        if pod is None or is_terminal(pod):
            return None
        node_name = pod["spec"].get("nodeName")
        if not node_name:
            return self._schedule(pod)
        node = self.store.get(self.kinds.node, None, node_name)
        if node is None:
            # bound to a node that is gone: the pod garbage collector removes such pods
            delete_quietly(self.store, self.kinds.pod, namespace, name)
            return None
        return self._run(pod, node)

    def _schedule(self, pod: dict[str, Any]) -> float | None:
        key = key_of(pod)
        nodes, _ = self.store.list(self.kinds.node)
        node = pick_node(pod["spec"], nodes, Counter(self._placement.values()))
        if node is None:
            self._unschedulable.add(key)
            message = unschedulable_message(pod["spec"], nodes)
            status = deep(pod.get("status") or {})
            status["phase"] = "Pending"
            status["conditions"] = merge_conditions(
                status.get("conditions"),
                [
                    {
                        "type": "PodScheduled",
                        "status": "False",
                        "reason": "Unschedulable",
                        "message": message,
                    }
                ],
            )
            self.store.set_status(self.kinds.pod, *key, status)
            return RECHECK_SECONDS
        self._unschedulable.discard(key)
        bound = deep(pod)
        bound["spec"]["nodeName"] = node["metadata"]["name"]
        try:
            bound = self.store.replace(self.kinds.pod, bound)
        except ApiError as error:
            if error.code in (404, 409):
                return RETRY_SECONDS
            raise
        self._track(bound)
        return self._run(bound, node)

    def _run(self, pod: dict[str, Any], node: dict[str, Any]) -> float | None:
        pod_uid = uid(pod)
        latency = self.ctx.settings.latency
        current = time.time()
        bound_at = self._bound_at.setdefault(pod_uid, current)
        left = latency.seconds("pod_ready") - (current - bound_at)
        if left > 0:
            self._write(pod, self._creating_status(pod, node))
            return left
        if self.ctx.runtime is not None and runs_processes(pod):
            return self._run_processes(pod, node)
        ready = is_ready(pod) or not self._never_ready.struck(pod_uid, self._subject(pod))
        running_at = self._running_at.setdefault(pod_uid, current)
        completes = pod["spec"].get("restartPolicy", "Always") != "Always"
        if completes and ready:
            left = latency.seconds("job") - (current - running_at)
            if left <= 0:
                self._write(pod, self._finished_status(pod, node))
                return None
            self._write(pod, self._running_status(pod, node, ready=True))
            return left
        self._write(pod, self._running_status(pod, node, ready=ready))
        return None if ready else RECHECK_SECONDS

    def _run_processes(self, pod: dict[str, Any], node: dict[str, Any]) -> float | None:
        assert self.ctx.runtime is not None
        try:
            runs = process_pods.run_containers(
                self.ctx.runtime, pod, cluster_of(node), lambda c: self._env(pod, node, c)
            )
        except pod_env.EnvError as error:
            status = self._creating_status(pod, node)
            for item in status["containerStatuses"]:
                item["state"] = {
                    "waiting": {"reason": "CreateContainerConfigError", "message": str(error)}
                }
            self._write(pod, status)
            return RECHECK_SECONDS
        phase = process_pods.outcome(pod, runs)
        if phase is not None:
            status = self._finished_status(pod, node, phase)
            process_pods.apply_runs(status["containerStatuses"], runs, always=False)
            self._write(pod, status)
            return None
        ready = process_pods.all_running(runs)
        status = self._running_status(pod, node, ready=ready)
        process_pods.apply_runs(
            status["containerStatuses"], runs, process_pods.restarts_always(pod)
        )
        self._write(pod, status)
        return process_pods.POLL_SECONDS

    def _env(
        self, pod: dict[str, Any], node: dict[str, Any], container: dict[str, Any]
    ) -> dict[str, str]:
        assert self.ctx.runtime is not None
        source, cluster = self.ctx.cluster_source, cluster_of(node)
        return pod_env.compose(
            pod,
            container,
            self.ctx.runtime.pod_dir(uid(pod)),
            self._lookup,
            {"status.podIP": self._pod_ip(pod, node), "status.hostIP": _host_ip(node)},
            cluster,
            source.oidc_issuer(*cluster) if source and cluster else None,
            source.aws_endpoint() if source else None,
            self.ctx.kubeconfig,
        )

    def _lookup(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        rt = {
            "Secret": self.kinds.secret,
            "ConfigMap": self.kinds.config_map,
            "ServiceAccount": self.kinds.service_account,
        }[kind]
        return self.store.get(rt, namespace, name)

    def _write(self, pod: dict[str, Any], status: dict[str, Any]) -> None:
        if status != pod.get("status"):
            self.store.set_status(self.kinds.pod, *key_of(pod), status)

    # -- the release a pod belongs to, for faults ---------------------------------------

    def _subject(self, pod: dict[str, Any]) -> str:
        namespace = pod["metadata"].get("namespace", "")
        release = labels(pod).get(RELEASE_LABEL) or self._owner_release(pod)
        return f"{namespace}/{release or pod['metadata']['name']}"

    def _owner_release(self, obj: dict[str, Any]) -> str | None:
        namespace = obj["metadata"].get("namespace")
        for _ in range(4):  # pod -> ReplicaSet -> Deployment is the longest chain here
            ref = controller_ref(obj)
            if ref is None:
                return None
            rt = self.store.registry.by_kind(ref.get("apiVersion", ""), ref.get("kind", ""))
            owner = rt and self.store.get(rt, namespace if rt.namespaced else None, ref["name"])
            if not owner:
                return None
            release = annotations(owner).get(RELEASE_ANNOTATION)
            if release:
                return release
            obj = owner
        return None

    # -- statuses -------------------------------------------------------------------------

    def _base_status(self, pod: dict[str, Any], node: dict[str, Any], phase: str) -> dict:
        status = deep(pod.get("status") or {})
        host_ip = _host_ip(node)
        status["phase"] = phase
        status["hostIP"] = host_ip
        status["hostIPs"] = [{"ip": host_ip}]
        status.setdefault("startTime", now())
        return status

    def _pod_ip(self, pod: dict[str, Any], node: dict[str, Any]) -> str:
        if pod["spec"].get("hostNetwork"):
            return _host_ip(node)
        pod_uid = uid(pod)
        if pod_uid not in self._pod_ips:
            self._pod_ips[pod_uid] = self.ctx.vpc.pick(pod_uid, _zone_index(node))
        return self._pod_ips[pod_uid]

    def _conditions(self, status: dict, ready: str, reason: str | None, message: str = "") -> list:
        pending = {"status": ready}
        if reason:
            pending.update(reason=reason, message=message)
        return merge_conditions(
            status.get("conditions"),
            [
                {"type": "PodReadyToStartContainers", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "Ready", **pending},
                {"type": "ContainersReady", **pending},
                {"type": "PodScheduled", "status": "True"},
            ],
        )

    def _container_statuses(self, pod: dict[str, Any], state: str, ready: bool) -> list[dict]:
        """Statuses of the pod's containers in ``state``: waiting, running or terminated."""
        previous = {
            c.get("name"): c for c in (pod.get("status") or {}).get("containerStatuses") or []
        }
        statuses = []
        for container in pod["spec"].get("containers") or []:
            name = container.get("name", "")
            image = container.get("image", "")
            old_state = previous.get(name, {}).get("state") or {}
            started_at = (old_state.get("running") or {}).get("startedAt") or now()
            item: dict[str, Any] = {
                "name": name,
                "image": image,
                "imageID": "",
                "ready": ready,
                "restartCount": 0,
                "started": state == "running",
                "state": {"waiting": {"reason": "ContainerCreating"}},
            }
            if state != "waiting":
                item["imageID"] = _image_id(image)
                item["containerID"] = "containerd://" + stable_hex(uid(pod), name, length=64)
                item["state"] = {"running": {"startedAt": started_at}}
            if state == "terminated":
                finished_at = (old_state.get("terminated") or {}).get("finishedAt") or now()
                item["state"] = {
                    "terminated": {
                        "exitCode": 0,
                        "reason": "Completed",
                        "startedAt": started_at,
                        "finishedAt": finished_at,
                    }
                }
            statuses.append(item)
        return statuses

    def _init_statuses(self, pod: dict[str, Any]) -> list[dict]:
        return [
            {
                "name": c.get("name", ""),
                "image": c.get("image", ""),
                "imageID": _image_id(c.get("image", "")),
                "containerID": "containerd://"
                + stable_hex(uid(pod), "init", c.get("name", ""), length=64),
                "ready": True,
                "restartCount": 0,
                "started": False,
                "state": {"terminated": {"exitCode": 0, "reason": "Completed"}},
            }
            for c in pod["spec"].get("initContainers") or []
        ]

    def _creating_status(self, pod: dict[str, Any], node: dict[str, Any]) -> dict:
        status = self._base_status(pod, node, "Pending")
        status["conditions"] = merge_conditions(
            status.get("conditions"),
            [
                {"type": "PodReadyToStartContainers", "status": "False"},
                {"type": "Initialized", "status": "True"},
                {
                    "type": "Ready",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "message": "containers with unready status",
                },
                {
                    "type": "ContainersReady",
                    "status": "False",
                    "reason": "ContainersNotReady",
                    "message": "containers with unready status",
                },
                {"type": "PodScheduled", "status": "True"},
            ],
        )
        status["containerStatuses"] = self._container_statuses(pod, "waiting", ready=False)
        return status

    def _running_status(self, pod: dict[str, Any], node: dict[str, Any], ready: bool) -> dict:
        status = self._base_status(pod, node, "Running")
        pod_ip = self._pod_ip(pod, node)
        status["podIP"] = pod_ip
        status["podIPs"] = [{"ip": pod_ip}]
        if ready:
            status["conditions"] = self._conditions(status, "True", None)
        else:
            names = ",".join(c.get("name", "") for c in pod["spec"].get("containers") or [])
            message = f"containers with unready status: [{names}]"
            status["conditions"] = self._conditions(status, "False", "ContainersNotReady", message)
        status["containerStatuses"] = self._container_statuses(pod, "running", ready=ready)
        if pod["spec"].get("initContainers"):
            status["initContainerStatuses"] = self._init_statuses(pod)
        return status

    def _finished_status(
        self, pod: dict[str, Any], node: dict[str, Any], phase: str = "Succeeded"
    ) -> dict:
        """The status of a pod that ran to completion: Succeeded, or Failed."""
        status = self._base_status(pod, node, phase)
        reason = "PodCompleted" if phase == "Succeeded" else "PodFailed"
        status["conditions"] = merge_conditions(
            status.get("conditions"),
            [
                {"type": "PodReadyToStartContainers", "status": "False"},
                {"type": "Initialized", "status": "True", "reason": reason},
                {"type": "Ready", "status": "False", "reason": reason},
                {"type": "ContainersReady", "status": "False", "reason": reason},
                {"type": "PodScheduled", "status": "True"},
            ],
        )
        status["containerStatuses"] = self._container_statuses(pod, "terminated", ready=False)
        ip = self._pod_ips.pop(uid(pod), None)
        if ip:
            self.ctx.vpc.release(ip)  # a finished pod's sandbox is gone, and its address free
        return status
