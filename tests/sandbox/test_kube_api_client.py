"""The simulated Kubernetes API through the official Python client, as the product uses it."""

from __future__ import annotations

import contextlib
import http.client
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from sandbox.kube.proxy import ProxyRequest, ProxyResponse
from sandbox.kube.server import KubeSimulator
from sandbox.settings import SandboxSettings

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def core(api_client: client.ApiClient) -> client.CoreV1Api:
    return client.CoreV1Api(api_client)


@pytest.fixture(scope="module")
def apps(api_client: client.ApiClient) -> client.AppsV1Api:
    return client.AppsV1Api(api_client)


@pytest.fixture
def ns(core: client.CoreV1Api) -> Iterator[str]:
    name = f"t-{uuid.uuid4().hex[:8]}"
    core.create_namespace({"metadata": {"name": name}})
    yield name
    try:
        core.delete_namespace(name)
    except ApiException as exc:
        if exc.status != 404:
            raise


def raw(
    sim: KubeSimulator, method: str, path: str, body: bytes | None = None, ctype: str = ""
) -> tuple[int, dict]:
    request = urllib.request.Request(sim.url + path, data=body, method=method)
    if ctype:
        request.add_header("Content-Type", ctype)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def deployment(name: str, replicas: int = 1) -> dict:
    return {
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "image": "nginx:1.27",
                            "env": [{"name": "A", "value": "1"}, {"name": "B", "value": "2"}],
                            "ports": [{"containerPort": 80}],
                        },
                        {"name": "sidecar", "image": "busybox:1.36"},
                    ]
                },
            },
        },
    }


def test_create_answers_201_with_server_metadata(core: client.CoreV1Api, ns: str) -> None:
    body = {"metadata": {"name": "cfg"}, "data": {"a": "1"}}
    created, status, _ = core.create_namespaced_config_map_with_http_info(ns, body)
    assert status == 201
    meta = created.metadata
    assert uuid.UUID(meta.uid)
    assert int(meta.resource_version) > 0
    assert meta.generation == 1
    assert meta.creation_timestamp is not None
    assert meta.namespace == ns

    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map(ns, body)
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "AlreadyExists"


def test_get_list_replace_and_stale_resource_version(core: client.CoreV1Api, ns: str) -> None:
    first = core.create_namespaced_config_map(ns, {"metadata": {"name": "cfg"}, "data": {"a": "1"}})
    fetched = core.read_namespaced_config_map("cfg", ns)
    assert fetched.data == {"a": "1"}
    assert fetched.metadata.uid == first.metadata.uid

    fetched.data = {"a": "2"}
    replaced = core.replace_namespaced_config_map("cfg", ns, fetched)
    assert replaced.data == {"a": "2"}
    assert int(replaced.metadata.resource_version) > int(first.metadata.resource_version)
    assert replaced.metadata.uid == first.metadata.uid

    stale = core.read_namespaced_config_map("cfg", ns)
    stale.metadata.resource_version = first.metadata.resource_version
    with pytest.raises(ApiException) as exc:
        core.replace_namespaced_config_map("cfg", ns, stale)
    assert exc.value.status == 409
    assert json.loads(exc.value.body)["reason"] == "Conflict"

    listed = core.list_namespaced_config_map(ns)
    assert [c.metadata.name for c in listed.items] == ["cfg"]
    assert int(listed.metadata.resource_version) >= int(replaced.metadata.resource_version)

    core.delete_namespaced_config_map("cfg", ns)
    with pytest.raises(ApiException) as exc:
        core.read_namespaced_config_map("cfg", ns)
    assert exc.value.status == 404


