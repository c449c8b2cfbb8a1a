"""Workflow 3, observability: Prometheus, Mimir, Loki, Tempo and Grafana."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from blueprint.spec import SERVICE_ACCOUNTS
from blueprint.units import duration_seconds
from tasks.values.context import (
    ValuesContext,
    go_duration,
    helm_fullname,
    release_name,
    spec_resources,
)


@dataclass(frozen=True)
class _Service:
    """A component's main HTTP Service as its chart names it: ``<fullname><suffix>:<port>``."""

    name: str  # the name the chart's fullname helper joins to the release name
    suffix: str
    port: int
    limit: int = 63  # length the chart cuts its fullname to


_SERVICES = {
    # kube-prometheus-stack cuts its fullname to 26 characters to leave room for suffixes.
    "prometheus": _Service("kube-prometheus-stack", "-prometheus", 9090, limit=26),
    # mimir-distributed's fullname uses "mimir", not the chart name; the gateway fronts
    # push (/api/v1/push) and query (/prometheus) paths.
    "mimir": _Service("mimir", "-gateway", 80),
    # Loki's gateway exists in every deployment mode, so clients survive a mode change.
    "loki": _Service("loki", "-gateway", 80),
    "tempo": _Service("tempo", "", 3200),
}


def service_url(component: str, ctx: ValuesContext, path: str = "") -> str:
    """In-cluster URL of a component's main HTTP service, e.g. ``http://mimir-gateway.x.svc:80``."""
    if component not in _SERVICES:
        raise KeyError(f"{component!r} has no known HTTP service; known: {', '.join(_SERVICES)}")
    service = _SERVICES[component]
    name = helm_fullname(release_name(component), service.name, service.limit) + service.suffix
    return f"http://{name}.{ctx.namespaces[component]}.svc:{service.port}{path}"


# --------------------------------------------------------------------------- Prometheus


def prometheus(ctx: ValuesContext) -> dict[str, Any]:
    settings = ctx.spec.observability.prometheus
    remote_write = []
    if settings.remote_write.enabled:
        url = service_url(settings.remote_write.target, ctx, "/api/v1/push")
        remote_write.append({"name": settings.remote_write.target, "url": url})
    volume = {
        "storageClassName": ctx.storage_class,
        "accessModes": ["ReadWriteOnce"],
        "resources": {"requests": {"storage": settings.storage_size}},
    }
    spec: dict[str, Any] = {
        "retention": settings.retention,
        "scrapeInterval": settings.scrape_interval,
        "evaluationInterval": settings.evaluation_interval,
        "walCompression": settings.wal_compression,
        "remoteWrite": remote_write,
        "resources": spec_resources(settings.resources),
        "storageSpec": {"volumeClaimTemplate": {"spec": volume}},
    }
    # Without these the operator only picks up monitors labelled with this release; the
    # platform's charts label theirs their own way, and every one of them must be scraped.
    for kind in ("serviceMonitor", "podMonitor", "rule", "probe", "scrapeConfig"):
        spec[f"{kind}SelectorNilUsesHelmValues"] = False
    return {
        "prometheus": {"prometheusSpec": spec},
        # Grafana is a component of its own, with every data source provisioned.
        "grafana": {"enabled": False},
        "nodeExporter": {"enabled": True},
        "kubeStateMetrics": {"enabled": True},
        # EKS runs these control-plane parts outside the cluster: nothing could be scraped,
        # and their targets would stay down forever.
        "kubeControllerManager": {"enabled": False},
        "kubeScheduler": {"enabled": False},
        "kubeEtcd": {"enabled": False},
        # EKS's kube-proxy add-on serves its metrics on 127.0.0.1:10249 only: its target
        # would stay down and KubeProxyDown fire forever.
        "kubeProxy": {"enabled": False},
    }


# --------------------------------------------------------------------------- Mimir


def writer_account(ctx: ValuesContext, part: str) -> dict[str, Any]:
    """The service account of an object-storage writer: the name its IAM role trusts, and
    the role's annotation (absent where the role does not exist yet)."""
    return {
        "create": True,
        "name": SERVICE_ACCOUNTS[part],
        "annotations": ctx.role_annotations(part),
    }


