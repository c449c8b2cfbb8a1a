"""The stand-in charts through the real helm binary.

``helm repo add / search / pull`` against the served repository, ``helm lint`` of every
archive, and ``helm template`` of every chart (with ``--repo``, as the product's chart
repository override does) with its defaults and with values like the product's: the
rendered objects must carry the real charts' kinds and names and the passed replicas,
resources, persistence and switches.
"""

from __future__ import annotations

import json
import os
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from blueprint.catalogue import load_catalogue
from blueprint.loader import deep_merge, load_spec
from sandbox.charts.build import build_repository
from sandbox.charts.server import ChartRepository
from sandbox.charts.standins import load_standins
from sandbox.tools import ensure_tools

pytestmark = pytest.mark.sandbox

C0 = "spec.template.spec.containers.0"
VCT0 = "spec.volumeClaimTemplates.0.spec"
WORKLOADS = ("Deployment", "StatefulSet", "DaemonSet", "Job")
CLUSTER_SCOPED = (
    "CustomResourceDefinition",
    "Namespace",
    "ValidatingWebhookConfiguration",
    "MutatingWebhookConfiguration",
)
# Where a chart puts namespaced objects besides the release's namespace, as upstream does.
OTHER_NAMESPACES = {"kube-prometheus-stack": {"kube-system"}}
REQUIRED_LABELS = (
    "app.kubernetes.io/name",
    "app.kubernetes.io/instance",
    "app.kubernetes.io/version",
    "app.kubernetes.io/managed-by",
    "helm.sh/chart",
)


@dataclass(frozen=True)
class Release:
    chart: str
    version: str
    name: str
    namespace: str


def catalogue_releases() -> dict[str, Release]:
    spec = load_spec("sandbox")
    return {
        c.chart.name: Release(c.chart.name, c.chart.version, c.chart.release, c.namespace_in(spec))
        for c in load_catalogue().components
        if c.chart
    }


RELEASES = catalogue_releases()


@dataclass(frozen=True)
class Has:
    """The list at the path holds these items (among others)."""

    items: tuple[Any, ...]


class Contains:
    """The string at the path contains each of these texts."""

    def __init__(self, *texts: str):
        self.texts = texts


@dataclass(frozen=True)
class Want:
    kind: str
    name: str
    fields: dict[str, Any] = field(default_factory=dict)
    namespace: str | None = None  # None: the release's namespace


@dataclass(frozen=True)
class Case:
    chart: str
    values: dict[str, Any] | None
    wants: tuple[Want, ...] = ()
    absent: tuple[tuple[str, str], ...] = ()  # (kind, name) that must not render

    @property
    def release(self) -> Release:
        return RELEASES[self.chart]


def requests(cpu: str, memory: str) -> dict[str, Any]:
    return {"requests": {"cpu": cpu, "memory": memory}}


def sized(cpu: str, memory: str, cpu_limit: str, memory_limit: str) -> dict[str, Any]:
    return {
        "requests": {"cpu": cpu, "memory": memory},
        "limits": {"cpu": cpu_limit, "memory": memory_limit},
    }


CERT_MANAGER = sized("50m", "64Mi", "200m", "256Mi")
EXTERNAL_DNS = sized("25m", "32Mi", "100m", "128Mi")
AMBASSADOR = sized("200m", "256Mi", "500m", "512Mi")
PROMETHEUS = sized("500m", "2Gi", "2", "4Gi")
LOKI = sized("200m", "512Mi", "1", "2Gi")
SMALL = sized("100m", "256Mi", "500m", "1Gi")
SCRAPED = {"release": "prometheus"}

