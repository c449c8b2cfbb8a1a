"""The simulator's building blocks without a server: protobuf, selectors, patches, the store."""

from __future__ import annotations

import threading

import pytest

from sandbox.kube import protobuf
from sandbox.kube.patch import json_patch, merge_patch, server_side_apply, strategic_merge_patch
from sandbox.kube.resources import builtin_registry
from sandbox.kube.selectors import parse_field_selector, parse_label_selector, selector_from_dict
from sandbox.kube.store import ApiError, Event, Store

pytestmark = pytest.mark.sandbox

REGISTRY = builtin_registry()
CONFIG_MAPS = REGISTRY.by_kind("v1", "ConfigMap")
DEPLOYMENTS = REGISTRY.by_kind("apps/v1", "Deployment")
NAMESPACES = REGISTRY.by_kind("v1", "Namespace")


# -- a minimal protobuf writer, to build helm-like request bodies by hand ---------------


def varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def field(number: int, payload: bytes | str | int) -> bytes:
    if isinstance(payload, int):
        return varint(number << 3) + varint(payload)
    data = payload.encode() if isinstance(payload, str) else payload
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: bytes | str) -> bytes:
    return field(number, field(1, key) + field(2, value))


def test_protobuf_secret_envelope_decodes_to_json() -> None:
    metadata = (
        field(1, "sh.helm.release.v1.demo.v1")
        + field(3, "apps")
        + field(6, "42")
        + field(8, field(1, 1_700_000_000))
        + entry(11, "owner", "helm")
        + entry(11, "name", "demo")
        + entry(12, "note", "hand built")
        + field(14, "example.com/cleanup")
    )
    secret = (
        field(1, metadata) + entry(2, "release", b"\x00\xffgz") + field(3, "helm.sh/release.v1")
    )
    secret += field(5, 1)
    envelope = (
        field(1, field(1, "v1") + field(2, "Secret"))
        + field(2, secret)
        + field(3, "")
        + field(4, "application/vnd.kubernetes.protobuf")
    )
    decoded = protobuf.decode(protobuf.MAGIC + envelope)
    assert decoded == {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": "sh.helm.release.v1.demo.v1",
            "namespace": "apps",
            "resourceVersion": "42",
            "creationTimestamp": "2023-11-14T22:13:20Z",
            "labels": {"owner": "helm", "name": "demo"},
            "annotations": {"note": "hand built"},
            "finalizers": ["example.com/cleanup"],
        },
        "data": {"release": "AP9neg=="},
        "type": "helm.sh/release.v1",
        "immutable": True,
    }


def test_protobuf_rejects_what_it_cannot_decode() -> None:
    pod = field(1, field(1, "v1") + field(2, "Pod")) + field(2, b"")
    with pytest.raises(protobuf.ProtobufError, match="Pod"):
        protobuf.decode(protobuf.MAGIC + pod)
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(b'{"kind": "Secret"}')
    with pytest.raises(protobuf.ProtobufError):
        protobuf.decode(protobuf.MAGIC + field(2, b"")[:-1] + b"\x05")


# -- selectors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ("app=web", {"web-front", "web-back"}),
        ("app==web,tier=front", {"web-front"}),
        ("app!=web", {"db", "bare"}),
        ("tier in (front, back)", {"web-front", "web-back"}),
        ("tier notin (front)", {"web-back", "db", "bare"}),
        ("tier", {"web-front", "web-back"}),
        ("!tier", {"db", "bare"}),
        ("rank>2", {"web-back"}),
        ("", {"web-front", "web-back", "db", "bare"}),
    ],
)
def test_label_selectors(selector: str, matches: set[str]) -> None:
    labels = {
        "web-front": {"app": "web", "tier": "front", "rank": "1"},
        "web-back": {"app": "web", "tier": "back", "rank": "3"},
        "db": {"app": "db"},
        "bare": {},
    }
    parsed = parse_label_selector(selector)
    assert {name for name, have in labels.items() if parsed.matches(have)} == matches


def test_label_selector_dicts_and_field_selectors() -> None:
    selector = selector_from_dict(
        {"matchLabels": {"app": "web"}, "matchExpressions": [{"key": "tier", "operator": "Exists"}]}
    )
    assert str(selector) == "app=web,tier"
    assert selector.matches({"app": "web", "tier": "x"}) and not selector.matches({"app": "web"})
    pod = {"metadata": {"name": "p"}, "spec": {"nodeName": ""}, "status": {"phase": "Running"}}
    assert parse_field_selector("status.phase=Running,metadata.name!=q").matches(pod)
    assert parse_field_selector("spec.nodeName=").matches(pod)
    assert not parse_field_selector("spec.nodeName!=").matches(pod)


# -- patches ----------------------------------------------------------------------------