def mimir(ctx: ValuesContext) -> dict[str, Any]:
    settings = ctx.spec.observability.mimir
    region = ctx.spec.platform.region
    config = {
        # One platform, one tenant: Prometheus and Grafana need no X-Scope-OrgID header.
        "multitenancy_enabled": False,
        # The classic architecture: distributors push to ingesters. Chart 6 defaults to ingest
        # storage through a bundled single-broker Kafka that upstream marks demo-only; these
        # are the keys of the chart's own classic-architecture preset.
        "ingest_storage": {
            "enabled": False,
            "kafka": {"address": None, "topic": None, "auto_create_topic_default_partitions": None},
        },
        "distributor": {"remote_timeout": None},
        "ingester": {"push_grpc_method_enabled": None},
        # No keys: the pods take their service account's IAM role (IRSA), which reaches
        # this bucket alone.
        "common": {
            "storage": {
                "backend": "s3",
                "s3": {"endpoint": f"s3.{region}.amazonaws.com", "region": region},
            }
        },
        "blocks_storage": {"s3": {"bucket_name": ctx.buckets["mimir"]}},
        "limits": {"compactor_blocks_retention_period": settings.retention},
    }
    volume = {"persistentVolume": {"storageClass": ctx.storage_class}}
    return {
        "mimir": {"structuredConfig": config},
        "serviceAccount": writer_account(ctx, "mimir"),
        "minio": {"enabled": False},
        "kafka": {"enabled": False},
        "ingester": volume,
        "store_gateway": volume,
        "compactor": volume,
        # Alerting runs in Prometheus and its Alertmanager; Mimir only keeps metrics long.
        "ruler": {"enabled": False},
        "alertmanager": {"enabled": False},
        "gateway": {"enabledNonEnterprise": True},
        "metaMonitoring": {"serviceMonitor": {"enabled": True}},
    }


# --------------------------------------------------------------------------- Loki

# The first and only schema period. It must lie in the past and never change once Loki has
# written data, so it is a fixed date rather than the install date.
LOKI_SCHEMA_FROM = "2024-04-01"
# The chart sizes its chunks cache for large installs (8 GiB of memcached); the platform's
# nodes have 4-8 GiB in all.
LOKI_CHUNKS_CACHE_MB = 1024


def loki(ctx: ValuesContext) -> dict[str, Any]:
    settings = ctx.spec.observability.loki
    schema = {
        "from": LOKI_SCHEMA_FROM,
        "store": "tsdb",
        "object_store": "s3",
        "schema": "v13",
        "index": {"prefix": "loki_index_", "period": settings.index_period},
    }
    return {
        # One binary for every target; the chart refuses replicas in two modes at once, so
        # the simple-scalable targets it sizes by default are set to zero.
        "deploymentMode": "Monolithic",
        "singleBinary": {
            "replicas": 1,
            "resources": spec_resources(settings.resources),
            "persistence": {"enabled": True, "storageClass": ctx.storage_class},
        },
        "read": {"replicas": 0},
        "write": {"replicas": 0},
        "backend": {"replicas": 0},
        "loki": {
            # One tenant, as for Mimir: clients send no X-Scope-OrgID header.
            "auth_enabled": False,
            # A single replica cannot hold three copies of a stream.
            "commonConfig": {"replication_factor": 1},
            # No keys: the service account's IAM role (IRSA) reaches the bucket.
            "storage": {
                "type": "s3",
                "bucketNames": {"chunks": ctx.buckets["loki"]},
                "s3": {"region": ctx.spec.platform.region},
            },
            "schemaConfig": {"configs": [schema]},
            "ingester": {
                "chunk_target_size": settings.chunk_target_size,
                "max_chunk_age": go_duration(settings.max_chunk_age),
                "chunk_encoding": settings.compression,
            },
            "limits_config": {"retention_period": settings.retention_period},
            # Retention is applied by the compactor, which needs a store for delete requests.
            "compactor": {"retention_enabled": True, "delete_request_store": "s3"},
        },
        "serviceAccount": writer_account(ctx, "loki"),
        # Alerting rules live in Prometheus; the ruler would need a rules bucket as well.
        "ruler": {"enabled": False},
        "chunksCache": {"allocatedMemory": LOKI_CHUNKS_CACHE_MB},
        "monitoring": {"serviceMonitor": {"enabled": True}},
    }


