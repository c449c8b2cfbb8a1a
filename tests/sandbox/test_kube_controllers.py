"""The simulated controllers driven directly on a Store, with a cluster source of node groups."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from sandbox.cluster import AddonInfo, NoCloudVolumes, NodeGroupInfo
from sandbox.kube.controllers import Controllers
from sandbox.kube.instance_types import instance_type
from sandbox.kube.objects import condition, is_ready
from sandbox.kube.reconciler import Kinds
from sandbox.kube.resources import ResourceType
from sandbox.kube.scheduling import tolerates
from sandbox.kube.store import Store
from sandbox.settings import Fault, FaultBook, Latency, SandboxSettings
from tests.sandbox.waiting import wait_for

pytestmark = pytest.mark.sandbox

ADDONS = ("vpc-cni", "kube-proxy", "coredns", "aws-ebs-csi-driver")


def group(
    name: str = "workers", size: int = 3, itype: str = "t3.medium", **kw: Any
) -> NodeGroupInfo:
    return NodeGroupInfo(
        cluster="demo",
        name=name,
        instance_types=(itype,),
        capacity_type=kw.get("capacity_type", "ON_DEMAND"),
        desired_size=size,
        labels=kw.get("labels", {}),
        taints=kw.get("taints", ()),
    )


@dataclass
class MutableSource(NoCloudVolumes):
    """A cluster source a test can change while the controllers run."""

    groups: list[NodeGroupInfo] = field(default_factory=list)
    addon_list: list[AddonInfo] = field(default_factory=list)

    def node_groups(self) -> list[NodeGroupInfo]:
        return list(self.groups)

    def addons(self) -> list[AddonInfo]:
        return list(self.addon_list)


@dataclass
class Sim:
    store: Store
    kinds: Kinds
    source: MutableSource
    settings: SandboxSettings
    controllers: Controllers

    def create(self, rt: ResourceType, obj: dict) -> dict:
        return self.store.create(rt, obj)

    def get(self, rt: ResourceType, name: str, namespace: str | None = "default") -> dict | None:
        return self.store.get(rt, namespace, name)

    def pods(self, namespace: str = "default", selector: str | None = None) -> list[dict]:
        return self.store.list(self.kinds.pod, namespace, label_selector=selector)[0]


@pytest.fixture
def start(caplog: pytest.LogCaptureFixture) -> Iterator[Callable[..., Sim]]:
    started: list[Controllers] = []

    def _start(
        groups: tuple[NodeGroupInfo, ...] = (group(),),
        addons: tuple[str, ...] = (),
        latency: Latency | None = None,
        faults: list[Fault] | None = None,
    ) -> Sim:
        store = Store()
        source = MutableSource(list(groups), [AddonInfo("demo", a, "ACTIVE") for a in addons])
        settings = SandboxSettings(latency or Latency(), FaultBook(faults))
        controllers = Controllers(store, settings, source)
        controllers.start()
        started.append(controllers)
        sim = Sim(store, Kinds.resolve(store.registry), source, settings, controllers)
        if groups:
            wait_for(
                lambda: len(store.list(sim.kinds.node)[0]) == sum(g.desired_size for g in groups)
            )
        return sim

    yield _start
    for controllers in started:
        controllers.stop()
    # a reconcile that failed is logged and retried: none may have failed
    failures = [
        r for r in caplog.records if r.name.startswith("sandbox.kube") and r.levelname == "ERROR"
    ]
    assert not failures, failures[0].getMessage()


def pod_template(labels: dict[str, str], image: str = "nginx:1.27", **spec: Any) -> dict:
    return {
        "metadata": {"labels": labels},
        "spec": {
            "containers": [
                {"name": "app", "image": image, "ports": [{"name": "http", "containerPort": 8080}]}
            ],
            **spec,
        },
    }


def deployment(name: str, replicas: int = 2, image: str = "nginx:1.27", **meta: Any) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", **meta},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": pod_template({"app": name}, image),
        },
    }


def deployment_done(
    sim: Sim, name: str, replicas: int, namespace: str = "default"
) -> Callable[[], dict | None]:
    def check() -> dict | None:
        dep = sim.get(sim.kinds.deployment, name, namespace)
        status = dep.get("status") or {}
        done = (
            status.get("observedGeneration") == dep["metadata"]["generation"]
            and status.get("updatedReplicas", 0) == replicas
            and status.get("availableReplicas", 0) == replicas
            and status.get("replicas", 0) == replicas
        )
        return dep if done else None

    return check


def cond(obj: dict, kind: str) -> dict:
    return condition((obj.get("status") or {}).get("conditions"), kind) or {}


# -- Deployments -----------------------------------------------------------------------------


def test_deployment_rolls_out_replica_set_and_pods(start):
    sim = start()
    sim.create(sim.kinds.deployment, deployment("web", replicas=2))
    dep = wait_for(deployment_done(sim, "web", 2), what="deployment web available")

    assert cond(dep, "Available")["status"] == "True"
    progressing = cond(dep, "Progressing")
    assert (progressing["status"], progressing["reason"]) == ("True", "NewReplicaSetAvailable")
    assert dep["status"]["readyReplicas"] == 2 and "unavailableReplicas" not in dep["status"]

    (rs,) = sim.store.list(sim.kinds.replica_set, "default")[0]
    pod_hash = rs["metadata"]["labels"]["pod-template-hash"]
    assert rs["metadata"]["name"] == f"web-{pod_hash}" and len(pod_hash) == 10
    owner = rs["metadata"]["ownerReferences"][0]
    assert (owner["kind"], owner["name"], owner["uid"]) == (
        "Deployment",
        "web",
        dep["metadata"]["uid"],
    )
    assert owner["controller"] is True and owner["blockOwnerDeletion"] is True
    assert rs["spec"]["selector"]["matchLabels"] == {"app": "web", "pod-template-hash": pod_hash}
    assert rs["status"]["observedGeneration"] == rs["metadata"]["generation"]
    assert rs["status"]["readyReplicas"] == rs["status"]["fullyLabeledReplicas"] == 2

    pods = sim.pods(selector="app=web")
    assert len(pods) == 2
    for pod in pods:
        name = pod["metadata"]["name"]
        assert (
            name.startswith(rs["metadata"]["name"] + "-")
            and len(name) == len(rs["metadata"]["name"]) + 6
        )
        assert pod["metadata"]["labels"] == {"app": "web", "pod-template-hash": pod_hash}
        assert pod["metadata"]["ownerReferences"][0]["uid"] == rs["metadata"]["uid"]
        status = pod["status"]
        assert status["phase"] == "Running" and is_ready(pod)
        assert pod["spec"]["nodeName"].startswith("ip-10-0-")
        assert status["podIP"].startswith("10.0.") and status["hostIP"].startswith("10.0.")
        assert status["containerStatuses"][0]["ready"] and status["containerStatuses"][0]["started"]
        assert {c["type"] for c in status["conditions"]} >= {
            "PodScheduled",
            "Initialized",
            "ContainersReady",
            "Ready",
        }
    # two pods on three equally loaded nodes: never on the same node
    assert len({p["spec"]["nodeName"] for p in pods}) == 2


def test_deployment_scales_and_rolls_to_a_new_template(start):
    sim = start()
    sim.create(sim.kinds.deployment, deployment("api", replicas=2))
    dep = wait_for(deployment_done(sim, "api", 2))

    dep["spec"]["replicas"] = 4
    sim.store.replace(sim.kinds.deployment, dep)
    dep = wait_for(deployment_done(sim, "api", 4), what="scale up to 4")
    assert len(sim.pods(selector="app=api")) == 4

    dep["spec"]["replicas"] = 1
    sim.store.replace(sim.kinds.deployment, dep)
    dep = wait_for(deployment_done(sim, "api", 1), what="scale down to 1")
    assert len(sim.pods(selector="app=api")) == 1
    (first_rs,) = sim.store.list(sim.kinds.replica_set, "default")[0]

    dep["spec"]["replicas"] = 3
    dep["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    sim.store.replace(sim.kinds.deployment, dep)
    dep = wait_for(deployment_done(sim, "api", 3), what="rollout of the new template")
    assert dep["status"]["observedGeneration"] == dep["metadata"]["generation"] == 4

    sets = {
        rs["metadata"]["name"]: rs for rs in sim.store.list(sim.kinds.replica_set, "default")[0]
    }
    assert len(sets) == 2
    old = sets.pop(first_rs["metadata"]["name"])
    (new,) = sets.values()
    assert old["spec"]["replicas"] == 0 and old["status"]["replicas"] == 0
    assert new["metadata"]["annotations"]["deployment.kubernetes.io/revision"] == "2"
    pods = sim.pods(selector="app=api")
    assert len(pods) == 3
    assert all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)
    assert all(p["metadata"]["ownerReferences"][0]["uid"] == new["metadata"]["uid"] for p in pods)


def test_deleting_a_deployment_collects_its_replica_sets_and_pods(start):
    sim = start()
    sim.create(sim.kinds.deployment, deployment("gone", replicas=2))
    wait_for(deployment_done(sim, "gone", 2))
    sim.store.delete(sim.kinds.deployment, "default", "gone")
    wait_for(lambda: not sim.pods(selector="app=gone"), what="pods collected")
    assert sim.store.list(sim.kinds.replica_set, "default")[0] == []


# -- StatefulSets, DaemonSets, Jobs ----------------------------------------------------------


def test_statefulset_creates_ordinal_pods_and_bound_claims(start):
    sim = start()
    sim.create(
        sim.kinds.stateful_set,
        {
            "metadata": {"name": "db", "namespace": "default"},
            "spec": {
                "replicas": 3,
                "serviceName": "db",
                "selector": {"matchLabels": {"app": "db"}},
                "template": pod_template({"app": "db"}, "postgres:16"),
                "volumeClaimTemplates": [
                    {
                        "metadata": {"name": "data"},
                        "spec": {
                            "accessModes": ["ReadWriteOnce"],
                            "resources": {"requests": {"storage": "5Gi"}},
                        },
                    }
                ],
            },
        },
    )

    def ready() -> dict | None:
        sts = sim.get(sim.kinds.stateful_set, "db")
        status = sts.get("status") or {}
        return (
            sts if status.get("readyReplicas") == 3 and status.get("updatedReplicas") == 3 else None
        )

    sts = wait_for(ready, what="statefulset ready")
    status = sts["status"]
    assert status["observedGeneration"] == sts["metadata"]["generation"]
    assert status["currentRevision"] == status["updateRevision"]
    assert status["replicas"] == status["currentReplicas"] == status["availableReplicas"] == 3

    pods = {p["metadata"]["name"]: p for p in sim.pods(selector="app=db")}
    assert sorted(pods) == ["db-0", "db-1", "db-2"]
    for i in range(3):
        pod = pods[f"db-{i}"]
        assert pod["metadata"]["labels"]["statefulset.kubernetes.io/pod-name"] == f"db-{i}"
        assert pod["metadata"]["labels"]["controller-revision-hash"] == status["updateRevision"]
        assert pod["spec"]["hostname"] == f"db-{i}" and pod["spec"]["subdomain"] == "db"
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "data")
        assert volume["persistentVolumeClaim"]["claimName"] == f"data-db-{i}"
        claim = wait_for(lambda i=i: sim.get(sim.kinds.pvc, f"data-db-{i}"))
        wait_for(
            lambda i=i: sim.get(sim.kinds.pvc, f"data-db-{i}")["status"].get("phase") == "Bound"
        )
        claim = sim.get(sim.kinds.pvc, f"data-db-{i}")
        assert claim["status"]["capacity"] == {"storage": "5Gi"}
        assert claim["metadata"]["labels"] == {"app": "db"}
        volume = sim.get(sim.kinds.pv, claim["spec"]["volumeName"], None)
        assert volume["spec"]["claimRef"]["uid"] == claim["metadata"]["uid"]
        assert volume["status"]["phase"] == "Bound"

    # scaling down removes the highest ordinal and keeps its claim (retention: Retain)
    sts["spec"]["replicas"] = 2
    sim.store.replace(sim.kinds.stateful_set, sts)
    wait_for(
        lambda: (
            sorted(p["metadata"]["name"] for p in sim.pods(selector="app=db")) == ["db-0", "db-1"]
        )
    )
    assert sim.get(sim.kinds.pvc, "data-db-2") is not None


def test_statefulset_replaces_pods_for_a_new_template_from_the_top(start):
    sim = start()
    sts = sim.create(
        sim.kinds.stateful_set,
        {
            "metadata": {"name": "cache", "namespace": "default"},
            "spec": {
                "replicas": 2,
                "serviceName": "cache",
                "selector": {"matchLabels": {"app": "cache"}},
                "template": pod_template({"app": "cache"}, "redis:7.2"),
            },
        },
    )

    def rolled(image: str) -> Callable[[], dict | None]:
        def check() -> dict | None:
            current = sim.get(sim.kinds.stateful_set, "cache")
            status = current.get("status") or {}
            pods = sim.pods(selector="app=cache")
            done = (
                status.get("observedGeneration") == current["metadata"]["generation"]
                and status.get("updatedReplicas") == status.get("readyReplicas") == 2
                and status.get("currentRevision") == status.get("updateRevision")
                and len(pods) == 2
                and all(p["spec"]["containers"][0]["image"] == image for p in pods)
            )
            return current if done else None

        return check

    sts = wait_for(rolled("redis:7.2"))
    first_revision = sts["status"]["updateRevision"]
    old_uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods(selector="app=cache")}
    sts["spec"]["template"]["spec"]["containers"][0]["image"] = "redis:7.4"
    sim.store.replace(sim.kinds.stateful_set, sts)
    sts = wait_for(rolled("redis:7.4"), what="both pods on the new template")
    assert sts["status"]["updateRevision"] != first_revision
    new_uids = {p["metadata"]["name"]: p["metadata"]["uid"] for p in sim.pods(selector="app=cache")}
    assert new_uids.keys() == old_uids.keys() == {"cache-0", "cache-1"}
    assert not set(new_uids.values()) & set(old_uids.values())


def test_daemonset_runs_one_pod_per_fitting_ready_node(start):
    tainted = group(
        "gpu", size=1, taints=({"key": "nvidia.com/gpu", "value": "true", "effect": "NO_SCHEDULE"},)
    )
    sim = start(groups=(group("workers", size=2), tainted))

    def daemonset(name: str, tolerations: list[dict]) -> dict:
        return {
            "metadata": {"name": name, "namespace": "default"},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": pod_template({"app": name}, tolerations=tolerations),
            },
        }

    sim.create(sim.kinds.daemon_set, daemonset("agent", []))
    sim.create(sim.kinds.daemon_set, daemonset("everywhere", [{"operator": "Exists"}]))

    def settled(name: str, desired: int) -> Callable[[], dict | None]:
        def check() -> dict | None:
            ds = sim.get(sim.kinds.daemon_set, name)
            status = ds.get("status") or {}
            ok = status.get("numberReady") == desired == status.get("desiredNumberScheduled")
            return (
                ds
                if ok and status.get("observedGeneration") == ds["metadata"]["generation"]
                else None
            )

        return check

    agent = wait_for(settled("agent", 2), what="agent on the two untainted nodes")
    wait_for(settled("everywhere", 3), what="tolerating pod on all three nodes")
    status = agent["status"]
    assert status["currentNumberScheduled"] == status["updatedNumberScheduled"] == 2
    assert status["numberAvailable"] == 2 and status["numberMisscheduled"] == 0
    nodes = {p["spec"]["nodeName"] for p in sim.pods(selector="app=agent")}
    gpu_nodes = {
        n["metadata"]["name"]
        for n in sim.store.list(sim.kinds.node, label_selector="eks.amazonaws.com/nodegroup=gpu")[0]
    }
    assert len(nodes) == 2 and not nodes & gpu_nodes

    # a node group that grows gets the daemon pods on its new node
    sim.source.groups[0] = group("workers", size=3)
    agent = wait_for(settled("agent", 3), what="agent on the new node")

    # a new template replaces the pods node by node
    agent["spec"]["template"]["spec"]["containers"][0]["image"] = "nginx:1.28"
    sim.store.replace(sim.kinds.daemon_set, agent)

    def updated() -> bool:
        pods = sim.pods(selector="app=agent")
        status = sim.get(sim.kinds.daemon_set, "agent")["status"]
        return (
            status.get("updatedNumberScheduled") == 3 == status.get("numberReady")
            and len(pods) == 3
            and all(p["spec"]["containers"][0]["image"] == "nginx:1.28" for p in pods)
        )

    wait_for(updated, what="daemon pods on the new template")


def test_job_completes_after_its_latency(start):
    # time scale 0.4 s per guide minute: pod_ready and job take 0.2 s each
    sim = start(latency=Latency(time_scale=0.4))
    began = time.monotonic()
    sim.create(
        sim.kinds.job,
        {
            "metadata": {"name": "migrate", "namespace": "default"},
            "spec": {"template": pod_template({"app": "migrate"}, restartPolicy="Never")},
        },
    )

    def complete() -> dict | None:
        job = sim.get(sim.kinds.job, "migrate")
        return job if cond(job, "Complete").get("status") == "True" else None

    job = wait_for(complete, what="job complete")
    took = time.monotonic() - began
    assert 0.4 <= took < 2.0
    assert job["status"]["succeeded"] == 1 and "active" not in job["status"]
    assert job["status"]["completionTime"] and job["status"]["startTime"]
    (pod,) = sim.pods(selector="job-name=migrate")
    assert pod["status"]["phase"] == "Succeeded"
    assert pod["status"]["containerStatuses"][0]["state"]["terminated"]["reason"] == "Completed"


# -- Scheduling and readiness ----------------------------------------------------------------


def test_pods_stay_pending_without_nodes_and_run_once_nodes_join(start):
    sim = start(groups=())
    sim.create(sim.kinds.deployment, deployment("early", replicas=2))
    pods = wait_for(
        lambda: len(sim.pods(selector="app=early")) == 2 and sim.pods(selector="app=early")
    )

    def unschedulable() -> bool:
        return all(
            cond(p, "PodScheduled").get("reason") == "Unschedulable"
            for p in sim.pods(selector="app=early")
        )

    wait_for(unschedulable, what="pods marked Unschedulable")
    pods = sim.pods(selector="app=early")
    assert all(p["status"]["phase"] == "Pending" and not p["spec"].get("nodeName") for p in pods)
    assert "no nodes available" in cond(pods[0], "PodScheduled")["message"]
    wait_for(lambda: (sim.get(sim.kinds.deployment, "early").get("status") or {}).get("conditions"))
    dep = sim.get(sim.kinds.deployment, "early")
    assert cond(dep, "Available")["status"] == "False"
    assert dep["status"]["unavailableReplicas"] == 2

    sim.source.groups.append(group(size=2))
    wait_for(deployment_done(sim, "early", 2), what="pods running once nodes joined")
    assert all(p["status"]["phase"] == "Running" for p in sim.pods(selector="app=early"))


def test_pods_get_ready_only_after_the_pod_ready_latency(start):
    # pod_ready is 0.5 guide minutes: 0.6 s at 1.2 s per minute
    sim = start(latency=Latency(time_scale=1.2))
    created = time.monotonic()
    sim.create(
        sim.kinds.pod,
        {"metadata": {"name": "solo", "namespace": "default"}, "spec": pod_template({})["spec"]},
    )

    def creating() -> dict | None:
        pod = sim.get(sim.kinds.pod, "solo")
        return pod if pod["status"].get("containerStatuses") else None

    pod = wait_for(creating, what="containers being created")
    assert time.monotonic() - created < 0.5, "bound late: the checks below would not hold"
    assert pod["spec"]["nodeName"] and cond(pod, "PodScheduled")["status"] == "True"
    assert pod["status"]["phase"] == "Pending" and not is_ready(pod)
    waiting = pod["status"]["containerStatuses"][0]["state"]["waiting"]
    assert waiting["reason"] == "ContainerCreating"
    pod = wait_for(
        lambda: is_ready(sim.get(sim.kinds.pod, "solo")) and sim.get(sim.kinds.pod, "solo")
    )
    assert time.monotonic() - created >= 0.6
    assert pod["status"]["phase"] == "Running"


def test_scheduler_honours_node_selector_and_affinity(start):
    sim = start(groups=(group("amd", size=1), group("arm", size=1, itype="t4g.medium")))
    arm_only = {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {
                        "matchExpressions": [
                            {"key": "kubernetes.io/arch", "operator": "In", "values": ["arm64"]}
                        ]
                    }
                ]
            }
        }
    }
    for name, extra in (
        ("by-affinity", {"affinity": arm_only}),
        ("by-selector", {"nodeSelector": {"eks.amazonaws.com/nodegroup": "amd"}}),
        ("nowhere", {"nodeSelector": {"disktype": "ssd"}}),
    ):
        spec = {**pod_template({})["spec"], **extra}
        sim.create(
            sim.kinds.pod, {"metadata": {"name": name, "namespace": "default"}, "spec": spec}
        )

    def node_of(name: str) -> dict | None:
        pod = sim.get(sim.kinds.pod, name)
        node = pod["spec"].get("nodeName")
        return sim.get(sim.kinds.node, node, None) if node else None

    assert (
        wait_for(lambda: node_of("by-affinity"))["metadata"]["labels"]["kubernetes.io/arch"]
        == "arm64"
    )
    assert (
        wait_for(lambda: node_of("by-selector"))["metadata"]["labels"][
            "eks.amazonaws.com/nodegroup"
        ]
        == "amd"
    )
    nowhere = wait_for(
        lambda: cond(sim.get(sim.kinds.pod, "nowhere"), "PodScheduled").get("reason")
    )
    assert nowhere == "Unschedulable"
    message = cond(sim.get(sim.kinds.pod, "nowhere"), "PodScheduled")["message"]
    assert message.startswith("0/2 nodes are available")


# -- Faults ----------------------------------------------------------------------------------


def test_fault_pods_never_ready_strikes_one_release_until_cleared(start):
    sim = start(faults=[Fault("pods-never-ready", "default/broken")])
    # the release comes from the owning Deployment's helm annotation (pods have no label)
    sim.create(
        sim.kinds.deployment,
        deployment("broken", replicas=2, annotations={"meta.helm.sh/release-name": "broken"}),
    )
    sim.create(sim.kinds.deployment, deployment("fine", replicas=1))
    wait_for(deployment_done(sim, "fine", 1))

    def running_unready() -> list[dict]:
        pods = sim.pods(selector="app=broken")
        ok = len(pods) == 2 and all(p["status"]["phase"] == "Running" for p in pods)
        return pods if ok else []

    pods = wait_for(running_unready, what="broken pods running")
    time.sleep(0.3)
    pods = sim.pods(selector="app=broken")
    assert not any(is_ready(p) for p in pods)
    ready = cond(pods[0], "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "ContainersNotReady")
    dep = sim.get(sim.kinds.deployment, "broken")
    assert dep["status"].get("readyReplicas", 0) == 0
    assert cond(dep, "Available")["status"] == "False"
    assert sim.settings.faults.fired["pods-never-ready"] == 2

    sim.settings.faults.clear("pods-never-ready")
    wait_for(deployment_done(sim, "broken", 2), what="recovery once the fault is cleared")


def test_counted_fault_strikes_that_many_pods_for_good(start):
    sim = start(faults=[Fault("pods-never-ready", "default/*", count=1)])
    for name in ("one", "two"):
        pod = {
            "metadata": {
                "name": name,
                "namespace": "default",
                "labels": {"app.kubernetes.io/instance": name},
            }
        }
        sim.create(sim.kinds.pod, {**pod, "spec": pod_template({})["spec"]})
    wait_for(
        lambda: all(
            sim.get(sim.kinds.pod, n)["status"]["phase"] == "Running" for n in ("one", "two")
        )
    )
    time.sleep(0.6)  # longer than the recheck of struck pods
    readiness = sorted(is_ready(sim.get(sim.kinds.pod, n)) for n in ("one", "two"))
    assert readiness == [False, True]
    assert sim.settings.faults.list() == []


def service(name: str, kind: str = "ClusterIP", app: str | None = None) -> dict:
    return {
        "metadata": {"name": name, "namespace": "default", "labels": {"svc": name}},
        "spec": {
            "type": kind,
            "selector": {"app": app or name},
            "ports": [{"name": "http", "port": 80, "targetPort": "http"}],
        },
    }


def test_load_balancer_gets_a_hostname_unless_the_fault_strikes(start):
    # load_balancer is 2 guide minutes: 0.2 s at 0.1 s per minute
    sim = start(
        latency=Latency(time_scale=0.1), faults=[Fault("lb-never-provisioned", "default/stuck")]
    )
    began = time.monotonic()
    sim.create(sim.kinds.service, service("public", "LoadBalancer"))
    sim.create(sim.kinds.service, service("stuck", "LoadBalancer"))

    def hostname(name: str) -> str | None:
        ingress = (sim.get(sim.kinds.service, name)["status"].get("loadBalancer") or {}).get(
            "ingress"
        )
        return ingress[0]["hostname"] if ingress else None

    host = wait_for(lambda: hostname("public"), what="load balancer hostname")
    assert time.monotonic() - began >= 0.2
    assert host.endswith(".elb.us-east-1.amazonaws.com")
    assert len(host.split("-")[0]) <= 32
    svc = sim.get(sim.kinds.service, "public")
    assert svc["spec"]["clusterIP"].startswith("10.100.")  # allocated by the API server
    time.sleep(0.5)
    assert hostname("stuck") is None
    assert sim.settings.faults.fired["lb-never-provisioned"] == 1


def test_endpoints_list_ready_pods_by_target_port_name(start):
    sim = start(faults=[Fault("pods-never-ready", "default/app-unready")])
    sim.create(sim.kinds.service, service("app"))
    sim.create(sim.kinds.deployment, deployment("app", replicas=2))
    unready = {
        "metadata": {
            "name": "app-unready",
            "namespace": "default",
            "labels": {"app": "app", "app.kubernetes.io/instance": "app-unready"},
        },
        "spec": pod_template({})["spec"],
    }
    sim.create(sim.kinds.pod, unready)

    def endpoints() -> dict | None:
        ep = sim.get(sim.kinds.endpoints, "app")
        subsets = (ep or {}).get("subsets") or []
        if (
            subsets
            and len(subsets[0].get("addresses", [])) == 2
            and subsets[0].get("notReadyAddresses")
        ):
            return subsets[0]
        return None

    subset = wait_for(endpoints, what="endpoints with two ready pods and one unready")
    assert subset["ports"] == [{"port": 8080, "protocol": "TCP", "name": "http"}]
    ips = {p["status"]["podIP"] for p in sim.pods(selector="app=app") if is_ready(p)}
    assert {a["ip"] for a in subset["addresses"]} == ips
    assert subset["notReadyAddresses"][0]["targetRef"]["name"] == "app-unready"

    sim.store.delete(sim.kinds.service, "default", "app")
    wait_for(lambda: sim.get(sim.kinds.endpoints, "app") is None, what="endpoints removed")


# -- Nodes and add-ons -----------------------------------------------------------------------


def test_nodes_follow_node_groups_with_instance_capacity(start):
    taint = {"key": "dedicated", "value": "batch", "effect": "NO_EXECUTE"}
    sim = start(
        groups=(
            group("general", size=3, itype="m5.large", labels={"role": "general"}),
            group("arm", size=1, itype="t4g.large", capacity_type="SPOT", taints=(taint,)),
        )
    )
    nodes = sim.store.list(sim.kinds.node)[0]
    general = [
        n for n in nodes if n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "general"
    ]
    (arm,) = [n for n in nodes if n["metadata"]["labels"]["eks.amazonaws.com/nodegroup"] == "arm"]

    assert len(general) == 3
    zones = {n["metadata"]["labels"]["topology.kubernetes.io/zone"] for n in general}
    assert zones == {"us-east-1a", "us-east-1b", "us-east-1c"}
    node = general[0]
    name = node["metadata"]["name"]
    labels = node["metadata"]["labels"]
    assert name.startswith("ip-10-0-") and name.endswith(".ec2.internal")
    ip = next(a["address"] for a in node["status"]["addresses"] if a["type"] == "InternalIP")
    assert name == f"ip-{ip.replace('.', '-')}.ec2.internal"
    assert labels["kubernetes.io/hostname"] == name and labels["role"] == "general"
    assert labels["node.kubernetes.io/instance-type"] == "m5.large"
    assert labels["kubernetes.io/arch"] == "amd64" and labels["kubernetes.io/os"] == "linux"
    assert labels["topology.kubernetes.io/region"] == "us-east-1"
    assert labels["eks.amazonaws.com/capacityType"] == "ON_DEMAND"
    # m5.large: 2 vCPU, 8 GiB, 3 ENIs x 10 addresses -> 29 pods
    assert node["status"]["capacity"]["cpu"] == "2"
    assert node["status"]["capacity"]["memory"] == f"{8 * 1024 * 1024}Ki"
    assert node["status"]["capacity"]["pods"] == "29"
    assert node["status"]["allocatable"]["cpu"] == "1930m"
    allocatable_ki = int(node["status"]["allocatable"]["memory"].removesuffix("Ki"))
    assert 0 < allocatable_ki < 8 * 1024 * 1024
    assert cond(node, "Ready")["status"] == "True"
    assert node["status"]["nodeInfo"]["kubeletVersion"].startswith("v1.32.")

    assert arm["metadata"]["labels"]["kubernetes.io/arch"] == "arm64"
    assert arm["metadata"]["labels"]["eks.amazonaws.com/capacityType"] == "SPOT"
    assert arm["status"]["capacity"]["pods"] == "35"  # t4g.large: 3 x 12
    assert arm["spec"]["taints"] == [{"key": "dedicated", "value": "batch", "effect": "NoExecute"}]


def test_scaling_a_node_group_down_removes_nodes_and_reschedules_pods(start):
    sim = start(groups=(group(size=3),))
    sim.create(sim.kinds.deployment, deployment("spread", replicas=3))
    wait_for(deployment_done(sim, "spread", 3))
    before = {n["metadata"]["name"] for n in sim.store.list(sim.kinds.node)[0]}

    sim.source.groups[0] = group(size=1)
    wait_for(lambda: len(sim.store.list(sim.kinds.node)[0]) == 1, what="nodes removed")
    (survivor,) = sim.store.list(sim.kinds.node)[0]
    assert survivor["metadata"]["name"] in before

    def all_on_survivor() -> bool:
        pods = sim.pods(selector="app=spread")
        return len(pods) == 3 and all(
            p["spec"].get("nodeName") == survivor["metadata"]["name"] and is_ready(p) for p in pods
        )

    wait_for(all_on_survivor, what="pods recreated on the remaining node")

    sim.source.groups.clear()
    wait_for(lambda: not sim.store.list(sim.kinds.node)[0], what="deleted group's nodes gone")


def test_addons_run_their_workloads_in_kube_system(start):
    sim = start(groups=(group(size=3),), addons=ADDONS)

    def running() -> list[dict]:
        pods = sim.pods("kube-system")
        ok = [p for p in pods if p["status"].get("phase") == "Running" and is_ready(p)]
        return ok if len(ok) >= 13 else []

    pods = wait_for(running, what="add-on pods running")
    by_owner: dict[str, int] = {}
    for pod in pods:
        component = pod["metadata"]["labels"]["eks.amazonaws.com/component"]
        by_owner[component] = by_owner.get(component, 0) + 1
    assert by_owner == {
        "aws-node": 3,
        "kube-proxy": 3,
        "coredns": 2,
        "ebs-csi-controller": 2,
        "ebs-csi-node": 3,
    }
    dns = sim.get(sim.kinds.service, "kube-dns", "kube-system")
    assert dns["spec"]["clusterIP"] == "10.100.0.10"
    assert sim.get(sim.kinds.csi_driver, "ebs.csi.aws.com", None) is not None
    coredns = wait_for(deployment_done(sim, "coredns", 2, "kube-system"))
    assert cond(coredns, "Available")["status"] == "True"
    aws_node = [
        p for p in pods if p["metadata"]["labels"]["eks.amazonaws.com/component"] == "aws-node"
    ]
    assert all(p["status"]["podIP"] == p["status"]["hostIP"] for p in aws_node)  # hostNetwork

    # an add-on that goes away takes its workloads along
    sim.source.addon_list = [a for a in sim.source.addon_list if a.name != "coredns"]
    wait_for(lambda: sim.get(sim.kinds.deployment, "coredns", "kube-system") is None)
    wait_for(lambda: not sim.pods("kube-system", "k8s-app=kube-dns"), what="coredns pods gone")
    assert sim.get(sim.kinds.service, "kube-dns", "kube-system") is None


def test_coredns_waits_for_nodes_like_a_fresh_cluster(start):
    sim = start(groups=(), addons=("coredns",))
    wait_for(lambda: len(sim.pods("kube-system", "k8s-app=kube-dns")) == 2)
    time.sleep(0.2)
    dep = sim.get(sim.kinds.deployment, "coredns", "kube-system")
    assert cond(dep, "Available")["status"] == "False"
    sim.source.groups.append(group(size=2))
    wait_for(
        lambda: (
            cond(sim.get(sim.kinds.deployment, "coredns", "kube-system"), "Available").get("status")
            == "True"
        )
    )


# -- CRDs and lifecycle ----------------------------------------------------------------------


def test_crd_is_established_after_its_latency(start):
    sim = start(groups=(), latency=Latency(time_scale=1.0, minutes={"crd": 0.2}))
    began = time.monotonic()
    sim.create(
        sim.kinds.crd,
        {
            "metadata": {"name": "widgets.example.com"},
            "spec": {
                "group": "example.com",
                "scope": "Namespaced",
                "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
                "versions": [{"name": "v1", "served": True, "storage": True}],
            },
        },
    )

    def established() -> dict | None:
        crd = sim.get(sim.kinds.crd, "widgets.example.com", None)
        return crd if cond(crd, "Established").get("status") == "True" else None

    crd = wait_for(established, what="CRD established")
    assert time.monotonic() - began >= 0.2
    assert cond(crd, "NamesAccepted")["status"] == "True"
    assert crd["status"]["acceptedNames"] == {
        "kind": "Widget",
        "listKind": "WidgetList",
        "plural": "widgets",
        "singular": "widget",
        "shortNames": ["wd"],
    }
    assert crd["status"]["storedVersions"] == ["v1"]


@pytest.mark.parametrize(
    ("name", "vcpus", "memory_gib", "max_pods", "arch"),
    [
        ("t3.medium", 2, 4, 17, "amd64"),
        ("t3.xlarge", 4, 16, 58, "amd64"),
        ("t2.2xlarge", 8, 32, 44, "amd64"),
        ("m5.large", 2, 8, 29, "amd64"),
        ("c5.xlarge", 4, 8, 58, "amd64"),
        ("r5.2xlarge", 8, 64, 58, "amd64"),
        ("t4g.medium", 2, 4, 17, "arm64"),
        ("m6g.medium", 1, 4, 8, "arm64"),
    ],
)
def test_instance_types_follow_the_eks_max_pods_formula(name, vcpus, memory_gib, max_pods, arch):
    itype = instance_type(name)
    assert (itype.vcpus, itype.memory_mib, itype.max_pods, itype.arch) == (
        vcpus,
        memory_gib * 1024,
        max_pods,
        arch,
    )
    allocatable = itype.allocatable()
    assert int(allocatable["cpu"].removesuffix("m")) < vcpus * 1000
    assert allocatable["pods"] == str(max_pods)


def test_tolerations_match_taints_by_key_value_and_effect():
    taint = {"key": "dedicated", "value": "batch", "effect": "NoSchedule"}
    assert tolerates([{"operator": "Exists"}], taint)
    assert tolerates([{"key": "dedicated", "operator": "Exists"}], taint)
    assert tolerates([{"key": "dedicated", "value": "batch", "effect": "NoSchedule"}], taint)
    assert not tolerates([{"key": "dedicated", "value": "web"}], taint)
    assert not tolerates([{"key": "dedicated", "operator": "Exists", "effect": "NoExecute"}], taint)
    assert not tolerates([], taint)


def test_stop_joins_the_thread_promptly(start):
    sim = start(addons=ADDONS)
    sim.create(sim.kinds.deployment, deployment("busy", replicas=3))
    began = time.monotonic()
    sim.controllers.stop()
    assert time.monotonic() - began < 1.0
    assert not [t for t in threading.enumerate() if t.name == "kube-controllers"]
    sim.controllers.stop()  # a second stop is harmless
