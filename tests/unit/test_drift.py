"""Drift comparisons (pure: what was read against what the spec asks) and the report rows."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec
from flows.revalidate import drift_message, report_rows, summary_markdown
from tasks.aws.volumes import volume_tags
from tasks.drift import (
    VALIDATION,
    Finding,
    Issue,
    NetworkView,
    addon_issues,
    cluster_issues,
    crd_issues,
    finding,
    network_issues,
    node_group_issues,
    release_issues,
    scaling_of,
    storage_class_issues,
    validation_finding,
    values_drift,
)
from tasks.helm import DeployedRelease
from tasks.storage import storage_class_body

SPEC = load_spec("sandbox")
ARGOCD = load_catalogue().component("argocd")
CHART = ARGOCD.chart
assert CHART is not None
SECRET = "s3cr3t-value"


def deployed(**changes: Any) -> DeployedRelease:
    base = {
        "name": CHART.release,
        "namespace": "argocd",
        "chart": f"{CHART.name}-{CHART.version}",
        "revision": 2,
        "status": "deployed",
        "values": {"server": {"replicas": 2}, "configs": {"secret": SECRET}},
    }
    return DeployedRelease(**{**base, **changes})


# ------------------------------------------------------------------------------- findings


def test_a_finding_takes_its_worst_issue_and_lists_them_all():
    issues = [Issue("drifted", "a"), Issue("missing", "b"), Issue("unhealthy", "c")]
    found = finding("x", "foundation", "vpc", issues, "fine")
    assert (found.status, found.detail) == ("missing", "a; b; c")
    assert not found.ok
    assert finding("x", "foundation", "vpc", [], "fine") == Finding(
        "x", "foundation", "vpc", "ok", "fine"
    )


def test_a_long_detail_is_cut():
    found = finding("x", "foundation", "vpc", [Issue("drifted", "y" * 1000)], "")
    assert len(found.detail) == 300 and found.detail.endswith("...")


# ---------------------------------------------------------------------------- releases


def test_values_drift_names_the_top_level_keys_that_differ():
    current = {"a": 1, "b": {"c": [1, 2]}, "gone": True}
    wanted = {"a": 1, "b": {"c": [1, 3]}, "new": None}
    assert values_drift(current, wanted) == ["b", "gone", "new"]
    assert values_drift(wanted, copy.deepcopy(wanted)) == []


def test_a_release_at_its_pin_with_the_same_values_is_ok():
    assert release_issues(CHART, "argocd", deployed(), deployed().values) == []


def test_release_drift_names_keys_never_values():
    wanted = {"server": {"replicas": 3}, "configs": {"secret": "other"}, "global": {}}
    issues = release_issues(CHART, "argocd", deployed(), wanted)
    assert issues == [Issue("drifted", "values differ under configs, global, server")]
    assert SECRET not in str(issues) and "other" not in str(issues)


@pytest.mark.parametrize(
    ("release", "expected"),
    [
        (None, [Issue("missing", "release argocd is not installed in argocd")]),
        (
            deployed(status="failed"),
            [Issue("unhealthy", "revision 2 is failed")],
        ),
        (
            deployed(chart="argo-cd-9.0.0"),
            [Issue("drifted", f"chart argo-cd-9.0.0, the catalogue pins argo-cd-{CHART.version}")],
        ),
    ],
)
def test_release_issues(release: DeployedRelease | None, expected: list[Issue]):
    values = deployed().values
    assert release_issues(CHART, "argocd", release, values) == expected


# ------------------------------------------------------------------------- node groups


def group_found(name: str, **changes: Any) -> dict[str, Any]:
    group = SPEC.node_groups[name]
    return {
        "status": "ACTIVE",
        "scalingConfig": scaling_of(group),
        "instanceTypes": list(group.instance_types),
        "capacityType": group.capacity_type,
        "labels": dict(group.labels),
        **changes,
    }


def test_a_node_group_as_specified_is_ok():
    for name, group in SPEC.node_groups.items():
        assert node_group_issues(name, group, group_found(name)) == []


def test_node_group_drift_names_each_field_off_spec():
    group = SPEC.node_groups["workload"]
    found = group_found(
        "workload",
        scalingConfig={"minSize": 1, "maxSize": 5, "desiredSize": 3},
        instanceTypes=["t3.large"],
        capacityType="ON_DEMAND",
        labels={"platform.io/role": "other", "team": "x"},
    )
    assert node_group_issues("workload", group, found) == [
        Issue("drifted", "workload maxSize 5 (spec 8)"),
        Issue("drifted", "workload instance types t3.large (spec t3.large,t3a.large,t2.large)"),
        Issue("drifted", "workload capacity ON_DEMAND (spec SPOT)"),
        Issue("drifted", "workload labels differ: platform.io/role, team"),
    ]


def test_a_missing_or_degraded_node_group():
    group = SPEC.node_groups["system"]
    assert node_group_issues("system", group, None) == [
        Issue("missing", "node group system is missing")
    ]
    degraded = group_found(
        "system", status="DEGRADED", health={"issues": [{"code": "AsgInstanceLaunchFailures"}]}
    )
    assert node_group_issues("system", group, degraded) == [
        Issue("unhealthy", "system is DEGRADED (AsgInstanceLaunchFailures)")
    ]


# ------------------------------------------------------------------ add-ons and cluster


def test_addon_issues():
    active = {"status": "ACTIVE", "addonVersion": "v1.2.0", "health": {"issues": []}}
    assert addon_issues("coredns", None, active) == []
    assert addon_issues("coredns", "v1.2.0", active) == []
    assert addon_issues("coredns", "v1.3.0", active) == [
        Issue("drifted", "version v1.2.0 (spec v1.3.0)")
    ]
    assert addon_issues("coredns", None, None) == [Issue("missing", "add-on coredns is missing")]
    degraded = {
        **active,
        "status": "DEGRADED",
        "health": {"issues": [{"code": "InsufficientNumberOfReplicas", "message": "0 of 2"}]},
    }
    assert addon_issues("coredns", None, degraded) == [
        Issue("unhealthy", "coredns is DEGRADED with health issues InsufficientNumberOfReplicas")
    ]


def test_cluster_issues():
    cluster = {"status": "ACTIVE", "version": "1.32"}
    assert cluster_issues("c", cluster, "1.32") == []
    assert cluster_issues("c", None, "1.32") == [Issue("missing", "cluster c is missing")]
    assert cluster_issues("c", {"status": "UPDATING", "version": "1.31"}, "1.32") == [
        Issue("unhealthy", "cluster c is UPDATING"),
        Issue("drifted", "Kubernetes 1.31, the spec resolves to 1.32"),
    ]


# --------------------------------------------------------------- in-cluster and network


def test_storage_class_issues():
    wanted = storage_class_body(SPEC.storage_class, volume_tags(SPEC))
    assert storage_class_issues(wanted, copy.deepcopy(wanted)) == []
    assert storage_class_issues(wanted, None) == [Issue("missing", "StorageClass gp3 is missing")]
    changed = copy.deepcopy(wanted)
    changed["allowVolumeExpansion"] = not wanted["allowVolumeExpansion"]
    changed["metadata"]["annotations"] = {}
    assert storage_class_issues(wanted, changed) == [
        Issue(
            "drifted",
            "StorageClass gp3: allowVolumeExpansion, "
            "annotation storageclass.kubernetes.io/is-default-class",
        )
    ]


def crd(name: str, versions: list[str]) -> dict[str, Any]:
    return {"metadata": {"name": name}, "spec": {"versions": [{"name": v} for v in versions]}}


def test_crd_issues_count_missing_and_name_stale():
    wanted = [crd(f"r{i}.example.io", ["v1"]) for i in range(5)]
    served = {c["metadata"]["name"]: copy.deepcopy(c) for c in wanted}
    served["r0.example.io"]["spec"]["conversion"] = {"strategy": "None"}  # a server default
    assert crd_issues(wanted, served) == []
    served["r1.example.io"] = crd("r1.example.io", ["v1beta1"])
    for gone in ("r2.example.io", "r3.example.io", "r4.example.io"):
        served[gone] = None
    assert crd_issues(wanted, served) == [
        Issue("missing", "3 of 5 CRDs missing: r2.example.io, r3.example.io, r4.example.io"),
        Issue("drifted", "CRDs differ from the chart's: r1.example.io"),
    ]


def network_view(**changes: Any) -> NetworkView:
    zones = SPEC.network.availability_zones
    subnets = {f"{k}-{z}": f"subnet-{k}-{z}" for k in ("public", "private") for z in zones}
    base = {
        "vpc_id": "vpc-1",
        "cidr": SPEC.network.vpc_cidr,
        "subnets": subnets,
        "security_group": "sg-1",
    }
    return NetworkView(**{**base, **changes})


def test_network_issues():
    assert network_issues(SPEC, network_view()) == []
    assert network_issues(SPEC, NetworkView(None)) == [
        Issue("missing", "no VPC tagged for the platform")
    ]
    zone = SPEC.network.availability_zones[0]
    subnets = {k: v for k, v in network_view().subnets.items() if k != f"private-{zone}"}
    assert network_issues(
        SPEC, network_view(cidr="10.9.0.0/16", subnets=subnets, security_group=None)
    ) == [
        Issue("drifted", f"VPC CIDR 10.9.0.0/16 (spec {SPEC.network.vpc_cidr})"),
        Issue("drifted", f"subnets missing: private-{zone}"),
        Issue("drifted", "the cluster security group is missing"),
    ]


def test_a_network_view_gives_the_network_a_cluster_is_created_with():
    zones = SPEC.network.availability_zones
    network = network_view().network()
    assert (network.vpc_id, network.security_group) == ("vpc-1", "sg-1")
    assert network.private_subnets == {z: f"subnet-private-{z}" for z in zones}
    assert network.public_subnets == {z: f"subnet-public-{z}" for z in zones}


def test_validation_finding():
    checks = [
        {"name": "nodes_ready", "passed": False, "value": 2, "expected": ">= 3"},
        {"name": "cluster_info", "passed": True, "value": "v1.32", "expected": "answers"},
    ]
    assert validation_finding(checks) == Finding(
        VALIDATION, "foundation", "validation", "unhealthy", "nodes_ready 2 (expected >= 3)"
    )
    assert validation_finding(checks[1:]).detail == "1 checks passed"


# ------------------------------------------------------------------------------ report

OK = Finding("vpc", "foundation", "vpc", "ok", "vpc-1, 6 subnets")
MISSING = Finding("argocd", "gitops", "helm-release", "missing", "release argocd is not installed")
FIXED = Finding("argocd", "gitops", "helm-release", "ok", "revision 1 deployed")


def test_report_rows_without_and_with_remediation():
    before = {"vpc": OK, "argocd": MISSING}
    assert report_rows(before, None) == [OK.as_dict(), MISSING.as_dict()]
    rows = report_rows(before, {"vpc": OK, "argocd": FIXED})
    assert [(r["component"], r["before"], r["after"]) for r in rows] == [
        ("vpc", "ok", "ok"),
        ("argocd", "missing", "ok"),
    ]
    assert rows[0]["detail"] == OK.detail
    assert rows[1]["detail"] == "release argocd is not installed -> revision 1 deployed"


def test_summary_and_failure_message_name_the_drifted_components():
    before = {"vpc": OK, "argocd": MISSING}
    report = summary_markdown("sandbox", before, None, {})
    assert "2 checked: 1 ok, 1 missing" in report
    assert "| argocd | gitops | missing | release argocd is not installed |" in report
    healed = summary_markdown("sandbox", before, {"vpc": OK, "argocd": FIXED}, {})
    assert "- converged and healthy: argocd" in healed
    assert "- still drifted: none" in healed
    assert drift_message("sandbox", [MISSING], {"argocd": "helm failed"}).splitlines() == [
        "platform sandbox drifted: argocd",
        "argocd: missing: release argocd is not installed",
        "remediation of argocd failed: helm failed",
    ]
    assert drift_message("sandbox", [], {"x": "boom"}).startswith(
        "platform sandbox remediation failed"
    )
