"""Admission: Pod Security Admission (``pod_security``) and webhooks, as the API server calls
them, without running them.

Before a create or an update, the API server calls every validating and mutating webhook
whose rules match the request (group, version, resource, operation and scope; the
namespaceSelector and objectSelector's ``matchLabels``). The sandbox runs no webhook
server, so it checks only what decides whether the call can be made at all: the webhook's
Service must exist in its namespace. A webhook whose Service is missing fails the request
with failurePolicy Fail (the default), with the API server's words (500 InternalError,
"failed calling webhook ... service ... not found"); with failurePolicy Ignore the request
goes on. A URL webhook (``clientConfig.url``) is taken as reachable.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from sandbox.kube.errors import ApiError
from sandbox.kube.pod_security import admit_pod
from sandbox.kube.resources import ResourceType
from sandbox.kube.store import Store

CONFIGURATIONS = (
    ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
    ("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration"),
)


def _matches(values: list[str] | None, value: str) -> bool:
    return any(v in ("*", value) for v in values or [])


def _rule_matches(rule: dict[str, Any], rt: ResourceType, operation: str) -> bool:
    scope = rule.get("scope", "*")
    if scope != "*" and scope != ("Namespaced" if rt.namespaced else "Cluster"):
        return False
    return (
        _matches(rule.get("apiGroups"), rt.group)
        and _matches(rule.get("apiVersions"), rt.version)
        and _matches(rule.get("resources"), rt.plural)
        and _matches(rule.get("operations"), operation)
    )


def _labels_match(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    wanted = (selector or {}).get("matchLabels") or {}
    return all(labels.get(key) == value for key, value in wanted.items())


def _webhooks(store: Store) -> Iterator[dict[str, Any]]:
    for api_version, kind in CONFIGURATIONS:
        rt = store.registry.by_kind(api_version, kind)
        if rt is None:
            continue
        configurations, _ = store.list(rt)
        for configuration in configurations:
            yield from configuration.get("webhooks") or []


def admit(store: Store, rt: ResourceType, obj: dict[str, Any], operation: str) -> None:
    """Raise the API server's error when a webhook that must be called cannot be, or when a
    new pod breaks its namespace's Pod Security Standard."""
    if operation == "CREATE" and rt.group == "" and rt.kind == "Pod":
        admit_pod(store, obj)
    namespace = (obj.get("metadata") or {}).get("namespace")
    labels = (obj.get("metadata") or {}).get("labels") or {}
    for webhook in _webhooks(store):
        if webhook.get("failurePolicy", "Fail") != "Fail":
            continue
        if not any(_rule_matches(r, rt, operation) for r in webhook.get("rules") or []):
            continue
        if not _labels_match(webhook.get("objectSelector"), labels):
            continue
        if rt.namespaced and not _labels_match(
            webhook.get("namespaceSelector"), _namespace_labels(store, namespace)
        ):
            continue
        service = (webhook.get("clientConfig") or {}).get("service")
        if service is None:
            continue
        _check_service(store, webhook["name"], service)


def _namespace_labels(store: Store, namespace: str | None) -> dict[str, str]:
    rt = store.registry.by_kind("v1", "Namespace")
    found = store.get(rt, None, namespace) if rt is not None and namespace else None
    labels = dict(((found or {}).get("metadata") or {}).get("labels") or {})
    if namespace:
        labels.setdefault("kubernetes.io/metadata.name", namespace)
    return labels


def _check_service(store: Store, webhook: str, service: dict[str, Any]) -> None:
    name, namespace = service.get("name", ""), service.get("namespace", "")
    rt = store.registry.by_kind("v1", "Service")
    if rt is not None and store.get(rt, namespace, name) is not None:
        return
    path = service.get("path") or "/"
    port = service.get("port", 443)
    raise ApiError(
        500,
        "InternalError",
        f'Internal error occurred: failed calling webhook "{webhook}": failed to call '
        f'webhook: Post "https://{name}.{namespace}.svc:{port}{path}?timeout=10s": '
        f'service "{name}" not found',
    )
