"""Which nodes a pod may run on: readiness, taints, nodeSelector and required node affinity.

Resource requests, pod (anti-)affinity and topology spread constraints are not considered;
the only capacity limit is the node's allocatable pod count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sandbox.kube.objects import condition
from sandbox.kube.selectors import Requirement

# Taint effects that keep a pod off a node (PreferNoSchedule is only a preference).
REPELLING = ("NoSchedule", "NoExecute")
_AFFINITY_OPS = {
    "In": "in",
    "NotIn": "notin",
    "Exists": "exists",
    "DoesNotExist": "!",
    "Gt": "gt",
    "Lt": "lt",
}


def node_ready(node: Mapping[str, Any]) -> bool:
    ready = condition(node.get("status", {}).get("conditions"), "Ready")
    return ready is not None and ready.get("status") == "True"


def tolerates(tolerations: list[dict[str, Any]], taint: Mapping[str, Any]) -> bool:
    for toleration in tolerations:
        effect = toleration.get("effect")
        if effect and effect != taint.get("effect"):
            continue
        key = toleration.get("key")
        if toleration.get("operator", "Equal") == "Exists":
            if not key or key == taint.get("key"):
                return True
        elif key == taint.get("key") and toleration.get("value", "") == taint.get("value", ""):
            return True
    return False


def _term_matches(term: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    labels = node.get("metadata", {}).get("labels") or {}
    fields = {"metadata.name": node.get("metadata", {}).get("name", "")}
    for source, values in (("matchExpressions", labels), ("matchFields", fields)):
        for expr in term.get(source) or []:
            op = _AFFINITY_OPS.get(expr.get("operator", ""))
            if op is None:
                return False
            requirement = Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ()))
            if not requirement.matches(values):
                return False
    return True


def affinity_allows(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    node_affinity = (pod_spec.get("affinity") or {}).get("nodeAffinity") or {}
    required = node_affinity.get("requiredDuringSchedulingIgnoredDuringExecution") or {}
    terms = required.get("nodeSelectorTerms") or []
    # the terms are ORed; an empty list places no constraint
    return not terms or any(_term_matches(term, node) for term in terms)


def node_fits(pod_spec: Mapping[str, Any], node: Mapping[str, Any]) -> bool:
    """Whether the pod may run on the node, ignoring how full it is."""
    if not node_ready(node) or (node.get("spec") or {}).get("unschedulable"):
        return False
    tolerations = pod_spec.get("tolerations") or []
    for taint in (node.get("spec") or {}).get("taints") or []:
        if taint.get("effect") in REPELLING and not tolerates(tolerations, taint):
            return False
    node_labels = node.get("metadata", {}).get("labels") or {}
    selector = pod_spec.get("nodeSelector") or {}
    if any(node_labels.get(k) != v for k, v in selector.items()):
        return False
    return affinity_allows(pod_spec, node)


def pod_capacity(node: Mapping[str, Any]) -> int:
    allocatable = (node.get("status") or {}).get("allocatable") or {}
    try:
        return int(allocatable.get("pods", 110))
    except (TypeError, ValueError):
        return 110


def pick_node(
    pod_spec: Mapping[str, Any], nodes: list[dict[str, Any]], load: Mapping[str, int]
) -> dict[str, Any] | None:
    """The least loaded node the pod fits on (ties broken by name), or None."""
    candidates = [
        node
        for node in nodes
        if node_fits(pod_spec, node) and load.get(node["metadata"]["name"], 0) < pod_capacity(node)
    ]
    if not candidates:
        return None
    return min(
        candidates, key=lambda n: (load.get(n["metadata"]["name"], 0), n["metadata"]["name"])
    )


def unschedulable_message(pod_spec: Mapping[str, Any], nodes: list[dict[str, Any]]) -> str:
    """A message in the style of the scheduler's FailedScheduling events."""
    if not nodes:
        return "no nodes available to schedule pods"
    reasons: dict[str, int] = {}
    for node in nodes:
        if not node_ready(node):
            reason = "node(s) were not ready"
        elif not node_fits(pod_spec, node):
            reason = "node(s) didn't match pod's node affinity/selector or had untolerated taint"
        else:
            reason = "Too many pods"
        reasons[reason] = reasons.get(reason, 0) + 1
    detail = ", ".join(f"{count} {reason}" for reason, count in sorted(reasons.items()))
    return f"0/{len(nodes)} nodes are available: {detail}."