def test_generation_and_status_subresource(apps: client.AppsV1Api, ns: str) -> None:
    created = apps.create_namespaced_deployment(ns, deployment("web"))
    assert created.metadata.generation == 1
    assert created.spec.replicas == 1
    assert created.spec.strategy.type == "RollingUpdate"  # server-side defaulting

    status = {"status": {"replicas": 1, "readyReplicas": 1, "observedGeneration": 1}}
    after_status = apps.patch_namespaced_deployment_status("web", ns, status)
    assert after_status.status.ready_replicas == 1
    assert after_status.metadata.generation == 1
    assert after_status.spec == created.spec

    # Status sent to the main resource is ignored; a spec change bumps the generation.
    body = apps.read_namespaced_deployment("web", ns)
    body.spec.replicas = 3
    body.status.ready_replicas = 99
    replaced = apps.replace_namespaced_deployment("web", ns, body)
    assert replaced.metadata.generation == 2
    assert replaced.spec.replicas == 3
    assert replaced.status.ready_replicas == 1

    # A label change is metadata: no new generation.
    labelled = apps.patch_namespaced_deployment("web", ns, {"metadata": {"labels": {"x": "y"}}})
    assert labelled.metadata.generation == 2

    # A status write through the subresource cannot change the spec.
    current = apps.read_namespaced_deployment("web", ns)
    current.spec.replicas = 7
    current.status.ready_replicas = 3
    written = apps.replace_namespaced_deployment_status("web", ns, current)
    assert written.spec.replicas == 3
    assert written.status.ready_replicas == 3


def test_strategic_merge_json_merge_and_json_patch(apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web"))
    strategic = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "app",
                            "env": [{"name": "B", "value": "3"}, {"name": "C", "value": "4"}],
                        },
                        {"name": "sidecar", "$patch": "delete"},
                    ]
                }
            }
        }
    }
    patched = apps.patch_namespaced_deployment("web", ns, strategic)
    containers = patched.spec.template.spec.containers
    assert [c.name for c in containers] == ["app"]
    assert containers[0].image == "nginx:1.27"  # merged by name, not replaced
    assert [(e.name, e.value) for e in containers[0].env] == [("A", "1"), ("B", "3"), ("C", "4")]
    assert containers[0].ports[0].container_port == 80

    merge = {"metadata": {"labels": {"app": None, "tier": "front"}}, "spec": {"replicas": 4}}
    merged = apps.patch_namespaced_deployment(
        "web", ns, merge, _content_type="application/merge-patch+json"
    )
    assert merged.metadata.labels == {"tier": "front"}
    assert merged.spec.replicas == 4

    ops = [
        {"op": "replace", "path": "/spec/replicas", "value": 2},
        {"op": "add", "path": "/metadata/annotations", "value": {"note": "json-patch"}},
        {"op": "test", "path": "/spec/template/spec/containers/0/name", "value": "app"},
    ]
    jsonpatched = apps.patch_namespaced_deployment("web", ns, ops)
    assert jsonpatched.spec.replicas == 2
    assert jsonpatched.metadata.annotations == {"note": "json-patch"}

    failing = [{"op": "test", "path": "/spec/replicas", "value": 9}]
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment("web", ns, failing)
    assert exc.value.status == 422


def test_label_and_field_selectors(core: client.CoreV1Api, ns: str) -> None:
    pods = {
        "web-1": ({"app": "web", "tier": "front"}, "Running"),
        "web-2": ({"app": "web", "tier": "back"}, "Pending"),
        "db-1": ({"app": "db"}, "Running"),
    }
    for name, (labels, phase) in pods.items():
        body = {
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "c", "image": "busybox"}]},
        }
        created = core.create_namespaced_pod(ns, body)
        assert created.status.phase == "Pending"
        core.patch_namespaced_pod_status(name, ns, {"status": {"phase": phase}})

    def names(**selectors: str) -> list[str]:
        return sorted(p.metadata.name for p in core.list_namespaced_pod(ns, **selectors).items)

    assert names(field_selector="status.phase=Running") == ["db-1", "web-1"]
    assert names(field_selector="status.phase!=Running") == ["web-2"]
    assert names(field_selector="metadata.name==web-2") == ["web-2"]
    assert names(label_selector="app=web") == ["web-1", "web-2"]
    assert names(label_selector="app=web,tier!=front") == ["web-2"]
    assert names(label_selector="tier in (front,back)") == ["web-1", "web-2"]
    assert names(label_selector="app notin (web)") == ["db-1"]
    assert names(label_selector="!tier") == ["db-1"]
    assert names(label_selector="tier") == ["web-1", "web-2"]
    assert names(label_selector="app=web", field_selector="status.phase=Running") == ["web-1"]
    everywhere = core.list_pod_for_all_namespaces(field_selector=f"metadata.namespace={ns}")
    assert len(everywhere.items) == 3

    with pytest.raises(ApiException) as exc:
        core.list_namespaced_pod(ns, label_selector="app in (web")
    assert exc.value.status == 400