def test_strategic_merge_directives() -> None:
    pod_spec = {
        "containers": [
            {"name": "a", "image": "a:1", "ports": [{"containerPort": 80, "protocol": "TCP"}]},
            {"name": "b", "image": "b:1", "volumeMounts": [{"name": "v", "mountPath": "/v"}]},
        ],
        "volumes": [{"name": "v", "emptyDir": {}}],
        "tolerations": [{"key": "x"}],
    }
    obj = {"metadata": {"finalizers": ["one"], "labels": {"a": "1"}}, "spec": pod_spec}
    patch = {
        "metadata": {"finalizers": ["two"], "labels": {"a": None, "b": "2"}},
        "spec": {
            "$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
            "containers": [
                {"name": "a", "ports": [{"containerPort": 443}]},
                {"name": "b", "volumeMounts": [{"mountPath": "/v", "$patch": "delete"}]},
            ],
            "volumes": [{"name": "v", "$patch": "delete"}],
            "tolerations": [{"key": "y"}],
        },
    }
    result = strategic_merge_patch(obj, patch)
    assert result["metadata"] == {"finalizers": ["one", "two"], "labels": {"b": "2"}}
    containers = result["spec"]["containers"]
    assert [c["name"] for c in containers] == ["b", "a"]
    assert [p["containerPort"] for p in containers[1]["ports"]] == [80, 443]
    assert containers[0]["volumeMounts"] == []
    assert result["spec"]["volumes"] == []
    assert result["spec"]["tolerations"] == [{"key": "y"}]  # no merge key: replaced
    replaced = strategic_merge_patch(obj, {"spec": {"$patch": "replace", "containers": []}})
    assert replaced["spec"] == {"containers": []}
    retained = strategic_merge_patch(
        {"strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1}}},
        {"strategy": {"$retainKeys": ["type"], "type": "Recreate"}},
    )
    assert retained == {"strategy": {"type": "Recreate"}}


def test_merge_json_and_apply_patches() -> None:
    doc = {"a": {"b": 1, "c": [1, 2]}, "d": "x"}
    assert merge_patch(doc, {"a": {"b": None, "c": [3]}, "e": 1}) == {
        "a": {"c": [3]},
        "d": "x",
        "e": 1,
    }
    ops = [
        {"op": "add", "path": "/a/c/-", "value": 3},
        {"op": "move", "from": "/d", "path": "/f"},
        {"op": "copy", "from": "/f", "path": "/a/g~1h"},
        {"op": "remove", "path": "/a/b"},
    ]
    assert json_patch(doc, ops) == {"a": {"c": [1, 2, 3], "g/h": "x"}, "f": "x"}
    assert doc == {"a": {"b": 1, "c": [1, 2]}, "d": "x"}  # patches never touch their input
    current = {"data": {"mine": "1", "old": "2", "theirs": "3"}}
    applied = server_side_apply(
        current, {"data": {"mine": "9"}}, {"data": {"mine": "1", "old": "2"}}, True
    )
    assert applied == {"data": {"mine": "9", "theirs": "3"}}


# -- the store --------------------------------------------------------------------------


def test_store_starts_with_system_namespaces_and_rejects_unknown_namespaces() -> None:
    store = Store()
    names = [n["metadata"]["name"] for n in store.list(NAMESPACES)[0]]
    assert names == ["default", "kube-node-lease", "kube-public", "kube-system"]
    assert {n["status"]["phase"] for n in store.list(NAMESPACES)[0]} == {"Active"}
    with pytest.raises(ApiError) as exc:
        store.create(CONFIG_MAPS, {"metadata": {"name": "c", "namespace": "nowhere"}})
    assert exc.value.code == 404
    made = store.create(CONFIG_MAPS, {"metadata": {"generateName": "cfg-", "namespace": "default"}})
    assert made["metadata"]["name"].startswith("cfg-") and len(made["metadata"]["name"]) == 9


def test_store_generation_and_no_op_writes() -> None:
    store = Store()
    base = {"metadata": {"name": "web", "namespace": "default"}, "spec": {"replicas": 1}}
    created = store.create(DEPLOYMENTS, base)
    same = store.replace(DEPLOYMENTS, created)
    assert same["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    status = store.set_status(DEPLOYMENTS, "default", "web", {"replicas": 1})
    assert status is not None and status["metadata"]["generation"] == 1
    assert store.set_status(DEPLOYMENTS, "default", "gone", {}) is None
    bumped = store.modify(
        DEPLOYMENTS, "default", "web", lambda d: {**d, "spec": {**d["spec"], "replicas": 2}}
    )
    assert bumped["metadata"]["generation"] == 2
    assert bumped["status"] == {"replicas": 1}


def test_store_subscribers_get_ordered_events_outside_the_lock() -> None:
    store = Store()
    seen: list[tuple[str, str]] = []

    def react(event: Event) -> None:
        seen.append((event.type, event.obj["metadata"]["name"]))
        # Writing from a callback must neither deadlock nor reorder delivery.
        if event.type == "ADDED" and event.obj["metadata"]["name"] == "first":
            store.create(CONFIG_MAPS, {"metadata": {"name": "second", "namespace": "default"}})

    store.subscribe(react)
    worker = threading.Thread(
        target=store.create,
        args=(CONFIG_MAPS, {"metadata": {"name": "first", "namespace": "default"}}),
    )
    worker.start()
    worker.join(5)
    store.delete(CONFIG_MAPS, "default", "first")
    assert seen == [("ADDED", "first"), ("ADDED", "second"), ("DELETED", "first")]


def test_store_watch_resumes_from_history_until_it_is_compacted() -> None:
    store = Store(history_size=3)
    start = store.resource_version
    for i in range(2):
        store.create(CONFIG_MAPS, {"metadata": {"name": f"c{i}", "namespace": "default"}})
    resumed = store.watch(CONFIG_MAPS, "default", resource_version=start)
    names = [resumed.next(0).obj["metadata"]["name"] for _ in range(2)]
    assert names == ["c0", "c1"]
    assert resumed.next(0) is None
    resumed.close()
    for i in range(2, 6):
        store.create(CONFIG_MAPS, {"metadata": {"name": f"c{i}", "namespace": "default"}})
    with pytest.raises(ApiError) as exc:
        store.watch(CONFIG_MAPS, "default", resource_version=start)
    assert (exc.value.code, exc.value.reason) == (410, "Expired")
