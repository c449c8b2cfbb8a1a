"""Chart values: the guide's settings reach every chart under the key the real chart reads.

Four checks, none needing a server:

1. per chart, the guide's settings at their real keys;
2. every key path the product sets exists in the upstream chart's defaults or schema (the
   copies in the shared folder), and the values pass the charts' own schemas;
3. ``helm template`` of the sandbox's stand-in charts, which read the same keys, renders what
   the values ask for (and the Services that ``service_url`` names);
4. determinism, and bucket names.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jsonschema
import prefect
import pytest
import yaml

from blueprint.catalogue import load_catalogue
from blueprint.loader import load_spec, validate_spec
from blueprint.spec import bucket_name, work_pool
from sandbox.charts.build import build_repository
from sandbox.tools import ensure_tools
from tasks.values import (
    BUILDERS,
    ValuesContext,
    catalogue_namespaces,
    chart_values,
    service_url,
)
from tasks.values.context import ROLE_ANNOTATION, go_duration, helm_fullname
from tasks.values.observability import DASHBOARDS, dashboard_json
from tests.unit.conftest import set_path

RELEASES = [c for c in load_catalogue().components if c.kind == "helm-release"]
COMPONENTS = [c.name for c in RELEASES]
ROLES = {
    "cert-manager": "arn:aws:iam::123456789012:role/platform-sandbox-cert-manager",
    "external-dns": "arn:aws:iam::123456789012:role/platform-sandbox-external-dns",
    "mimir": "arn:aws:iam::123456789012:role/platform-sandbox-mimir",
    "loki": "arn:aws:iam::123456789012:role/platform-sandbox-loki",
}
TOKEN_SECRET = "cloudflare-api-token"
PREFECT_API = "https://prefect.platform.test/api"
ACCOUNT = "210987654321"


def context(spec, roles: dict[str, str] | None = None) -> ValuesContext:
    return ValuesContext(
        spec=spec,
        namespaces=catalogue_namespaces(spec),
        buckets={storage: bucket_name(spec, storage, ACCOUNT) for storage in ("mimir", "loki")},
        service_account_roles=dict(ROLES if roles is None else roles),
        dns_token_secret=TOKEN_SECRET,
        prefect_api_url=PREFECT_API,
    )


@pytest.fixture(scope="module")
def spec():
    return load_spec("sandbox")


@pytest.fixture(scope="module")
def ctx(spec) -> ValuesContext:
    return context(spec)


def resources(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


# --------------------------------------------------------------------------- 1. guide settings


def test_every_helm_release_has_values_and_nothing_else():
    assert set(BUILDERS) == set(COMPONENTS)


def test_unknown_components_are_refused(ctx):
    for name in ("vpc", "mimir-storage", "no-such-chart"):
        with pytest.raises(KeyError):
            chart_values(name, ctx)


def test_values_are_plain_json(ctx):
    for name in COMPONENTS:
        values = chart_values(name, ctx)
        assert json.loads(json.dumps(values)) == values, name


def test_cert_manager(ctx):
    values = chart_values("cert-manager", ctx)
    assert values["crds"]["enabled"] is True
    assert values["resources"] == resources("50m", "64Mi", "200m", "256Mi")
    for part in ("webhook", "cainjector"):
        assert values[part]["resources"]["limits"]["memory"]
    assert values["prometheus"]["servicemonitor"]["enabled"] is True
    assert values["serviceAccount"]["annotations"] == {ROLE_ANNOTATION: ROLES["cert-manager"]}


def test_service_account_roles_only_when_known(spec):
    bare = context(spec, roles={})
    for name in ("cert-manager", "external-dns"):
        assert "serviceAccount" not in chart_values(name, bare)


def test_external_dns(ctx, spec):
    values = chart_values("external-dns", ctx)
    assert values["provider"] == {"name": "cloudflare"}
    assert values["interval"] == "60s"
    assert values["policy"] == "upsert-only"
    assert values["domainFilters"] == [spec.ingress.domain]
    assert values["txtOwnerId"] == spec.eks.cluster_name
    assert values["resources"] == resources("25m", "32Mi", "100m", "128Mi")
    assert values["serviceMonitor"]["enabled"] is True
    token = {"secretKeyRef": {"name": TOKEN_SECRET, "key": "api-token"}}
    assert values["env"] == [{"name": "CF_API_TOKEN", "valueFrom": token}]


def test_external_dns_on_route53_needs_no_token(spec_data):
    set_path(spec_data, "ingress.external_dns.provider", "aws")
    values = chart_values("external-dns", context(validate_spec(spec_data)))
    assert values["provider"] == {"name": "aws"}
    assert "env" not in values


def test_emissary_crds_serve_v3alpha1_only(ctx):
    assert chart_values("emissary-crds", ctx) == {"enableLegacyVersions": False}


def test_ambassador(ctx, spec):
    values = chart_values("ambassador", ctx)
    assert values["replicaCount"] == spec.ingress.ambassador.replicas
    assert values["resources"] == resources("200m", "256Mi", "500m", "512Mi")
    service = values["service"]
    assert service["type"] == "LoadBalancer"
    lb = "service.beta.kubernetes.io/aws-load-balancer-"
    assert service["annotations"][f"{lb}type"] == "nlb"
    assert "platform.io/name=platform" in service["annotations"][f"{lb}additional-resource-tags"]
    domain = spec.ingress.domain
    assert service["annotations"]["external-dns.alpha.kubernetes.io/hostname"] == (
        f"{domain},*.{domain}"
    )
    module = values["module"]
    assert module["gzip"] == {"enabled": True}  # compression
    assert module["keepalive"]["time"] > 0  # keep-alive
    assert module["cluster_idle_timeout_ms"] > 0  # connection pooling
    assert module["circuit_breakers"][0]["max_connections"] > 0
    assert values["metrics"]["serviceMonitor"]["enabled"] is True
    assert values["createDefaultListeners"] is True


def test_ambassador_switches_off_leave_emissary_defaults(spec_data):
    for switch in ("connection_pooling", "keep_alive", "compression"):
        set_path(spec_data, f"ingress.ambassador.{switch}", False)
    assert chart_values("ambassador", context(validate_spec(spec_data)))["module"] == {}


def test_prometheus(ctx):
    values = chart_values("prometheus", ctx)
    spec = values["prometheus"]["prometheusSpec"]
    assert spec["retention"] == "15d"
    assert spec["scrapeInterval"] == "30s"
    assert spec["evaluationInterval"] == "30s"
    assert spec["walCompression"] is True
    assert spec["resources"] == resources("500m", "2Gi", "2", "4Gi")
    [remote] = spec["remoteWrite"]
    assert remote["url"] == "http://mimir-gateway.observability.svc:80/api/v1/push"
    claim = spec["storageSpec"]["volumeClaimTemplate"]["spec"]
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == "50Gi"
    assert spec["serviceMonitorSelectorNilUsesHelmValues"] is False
    assert spec["podMonitorSelectorNilUsesHelmValues"] is False
    assert values["grafana"]["enabled"] is False
    assert values["nodeExporter"]["enabled"] is True
    assert values["kubeStateMetrics"]["enabled"] is True


def test_prometheus_without_remote_write(spec_data):
    set_path(spec_data, "observability.prometheus.remote_write.enabled", False)
    values = chart_values("prometheus", context(validate_spec(spec_data)))
    assert values["prometheus"]["prometheusSpec"]["remoteWrite"] == []


def test_mimir(ctx, spec):
    values = chart_values("mimir", ctx)
    config = values["mimir"]["structuredConfig"]
    assert (
        config["blocks_storage"]["s3"]["bucket_name"] == f"platform-sandbox-mimir-blocks-{ACCOUNT}"
    )
    assert config["common"]["storage"]["s3"]["region"] == spec.platform.region
    assert config["limits"]["compactor_blocks_retention_period"] == "365d"
    assert config["ingest_storage"]["enabled"] is False
    assert values["minio"]["enabled"] is False
    assert values["kafka"]["enabled"] is False
    for part in ("ingester", "store_gateway", "compactor"):
        assert values[part]["persistentVolume"]["storageClass"] == "gp3"
    assert values["gateway"]["enabledNonEnterprise"] is True
    assert values["metaMonitoring"]["serviceMonitor"]["enabled"] is True
    # The bucket is reached through the service account's role, the name its trust names.
    assert values["serviceAccount"] == {
        "create": True,
        "name": "mimir",
        "annotations": {"eks.amazonaws.com/role-arn": ROLES["mimir"]},
    }


def test_loki(ctx, spec):
    values = chart_values("loki", ctx)
    loki = values["loki"]
    assert loki["ingester"] == {
        "chunk_target_size": 1572864,
        "max_chunk_age": "2h",
        "chunk_encoding": "gzip",
    }
    [schema] = loki["schemaConfig"]["configs"]
    assert schema["store"] == "tsdb"
    assert schema["index"]["period"] == "24h"
    assert loki["limits_config"]["retention_period"] == "30d"
    assert loki["compactor"] == {"retention_enabled": True, "delete_request_store": "s3"}
    assert loki["storage"]["type"] == "s3"
    assert loki["storage"]["bucketNames"]["chunks"] == f"platform-sandbox-loki-chunks-{ACCOUNT}"
    assert loki["storage"]["s3"]["region"] == spec.platform.region
    single = values["singleBinary"]
    assert single["resources"] == resources("200m", "512Mi", "1", "2Gi")
    assert single["persistence"]["storageClass"] == "gp3"
    # The chart refuses replicas in two deployment modes at once.
    assert values["deploymentMode"] == "Monolithic"
    assert single["replicas"] == 1
    assert all(values[target]["replicas"] == 0 for target in ("read", "write", "backend"))
    assert loki["commonConfig"]["replication_factor"] == 1
    assert values["monitoring"]["serviceMonitor"]["enabled"] is True
    assert values["serviceAccount"] == {
        "create": True,
        "name": "loki",
        "annotations": {"eks.amazonaws.com/role-arn": ROLES["loki"]},
    }


def test_tempo(ctx):
    values = chart_values("tempo", ctx)
    assert values["tempo"]["retention"] == "72h"
    assert values["tempo"]["resources"] == resources("100m", "256Mi", "500m", "1Gi")
    assert values["persistence"] == {"enabled": True, "storageClassName": "gp3"}
    assert values["serviceMonitor"]["enabled"] is True


def test_grafana(ctx, spec):
    values = chart_values("grafana", ctx)
    assert values["resources"] == resources("100m", "256Mi", "500m", "1Gi")
    ini = values["grafana.ini"]
    assert ini["caching"]["enabled"] is True
    assert ini["dataproxy"]["timeout"] == 30
    assert ini["query"]["concurrent_query_limit"] == 20
    assert ini["datasources"]["concurrent_query_count"] == 20
    assert values["persistence"]["storageClassName"] == "gp3"
    assert values["serviceMonitor"]["enabled"] is True
    sources = {s["uid"]: s for s in values["datasources"]["datasources.yaml"]["datasources"]}
    assert set(sources) == {"prometheus", "mimir", "loki", "tempo"}
    assert sources["prometheus"]["isDefault"] is True
    assert sources["mimir"]["url"] == service_url("mimir", ctx, "/prometheus")
    assert sources["prometheus"]["jsonData"]["queryTimeout"] == "30s"
    assert sources["prometheus"]["jsonData"]["timeInterval"] == "30s"
    [provider] = values["dashboardProviders"]["dashboardproviders.yaml"]["providers"]
    dashboards = values["dashboards"][provider["name"]]
    assert list(dashboards) == spec.observability.grafana.dashboards
    for name, dashboard in dashboards.items():
        model = json.loads(dashboard["json"])
        assert model["uid"] == name and model["panels"]


def test_dashboards_are_known_by_name():
    assert set(DASHBOARDS) >= set(load_spec().observability.grafana.dashboards)
    with pytest.raises(KeyError):
        dashboard_json("no-such-dashboard")


def test_service_urls(ctx):
    assert service_url("mimir", ctx) == "http://mimir-gateway.observability.svc:80"
    assert service_url("prometheus", ctx) == (
        "http://prometheus-kube-prometheus-prometheus.observability.svc:9090"
    )
    assert service_url("loki", ctx) == "http://loki-gateway.observability.svc:80"
    assert service_url("tempo", ctx) == "http://tempo.observability.svc:3200"
    with pytest.raises(KeyError):
        service_url("grafana", ctx)


def test_helm_fullname():
    assert helm_fullname("loki", "loki") == "loki"
    assert helm_fullname("prometheus", "kube-prometheus-stack", 26) == "prometheus-kube-prometheus"
    assert helm_fullname("my", "chart", 3) == "my"  # a trailing dash is dropped


def test_argocd(ctx, spec):
    values = chart_values("argocd", ctx)
    assert values["server"]["service"]["type"] == "ClusterIP"
    assert values["server"]["ingress"]["enabled"] is False
    assert values["configs"]["params"]["server.insecure"] is True
    assert values["global"]["domain"] == f"argocd.{spec.ingress.domain}"
    for part in ("controller", "server", "repoServer", "applicationSet", "notifications"):
        assert values[part]["metrics"] == {"enabled": True, "serviceMonitor": {"enabled": True}}
        assert values[part]["resources"]["limits"]["memory"]


def test_tekton(ctx):
    values = chart_values("tekton", ctx)
    # Its objects follow the release into tekton-pipelines; the chart makes no Namespace.
    assert ctx.namespaces["tekton"] == "tekton-pipelines"
    assert values["namespace"] == {"create": False}
    assert values["controller"]["resources"]["limits"]["memory"]


def test_openbao(ctx):
    values = chart_values("openbao", ctx)
    server = values["server"]
    assert server["ha"]["enabled"] is True
    assert server["ha"]["raft"]["enabled"] is True
    assert 'storage "raft"' in server["ha"]["raft"]["config"]
    assert server["ha"]["raft"]["config"].count("retry_join") == server["ha"]["replicas"] == 3
    assert server["dataStorage"]["storageClass"] == "gp3"
    assert values["ui"]["enabled"] is True
    assert values["serverTelemetry"]["serviceMonitor"]["enabled"] is True


def test_gatekeeper(ctx):
    values = chart_values("opa", ctx)
    assert values["replicas"] >= 2
    assert values["auditInterval"] == 60
    for part in ("controllerManager", "audit"):
        assert values[part]["resources"]["requests"]["cpu"]


def test_falco(ctx):
    values = chart_values("falco", ctx)
    assert values["driver"]["kind"] == "modern_ebpf"
    assert values["metrics"]["enabled"] is True
    assert values["serviceMonitor"]["create"] is True


def test_istio(ctx):
    assert chart_values("istio-base", ctx) == {"global": {"istioNamespace": "istio-system"}}
    values = chart_values("istiod", ctx)
    assert "_internal_defaults_do_not_set" not in values
    assert values["meshConfig"]["enablePrometheusMerge"] is True
    assert values["meshConfig"]["accessLogFile"] == ""
    assert values["resources"]["requests"]["cpu"]
    assert values["global"]["tag"] == load_catalogue().component("istiod").chart.version


@pytest.mark.parametrize(
    ("component", "workloads", "image"),
    [
        ("postgresql", ("primary",), "bitnamilegacy/postgresql"),
        ("redis", ("master", "replica"), "bitnamilegacy/redis"),
        ("kafka", ("controller",), "bitnamilegacy/kafka"),
    ],
)
def test_data_services(ctx, component, workloads, image):
    values = chart_values(component, ctx)
    assert values["global"]["defaultStorageClass"] == "gp3"
    assert values["global"]["security"]["allowInsecureImages"] is True
    assert values["image"]["repository"] == image
    for workload in workloads:
        assert values[workload]["resources"]["limits"]["memory"]
        assert values[workload]["persistence"]["size"]
    assert values["metrics"]["serviceMonitor"]["enabled"] is True
    assert values["metrics"].get("enabled", values["metrics"].get("jmx", {}).get("enabled"))


def test_redis_replicates_and_kafka_runs_kraft_controllers(ctx):
    redis = chart_values("redis", ctx)
    assert redis["architecture"] == "replication"
    assert redis["replica"]["replicaCount"] >= 1
    kafka = chart_values("kafka", ctx)
    assert kafka["controller"]["replicaCount"] == 3
    assert kafka["broker"]["replicaCount"] == 0


# --------------------------------------------------------------------------- 2. upstream keys


def shared_charts_dir() -> Path | None:
    """The shared folder's ``charts`` (next to the repository, else $PLATFORM_SHARED_DIR)."""
    candidates = [Path(__file__).resolve().parents[2].parent / "shared"]
    if os.environ.get("PLATFORM_SHARED_DIR"):
        candidates.append(Path(os.environ["PLATFORM_SHARED_DIR"]))
    for shared in candidates:
        if (shared / "charts" / "INDEX.md").is_file():
            return shared / "charts"
    return None