def test_watch_streams_added_modified_deleted(core: client.CoreV1Api, ns: str) -> None:
    start = core.list_namespaced_config_map(ns).metadata.resource_version

    def churn() -> None:
        time.sleep(0.2)
        core.create_namespaced_config_map(ns, {"metadata": {"name": "w"}, "data": {"v": "1"}})
        core.patch_namespaced_config_map("w", ns, {"data": {"v": "2"}})
        core.delete_namespaced_config_map("w", ns)

    worker = threading.Thread(target=churn)
    worker.start()
    seen = []
    stream = watch.Watch().stream(
        core.list_namespaced_config_map, ns, resource_version=start, timeout_seconds=10
    )
    for event in stream:
        seen.append((event["type"], event["object"].metadata.name, event["object"].data))
        if event["type"] == "DELETED":
            break
    worker.join()
    assert seen == [
        ("ADDED", "w", {"v": "1"}),
        ("MODIFIED", "w", {"v": "2"}),
        ("DELETED", "w", {"v": "2"}),
    ]


def test_watch_without_resource_version_lists_existing_objects(
    core: client.CoreV1Api, ns: str
) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "a", "labels": {"k": "v"}}})
    core.create_namespaced_config_map(ns, {"metadata": {"name": "b"}})
    events = list(
        watch.Watch().stream(
            core.list_namespaced_config_map, ns, label_selector="k=v", timeout_seconds=1
        )
    )
    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]


CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wg"],
        },
        "scope": "Namespaced",
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
                "subresources": {"status": {}},
            }
        ],
    },
}


def test_crd_registers_in_discovery_and_serves_custom_resources(
    api_client: client.ApiClient, kube_api: KubeSimulator, ns: str
) -> None:
    extensions = client.ApiextensionsV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)
    groups = client.ApisApi(api_client)
    extensions.create_custom_resource_definition(CRD)
    try:
        served = {g.name: g for g in groups.get_api_versions().groups}
        assert served["example.com"].preferred_version.group_version == "example.com/v1"
        _, resources = raw(kube_api, "GET", "/apis/example.com/v1")
        assert {r["name"] for r in resources["resources"]} == {"widgets", "widgets/status"}

        widget = {
            "apiVersion": "example.com/v1",
            "kind": "Widget",
            "metadata": {"name": "w1"},
            "spec": {"size": 1, "tags": ["a"]},
        }
        created = custom.create_namespaced_custom_object("example.com", "v1", ns, "widgets", widget)
        assert created["metadata"]["generation"] == 1
        patched = custom.patch_namespaced_custom_object(
            "example.com", "v1", ns, "widgets", "w1", {"spec": {"size": 2}}
        )
        assert patched["spec"] == {"size": 2, "tags": ["a"]}
        with pytest.raises(ApiException) as exc:
            custom.patch_namespaced_custom_object(
                "example.com",
                "v1",
                ns,
                "widgets",
                "w1",
                {"spec": {"size": 3}},
                _content_type="application/strategic-merge-patch+json",
            )
        assert exc.value.status == 415
        assert patched["metadata"]["generation"] == 2
        custom.patch_namespaced_custom_object_status(
            "example.com", "v1", ns, "widgets", "w1", {"status": {"ready": True}}
        )
        listed = custom.list_namespaced_custom_object("example.com", "v1", ns, "widgets")
        assert [(i["metadata"]["name"], i["status"]) for i in listed["items"]] == [
            ("w1", {"ready": True})
        ]
    finally:
        extensions.delete_custom_resource_definition("widgets.example.com")
    assert "example.com" not in {g.name for g in groups.get_api_versions().groups}
    with pytest.raises(ApiException) as exc:
        custom.list_namespaced_custom_object("example.com", "v1", ns, "widgets")
    assert exc.value.status == 404


def test_deleting_a_namespace_deletes_its_objects(core: client.CoreV1Api) -> None:
    core.create_namespace({"metadata": {"name": "doomed"}})
    core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    core.create_namespaced_secret("doomed", {"metadata": {"name": "s"}, "stringData": {"k": "v"}})
    assert core.read_namespaced_secret("s", "doomed").data == {"k": "dg=="}
    core.delete_namespace("doomed")
    with pytest.raises(ApiException) as exc:
        core.read_namespace("doomed")
    assert exc.value.status == 404
    leftovers = core.list_config_map_for_all_namespaces(field_selector="metadata.namespace=doomed")
    assert leftovers.items == []
    with pytest.raises(ApiException) as exc:
        core.create_namespaced_config_map("doomed", {"metadata": {"name": "c"}})
    assert exc.value.status == 404