# --------------------------------------------------------------------------- Tempo


def tempo(ctx: ValuesContext) -> dict[str, Any]:
    settings = ctx.spec.observability.tempo
    return {
        "tempo": {
            "retention": go_duration(settings.retention),
            "resources": spec_resources(settings.resources),
        },
        "persistence": {"enabled": True, "storageClassName": ctx.storage_class},
        "serviceMonitor": {"enabled": True},
    }


# --------------------------------------------------------------------------- Grafana

DASHBOARD_PROVIDER = "platform"
DASHBOARD_FOLDER = "Platform"

# (panel title, PromQL, Grafana unit)
Panel = tuple[str, str, str]

DASHBOARDS: dict[str, tuple[str, tuple[Panel, ...]]] = {
    "kubernetes-cluster": (
        "Kubernetes cluster",
        (
            ("Nodes", "count(kube_node_info)", "short"),
            (
                "CPU by namespace",
                'sum by (namespace) (rate(container_cpu_usage_seconds_total{container!=""}'
                "[$__rate_interval]))",
                "cores",
            ),
            (
                "Memory by namespace",
                'sum by (namespace) (container_memory_working_set_bytes{container!=""})',
                "bytes",
            ),
            (
                "Pods not running",
                "sum by (namespace, phase)"
                ' (kube_pod_status_phase{phase=~"Pending|Failed|Unknown"})',
                "short",
            ),
        ),
    ),
    "node-exporter": (
        "Nodes",
        (
            (
                "CPU busy",
                '1 - avg by (instance) (rate(node_cpu_seconds_total{mode="idle"}'
                "[$__rate_interval]))",
                "percentunit",
            ),
            (
                "Memory available",
                "node_memory_MemAvailable_bytes / node_memory_MemTotal_bytes",
                "percentunit",
            ),
            (
                "Root filesystem free",
                'node_filesystem_avail_bytes{mountpoint="/"} / node_filesystem_size_bytes'
                '{mountpoint="/"}',
                "percentunit",
            ),
            (
                "Network received",
                'sum by (instance) (rate(node_network_receive_bytes_total{device!="lo"}'
                "[$__rate_interval]))",
                "Bps",
            ),
        ),
    ),
    "platform-deployments": (
        "Platform deployments",
        (
            (
                "Deployments short of replicas",
                "sum by (namespace, deployment) (kube_deployment_spec_replicas"
                " - kube_deployment_status_replicas_available) > 0",
                "short",
            ),
            (
                "StatefulSets short of replicas",
                "sum by (namespace, statefulset) (kube_statefulset_replicas"
                " - kube_statefulset_status_replicas_ready) > 0",
                "short",
            ),
            (
                "Container restarts (1h)",
                "sum by (namespace, pod) (increase(kube_pod_container_status_restarts_total[1h]))"
                " > 0",
                "short",
            ),
            ("Scrape targets up", "sum by (job) (up)", "short"),
        ),
    ),
}


