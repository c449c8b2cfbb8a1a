"""Nodes of the EKS managed node groups, kept in line with the local AWS.

Every ~0.5 s the ACTIVE node groups are read from the cluster source; each gets
``desired_size`` Ready nodes, spread over the zones like an Auto Scaling group does. Nodes of
a group that shrank (newest first) or disappeared are deleted together with their pods,
which the workload controllers then recreate elsewhere. Label and taint changes of a group
are applied to its nodes, as EKS does. Without the cluster's CNI (the vpc-cni add-on) a
node is NotReady and tainted ``node.kubernetes.io/not-ready``, as the kubelet and the node
lifecycle controller make it.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from typing import Any

from sandbox.cluster import NodeGroupInfo
from sandbox.kube.instance_types import instance_type
from sandbox.kube.objects import (
    REGION,
    ZONES,
    Key,
    annotations,
    deep,
    delete_quietly,
    labels,
    now,
    stable_hex,
    stable_uuid,
)
from sandbox.kube.reconciler import Context, Reconciler
from sandbox.kube.store import Event

log = logging.getLogger(__name__)

NODEGROUP_LABEL = "eks.amazonaws.com/nodegroup"
CLUSTER_ANNOTATION = "sandbox.eks.amazonaws.com/cluster"  # tells clusters' groups apart
REGION_ANNOTATION = "sandbox.eks.amazonaws.com/region"  # the cluster's, for its pods' AWS
KUBELET_VERSION = "v1.32.3-eks-473151a"
POLL_SECONDS = 0.5
TAINT_EFFECTS = {
    "NO_SCHEDULE": "NoSchedule",
    "NO_EXECUTE": "NoExecute",
    "PREFER_NO_SCHEDULE": "PreferNoSchedule",
}


NOT_READY_TAINT = {"key": "node.kubernetes.io/not-ready", "effect": "NoSchedule"}
NO_NETWORK = (
    "container runtime network not ready: NetworkReady=false reason:NetworkPluginNotReady "
    "message:Network plugin returns error: cni plugin not initialized"
)


def ready_condition(group: NodeGroupInfo) -> tuple[str, str, str, str]:
    if group.network_ready:
        return ("Ready", "True", "KubeletReady", "kubelet is posting ready status")
    return ("Ready", "False", "KubeletNotReady", NO_NETWORK)


def node_taints(group: NodeGroupInfo) -> list[dict[str, str]]:
    taints = [] if group.network_ready else [dict(NOT_READY_TAINT)]
    for taint in group.taints:
        effect = TAINT_EFFECTS.get(taint.get("effect", ""), taint.get("effect", ""))
        item = {"key": taint["key"], "effect": effect}
        if taint.get("value"):
            item["value"] = taint["value"]
        taints.append(item)
    return taints


def node_labels(group: NodeGroupInfo, name: str, zone: str) -> dict[str, str]:
    itype = instance_type(group.instance_types[0] if group.instance_types else "")
    return {
        **group.labels,
        "beta.kubernetes.io/arch": itype.arch,
        "beta.kubernetes.io/instance-type": itype.name,
        "beta.kubernetes.io/os": "linux",
        "eks.amazonaws.com/capacityType": group.capacity_type,
        NODEGROUP_LABEL: group.name,
        "eks.amazonaws.com/nodegroup-image": "ami-"
        + stable_hex(group.cluster, group.name, length=17),
        "failure-domain.beta.kubernetes.io/region": REGION,
        "failure-domain.beta.kubernetes.io/zone": zone,
        "kubernetes.io/arch": itype.arch,
        "kubernetes.io/hostname": name,
        "kubernetes.io/os": "linux",
        "node.kubernetes.io/instance-type": itype.name,
        "topology.kubernetes.io/region": REGION,
        "topology.kubernetes.io/zone": zone,
    }


def build_node(group: NodeGroupInfo, ip: str, zone: str) -> dict[str, Any]:
    name = f"ip-{ip.replace('.', '-')}.ec2.internal"
    itype = instance_type(group.instance_types[0] if group.instance_types else "")
    instance_id = "i-" + stable_hex(group.cluster, name, length=17)
    spec: dict[str, Any] = {"providerID": f"aws:///{zone}/{instance_id}"}
    taints = node_taints(group)
    if taints:
        spec["taints"] = taints
    joined = now()  # heartbeats are not simulated: they would rewrite every node constantly
    conditions = [
        ("MemoryPressure", "False", "KubeletHasSufficientMemory", "sufficient memory available"),
        ("DiskPressure", "False", "KubeletHasNoDiskPressure", "no disk pressure"),
        ("PIDPressure", "False", "KubeletHasSufficientPID", "sufficient PID available"),
        ready_condition(group),
    ]
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {
            "name": name,
            "labels": node_labels(group, name, zone),
            "annotations": {
                CLUSTER_ANNOTATION: group.cluster,
                REGION_ANNOTATION: group.region,
                "alpha.kubernetes.io/provided-node-ip": ip,
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": spec,
        "status": {
            "capacity": itype.capacity(),
            "allocatable": itype.allocatable(),
            "conditions": [
                {
                    "type": kind,
                    "status": status,
                    "reason": reason,
                    "message": message,
                    "lastHeartbeatTime": joined,
                    "lastTransitionTime": joined,
                }
                for kind, status, reason, message in conditions
            ],
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "InternalDNS", "address": name},
                {"type": "Hostname", "address": name},
            ],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "architecture": itype.arch,
                "bootID": stable_uuid("boot", name),
                "containerRuntimeVersion": "containerd://1.7.27",
                "kernelVersion": "6.1.131-143.221.amzn2023.x86_64"
                if itype.arch == "amd64"
                else "6.1.131-143.221.amzn2023.aarch64",
                "kubeProxyVersion": KUBELET_VERSION,
                "kubeletVersion": KUBELET_VERSION,
                "machineID": stable_hex("machine", name),
                "operatingSystem": "linux",
                "osImage": "Amazon Linux 2023.7.20250414",
                "systemUUID": "ec2" + stable_uuid("system", name)[3:],
            },
        },
    }


def _group_of(node: dict[str, Any]) -> tuple[str, str] | None:
    group = labels(node).get(NODEGROUP_LABEL)
    cluster = annotations(node).get(CLUSTER_ANNOTATION)
    return (cluster, group) if group and cluster is not None else None


def _internal_ip(node: dict[str, Any]) -> str | None:
    for address in (node.get("status") or {}).get("addresses") or []:
        if address.get("type") == "InternalIP":
            return address.get("address")
    return None


class NodeGroups(Reconciler):
    name = "nodes"
    KEY: Key = ("", "node-groups")

    def __init__(self, ctx: Context) -> None:
        super().__init__(ctx)
        self._launched: Counter[tuple[str, str]] = Counter()  # nodes started per group

    def resume(self) -> Iterable[Key]:
        nodes, _ = self.store.list(self.kinds.node)
        for node in nodes:
            ip = _internal_ip(node)
            if ip:
                self.ctx.vpc.take(ip)
        return [self.KEY]

    def keys_for(self, event: Event) -> Iterable[Key]:
        # a managed node deleted by hand is replaced, as its Auto Scaling group would
        if event.resource == self.kinds.node and event.type == "DELETED":
            return [self.KEY] if _group_of(event.obj) else []
        return ()

    def reconcile(self, key: Key) -> float | None:
        source = self.ctx.cluster_source
        if source is None:
            return None
        try:
            groups = source.node_groups()
        except Exception:
            log.exception("reading node groups failed; keeping the nodes as they are")
            return POLL_SECONDS
        nodes, _ = self.store.list(self.kinds.node)
        members: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for node in nodes:
            group = _group_of(node)
            if group:
                members.setdefault(group, []).append(node)
        for group in groups:
            have = members.pop((group.cluster, group.name), [])
            self._converge(group, have)
        for leftover in members.values():
            for node in leftover:
                self._remove(node)
        return POLL_SECONDS

    def _converge(self, group: NodeGroupInfo, have: list[dict[str, Any]]) -> None:
        have.sort(key=lambda n: (n["metadata"].get("creationTimestamp", ""), n["metadata"]["name"]))
        for node in have[group.desired_size :]:
            self._remove(node)
        have = have[: group.desired_size]
        for node in have:
            self._update_metadata(group, node)
        zones = Counter({zone: 0 for zone in ZONES})
        zones.update(labels(n).get("topology.kubernetes.io/zone", "") for n in have)
        for _ in range(group.desired_size - len(have)):
            zone = min(ZONES, key=lambda z: (zones[z], z))
            zones[zone] += 1
            self._launch(group, zone)

    def _launch(self, group: NodeGroupInfo, zone: str) -> None:
        serial = self._launched[(group.cluster, group.name)]
        self._launched[(group.cluster, group.name)] += 1
        ip = self.ctx.vpc.pick(f"{group.cluster}/{group.name}/{serial}", ZONES.index(zone))
        node = build_node(group, ip, zone)
        self.store.create(self.kinds.node, node)
        log.info("node %s of node group %s joined", node["metadata"]["name"], group.name)

    def _update_metadata(self, group: NodeGroupInfo, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        zone = labels(node).get("topology.kubernetes.io/zone", ZONES[0])
        wanted_labels = node_labels(group, name, zone)
        wanted_taints = node_taints(group)
        # labels set by others (e.g. kubectl label) stay; the group's own are enforced
        merged = {**labels(node), **wanted_labels}
        if merged != labels(node) or (node.get("spec") or {}).get("taints", []) != wanted_taints:
            updated = deep(node)
            updated["metadata"]["labels"] = merged
            if wanted_taints:
                updated["spec"]["taints"] = wanted_taints
            else:
                updated["spec"].pop("taints", None)
            node = self.store.replace(self.kinds.node, updated)
        kind, status, reason, message = ready_condition(group)
        conditions = (node.get("status") or {}).get("conditions", [])
        if all(c["status"] == status for c in conditions if c["type"] == kind):
            return
        updated = deep(node)
        for condition in updated["status"]["conditions"]:
            if condition["type"] == kind:
                condition.update(
                    status=status, reason=reason, message=message, lastTransitionTime=now()
                )
        self.store.replace(self.kinds.node, updated, subresource="status")

    def _remove(self, node: dict[str, Any]) -> None:
        name = node["metadata"]["name"]
        delete_quietly(self.store, self.kinds.node, "", name)
        ip = _internal_ip(node)
        if ip:
            self.ctx.vpc.release(ip)
        pods, _ = self.store.list(self.kinds.pod, field_selector=f"spec.nodeName={name}")
        for pod in pods:
            delete_quietly(
                self.store,
                self.kinds.pod,
                pod["metadata"]["namespace"],
                name=pod["metadata"]["name"],
            )
        log.info("node %s left (node group scaled down or deleted)", name)


def cluster_of(node: dict[str, Any]) -> tuple[str, str] | None:
    """(region, cluster) of the EKS cluster a node joined, None for a node of no group."""
    cluster = annotations(node).get(CLUSTER_ANNOTATION)
    return (annotations(node).get(REGION_ANNOTATION, REGION), cluster) if cluster else None