# What each chart renders with its defaults (and the catalogue's release name).
DEFAULTS: dict[str, tuple[Want, ...]] = {
    "cert-manager": (
        Want("Deployment", "cert-manager", {"spec.replicas": 1}),
        Want("Deployment", "cert-manager-cainjector"),
        Want("Deployment", "cert-manager-webhook"),
        Want("Job", "cert-manager-startupapicheck"),
    ),
    "external-dns": (Want("Deployment", "external-dns", {f"{C0}.args": Has(("--provider=aws",))}),),
    "prefect-worker": (
        Want(
            "Deployment",
            "prefect-worker",
            {
                f"{C0}.command": ["/usr/bin/tini", "-g", "--", "/opt/prefect/entrypoint.sh"],
                f"{C0}.args": Has(("--pool", "pool", "--install-policy", "prompt")),
                "spec.template.spec.serviceAccountName": "prefect-worker",
            },
        ),
        Want("ServiceAccount", "prefect-worker"),
        Want("Role", "prefect-worker"),
    ),
    "emissary-crds-chart": (
        Want("CustomResourceDefinition", "hosts.getambassador.io", namespace=""),
        Want("CustomResourceDefinition", "mappings.getambassador.io", namespace=""),
        Want("CustomResourceDefinition", "listeners.getambassador.io", namespace=""),
        Want("CustomResourceDefinition", "tlscontexts.getambassador.io", namespace=""),
    ),
    "emissary-ingress": (
        Want("Deployment", "ambassador", {"spec.replicas": 3}),
        Want("Service", "ambassador", {"spec.type": "LoadBalancer"}),
        Want("Module", "ambassador"),
    ),
    "kube-prometheus-stack": (
        Want("Deployment", "prometheus-kube-prometheus-operator"),
        Want("StatefulSet", "prometheus-prometheus-kube-prometheus-prometheus"),
        Want("StatefulSet", "alertmanager-prometheus-kube-prometheus-alertmanager"),
        Want("DaemonSet", "prometheus-prometheus-node-exporter"),
        Want("Deployment", "prometheus-kube-state-metrics"),
        Want("Deployment", "prometheus-grafana"),
        Want("Prometheus", "prometheus-kube-prometheus-prometheus"),
        Want("ServiceMonitor", "prometheus-kube-prometheus-kubelet"),
        Want(
            "ServiceMonitor",
            "prometheus-kube-state-metrics",
            {"metadata.labels.release": "prometheus"},
        ),
        Want("CustomResourceDefinition", "servicemonitors.monitoring.coreos.com", namespace=""),
    ),
    "mimir-distributed": (
        Want("Deployment", "mimir-distributor"),
        Want("StatefulSet", "mimir-ingester-zone-a", {"spec.replicas": 1}),
        Want("StatefulSet", "mimir-ingester-zone-c"),
        Want("StatefulSet", "mimir-store-gateway-zone-b"),
        Want("StatefulSet", "mimir-compactor"),
        Want("Deployment", "mimir-querier", {"spec.replicas": 2}),
        Want("Deployment", "mimir-gateway"),
        Want("Deployment", "mimir-minio"),
    ),
    "loki": (
        Want("StatefulSet", "loki", {"spec.replicas": 1}),
        Want("Deployment", "loki-gateway"),
        Want("DaemonSet", "loki-canary"),
        Want("StatefulSet", "loki-chunks-cache", {f"{C0}.resources.requests.memory": "9830Mi"}),
        Want("ConfigMap", "loki"),
    ),
    "tempo": (Want("StatefulSet", "tempo", {"spec.replicas": 1}),),
    "grafana": (
        Want("Deployment", "grafana"),
        Want("Service", "grafana", {"spec.ports.0.port": 80}),
    ),
    "argo-cd": (
        Want("StatefulSet", "argocd-application-controller"),
        Want("Deployment", "argocd-server"),
        Want("Deployment", "argocd-repo-server"),
        Want("Deployment", "argocd-applicationset-controller"),
        Want("Deployment", "argocd-notifications-controller"),
        Want("Deployment", "argocd-dex-server"),
        Want("Deployment", "argocd-redis"),
        Want(
            "CustomResourceDefinition",
            "applications.argoproj.io",
            {"metadata.annotations": {"helm.sh/resource-policy": "keep"}},
            namespace="",
        ),
    ),
    "tekton-pipeline": (
        Want("Namespace", "tekton-pipelines", namespace=""),
        Want("Deployment", "tekton-pipelines-controller", namespace="tekton-pipelines"),
        Want("Deployment", "tekton-pipelines-webhook", namespace="tekton-pipelines"),
        Want("CustomResourceDefinition", "pipelineruns.tekton.dev", namespace=""),
        Want(
            "ValidatingWebhookConfiguration",
            "validation.webhook.pipeline.tekton.dev",
            {
                "webhooks.0.clientConfig.service": {
                    "name": "tekton-pipelines-webhook",
                    "namespace": "tekton-pipelines",
                },
                "webhooks.0.failurePolicy": "Fail",
            },
            namespace="",
        ),
    ),
    "openbao": (
        Want(
            "StatefulSet",
            "openbao",
            {"spec.replicas": 1, f"{VCT0}.resources.requests.storage": "10Gi"},
        ),
        Want("Deployment", "openbao-agent-injector"),
    ),
    "gatekeeper": (
        Want("Deployment", "gatekeeper-controller-manager", {"spec.replicas": 3}),
        Want("Deployment", "gatekeeper-audit"),
        Want(
            "CustomResourceDefinition", "constrainttemplates.templates.gatekeeper.sh", namespace=""
        ),
    ),
    "falco": (Want("DaemonSet", "falco", {f"{C0}.resources.limits.memory": "1024Mi"}),),
    "base": (
        Want("CustomResourceDefinition", "virtualservices.networking.istio.io", namespace=""),
        Want("CustomResourceDefinition", "authorizationpolicies.security.istio.io", namespace=""),
    ),
    "istiod": (Want("Deployment", "istiod", {f"{C0}.resources.requests.memory": "2048Mi"}),),
    "postgresql": (
        # resources from Bitnami's "nano" preset when none are given
        Want("StatefulSet", "postgresql", {f"{C0}.resources.limits.memory": "192Mi"}),
        Want("Service", "postgresql-hl", {"spec.clusterIP": "None"}),
    ),
    "redis": (
        Want("StatefulSet", "redis-master", {"spec.replicas": 1}),
        Want("StatefulSet", "redis-replicas", {"spec.replicas": 3}),
    ),
    "kafka": (Want("StatefulSet", "kafka-controller", {"spec.replicas": 3}),),
}