def test_owner_references_cascade_and_orphan(core: client.CoreV1Api, ns: str) -> None:
    def make(name: str, owner: client.V1ConfigMap | None = None) -> client.V1ConfigMap:
        meta: dict = {"name": name}
        if owner is not None:
            meta["ownerReferences"] = [
                {
                    "apiVersion": "v1",
                    "kind": "ConfigMap",
                    "name": owner.metadata.name,
                    "uid": owner.metadata.uid,
                }
            ]
        return core.create_namespaced_config_map(ns, {"metadata": meta})

    root = make("root")
    child = make("child", root)
    make("grandchild", child)
    make("bystander")
    core.delete_namespaced_config_map("root", ns)
    assert [c.metadata.name for c in core.list_namespaced_config_map(ns).items] == ["bystander"]

    keeper = make("keeper")
    make("kept", keeper)
    core.delete_namespaced_config_map("keeper", ns, propagation_policy="Orphan")
    kept = core.read_namespaced_config_map("kept", ns)
    assert kept.metadata.owner_references is None


def test_server_side_apply_creates_then_updates(kube_api: KubeSimulator, ns: str) -> None:
    path = f"/api/v1/namespaces/{ns}/configmaps/applied?fieldManager=tests&force=true"
    first = (
        b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '1'\n  b: '2'\n"
    )
    status, body = raw(kube_api, "PATCH", path, first, "application/apply-patch+yaml")
    assert status == 201
    assert body["data"] == {"a": "1", "b": "2"}
    second = b"apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: applied\ndata:\n  a: '3'\n"
    status, body = raw(kube_api, "PATCH", path, second, "application/apply-patch+yaml")
    assert status == 200
    assert body["data"] == {"a": "3"}  # b was applied by this manager before, so it goes


def test_errors_are_status_objects(kube_api: KubeSimulator, ns: str) -> None:
    status, body = raw(kube_api, "GET", "/apis/example.org/v9/things")
    assert (status, body["kind"], body["reason"]) == (404, "Status", "NotFound")
    status, body = raw(kube_api, "GET", f"/api/v1/namespaces/{ns}/configmaps/missing")
    assert (status, body["reason"]) == (404, "NotFound")
    assert body["details"] == {"name": "missing", "group": "", "kind": "configmaps"}
    status, body = raw(
        kube_api, "POST", f"/api/v1/namespaces/{ns}/configmaps", b"{}", "application/json"
    )
    assert (status, body["reason"]) == (422, "Invalid")
    status, body = raw(
        kube_api, "POST", f"/api/v1/namespaces/{ns}/configmaps", b"{nope", "application/json"
    )
    assert (status, body["reason"]) == (400, "BadRequest")
    status, body = raw(
        kube_api, "POST", f"/api/v1/namespaces/{ns}/configmaps/x", b"{}", "application/json"
    )
    assert (status, body["reason"]) == (405, "MethodNotAllowed")
    status, body = raw(kube_api, "GET", "/version")
    assert (status, body["major"], body["minor"]) == (200, "1", "32")
    assert body["gitVersion"].startswith("v1.32.")


def test_services_get_cluster_ips_and_a_proxy(
    core: client.CoreV1Api, kube_api: KubeSimulator, ns: str
) -> None:
    spec = {"ports": [{"name": "web", "port": 9090}], "selector": {"app": "prom"}}
    svc = core.create_namespaced_service(ns, {"metadata": {"name": "prom"}, "spec": spec})
    assert svc.spec.cluster_ip.startswith("10.100.")
    assert svc.spec.ports[0].target_port == 9090
    other = core.create_namespaced_service(ns, {"metadata": {"name": "other"}, "spec": spec})
    assert other.spec.cluster_ip != svc.spec.cluster_ip

    proxy = f"/api/v1/namespaces/{ns}/services/prom:9090/proxy/api/v1/query?query=up"
    status, body = raw(kube_api, "GET", proxy)
    assert (status, body["reason"]) == (503, "ServiceUnavailable")

    seen: list[ProxyRequest] = []

    def prometheus(request: ProxyRequest) -> ProxyResponse:
        seen.append(request)
        return ProxyResponse(200, json.dumps({"status": "success"}).encode())

    kube_api.register_service_proxy(ns, "prom", prometheus)
    status, body = raw(kube_api, "GET", proxy)
    assert (status, body) == (200, {"status": "success"})
    assert (seen[0].path, seen[0].query, seen[0].port) == ("/api/v1/query", "query=up", "9090")
    status, _ = raw(kube_api, "GET", f"/api/v1/namespaces/{ns}/services/absent/proxy/")
    assert status == 404


