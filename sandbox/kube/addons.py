"""The workloads EKS add-ons run in kube-system, created and removed with the add-ons.

Every ~0.5 s the add-ons are read from the cluster source. An ACTIVE, DEGRADED or UPDATING
add-on gets its objects (created when missing, otherwise left as users changed them); an
add-on that is gone or being deleted loses them. They are ordinary objects, so the workload
controllers run their pods: coredns stays unavailable until nodes join, as on a real cluster.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import Any

from sandbox.kube.objects import REGION, Key, delete_quietly, labels
from sandbox.kube.reconciler import Reconciler
from sandbox.kube.store import ApiError

log = logging.getLogger(__name__)

NAMESPACE = "kube-system"
MANAGED_BY = {"app.kubernetes.io/managed-by": "EKS"}
COMPONENT = "eks.amazonaws.com/component"
RUNNING = ("ACTIVE", "DEGRADED", "UPDATING")
REMOVED = ("DELETING", "CREATE_FAILED")
POLL_SECONDS = 0.5
REGISTRY = f"602401143452.dkr.ecr.{REGION}.amazonaws.com"
KUBE_DNS_IP = "10.100.0.10"
EBS_CSI_VERSION = "v1.41.0"

Manifest = dict[str, Any]

# Add-on pods run on Linux EC2 nodes only, like the real add-ons' affinity says.
_LINUX_EC2 = {
    "nodeAffinity": {
        "requiredDuringSchedulingIgnoredDuringExecution": {
            "nodeSelectorTerms": [
                {
                    "matchExpressions": [
                        {"key": "kubernetes.io/os", "operator": "In", "values": ["linux"]},
                        {
                            "key": "kubernetes.io/arch",
                            "operator": "In",
                            "values": ["amd64", "arm64"],
                        },
                        {
                            "key": "eks.amazonaws.com/compute-type",
                            "operator": "NotIn",
                            "values": ["fargate"],
                        },
                    ]
                }
            ]
        }
    }
}
_EVERYWHERE = [{"operator": "Exists"}]  # node agents tolerate every taint
_CRITICAL = [
    {"key": "CriticalAddonsOnly", "operator": "Exists"},
    {"key": "node-role.kubernetes.io/control-plane", "effect": "NoSchedule"},
]


def _meta(name: str, component: str, extra: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": NAMESPACE,
        "labels": {**MANAGED_BY, COMPONENT: component, **(extra or {})},
    }


def _container(name: str, image: str, ports: list[tuple[str, int, str]] = ()) -> dict:
    container: dict[str, Any] = {"name": name, "image": f"{REGISTRY}/{image}"}
    if ports:
        container["ports"] = [
            {"name": port_name, "containerPort": number, "protocol": protocol}
            for port_name, number, protocol in ports
        ]
    return container


def _workload(
    kind: str,
    name: str,
    component: str,
    selector: dict[str, str],
    pod_spec: dict[str, Any],
    replicas: int | None = None,
) -> Manifest:
    pod_labels = {**selector, COMPONENT: component}
    spec: dict[str, Any] = {
        "selector": {"matchLabels": dict(selector)},
        "template": {"metadata": {"labels": pod_labels}, "spec": pod_spec},
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": kind,
        "metadata": _meta(name, component, selector),
        "spec": spec,
    }


def _service_account(name: str, component: str) -> Manifest:
    return {"apiVersion": "v1", "kind": "ServiceAccount", "metadata": _meta(name, component)}


def vpc_cni() -> list[Manifest]:
    selector = {"k8s-app": "aws-node"}
    pod_spec = {
        "serviceAccountName": "aws-node",
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "tolerations": _EVERYWHERE,
        "affinity": _LINUX_EC2,
        "initContainers": [
            _container("aws-vpc-cni-init", "amazon-k8s-cni-init:v1.19.2-eksbuild.1")
        ],
        "containers": [
            _container(
                "aws-node", "amazon-k8s-cni:v1.19.2-eksbuild.1", [("metrics", 61678, "TCP")]
            ),
            _container("aws-eks-nodeagent", "amazon/aws-network-policy-agent:v1.1.6-eksbuild.1"),
        ],
    }
    return [
        _service_account("aws-node", "aws-node"),
        _workload("DaemonSet", "aws-node", "aws-node", selector, pod_spec),
    ]


def kube_proxy() -> list[Manifest]:
    selector = {"k8s-app": "kube-proxy"}
    pod_spec = {
        "serviceAccountName": "kube-proxy",
        "hostNetwork": True,
        "priorityClassName": "system-node-critical",
        "tolerations": _EVERYWHERE,
        "affinity": _LINUX_EC2,
        "containers": [_container("kube-proxy", "eks/kube-proxy:v1.32.0-minimal-eksbuild.2")],
    }
    return [
        _service_account("kube-proxy", "kube-proxy"),
        _workload("DaemonSet", "kube-proxy", "kube-proxy", selector, pod_spec),
    ]


COREFILE = """.:53 {
    errors
    health {
        lameduck 5s
      }
    ready
    kubernetes cluster.local in-addr.arpa ip6.arpa {
      pods insecure
      fallthrough in-addr.arpa ip6.arpa
    }
    prometheus :9153
    forward . /etc/resolv.conf
    cache 30
    loop
    reload
    loadbalance
}
"""


def coredns() -> list[Manifest]:
    selector = {"k8s-app": "kube-dns"}
    dns_ports = [("dns", 53, "UDP"), ("dns-tcp", 53, "TCP"), ("metrics", 9153, "TCP")]
    pod_spec = {
        "serviceAccountName": "coredns",
        "priorityClassName": "system-cluster-critical",
        "tolerations": _CRITICAL,
        "affinity": _LINUX_EC2,
        "containers": [_container("coredns", "eks/coredns:v1.11.4-eksbuild.2", dns_ports)],
    }
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(
            "kube-dns",
            "kube-dns",
            {
                "k8s-app": "kube-dns",
                "kubernetes.io/cluster-service": "true",
                "kubernetes.io/name": "CoreDNS",
            },
        ),
        "spec": {
            "clusterIP": KUBE_DNS_IP,
            "selector": dict(selector),
            "ports": [
                {"name": name, "port": number, "protocol": protocol, "targetPort": number}
                for name, number, protocol in dns_ports
            ],
        },
    }
    config = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta("coredns", "coredns", {"k8s-app": "kube-dns"}),
        "data": {"Corefile": COREFILE},
    }
    return [
        _service_account("coredns", "coredns"),
        config,
        _workload("Deployment", "coredns", "coredns", selector, pod_spec, replicas=2),
        service,
    ]


def ebs_csi_driver() -> list[Manifest]:
    controller_spec = {
        "serviceAccountName": "ebs-csi-controller-sa",
        "priorityClassName": "system-cluster-critical",
        "tolerations": [
            {"key": "CriticalAddonsOnly", "operator": "Exists"},
            {"effect": "NoExecute", "operator": "Exists", "tolerationSeconds": 300},
        ],
        "affinity": _LINUX_EC2,
        "containers": [
            _container("ebs-plugin", f"eks/aws-ebs-csi-driver:{EBS_CSI_VERSION}"),
            _container("csi-provisioner", "eks/csi-provisioner:v5.2.0-eks-1-32-8"),
            _container("csi-attacher", "eks/csi-attacher:v4.8.1-eks-1-32-8"),
            _container("liveness-probe", "eks/livenessprobe:v2.15.0-eks-1-32-8"),
        ],
    }
    node_spec = {
        "serviceAccountName": "ebs-csi-node-sa",
        "priorityClassName": "system-node-critical",
        "tolerations": _EVERYWHERE,
        "affinity": _LINUX_EC2,
        "containers": [
            _container("ebs-plugin", f"eks/aws-ebs-csi-driver:{EBS_CSI_VERSION}"),
            _container("node-driver-registrar", "eks/csi-node-driver-registrar:v2.13.0-eks-1-32-8"),
            _container("liveness-probe", "eks/livenessprobe:v2.15.0-eks-1-32-8"),
        ],
    }
    name_label = {"app.kubernetes.io/name": "aws-ebs-csi-driver"}
    csi_driver = {
        "apiVersion": "storage.k8s.io/v1",
        "kind": "CSIDriver",
        "metadata": {"name": "ebs.csi.aws.com", "labels": {**MANAGED_BY, **name_label}},
        "spec": {"attachRequired": True, "podInfoOnMount": False, "fsGroupPolicy": "File"},
    }
    return [
        _service_account("ebs-csi-controller-sa", "ebs-csi-controller"),
        _service_account("ebs-csi-node-sa", "ebs-csi-node"),
        _workload(
            "Deployment",
            "ebs-csi-controller",
            "ebs-csi-controller",
            {"app": "ebs-csi-controller", **name_label},
            controller_spec,
            replicas=2,
        ),
        _workload(
            "DaemonSet",
            "ebs-csi-node",
            "ebs-csi-node",
            {"app": "ebs-csi-node", **name_label},
            node_spec,
        ),
        csi_driver,
    ]


def _snapshot_crd(kind: str, plural: str, scope: str) -> Manifest:
    """The external-snapshotter API the add-on serves, with an any-object schema."""
    group = "snapshot.storage.k8s.io"
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}", "labels": dict(MANAGED_BY)},
        "spec": {
            "group": group,
            "scope": scope,
            "names": {
                "kind": kind,
                "listKind": f"{kind}List",
                "plural": plural,
                "singular": kind.lower(),
            },
            "versions": [
                {
                    "name": "v1",
                    "served": True,
                    "storage": True,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "x-kubernetes-preserve-unknown-fields": True,
                        }
                    },
                }
            ],
        },
    }


def snapshot_controller() -> list[Manifest]:
    selector = {"app": "snapshot-controller"}
    pod_spec = {
        "serviceAccountName": "snapshot-controller",
        "priorityClassName": "system-cluster-critical",
        "tolerations": _CRITICAL,
        "affinity": _LINUX_EC2,
        "containers": [_container("snapshot-controller", "eks/snapshot-controller:v8.2.0")],
    }
    return [
        _snapshot_crd("VolumeSnapshotClass", "volumesnapshotclasses", "Cluster"),
        _snapshot_crd("VolumeSnapshotContent", "volumesnapshotcontents", "Cluster"),
        _snapshot_crd("VolumeSnapshot", "volumesnapshots", "Namespaced"),
        _service_account("snapshot-controller", "snapshot-controller"),
        _workload(
            "Deployment",
            "snapshot-controller",
            "snapshot-controller",
            selector,
            pod_spec,
            replicas=2,
        ),
    ]


MANIFESTS: dict[str, Callable[[], list[Manifest]]] = {
    "vpc-cni": vpc_cni,
    "kube-proxy": kube_proxy,
    "coredns": coredns,
    "aws-ebs-csi-driver": ebs_csi_driver,
    "snapshot-controller": snapshot_controller,
}


class Addons(Reconciler):
    name = "addons"
    KEY: Key = ("", "eks-addons")

    def resume(self) -> Iterable[Key]:
        return [self.KEY]

    def reconcile(self, key: Key) -> float | None:
        source = self.ctx.cluster_source
        if source is None:
            return None
        try:
            addons = source.addons()
        except Exception:
            log.exception("reading EKS add-ons failed; keeping their workloads as they are")
            return POLL_SECONDS
        running = {a.name for a in addons if a.status in RUNNING}
        kept = {a.name for a in addons if a.status not in REMOVED}
        for addon, manifests in MANIFESTS.items():
            if addon in running:
                self._ensure(manifests())
            elif addon not in kept:
                self._remove(manifests())
        return POLL_SECONDS

    def _ensure(self, manifests: list[Manifest]) -> None:
        for manifest in manifests:
            rt = self.store.registry.by_kind(manifest["apiVersion"], manifest["kind"])
            namespace = manifest["metadata"].get("namespace")
            if rt is None or self.store.get(rt, namespace, manifest["metadata"]["name"]):
                continue
            try:
                self.store.create(rt, manifest)
            except ApiError as error:
                if error.code != 409:
                    raise

    def _remove(self, manifests: list[Manifest]) -> None:
        for manifest in manifests:
            rt = self.store.registry.by_kind(manifest["apiVersion"], manifest["kind"])
            namespace = manifest["metadata"].get("namespace")
            if rt is None:
                continue
            found = self.store.get(rt, namespace, manifest["metadata"]["name"])
            # only what the add-on created: a user's object of the same name stays
            if found and labels(found).get("app.kubernetes.io/managed-by") == "EKS":
                delete_quietly(self.store, rt, namespace or "", manifest["metadata"]["name"])
