"""The chart repository as files: every catalogue chart, a valid index, reproducible archives."""

from __future__ import annotations

import hashlib
import io
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from blueprint.catalogue import load_catalogue
from sandbox.charts.build import (
    BUILT_AT,
    INDEX_FILE,
    archive_name,
    build_repository,
    chart_files,
    package,
)
from sandbox.charts.crds import crd_documents, plural_of
from sandbox.charts.standins import (
    STANDINS_FILE,
    Crds,
    StandInError,
    StandIns,
    load_standins,
)

pytestmark = pytest.mark.sandbox


@pytest.fixture(scope="module")
def repository(tmp_path_factory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def index(repository) -> dict:
    return yaml.safe_load((repository / INDEX_FILE).read_text())


def catalogue_charts() -> dict[str, str]:
    return {c.chart.name: c.chart.version for c in load_catalogue().components if c.chart}


def test_every_catalogue_chart_is_served_at_its_pinned_version(index):
    served = {
        name: [entry["version"] for entry in entries] for name, entries in index["entries"].items()
    }
    missing = {
        name: version
        for name, version in catalogue_charts().items()
        if [version] != served.get(name)
    }
    assert not missing, f"not served at the catalogue's version: {missing}"


def test_the_repository_holds_no_chart_the_catalogue_does_not_install(index):
    assert set(index["entries"]) == set(catalogue_charts())


def test_index_entries_are_what_helm_expects(repository, index):
    assert index["apiVersion"] == "v1"
    for name, entries in index["entries"].items():
        (entry,) = entries
        assert entry["apiVersion"] == "v2"
        assert entry["name"] == name
        assert entry["appVersion"]
        assert "stand-in" in entry["description"]
        (url,) = entry["urls"]
        archive = (repository / url).read_bytes()
        assert entry["digest"] == hashlib.sha256(archive).hexdigest()
        assert entry["created"].endswith("Z")


def test_archives_hold_one_chart_folder_with_chart_yaml_values_and_templates(repository, index):
    for name, (entry,) in index["entries"].items():
        with tarfile.open(repository / entry["urls"][0]) as tar:
            paths = tar.getnames()
            chart = yaml.safe_load(tar.extractfile(f"{name}/Chart.yaml").read())
        assert {path.split("/")[0] for path in paths} == {name}
        assert {
            f"{name}/values.yaml",
            f"{name}/standin.yaml",
            f"{name}/templates/_helpers.tpl",
        } <= set(paths)
        assert chart["apiVersion"] == "v2"
        assert (chart["name"], chart["version"]) == (name, entry["version"])
        assert chart["appVersion"] == entry["appVersion"]


def test_rebuilding_gives_identical_bytes_fast(repository, tmp_path):
    began = time.monotonic()
    again = build_repository(tmp_path / "again")
    elapsed = time.monotonic() - began
    assert elapsed < 1.0, f"building took {elapsed:.2f}s"
    first = sorted(p.name for p in repository.iterdir())
    assert first == sorted(p.name for p in again.iterdir())
    for name in first:
        assert (repository / name).read_bytes() == (again / name).read_bytes(), name


def test_rebuilding_into_a_used_folder_drops_archives_no_longer_built(tmp_path):
    (tmp_path / "old-chart-0.1.0.tgz").write_bytes(b"stale")
    build_repository(tmp_path)
    assert not (tmp_path / "old-chart-0.1.0.tgz").exists()


def test_values_yaml_holds_the_standin_defaults():
    standins = load_standins()
    for name, standin in standins.charts.items():
        files = chart_files(name, standin, standins.resource_presets)
        values = yaml.safe_load(files["values.yaml"].decode()) or {}
        assert values == standin.values, name


def test_charts_keeping_crds_in_the_crds_folder_ship_them_there():
    standins = load_standins()
    prometheus = standins.charts["kube-prometheus-stack"]
    files = chart_files("kube-prometheus-stack", prometheus, standins.resource_presets)
    assert "crds/servicemonitors.monitoring.coreos.com.yaml" in files
    assert "crds/prometheuses.monitoring.coreos.com.yaml" in files
    spec = yaml.safe_load(files["standin.yaml"].decode())
    assert "crds" not in spec  # nothing left for the templates to render


@pytest.mark.parametrize(
    ("kind", "plural"),
    [
        ("Certificate", "certificates"),
        ("Prometheus", "prometheuses"),
        ("ServiceEntry", "serviceentries"),
        ("AuthorizationPolicy", "authorizationpolicies"),
        ("Gateway", "gateways"),
        ("Telemetry", "telemetries"),
    ],
)
def test_crd_plurals_follow_kubernetes_naming(kind, plural):
    assert plural_of(kind) == plural


def test_crd_documents_are_minimal_valid_v1_crds():
    crds = Crds.model_validate(
        {
            "groups": [
                {
                    "group": "cert-manager.io",
                    "versions": ["v1", "v1beta1"],
                    "kinds": ["Certificate", {"kind": "ClusterIssuer", "scope": "Cluster"}],
                }
            ]
        }
    )
    certificate, issuer = crd_documents(crds)
    assert certificate["metadata"]["name"] == "certificates.cert-manager.io"
    assert certificate["spec"]["scope"] == "Namespaced"
    assert issuer["spec"]["scope"] == "Cluster"
    assert issuer["spec"]["names"] == {
        "kind": "ClusterIssuer",
        "listKind": "ClusterIssuerList",
        "plural": "clusterissuers",
        "singular": "clusterissuer",
    }
    versions = certificate["spec"]["versions"]
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [
        ("v1", True, True),
        ("v1beta1", True, False),
    ]
    schema = versions[0]["schema"]["openAPIV3Schema"]
    assert schema == {"type": "object", "x-kubernetes-preserve-unknown-fields": True}


def test_archive_names_carry_the_version_as_published():
    standins = load_standins()
    assert (
        archive_name("cert-manager", standins.charts["cert-manager"]) == "cert-manager-v1.21.1.tgz"
    )


def minimal_chart(**workload) -> dict:
    base = {"component": "app", "name": "{{ .fullname }}", "image": "x"}
    return {
        "version": "1.0.0",
        "app_version": "1",
        "source": "https://x",
        "workloads": [{**base, **workload}],
    }


@pytest.mark.parametrize(
    ("workload", "message"),
    [
        ({"kind": "ReplicaSet"}, "is not one of"),
        (
            {"kind": "DaemonSet", "volumes": [{"name": "d", "mount_path": "/d", "size": "1Gi"}]},
            "no persistent volumes",
        ),
        ({"hook": "post-install"}, "only a Job can be a hook"),
        ({"services": [{"name": "s", "ports": ["http"]}]}, "no container port 'http'"),
        ({"services": [{"name": "s"}]}, "either ports or ports_from"),
        ({"replica": 2}, "Extra inputs are not permitted"),
    ],
)
def test_invalid_standins_are_rejected_with_the_reason(tmp_path, workload, message):
    path = tmp_path / "standins.yaml"
    path.write_text(yaml.safe_dump({"charts": {"demo": minimal_chart(**workload)}}))
    with pytest.raises(StandInError, match=message):
        load_standins(path)


def test_the_shipped_standins_validate():
    assert isinstance(load_standins(STANDINS_FILE), StandIns)


def test_archive_members_carry_no_owner_or_build_time_of_their_own():
    standins = load_standins()
    files = chart_files("grafana", standins.charts["grafana"], standins.resource_presets)
    with tarfile.open(fileobj=io.BytesIO(package("grafana", files))) as tar:
        member = tar.getmember("grafana/Chart.yaml")
    assert (member.uid, member.gid, member.mode) == (0, 0, 0o644)
    assert member.mtime == BUILT_AT.timestamp()