@pytest.fixture(scope="module")
def upstream() -> Path:
    charts = shared_charts_dir()
    if charts is None:
        pytest.skip("upstream chart defaults not found: no shared/charts next to the repository")
    return charts


# Charts whose upstream defaults are not in the shared folder.
NO_UPSTREAM_FILE = {
    "mimir": "mimir-distributed 6.2.0 is missing there; its keys follow the chart's docs",
    "emissary-crds": "emissary-crds-chart is not collected; enableLegacyVersions is its key",
    "runner": "prefect-worker is not collected; its keys follow the chart's values.yaml and "
    "values.schema.json at the pinned version",
}
# Paths the product sets that the defaults do not spell out: (component, path prefix) -> why.
NOT_IN_DEFAULTS = {
    ("ambassador", ("module",)): "free-form Ambassador Module config, rendered as spec.config",
    ("ambassador", ("resources", "limits")): "a ResourceRequirements; defaults fill only memory",
    ("tempo", ("persistence", "storageClassName")): "read by the chart; a commented example",
    ("grafana", ("persistence", "storageClassName")): "read by the chart; a commented example",
    ("grafana", ("grafana.ini",)): "free-form grafana.ini sections, written out as INI",
    ("argocd", ("configs", "params")): "free-form keys of the argocd-cmd-params-cm ConfigMap",
    ("opa", ("controllerManager", "resources", "limits")): "a ResourceRequirements",
    ("opa", ("audit", "resources", "limits")): "a ResourceRequirements",
    ("istiod", ("resources", "limits")): "a ResourceRequirements; defaults fill only requests",
    ("istiod", ("meshConfig",)): "free-form Istio MeshConfig",
}