# Values shaped like the product's (config/platform.yaml), and what they must produce.
PRODUCT_CASES: dict[str, Case] = {
    "cert-manager": Case(
        "cert-manager",
        {
            "crds": {"enabled": True},
            "replicaCount": 2,
            "resources": CERT_MANAGER,
            "prometheus": {"servicemonitor": {"enabled": True, "labels": SCRAPED}},
        },
        (
            Want(
                "Deployment", "cert-manager", {"spec.replicas": 2, f"{C0}.resources": CERT_MANAGER}
            ),
            Want("CustomResourceDefinition", "certificates.cert-manager.io", namespace=""),
            Want(
                "CustomResourceDefinition",
                "clusterissuers.cert-manager.io",
                {"spec.scope": "Cluster"},
                "",
            ),
            Want("ServiceMonitor", "cert-manager", {"metadata.labels.release": "prometheus"}),
        ),
    ),
    "prefect-worker": Case(
        "prefect-worker",
        {
            "worker": {
                "apiConfig": "selfHostedServer",
                "selfHostedServerApiConfig": {"apiUrl": "https://prefect.platform.test/api"},
                "config": {"workPool": "platform-sandbox", "installPolicy": "never"},
                "clusterUid": "platform-sandbox",
                "image": {"prefectTag": "3.9.1-python3.11-kubernetes"},
                "resources": SMALL,
            }
        },
        (
            Want(
                "Deployment",
                "prefect-worker",
                {
                    f"{C0}.image": "prefecthq/prefect:3.9.1-python3.11-kubernetes",
                    f"{C0}.args": [
                        "prefect",
                        "worker",
                        "start",
                        "--type",
                        "kubernetes",
                        "--pool",
                        "platform-sandbox",
                        "--install-policy",
                        "never",
                    ],
                    f"{C0}.env": Has(
                        (
                            {
                                "name": "PREFECT_API_URL",
                                "value": "https://prefect.platform.test/api",
                            },
                            {"name": "PREFECT_KUBERNETES_CLUSTER_UID", "value": "platform-sandbox"},
                            {
                                "name": "PREFECT_INTEGRATIONS_KUBERNETES_OBSERVER_NAMESPACES",
                                "value": "prefect",
                            },
                        )
                    ),
                    f"{C0}.resources": SMALL,
                },
            ),
        ),
    ),
    "external-dns": Case(
        "external-dns",
        {
            "provider": {"name": "cloudflare"},
            "interval": "60s",
            "policy": "upsert-only",
            "domainFilters": ["sandbox.platform.test"],
            "txtOwnerId": "platform-sandbox",
            "env": [
                {
                    "name": "CF_API_TOKEN",
                    "valueFrom": {
                        "secretKeyRef": {"name": "cloudflare-api-token", "key": "api-token"}
                    },
                }
            ],
            "resources": EXTERNAL_DNS,
            "serviceMonitor": {"enabled": True, "additionalLabels": SCRAPED},
        },
        (
            Want(
                "Deployment",
                "external-dns",
                {
                    f"{C0}.args": Has(
                        (
                            "--provider=cloudflare",
                            "--interval=60s",
                            "--policy=upsert-only",
                            "--domain-filter=sandbox.platform.test",
                            "--txt-owner-id=platform-sandbox",
                            "--source=service",
                        )
                    ),
                    f"{C0}.env.0.name": "CF_API_TOKEN",
                    f"{C0}.resources": EXTERNAL_DNS,
                },
            ),
            Want("ServiceMonitor", "external-dns"),
        ),
    ),
    "emissary-crds-chart": Case("emissary-crds-chart", {}, DEFAULTS["emissary-crds-chart"]),
    "emissary-ingress": Case(
        "emissary-ingress",
        {
            "replicaCount": 2,
            "resources": AMBASSADOR,
            "service": {
                "annotations": {"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"}
            },
            "createDefaultListeners": True,
        },
        (
            Want("Deployment", "ambassador", {"spec.replicas": 2, f"{C0}.resources": AMBASSADOR}),
            Want(
                "Service",
                "ambassador",
                {
                    "spec.type": "LoadBalancer",
                    "spec.ports.0.port": 80,
                    "metadata.annotations": {
                        "service.beta.kubernetes.io/aws-load-balancer-type": "nlb"
                    },
                },
            ),
            Want("Listener", "ambassador-https-listener", {"spec.port": 8443}),
        ),
    ),
    "kube-prometheus-stack": Case(
        "kube-prometheus-stack",
        {
            "grafana": {"enabled": False},
            "prometheus": {
                "prometheusSpec": {
                    "retention": "15d",
                    "scrapeInterval": "30s",
                    "evaluationInterval": "30s",
                    "walCompression": True,
                    "resources": PROMETHEUS,
                    "remoteWrite": [{"url": "http://mimir-gateway.observability.svc/api/v1/push"}],
                    "storageSpec": {
                        "volumeClaimTemplate": {
                            "spec": {
                                "storageClassName": "gp3",
                                "accessModes": ["ReadWriteOnce"],
                                "resources": {"requests": {"storage": "50Gi"}},
                            }
                        }
                    },
                }
            },
        },
        (
            Want(
                "StatefulSet",
                "prometheus-prometheus-kube-prometheus-prometheus",
                {
                    "spec.replicas": 1,
                    f"{C0}.resources": PROMETHEUS,
                    f"{C0}.args": Has(
                        ("--storage.tsdb.retention.time=15d", "--storage.tsdb.wal-compression")
                    ),
                    f"{VCT0}.storageClassName": "gp3",
                    f"{VCT0}.resources.requests.storage": "50Gi",
                },
            ),
            Want(
                "Prometheus",
                "prometheus-kube-prometheus-prometheus",
                {
                    "spec.scrapeInterval": "30s",
                    "spec.remoteWrite.0.url": "http://mimir-gateway.observability.svc/api/v1/push",
                    "spec.serviceMonitorSelector": {"matchLabels": {"release": "prometheus"}},
                },
            ),
        ),
        absent=(("Deployment", "prometheus-grafana"),),
    ),
    "mimir-distributed": Case(
        "mimir-distributed",
        {
            "mimir": {
                "structuredConfig": {
                    "blocks_storage": {"s3": {"bucket_name": "platform-mimir-blocks"}}
                }
            },
            "minio": {"enabled": False},
            "distributor": {"replicas": 2, "resources": SMALL},
            "ingester": {
                "replicas": 3,
                "zoneAwareReplication": {"enabled": False},
                "resources": SMALL,
                "persistentVolume": {"size": "10Gi", "storageClass": "gp3"},
            },
        },
        (
            Want(
                "StatefulSet",
                "mimir-ingester",
                {
                    "spec.replicas": 3,
                    f"{C0}.resources": SMALL,
                    f"{VCT0}.resources.requests.storage": "10Gi",
                    f"{VCT0}.storageClassName": "gp3",
                },
            ),
            Want("Deployment", "mimir-distributor", {"spec.replicas": 2}),
            Want(
                "ConfigMap",
                "mimir-config",
                {"data.mimir\\.yaml": Contains("platform-mimir-blocks")},
            ),
        ),
        absent=(("Deployment", "mimir-minio"), ("StatefulSet", "mimir-ingester-zone-a")),
    ),
    "loki": Case(
        "loki",
        {
            "deploymentMode": "SingleBinary",
            "loki": {
                "schemaConfig": {
                    "configs": [{"from": "2024-01-01", "store": "tsdb", "schema": "v13"}]
                },
                "storage": {"type": "s3", "bucketNames": {"chunks": "platform-loki-chunks"}},
                "limits_config": {"retention_period": "720h"},
                "ingester": {
                    "chunk_target_size": 1572864,
                    "max_chunk_age": "2h",
                    "chunk_encoding": "gzip",
                },
            },
            "singleBinary": {
                "replicas": 1,
                "resources": LOKI,
                "persistence": {"size": "20Gi", "storageClass": "gp3"},
            },
            "chunksCache": {"enabled": False},
            "resultsCache": {"enabled": False},
            "lokiCanary": {"enabled": False},
        },
        (
            Want(
                "StatefulSet",
                "loki",
                {
                    "spec.replicas": 1,
                    f"{C0}.resources": LOKI,
                    f"{VCT0}.resources.requests.storage": "20Gi",
                    f"{VCT0}.storageClassName": "gp3",
                },
            ),
            Want(
                "ConfigMap",
                "loki",
                {
                    "data.config\\.yaml": Contains(
                        "chunk_target_size: 1572864",
                        "retention_period: 720h",
                        "bucketnames: platform-loki-chunks",
                    ),
                },
            ),
        ),
        absent=(("StatefulSet", "loki-chunks-cache"), ("DaemonSet", "loki-canary")),
    ),
    "tempo": Case(
        "tempo",
        {
            "tempo": {"retention": "72h", "resources": SMALL},
            "persistence": {"enabled": True, "size": "10Gi", "storageClassName": "gp3"},
        },
        (
            Want(
                "StatefulSet",
                "tempo",
                {f"{C0}.resources": SMALL, f"{VCT0}.storageClassName": "gp3"},
            ),
            Want("ConfigMap", "tempo", {"data.tempo\\.yaml": Contains("block_retention: 72h")}),
        ),
    ),
    "grafana": Case(
        "grafana",
        {
            "resources": SMALL,
            "persistence": {"enabled": True, "size": "10Gi", "storageClassName": "gp3"},
            "grafana.ini": {"dataproxy": {"timeout": 30}},
            "datasources": {
                "datasources.yaml": {
                    "apiVersion": 1,
                    "datasources": [
                        {"name": "Prometheus", "type": "prometheus", "url": "http://x:9090"}
                    ],
                }
            },
            "serviceMonitor": {"enabled": True, "labels": SCRAPED},
        },
        (
            Want(
                "Deployment",
                "grafana",
                {
                    f"{C0}.resources": SMALL,
                    "spec.template.spec.volumes.0.persistentVolumeClaim.claimName": "grafana",
                },
            ),
            Want(
                "PersistentVolumeClaim",
                "grafana",
                {"spec.storageClassName": "gp3", "spec.resources.requests.storage": "10Gi"},
            ),
            Want(
                "ConfigMap",
                "grafana",
                {
                    "data.grafana\\.ini": Contains("[dataproxy]\ntimeout = 30"),
                    "data.datasources\\.yaml": Contains("type: prometheus"),
                },
            ),
            Want("ServiceMonitor", "grafana"),
        ),
    ),
    "argo-cd": Case(
        "argo-cd",
        {
            "global": {"domain": "argocd.sandbox.platform.test"},
            "configs": {"params": {"server.insecure": True}},
            "server": {"replicas": 2, "resources": SMALL},
            "controller": {
                "resources": SMALL,
                "metrics": {
                    "enabled": True,
                    "serviceMonitor": {"enabled": True, "additionalLabels": SCRAPED},
                },
            },
            "dex": {"enabled": False},
        },
        (
            Want(
                "Deployment",
                "argocd-server",
                {"spec.replicas": 2, f"{C0}.args": Has(("--insecure",))},
            ),
            Want("StatefulSet", "argocd-application-controller", {f"{C0}.resources": SMALL}),
            Want("Service", "argocd-application-controller-metrics", {"spec.ports.0.port": 8082}),
            Want("ServiceMonitor", "argocd-application-controller"),
            Want("ConfigMap", "argocd-cm", {"data.url": "https://argocd.sandbox.platform.test"}),
            Want("ConfigMap", "argocd-cmd-params-cm", {"data.server\\.insecure": "true"}),
        ),
        absent=(("Deployment", "argocd-dex-server"),),
    ),
    "tekton-pipeline": Case(
        "tekton-pipeline",
        {"namespace": {"create": False}, "controller": {"resources": SMALL}},
        (
            Want("Deployment", "tekton-pipelines-controller", {f"{C0}.resources": SMALL}),
            Want("CustomResourceDefinition", "tasks.tekton.dev", namespace=""),
        ),
        absent=(("Namespace", "tekton-pipelines"),),
    ),
    "openbao": Case(
        "openbao",
        {
            "server": {
                "ha": {"enabled": True, "replicas": 3, "raft": {"enabled": True}},
                "resources": SMALL,
                "dataStorage": {"size": "10Gi", "storageClass": "gp3"},
            },
            "injector": {"enabled": False},
            "serverTelemetry": {"serviceMonitor": {"enabled": True, "selectors": SCRAPED}},
        },
        (
            Want(
                "StatefulSet",
                "openbao",
                {"spec.replicas": 3, f"{C0}.resources": SMALL, f"{VCT0}.storageClassName": "gp3"},
            ),
            Want(
                "ConfigMap",
                "openbao-config",
                {"data.extraconfig-from-values\\.hcl": Contains('storage "raft"')},
            ),
            Want("ServiceMonitor", "openbao", {"spec.endpoints.0.path": "/v1/sys/metrics"}),
        ),
        absent=(("Deployment", "openbao-agent-injector"),),
    ),
    "gatekeeper": Case(
        "gatekeeper",
        {"replicas": 2, "controllerManager": {"resources": SMALL}, "audit": {"resources": SMALL}},
        (
            Want(
                "Deployment",
                "gatekeeper-controller-manager",
                {"spec.replicas": 2, f"{C0}.resources": SMALL},
            ),
            Want("Deployment", "gatekeeper-audit", {f"{C0}.resources": SMALL}),
        ),
    ),
    "falco": Case(
        "falco",
        {
            "resources": SMALL,
            "metrics": {"enabled": True},
            "serviceMonitor": {"create": True, "labels": SCRAPED},
        },
        (
            Want("DaemonSet", "falco", {f"{C0}.resources": SMALL}),
            Want("Service", "falco-metrics"),
            Want("ServiceMonitor", "falco", {"metadata.labels.release": "prometheus"}),
        ),
    ),
    "base": Case(
        "base",
        {"base": {"excludedCRDs": ["envoyfilters.networking.istio.io"]}},
        DEFAULTS["base"],
        absent=(("CustomResourceDefinition", "envoyfilters.networking.istio.io"),),
    ),
    "istiod": Case(
        "istiod",
        {
            "autoscaleEnabled": False,
            "replicaCount": 2,
            "resources": SMALL,
            "meshConfig": {"accessLogFile": "/dev/stdout"},
        },
        (
            Want("Deployment", "istiod", {"spec.replicas": 2, f"{C0}.resources": SMALL}),
            Want("ConfigMap", "istio", {"data.mesh": Contains("accessLogFile: /dev/stdout")}),
        ),
    ),
    "postgresql": Case(
        "postgresql",
        {
            "global": {"defaultStorageClass": "gp3"},
            "primary": {"resources": SMALL, "persistence": {"size": "20Gi"}},
            "metrics": {"enabled": True, "serviceMonitor": {"enabled": True, "labels": SCRAPED}},
        },
        (
            Want(
                "StatefulSet",
                "postgresql",
                {
                    f"{C0}.resources": SMALL,
                    # the exporter sidecar falls back to its preset
                    "spec.template.spec.containers.1.resources.requests.memory": "128Mi",
                    f"{VCT0}.resources.requests.storage": "20Gi",
                    f"{VCT0}.storageClassName": "gp3",
                },
            ),
            Want("Service", "postgresql-metrics"),
            Want("ServiceMonitor", "postgresql"),
        ),
    ),
    "redis": Case(
        "redis",
        {
            "architecture": "standalone",
            "master": {"resources": SMALL, "persistence": {"size": "8Gi", "storageClass": "gp3"}},
            "metrics": {"enabled": True, "serviceMonitor": {"enabled": True}},
        },
        (
            Want(
                "StatefulSet",
                "redis-master",
                {f"{C0}.resources": SMALL, f"{VCT0}.storageClassName": "gp3"},
            ),
            Want("ServiceMonitor", "redis-master"),
        ),
        absent=(("StatefulSet", "redis-replicas"),),
    ),
    "kafka": Case(
        "kafka",
        {
            "controller": {
                "replicaCount": 3,
                "resources": SMALL,
                "persistence": {"size": "20Gi", "storageClass": "gp3"},
            },
            "metrics": {"jmx": {"enabled": True}, "serviceMonitor": {"enabled": True}},
        },
        (
            Want(
                "StatefulSet",
                "kafka-controller",
                {
                    "spec.replicas": 3,
                    f"{C0}.resources": SMALL,
                    f"{VCT0}.resources.requests.storage": "20Gi",
                },
            ),
            Want("ServiceMonitor", "kafka-controller", {"spec.endpoints.0.port": "http-metrics"}),
        ),
    ),
}