def test_scale_subresource(apps: client.AppsV1Api, ns: str) -> None:
    apps.create_namespaced_deployment(ns, deployment("web", replicas=2))
    scale = apps.read_namespaced_deployment_scale("web", ns)
    assert (scale.spec.replicas, scale.status.selector) == (2, "app=web")
    apps.patch_namespaced_deployment_scale("web", ns, {"spec": {"replicas": 5}})
    assert apps.read_namespaced_deployment("web", ns).spec.replicas == 5


def test_stop_ends_open_watches_and_joins_threads() -> None:
    # Threads of earlier modules may still be ending: compare which threads exist, not counts.
    before = set(threading.enumerate())
    sim = KubeSimulator(SandboxSettings(), run_controllers=False).start()
    request = urllib.request.Request(sim.url + "/api/v1/namespaces?watch=1")
    response = urllib.request.urlopen(request, timeout=10)
    first = json.loads(response.readline())
    assert first["type"] == "ADDED"
    began = time.monotonic()
    sim.stop()
    assert time.monotonic() - began < 5
    # The stream ends with its terminating chunk, or, when the connection is closed first,
    # mid-stream: either way the read returns instead of waiting.
    with contextlib.suppress(http.client.IncompleteRead):
        response.read()
    response.close()
    assert set(threading.enumerate()) - before == set()


def read_events(sim: KubeSimulator, path: str, count: int) -> list[dict]:
    with urllib.request.urlopen(sim.url + path, timeout=10) as stream:
        return [json.loads(stream.readline()) for _ in range(count)]


def test_watch_initial_events_bookmark_and_selector_transitions(
    core: client.CoreV1Api, kube_api: KubeSimulator, ns: str
) -> None:
    core.create_namespaced_config_map(ns, {"metadata": {"name": "a", "labels": {"pick": "yes"}}})
    base = f"/api/v1/namespaces/{ns}/configmaps?watch=1&labelSelector=pick%3Dyes"
    initial = read_events(
        kube_api, base + "&sendInitialEvents=true&allowWatchBookmarks=true&timeoutSeconds=5", 2
    )
    assert [e["type"] for e in initial] == ["ADDED", "BOOKMARK"]
    end = initial[1]["object"]["metadata"]
    assert end["annotations"] == {"k8s.io/initial-events-end": "true"}

    core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"pick": "no"}}})
    core.patch_namespaced_config_map("a", ns, {"metadata": {"labels": {"pick": "yes"}}})
    since = f"{base}&resourceVersion={end['resourceVersion']}&timeoutSeconds=5"
    moves = read_events(kube_api, since, 2)
    assert [(e["type"], e["object"]["metadata"]["labels"]["pick"]) for e in moves] == [
        ("DELETED", "no"),
        ("ADDED", "yes"),
    ]


def test_tables_and_aggregated_discovery(kube_api: KubeSimulator, ns: str) -> None:
    table_type = "application/json;as=Table;v=v1;g=meta.k8s.io"
    request = urllib.request.Request(
        kube_api.url + "/api/v1/namespaces", headers={"Accept": f"{table_type},application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == table_type
        table = json.loads(response.read())
    assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "Status", "Age"]
    assert [ns, "Active"] in [row["cells"][:2] for row in table["rows"]]

    aggregated = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
    request = urllib.request.Request(
        kube_api.url + "/apis", headers={"Accept": f"{aggregated},application/json"}
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.headers["Content-Type"] == aggregated
        groups = {g["metadata"]["name"]: g for g in json.loads(response.read())["items"]}
    apps = groups["apps"]["versions"][0]
    deployments = next(r for r in apps["resources"] if r["resource"] == "deployments")
    assert deployments["scope"] == "Namespaced"
    assert {s["subresource"] for s in deployments["subresources"]} == {"status", "scale"}