def dashboard_json(name: str) -> str:
    """The dashboard preloaded as ``name``: time series panels querying Prometheus."""
    if name not in DASHBOARDS:
        raise KeyError(f"no dashboard {name!r} to preload; known: {', '.join(DASHBOARDS)}")
    title, panels = DASHBOARDS[name]
    datasource = {"type": "prometheus", "uid": "prometheus"}
    dashboard = {
        "uid": name,
        "title": title,
        "tags": ["platform"],
        "editable": False,
        "schemaVersion": 39,
        "time": {"from": "now-6h", "to": "now"},
        "refresh": "1m",
        "panels": [
            {
                "id": i + 1,
                "type": "timeseries",
                "title": panel_title,
                "datasource": datasource,
                "gridPos": {"h": 8, "w": 12, "x": 12 * (i % 2), "y": 8 * (i // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [{"refId": "A", "datasource": datasource, "expr": expr}],
            }
            for i, (panel_title, expr, unit) in enumerate(panels)
        ],
    }
    return json.dumps(dashboard, indent=2, sort_keys=True)


def grafana(ctx: ValuesContext) -> dict[str, Any]:
    settings = ctx.spec.observability.grafana
    timeout = int(duration_seconds(settings.query_timeout))
    dashboards = {name: {"json": dashboard_json(name)} for name in settings.dashboards}
    provider = {
        "name": DASHBOARD_PROVIDER,
        "orgId": 1,
        "folder": DASHBOARD_FOLDER,
        "type": "file",
        "disableDeletion": True,
        "editable": False,
        "options": {"path": f"/var/lib/grafana/dashboards/{DASHBOARD_PROVIDER}"},
    }
    return {
        "resources": spec_resources(settings.resources),
        "persistence": {"enabled": True, "storageClassName": ctx.storage_class},
        # A ReadWriteOnce volume cannot follow a surge pod to another node.
        "deploymentStrategy": {"type": "Recreate"},
        "serviceMonitor": {"enabled": True},
        "grafana.ini": {
            # Server-side query caching; Grafana Enterprise and Cloud read it, OSS has no
            # query cache and relies on incremental querying in the data sources below.
            "caching": {"enabled": settings.dashboard_caching},
            # Seconds; also the timeout of the HTTP client of backend data sources.
            "dataproxy": {"timeout": timeout},
            # Queries of one request run concurrently up to this many
            # (pkg/services/query: concurrent_query_limit, default: CPU count).
            "query": {"concurrent_query_limit": settings.max_concurrent_queries},
            # Per data source, for those that split queries (Loki, Prometheus).
            "datasources": {"concurrent_query_count": settings.max_concurrent_queries},
        },
        "datasources": {"datasources.yaml": {"apiVersion": 1, "datasources": _datasources(ctx)}},
        "dashboardProviders": {
            "dashboardproviders.yaml": {"apiVersion": 1, "providers": [provider]}
        },
        # Embedded JSON: the chart can also download by gnetId or URL, which needs internet.
        "dashboards": {DASHBOARD_PROVIDER: dashboards},
    }


def _datasources(ctx: ValuesContext) -> list[dict[str, Any]]:
    observability = ctx.spec.observability
    grafana_settings = observability.grafana

    def prometheus_json(flavour: str) -> dict[str, Any]:
        return {
            "prometheusType": flavour,
            "httpMethod": "POST",
            # Grafana's $__rate_interval follows the real scrape interval.
            "timeInterval": observability.prometheus.scrape_interval,
            # The server gives up too, instead of computing an answer nobody waits for.
            "queryTimeout": grafana_settings.query_timeout,
            # Dashboards re-query only the new part of their time range.
            "incrementalQuerying": grafana_settings.dashboard_caching,
        }

    return [
        {
            "name": "Prometheus",
            "uid": "prometheus",
            "type": "prometheus",
            "access": "proxy",
            "url": service_url("prometheus", ctx),
            "isDefault": True,
            "editable": False,
            "jsonData": prometheus_json("Prometheus"),
        },
        {
            "name": "Mimir",
            "uid": "mimir",
            "type": "prometheus",
            "access": "proxy",
            "url": service_url("mimir", ctx, "/prometheus"),
            "editable": False,
            "jsonData": prometheus_json("Mimir"),
        },
        {
            "name": "Loki",
            "uid": "loki",
            "type": "loki",
            "access": "proxy",
            "url": service_url("loki", ctx),
            "editable": False,
        },
        {
            "name": "Tempo",
            "uid": "tempo",
            "type": "tempo",
            "access": "proxy",
            "url": service_url("tempo", ctx),
            "editable": False,
            "jsonData": {
                "tracesToLogsV2": {"datasourceUid": "loki"},
                "serviceMap": {"datasourceUid": "prometheus"},
                "nodeGraph": {"enabled": True},
            },
        },
    ]


BUILDERS = {
    "prometheus": prometheus,
    "mimir": mimir,
    "loki": loki,
    "tempo": tempo,
    "grafana": grafana,
}