# Other switches of the real charts the stand-ins honour.
VARIANT_CASES: dict[str, Case] = {
    "loki-simple-scalable": Case(
        "loki",
        {"deploymentMode": "SimpleScalable", "write": {"replicas": 2}},
        (
            Want("StatefulSet", "loki-write", {"spec.replicas": 2}),
            Want("Deployment", "loki-read", {"spec.replicas": 3}),
            Want("StatefulSet", "loki-backend"),
        ),
        absent=(("StatefulSet", "loki"),),
    ),
    "loki-distributed": Case(
        "loki",
        {
            "deploymentMode": "Distributed",
            "ingester": {"replicas": 3},
            "distributor": {"replicas": 2},
        },
        (
            Want("StatefulSet", "loki-ingester", {"spec.replicas": 3}),
            Want("Deployment", "loki-distributor", {"spec.replicas": 2}),
        ),
        absent=(("StatefulSet", "loki"), ("StatefulSet", "loki-write")),
    ),
    "redis-sentinel": Case(
        "redis",
        {"sentinel": {"enabled": True}},
        (Want("StatefulSet", "redis-node", {"spec.template.spec.containers.1.name": "sentinel"}),),
        absent=(("StatefulSet", "redis-master"),),
    ),
    "postgresql-replication": Case(
        "postgresql",
        {"architecture": "replication", "readReplicas": {"replicaCount": 2}},
        (
            Want("StatefulSet", "postgresql-primary"),
            Want("StatefulSet", "postgresql-read", {"spec.replicas": 2}),
        ),
        absent=(("StatefulSet", "postgresql"),),
    ),
    "falco-deployment": Case(
        "falco",
        {"controller": {"kind": "deployment", "deployment": {"replicas": 2}}},
        (Want("Deployment", "falco", {"spec.replicas": 2}),),
        absent=(("DaemonSet", "falco"),),
    ),
    "cert-manager-legacy-crds": Case(
        "cert-manager",
        {"installCRDs": True, "startupapicheck": {"enabled": False}},
        (Want("CustomResourceDefinition", "issuers.cert-manager.io", namespace=""),),
        absent=(("Job", "cert-manager-startupapicheck"),),
    ),
    "grafana-fullname-override": Case(
        "grafana",
        {"fullnameOverride": "dashboards"},
        (Want("Deployment", "dashboards"), Want("ConfigMap", "dashboards-sandbox-values")),
        absent=(("Deployment", "grafana"),),
    ),
    "external-dns-name-override": Case(
        "external-dns",
        {"nameOverride": "records"},
        (
            Want(
                "Deployment",
                "external-dns-records",
                {"metadata.labels.app\\.kubernetes\\.io/name": "records"},
            ),
        ),
    ),
    "argo-cd-without-crds": Case(
        "argo-cd",
        {"crds": {"install": False}},
        absent=(("CustomResourceDefinition", "applications.argoproj.io"),),
    ),
    "istiod-revision": Case(
        "istiod",
        {"revision": "canary", "autoscaleEnabled": False, "replicaCount": 1},
        (
            Want("Deployment", "istiod-canary", {"spec.replicas": 1}),
            Want("Service", "istiod-canary"),
        ),
    ),
}

