"""The component catalogue: complete, justified, pinned, and consistent with the guide."""

from __future__ import annotations

import copy

import pytest
import yaml

from blueprint.catalogue import CATALOGUE_FILE, load_catalogue, parse_catalogue
from blueprint.errors import SpecError

REQUIRED = {
    "vpc", "iam", "eks", "node-groups",
    "addon-vpc-cni", "addon-kube-proxy", "addon-coredns", "addon-ebs-csi",
    "cert-manager", "external-dns", "ambassador",
    "mimir-storage", "loki-storage", "mimir", "prometheus", "loki", "tempo", "grafana",
    "argocd", "tekton", "openbao", "opa", "falco", "istiod",
    "postgresql", "redis", "kafka",
}  # fmt: skip


@pytest.fixture
def raw():
    return yaml.safe_load(CATALOGUE_FILE.read_text())


def test_every_component_of_the_guide_is_there():
    assert set(load_catalogue().names) >= REQUIRED


def test_every_edge_has_a_reason():
    for c in load_catalogue().components:
        for need, reason in c.needs.items():
            assert len(reason.split()) >= 3, f"{c.name} -> {need}: {reason!r}"


def test_add_on_ordering_follows_the_field():
    cat = load_catalogue()
    assert set(cat.component("addon-vpc-cni").needs) == {"eks"}
    assert set(cat.component("addon-kube-proxy").needs) == {"eks"}
    assert "node-groups" in cat.component("addon-coredns").needs
    assert "node-groups" in cat.component("addon-ebs-csi").needs
    # The cluster has no default CNI or kube-proxy: nodes join only once both run.
    assert set(cat.component("node-groups").needs) == {"eks", "addon-vpc-cni", "addon-kube-proxy"}


def test_storage_needs_nothing_in_the_cluster():
    cat = load_catalogue()
    assert cat.component("mimir-storage").needs == {}
    assert cat.component("loki-storage").needs == {}


def test_phase_sums_match_the_guides_workflow_totals():
    totals: dict[str, list[float]] = {}
    for phase in load_catalogue().guide_phase_plan:
        workflow = phase.name.split("/")[0]
        low, high = totals.setdefault(workflow, [0, 0])
        totals[workflow] = [low + phase.minutes.min, high + phase.minutes.max]
    # The guide: foundation 25-33, ingress 10-15, observability 16-24, advanced 20-25 minutes.
    assert totals == {
        "foundation": [25, 33],
        "ingress": [10, 15],
        "observability": [16, 24],
        "advanced": [20, 25],
    }


def test_charts_are_pinned_in_their_upstream_repositories():
    charts = {c.name: c.chart for c in load_catalogue().components if c.chart}
    assert charts["cert-manager"].repository == "https://charts.jetstack.io"
    assert (charts["prometheus"].name, charts["prometheus"].version) == (
        "kube-prometheus-stack",
        "88.5.3",
    )
    assert charts["ambassador"].reference == "oci://ghcr.io/emissary-ingress/emissary-ingress"
    assert charts["loki"].repository == "https://grafana-community.github.io/helm-charts"
    assert all(len(c.release) <= 53 for c in charts.values())


def test_in_cluster_components_live_in_the_consolidated_namespaces():
    from blueprint.loader import load_spec

    spec, cat = load_spec("sandbox"), load_catalogue()
    ns = {c.name: c.namespace_in(spec) for c in cat.components}
    assert ns["openbao"] == ns["falco"] == "security"
    assert ns["opa"] == "gatekeeper-system"  # its hook makes its namespace restricted
    assert ns["postgresql"] == ns["redis"] == ns["kafka"] == "data"
    assert ns["istiod"] == "istio-system" and ns["argocd"] == "argocd"
    # Tekton's webhooks call it in tekton-pipelines, whatever the release's namespace.
    assert ns["tekton"] == "tekton-pipelines" and ns["runner"] == "prefect"
    assert ns["addon-coredns"] == "kube-system" and ns["vpc"] is None


def _invalid(raw, mutate) -> list[str]:
    data = copy.deepcopy(raw)
    mutate(data)
    with pytest.raises(SpecError) as caught:
        parse_catalogue(data)
    return caught.value.problems


def _component(data, name):
    return next(c for c in data["components"] if c["name"] == name)


def test_catalogue_cycle_is_rejected(raw):
    problems = _invalid(raw, lambda d: _component(d, "vpc").update(needs={"eks": "made up reason"}))
    assert any("dependency cycle: vpc -> eks -> vpc" in p for p in problems), problems


def test_catalogue_unknown_need_is_rejected(raw):
    problems = _invalid(raw, lambda d: _component(d, "grafana")["needs"].update(ghost="why not"))
    assert "catalogue: component 'grafana' needs unknown component 'ghost'" in problems


def test_catalogue_kind_details_are_checked(raw):
    problems = _invalid(raw, lambda d: _component(d, "loki").pop("chart"))
    assert any("components[" in p and "kind helm-release needs chart" in p for p in problems)


def test_catalogue_rejects_unpinned_chart(raw):
    problems = _invalid(raw, lambda d: _component(d, "loki")["chart"].update(version="^18.0"))
    assert any("not an exact version" in p for p in problems), problems


def test_catalogue_rejects_long_release_name(raw):
    problems = _invalid(raw, lambda d: _component(d, "loki")["chart"].update(release="l" * 54))
    assert any("helm release names allow 53" in p for p in problems), problems


def test_catalogue_rejects_component_outside_the_phase_plan(raw):
    problems = _invalid(raw, lambda d: d["guide_phase_plan"][0]["components"].remove("iam"))
    assert "catalogue.guide_phase_plan: 'iam' is in no phase" in problems


def test_catalogue_rejects_duplicate_names(raw):
    problems = _invalid(raw, lambda d: d["components"].append(copy.deepcopy(d["components"][0])))
    assert any("'vpc' is defined twice" in p for p in problems), problems


def test_catalogue_rejects_empty_reason(raw):
    problems = _invalid(raw, lambda d: _component(d, "eks")["needs"].update(vpc=" "))
    assert any("needs.vpc: the reason is empty" in p for p in problems), problems