def upstream_defaults(folder: Path) -> dict[str, Any]:
    defaults = yaml.safe_load((folder / "values.yaml").read_text()) or {}
    # Istio's charts keep their defaults one level down; users set the same keys on top.
    return {**defaults, **defaults.pop("_internal_defaults_do_not_set", {})}


def upstream_schema(folder: Path) -> dict[str, Any] | None:
    path = folder / "values.schema.json"
    return json.loads(path.read_text()) if path.is_file() else None


def key_paths(values: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every path to a leaf; lists and empty maps are leaves."""
    for key, value in values.items():
        if isinstance(value, dict) and value:
            yield from key_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def in_defaults(path: tuple[str, ...], node: Any) -> bool:
    for key in path:
        if not isinstance(node, dict):
            return False
        if key not in node:
            return node == {}  # an empty map upstream is a free-form map
        node = node[key]
    return True


def resolve(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref`` pointers (``#/$defs/...``)."""
    while "$ref" in node:
        target: Any = root
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def in_schema(path: tuple[str, ...], node: dict[str, Any], root: dict[str, Any]) -> bool:
    for key in path:
        node = resolve(node, root)
        properties = node.get("properties")
        if properties is None:  # an object with no declared properties is a free-form map
            types = node.get("type", [])
            return "object" in (types if isinstance(types, list) else [types])
        if key not in properties:
            # "additionalProperties: true" beside declared properties only means the chart
            # does not police its keys; a schema for the extra keys declares a typed map.
            return isinstance(node.get("additionalProperties"), dict)
        node = properties[key]
    return True


def allowed(component: str, path: tuple[str, ...]) -> bool:
    return any(
        name == component and path[: len(prefix)] == prefix for name, prefix in NOT_IN_DEFAULTS
    )


@pytest.mark.parametrize("release", RELEASES, ids=COMPONENTS)
def test_every_key_exists_upstream(release, ctx, upstream):
    if release.name in NO_UPSTREAM_FILE:
        pytest.skip(NO_UPSTREAM_FILE[release.name])
    folder = upstream / release.chart.name
    defaults, schema = upstream_defaults(folder), upstream_schema(folder)
    unknown = [
        ".".join(path)
        for path in key_paths(chart_values(release.name, ctx))
        if not in_defaults(path, defaults)
        and not (schema and in_schema(path, schema, schema))
        and not allowed(release.name, path)
    ]
    assert not unknown, f"{release.name}: not in the upstream chart: {unknown}"


def test_allow_list_is_still_needed(ctx, upstream):
    """Every allow-list entry excuses a path that is set and not found upstream."""
    for component, prefix in NOT_IN_DEFAULTS:
        folder = upstream / load_catalogue().component(component).chart.name
        defaults, schema = upstream_defaults(folder), upstream_schema(folder)
        paths = [p for p in key_paths(chart_values(component, ctx)) if p[: len(prefix)] == prefix]
        assert paths, f"{component}: nothing is set under {prefix}"
        assert any(
            not in_defaults(p, defaults) and not (schema and in_schema(p, schema, schema))
            for p in paths
        ), f"{component}: {prefix} is found upstream; drop it from NOT_IN_DEFAULTS"


def helm_merge(defaults: dict[str, Any], values: dict[str, Any]) -> dict[str, Any]:
    """Values over defaults as helm coalesces them: maps merge, null removes a key."""
    merged = dict(defaults)
    for key, value in values.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = helm_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def schema_validator(schema: dict[str, Any]) -> jsonschema.protocols.Validator:
    # Some charts declare the bare "http://json-schema.org/schema#", which names no draft;
    # their schemas use draft-07 features only.
    if "json-schema.org/draft" in schema.get("$schema", ""):
        return jsonschema.validators.validator_for(schema)(schema)
    return jsonschema.Draft7Validator(schema)


def test_values_pass_the_charts_schemas(ctx, upstream):
    """Helm validates the merged values against a chart's schema and refuses what fails."""
    checked = []
    for release in RELEASES:
        folder = upstream / release.chart.name
        schema = upstream_schema(folder) if folder.is_dir() else None
        if schema is None:
            continue
        merged = helm_merge(upstream_defaults(folder), chart_values(release.name, ctx))
        errors = [
            f"{'.'.join(map(str, e.path))}: {e.message}"
            for e in schema_validator(schema).iter_errors(merged)
        ]
        assert not errors, f"{release.name}: {errors[:5]}"
        checked.append(release.name)
    assert {"cert-manager", "external-dns", "loki", "openbao"} <= set(checked)


# --------------------------------------------------------------------------- 3. helm template


@dataclass(frozen=True)
class Rendered:
    component: str
    namespace: str
    values: dict[str, Any]
    docs: list[dict[str, Any]]

    def get(self, kind: str, name: str) -> dict[str, Any]:
        for doc in self.docs:
            if doc["kind"] == kind and doc["metadata"]["name"] == name:
                return doc
        names = sorted(d["metadata"]["name"] for d in self.docs if d["kind"] == kind)
        raise AssertionError(f"{self.component}: no {kind} {name!r} (has {names})")

    def has(self, kind: str, name: str) -> bool:
        return any(d["kind"] == kind and d["metadata"]["name"] == name for d in self.docs)

    def container(self, kind: str, name: str, index: int = 0) -> dict[str, Any]:
        return self.get(kind, name)["spec"]["template"]["spec"]["containers"][index]

    def claim(self, name: str) -> dict[str, Any]:
        return self.get("StatefulSet", name)["spec"]["volumeClaimTemplates"][0]["spec"]

    def config(self, name: str, key: str) -> Any:
        return yaml.safe_load(self.get("ConfigMap", name)["data"][key])


def render(helm: Path, repo: Path, folder: Path, release, ctx: ValuesContext) -> Rendered:
    chart = release.chart
    values = chart_values(release.name, ctx)
    values_file = folder / f"{release.name}.json"
    values_file.write_text(json.dumps(values))
    namespace = ctx.namespaces[release.name]
    archive = repo / f"{chart.name}-{chart.version}.tgz"
    command = [helm, "template", chart.release, archive, "-n", namespace, "-f", values_file]
    done = subprocess.run([str(c) for c in command], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, f"{release.name}: helm template failed: {done.stderr}"
    docs = [d for d in yaml.safe_load_all(done.stdout) if d]
    return Rendered(release.name, namespace, values, docs)


@pytest.fixture(scope="module")
def rendered(ctx, tmp_path_factory) -> dict[str, Rendered]:
    helm = ensure_tools()["helm"]
    repo = build_repository(tmp_path_factory.mktemp("charts"))
    folder = tmp_path_factory.mktemp("values")
    with ThreadPoolExecutor(max_workers=8) as pool:
        futures = {r.name: pool.submit(render, helm, repo, folder, r, ctx) for r in RELEASES}
        return {name: future.result() for name, future in futures.items()}


def service_host(url: str) -> tuple[str, str, int]:
    """``http://name.namespace.svc:port/path`` -> (name, namespace, port)."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    name, namespace, _ = host.split(".", 2)
    return name, namespace, int(port)


def check_service(r: Rendered, url: str) -> None:
    name, namespace, port = service_host(url)
    assert namespace == r.namespace
    ports = [p["port"] for p in r.get("Service", name)["spec"]["ports"]]
    assert port in ports, f"{r.component}: Service {name} has ports {ports}, not {port}"


def check_cert_manager(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    assert r.container("Deployment", "cert-manager")["resources"] == r.values["resources"]
    webhook = r.container("Deployment", "cert-manager-webhook")
    assert webhook["resources"] == r.values["webhook"]["resources"]
    assert r.has("ServiceMonitor", "cert-manager")
    assert r.has("CustomResourceDefinition", "certificates.cert-manager.io")


def check_external_dns(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    container = r.container("Deployment", "external-dns")
    assert container["resources"] == r.values["resources"]
    for arg in (
        "--interval=60s",
        "--provider=cloudflare",
        "--policy=upsert-only",
        f"--txt-owner-id={ctx.spec.eks.cluster_name}",
        f"--domain-filter={ctx.spec.ingress.domain}",
        "--source=service",
    ):
        assert arg in container["args"]
    assert container["env"] == r.values["env"]
    assert r.has("ServiceMonitor", "external-dns")


def check_emissary_crds(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    assert r.has("CustomResourceDefinition", "mappings.getambassador.io")


def check_ambassador(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    deployment = r.get("Deployment", "ambassador")
    assert deployment["spec"]["replicas"] == ctx.spec.ingress.ambassador.replicas
    assert r.container("Deployment", "ambassador")["resources"] == r.values["resources"]
    service = r.get("Service", "ambassador")
    assert service["spec"]["type"] == "LoadBalancer"
    assert service["metadata"]["annotations"] == r.values["service"]["annotations"]
    balancers = [
        d for d in r.docs if d["kind"] == "Service" and d["spec"].get("type") == "LoadBalancer"
    ]
    assert len(balancers) == 1  # one shared load balancer
    config = r.get("Module", "ambassador")["spec"]["config"]
    assert config["gzip"] == {"enabled": True}
    assert config["keepalive"] == r.values["module"]["keepalive"]
    assert r.has("ServiceMonitor", "ambassador")


def check_mimir(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    check_service(r, service_url("mimir", ctx))
    config = r.config("mimir-config", "mimir.yaml")
    assert config["blocks_storage"]["s3"]["bucket_name"] == ctx.buckets["mimir"]
    assert config["limits"]["compactor_blocks_retention_period"] == "365d"
    assert not r.has("Deployment", "mimir-minio")
    assert not r.has("StatefulSet", "mimir-kafka")
    assert r.claim("mimir-ingester-zone-a")["storageClassName"] == "gp3"
    assert r.claim("mimir-compactor")["storageClassName"] == "gp3"
    assert r.has("ServiceMonitor", "mimir-gateway")


def check_prometheus(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    check_service(r, service_url("prometheus", ctx))
    spec = r.values["prometheus"]["prometheusSpec"]
    statefulset = "prometheus-prometheus-kube-prometheus-prometheus"
    assert r.container("StatefulSet", statefulset)["resources"] == spec["resources"]
    claim = r.claim(statefulset)
    assert claim["storageClassName"] == "gp3"
    assert claim["resources"]["requests"]["storage"] == "50Gi"
    prometheus = r.get("Prometheus", "prometheus-kube-prometheus-prometheus")["spec"]
    assert prometheus["retention"] == "15d"
    assert prometheus["scrapeInterval"] == prometheus["evaluationInterval"] == "30s"
    assert prometheus["walCompression"] is True
    # Every ServiceMonitor of the cluster, not only those labelled with this release.
    assert prometheus["serviceMonitorSelector"] == {}
    # Nothing scrapes what EKS serves on loopback or outside the cluster.
    for part in ("kube-proxy", "kube-controller-manager", "kube-scheduler", "kube-etcd"):
        assert not r.has("ServiceMonitor", f"prometheus-kube-prometheus-{part}"), part
    # Remote write reaches the Service the Mimir chart renders.
    [remote] = prometheus["remoteWrite"]
    check_service(all_["mimir"], remote["url"])
    assert remote["url"].endswith("/api/v1/push")
    assert not r.has("Deployment", "prometheus-grafana")
    assert r.has("DaemonSet", "prometheus-prometheus-node-exporter")
    assert r.has("Deployment", "prometheus-kube-state-metrics")


def check_loki(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    check_service(r, service_url("loki", ctx))
    assert r.get("StatefulSet", "loki")["spec"]["replicas"] == 1
    assert r.container("StatefulSet", "loki")["resources"] == r.values["singleBinary"]["resources"]
    assert r.claim("loki")["storageClassName"] == "gp3"
    for target in ("loki-write", "loki-backend"):
        assert not r.has("StatefulSet", target)
    config = r.config("loki", "config.yaml")
    assert config["ingester"]["chunk_target_size"] == 1572864
    assert config["ingester"]["max_chunk_age"] == "2h"
    assert config["ingester"]["chunk_encoding"] == "gzip"
    assert config["limits_config"]["retention_period"] == "30d"
    assert config["schema_config"]["configs"][0]["index"]["period"] == "24h"
    assert config["common"]["storage"]["s3"]["bucketnames"] == ctx.buckets["loki"]
    assert r.has("ServiceMonitor", "loki")


def check_tempo(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    check_service(r, service_url("tempo", ctx))
    assert r.container("StatefulSet", "tempo")["resources"] == r.values["tempo"]["resources"]
    assert r.claim("tempo")["storageClassName"] == "gp3"
    config = r.config("tempo", "tempo.yaml")
    assert config["compactor"]["compaction"]["block_retention"] == "72h"
    assert r.has("ServiceMonitor", "tempo")


def check_grafana(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    assert r.container("Deployment", "grafana")["resources"] == r.values["resources"]
    claim = r.get("PersistentVolumeClaim", "grafana")["spec"]
    assert claim["storageClassName"] == "gp3"
    ini = r.get("ConfigMap", "grafana")["data"]["grafana.ini"]
    for line in ("concurrent_query_limit = 20", "concurrent_query_count = 20", "timeout = 30"):
        assert line in ini
    sources = r.config("grafana", "datasources.yaml")["datasources"]
    owners = {"prometheus": "prometheus", "mimir": "mimir", "loki": "loki", "tempo": "tempo"}
    for source in sources:
        # Each data source points at a Service its chart really renders.
        check_service(all_[owners[source["uid"]]], source["url"])
    assert r.has("ServiceMonitor", "grafana")


def check_argocd(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    assert r.get("Service", "argocd-server")["spec"]["type"] == "ClusterIP"
    assert r.get("ConfigMap", "argocd-cmd-params-cm")["data"]["server.insecure"] == "true"
    for name in (
        "application-controller",
        "server",
        "repo-server",
        "applicationset-controller",
        "notifications-controller",
    ):
        assert r.has("ServiceMonitor", f"argocd-{name}")
    assert (
        r.container("Deployment", "argocd-server")["resources"] == (r.values["server"]["resources"])
    )
    assert not r.has("Deployment", "argocd-dex-server")


def check_tekton(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    assert not any(d["kind"] == "Namespace" for d in r.docs)
    namespaces = {d["metadata"].get("namespace") for d in r.docs if d["kind"] != "Namespace"}
    assert namespaces - {None} == {ctx.namespaces["tekton"]} == {"tekton-pipelines"}
    # ... where its webhooks call it
    for kind in ("ValidatingWebhookConfiguration", "MutatingWebhookConfiguration"):
        for configuration in (d for d in r.docs if d["kind"] == kind):
            for webhook in configuration["webhooks"]:
                service = webhook["clientConfig"]["service"]
                assert service["namespace"] == "tekton-pipelines", configuration
                assert r.has("Service", service["name"])
    controller = r.container("Deployment", "tekton-pipelines-controller")
    assert controller["resources"] == r.values["controller"]["resources"]


def check_openbao(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    assert r.get("StatefulSet", "openbao")["spec"]["replicas"] == 3
    assert r.claim("openbao")["storageClassName"] == "gp3"
    config = r.get("ConfigMap", "openbao-config")["data"]["extraconfig-from-values.hcl"]
    assert 'storage "raft"' in config
    assert r.has("ServiceMonitor", "openbao")


def check_opa(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    manager = r.get("Deployment", "gatekeeper-controller-manager")
    assert manager["spec"]["replicas"] == r.values["replicas"]
    assert (
        r.container("Deployment", "gatekeeper-controller-manager")["resources"]
        == (r.values["controllerManager"]["resources"])
    )
    assert "--audit-interval=60" in r.container("Deployment", "gatekeeper-audit")["args"]


def check_falco(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    args = r.container("DaemonSet", "falco")["args"]
    assert "-o engine.kind=modern_ebpf" in args
    assert "-o metrics.enabled=true" in args
    assert r.has("ServiceMonitor", "falco")


def check_istio_base(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    assert r.has("CustomResourceDefinition", "virtualservices.networking.istio.io")


def check_istiod(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    container = r.container("Deployment", "istiod")
    assert container["resources"] == r.values["resources"]
    assert container["image"] == f"docker.io/istio/pilot:{r.values['global']['tag']}"
    mesh = r.config("istio", "mesh")
    assert mesh["enablePrometheusMerge"] is True
    assert mesh["accessLogFile"] == ""


def data_service_check(statefulsets: dict[str, str], volume: str) -> Callable[..., None]:
    """Checks of a Bitnami chart: StatefulSet name -> values key of its resources."""

    def check(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
        for name, part in statefulsets.items():
            container = r.container("StatefulSet", name)
            assert container["image"].startswith("docker.io/bitnamilegacy/")
            assert container["resources"] == r.values[part]["resources"]
            claim = r.claim(name)
            assert claim["storageClassName"] == "gp3"
            assert claim["resources"]["requests"]["storage"] == volume
            assert r.has("ServiceMonitor", name)

    return check


def check_runner(r: Rendered, all_: dict[str, Rendered], ctx: ValuesContext) -> None:
    container = r.container("Deployment", "prefect-worker")
    assert container["args"][:3] == ["prefect", "worker", "start"]
    assert container["args"][container["args"].index("--pool") + 1] == work_pool(ctx.spec)
    assert container["args"][container["args"].index("--type") + 1] == "kubernetes"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["PREFECT_API_URL"] == PREFECT_API
    assert container["image"] == f"prefecthq/prefect:{prefect.__version__}-python3.11-kubernetes"


CHECKS: dict[str, Callable[[Rendered, dict[str, Rendered], ValuesContext], None]] = {
    "runner": check_runner,
    "cert-manager": check_cert_manager,
    "external-dns": check_external_dns,
    "emissary-crds": check_emissary_crds,
    "ambassador": check_ambassador,
    "mimir": check_mimir,
    "prometheus": check_prometheus,
    "loki": check_loki,
    "tempo": check_tempo,
    "grafana": check_grafana,
    "argocd": check_argocd,
    "tekton": check_tekton,
    "openbao": check_openbao,
    "opa": check_opa,
    "falco": check_falco,
    "istio-base": check_istio_base,
    "istiod": check_istiod,
    "postgresql": data_service_check({"postgresql": "primary"}, "20Gi"),
    "redis": data_service_check({"redis-master": "master", "redis-replicas": "replica"}, "8Gi"),
    "kafka": data_service_check({"kafka-controller": "controller"}, "20Gi"),
}


def test_every_chart_has_a_render_check():
    assert set(CHECKS) == set(COMPONENTS)


@pytest.mark.parametrize("component", COMPONENTS)
def test_helm_template_renders_the_values(component, rendered, ctx):
    CHECKS[component](rendered[component], rendered, ctx)


# --------------------------------------------------------------------------- 4. determinism


def test_same_spec_same_values(ctx):
    again = context(load_spec("sandbox"))
    for name in COMPONENTS:
        first = chart_values(name, ctx)
        assert json.dumps(first, sort_keys=True) == json.dumps(
            chart_values(name, again), sort_keys=True
        ), name


def test_callers_cannot_change_later_values(ctx):
    first = chart_values("argocd", ctx)
    first["controller"]["metrics"]["serviceMonitor"]["enabled"] = False
    first["server"]["resources"]["limits"]["cpu"] = "99"
    second = chart_values("argocd", ctx)
    assert second["controller"]["metrics"]["serviceMonitor"]["enabled"] is True
    assert second["server"]["resources"]["limits"]["cpu"] != "99"


def test_bucket_names_are_unique_in_the_world(spec):
    # Two installations with the same platform and environment names never share a bucket.
    assert bucket_name(spec, "mimir", ACCOUNT) == f"platform-sandbox-mimir-blocks-{ACCOUNT}"
    assert bucket_name(spec, "loki", ACCOUNT) == f"platform-sandbox-loki-chunks-{ACCOUNT}"
    named = spec.model_copy(
        update={"platform": spec.platform.model_copy(update={"bucket_namespace": "acme-eu"})}
    )
    assert bucket_name(named, "loki", ACCOUNT) == "platform-sandbox-loki-chunks-acme-eu"
    with pytest.raises(KeyError):
        bucket_name(spec, "tempo", ACCOUNT)


@pytest.mark.parametrize(
    ("spec_value", "go"),
    [("60s", "60s"), ("2h", "2h"), ("72h", "72h"), ("3d", "72h"), ("1d1h30s", "25h30s")],
)
def test_go_durations(spec_value, go):
    assert go_duration(spec_value) == go