# Charts that, as upstream, render nothing without these values (the least they require).
REQUIRED_VALUES: dict[str, dict[str, Any]] = {
    "prefect-worker": {
        "worker": {
            "config": {"workPool": "pool"},
            "apiConfig": "selfHostedServer",
            "selfHostedServerApiConfig": {"apiUrl": "http://prefect-server.prefect:4200/api"},
        }
    },
}

CASES: dict[str, Case] = {
    **{
        f"{chart}-defaults": Case(chart, REQUIRED_VALUES.get(chart), wants)
        for chart, wants in DEFAULTS.items()
    },
    **{f"{chart}-product": case for chart, case in PRODUCT_CASES.items()},
    **VARIANT_CASES,
}


class Helm:
    """The helm binary with its own cache, config and data folders (the user's stay untouched)."""

    def __init__(self, binary: Path, home: Path):
        self.binary = binary
        self.env = {
            **os.environ,
            "HELM_CACHE_HOME": str(home / "cache"),
            "HELM_CONFIG_HOME": str(home / "config"),
            "HELM_DATA_HOME": str(home / "data"),
        }

    def __call__(self, *args: str, cwd: Path | None = None) -> str:
        done = subprocess.run(
            [str(self.binary), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=self.env,
            cwd=cwd,
        )
        if done.returncode != 0:
            raise AssertionError(f"helm {' '.join(args)} failed:\n{done.stderr}")
        return done.stdout

    def template(
        self, repository_url: str, case: Case, values_dir: Path, case_id: str
    ) -> list[dict]:
        release = case.release
        args = [
            "template", release.name, release.chart,
            "--repo", repository_url, "--version", release.version,
            "--namespace", release.namespace, "--include-crds",
        ]  # fmt: skip
        if case.values is not None:
            values_file = values_dir / f"{case_id}.yaml"
            values_file.write_text(yaml.safe_dump(case.values))
            args += ["--values", str(values_file)]
        return [doc for doc in yaml.safe_load_all(self(*args)) if doc]


@pytest.fixture(scope="module")
def helm(tmp_path_factory) -> Helm:
    return Helm(ensure_tools()["helm"], tmp_path_factory.mktemp("helm-home"))


@pytest.fixture(scope="module")
def repository_folder(tmp_path_factory) -> Path:
    return build_repository(tmp_path_factory.mktemp("repo"))


@pytest.fixture(scope="module")
def repository(repository_folder):
    with ChartRepository(repository_folder) as served:
        yield served


@pytest.fixture(scope="module")
def rendered(helm, repository, tmp_path_factory) -> dict[str, list[dict] | AssertionError]:
    """Every case rendered once, in parallel; a failure is kept to fail its own test."""
    values_dir = tmp_path_factory.mktemp("values")

    def render(case_id: str) -> list[dict] | AssertionError:
        try:
            return helm.template(repository.url, CASES[case_id], values_dir, case_id)
        except AssertionError as error:
            return error

    with ThreadPoolExecutor(max_workers=4) as pool:
        return dict(zip(CASES, pool.map(render, CASES), strict=True))


def lookup(document: Any, path: str) -> Any:
    """A dotted path into a document; list indices are numbers, "\\." escapes a dot."""
    keys = [key.replace("\0", ".") for key in path.replace("\\.", "\0").split(".")]
    for key in keys:
        if isinstance(document, list):
            document = document[int(key)]
        elif isinstance(document, dict) and key in document:
            document = document[key]
        else:
            raise KeyError(f"{path}: no {key!r}")
    return document


def matches(actual: Any, expected: Any) -> bool:
    if isinstance(expected, Has):
        return all(item in actual for item in expected.items)
    if isinstance(expected, Contains):
        return all(text in actual for text in expected.texts)
    return actual == expected


def find(documents: list[dict], kind: str, name: str) -> list[dict]:
    return [d for d in documents if d["kind"] == kind and d["metadata"]["name"] == name]


def check_wants(case: Case, documents: list[dict]) -> None:
    for want in case.wants:
        found = find(documents, want.kind, want.name)
        rendered = sorted((d["kind"], d["metadata"]["name"]) for d in documents)
        assert found, f"no {want.kind} {want.name}; rendered: {rendered}"
        (document,) = found
        namespace = case.release.namespace if want.namespace is None else want.namespace
        assert document["metadata"].get("namespace", "") == namespace, f"{want.kind} {want.name}"
        for path, expected in want.fields.items():
            actual = lookup(document, path)
            assert matches(actual, expected), f"{want.kind} {want.name} {path}: {actual!r}"
    for kind, name in case.absent:
        assert not find(documents, kind, name), f"{kind} {name} should not render"


def check_invariants(case: Case, documents: list[dict]) -> None:
    """What every stand-in release must satisfy, whatever the values."""
    release = case.release
    standin = load_standins().charts[release.chart]
    static_crds = standin.crds is not None and standin.crds.location == "crds"
    allowed = {release.namespace} | OTHER_NAMESPACES.get(release.chart, set())
    keys = [(d["kind"], d["metadata"]["name"], d["metadata"].get("namespace")) for d in documents]
    assert len(keys) == len(set(keys)), "an object is rendered twice"
    for document in documents:
        kind, metadata = document["kind"], document["metadata"]
        labels = metadata.get("labels") or {}
        if not (kind == "CustomResourceDefinition" and static_crds):
            missing = [label for label in REQUIRED_LABELS if label not in labels]
            assert not missing, f"{kind} {metadata['name']} lacks labels {missing}"
            assert labels["app.kubernetes.io/instance"] == release.name
        if kind in CLUSTER_SCOPED:
            assert "namespace" not in metadata, f"{kind} {metadata['name']} is cluster-scoped"
        else:
            assert metadata.get("namespace") in allowed, f"{kind} {metadata['name']}"
        if kind in WORKLOADS:
            check_workload(document)
    check_services(documents)
    check_service_monitors(documents)
    (values_map,) = [
        d
        for d in documents
        if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-sandbox-values")
    ]
    rendered_values = yaml.safe_load(values_map["data"]["values.yaml"])
    for key, value in (case.values or {}).items():
        if not isinstance(value, dict):
            assert rendered_values[key] == value, f"values {key} not kept"


def check_workload(document: dict) -> None:
    spec = document["spec"]
    pod = spec["template"]
    pod_labels = pod["metadata"]["labels"]
    assert {"app.kubernetes.io/name", "app.kubernetes.io/instance"} <= set(pod_labels)
    if document["kind"] != "Job":
        selector = spec["selector"]["matchLabels"]
        assert selector.items() <= pod_labels.items(), document["metadata"]["name"]
    for container in pod["spec"]["containers"]:
        assert container["name"] and container["image"]
    if document["kind"] == "StatefulSet":
        assert spec["serviceName"]


def pods(documents: list[dict]) -> list[tuple[str | None, dict[str, str], set[str]]]:
    """(namespace, labels, port names) of each workload's pod template."""
    found = []
    for document in documents:
        if document["kind"] in WORKLOADS:
            template = document["spec"]["template"]
            ports = {p["name"] for c in template["spec"]["containers"] for p in c.get("ports", [])}
            found.append(
                (document["metadata"].get("namespace"), template["metadata"]["labels"], ports)
            )
    return found


def check_services(documents: list[dict]) -> None:
    """A service of the chart's own workloads selects pods that have its target ports."""
    templates = pods(documents)
    for service in (d for d in documents if d["kind"] == "Service"):
        selector = service["spec"].get("selector") or {}
        namespace = service["metadata"].get("namespace")
        selected = [
            ports for pod_namespace, labels, ports in templates
            if pod_namespace == namespace and selector.items() <= labels.items()
        ]  # fmt: skip
        if not selected:
            continue  # selects pods of another release (kube-system components)
        for port in service["spec"]["ports"]:
            target = port["targetPort"]
            if isinstance(target, str):
                assert any(target in ports for ports in selected), (
                    f"{service['metadata']['name']}: {target}"
                )


def check_service_monitors(documents: list[dict]) -> None:
    """A ServiceMonitor of a chart's workload finds one of its services and that port."""
    services = [d for d in documents if d["kind"] == "Service"]
    for monitor in (d for d in documents if d["kind"] == "ServiceMonitor"):
        selector = monitor["spec"]["selector"].get("matchLabels", {})
        names = monitor["spec"].get("namespaceSelector", {}).get("matchNames")
        endpoints = {endpoint["port"] for endpoint in monitor["spec"]["endpoints"]}
        candidates = [
            s for s in services
            if selector.items() <= (s["metadata"].get("labels") or {}).items()
            and (names is None or s["metadata"].get("namespace") in names)
            and (s["metadata"].get("labels") or {}).get("prometheus.io/service-monitor") != "false"
        ]  # fmt: skip
        if monitor["metadata"]["name"].endswith(("-apiserver", "-kubelet")):
            continue  # scrape the cluster's own services
        assert candidates, f"ServiceMonitor {monitor['metadata']['name']} selects no service"
        ports = {p["name"] for s in candidates for p in s["spec"]["ports"]}
        assert endpoints <= ports, (
            f"ServiceMonitor {monitor['metadata']['name']}: {endpoints - ports}"
        )


@pytest.mark.parametrize("case_id", list(CASES))
def test_template(rendered, case_id):
    documents = rendered[case_id]
    if isinstance(documents, AssertionError):
        raise documents
    case = CASES[case_id]
    check_wants(case, documents)
    check_invariants(case, documents)


def test_defaults_cover_every_chart():
    assert set(DEFAULTS) == set(RELEASES) == set(PRODUCT_CASES)


def test_the_values_config_map_holds_the_chart_defaults(rendered):
    for chart in RELEASES:
        documents = rendered[f"{chart}-defaults"]
        (values_map,) = [d for d in documents if d["metadata"]["name"].endswith("-sandbox-values")]
        defaults = deep_merge(load_standins().charts[chart].values, REQUIRED_VALUES.get(chart, {}))
        assert yaml.safe_load(values_map["data"]["values.yaml"]) == defaults, chart


def test_the_worker_chart_requires_its_work_pool_and_api(helm, repository, tmp_path):
    """As upstream: no work pool, or a self-hosted server without its URL, renders nothing."""
    required = REQUIRED_VALUES["prefect-worker"]["worker"]
    for values, wanted in (
        (None, "A Work Pool Name is required (worker.config.workPool)"),
        (
            {"worker": {**required, "selfHostedServerApiConfig": {"apiUrl": ""}}},
            "The Prefect Server API URL is required",
        ),
    ):
        with pytest.raises(AssertionError) as refused:
            helm.template(repository.url, Case("prefect-worker", values), tmp_path, "required")
        assert wanted in str(refused.value)


def test_repo_add_search_and_pull(helm, repository, tmp_path):
    helm("repo", "add", "sandbox", repository.url)
    found = json.loads(helm("search", "repo", "sandbox/", "--versions", "--output", "json"))
    served = {entry["name"]: entry["version"] for entry in found}
    assert served == {f"sandbox/{r.chart}": r.version for r in RELEASES.values()}
    for release in RELEASES.values():
        helm(
            "pull",
            f"sandbox/{release.chart}",
            "--version",
            release.version,
            "--destination",
            str(tmp_path),
        )
    pulled = sorted(path.name for path in tmp_path.glob("*.tgz"))
    assert len(pulled) == len(RELEASES)
    helm("repo", "remove", "sandbox")


def test_helm_lint_passes_for_every_archive(helm, repository_folder):
    archives = sorted(str(path) for path in repository_folder.glob("*.tgz"))
    out = helm("lint", "--strict", *archives)
    assert f"{len(archives)} chart(s) linted, 0 chart(s) failed" in out
