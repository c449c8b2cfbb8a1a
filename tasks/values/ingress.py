"""Workflow 2, ingress: cert-manager, external-dns and the Emissary (Ambassador) gateway."""

from __future__ import annotations

from typing import Any

from blueprint.spec import AmbassadorSettings
from tasks.aws.identity import Identity
from tasks.values.context import ValuesContext, fixed_resources, go_duration, spec_resources

# The guide sizes cert-manager's controller only; its webhook answers a few admission calls
# and the CA injector watches a handful of webhook configurations.
CERT_MANAGER_WEBHOOK_RESOURCES = fixed_resources("10m", "32Mi", "100m", "128Mi")
CERT_MANAGER_CAINJECTOR_RESOURCES = fixed_resources("25m", "64Mi", "200m", "256Mi")

# Legacy AWS load balancer annotations, read by the cloud controller EKS runs itself; the
# platform installs no AWS Load Balancer Controller. One NLB passes TCP to the gateway, which
# terminates TLS with the wildcard certificate and routes every host.
_AWS_LB = "service.beta.kubernetes.io/aws-load-balancer-"
EXTERNAL_DNS_HOSTNAME = "external-dns.alpha.kubernetes.io/hostname"

# Emissary Module settings behind the guide's performance switches (getambassador.io docs).
# Upstream connections idle longer than this are closed: shorter than the 60 s keep-alive
# timeout common in upstream servers, so the gateway never reuses one the server has closed.
CLUSTER_IDLE_TIMEOUT_MS = 30_000
# Pooled connections are recycled after this long, so pods added behind a Service get traffic.
CLUSTER_MAX_CONNECTION_LIFETIME_MS = 600_000
# Per-upstream pool bounds; a short pending queue fails fast instead of piling up requests
# when an upstream degrades (the guide's automatic circuit breaking).
CIRCUIT_BREAKERS = {
    "max_connections": 1024,
    "max_pending_requests": 256,
    "max_requests": 1024,
    "max_retries": 3,
}
# TCP keep-alive on upstream connections: a dead peer is found in about two minutes, not the
# kernel's two hours.
UPSTREAM_KEEPALIVE = {"time": 60, "interval": 15, "probes": 4}


def cert_manager(ctx: ValuesContext) -> dict[str, Any]:
    settings = ctx.spec.ingress.cert_manager
    values: dict[str, Any] = {
        "crds": {"enabled": True},
        "resources": spec_resources(settings.resources),
        "webhook": {"resources": CERT_MANAGER_WEBHOOK_RESOURCES},
        "cainjector": {"resources": CERT_MANAGER_CAINJECTOR_RESOURCES},
        "prometheus": {"enabled": True, "servicemonitor": {"enabled": True}},
    }
    # The wildcard certificate needs a DNS-01 challenge; the ClusterIssuer and Certificate are
    # created by the ingress workflow, not by the chart. The self-check asks the zone's
    # authoritative servers directly, so no recursive nameserver override is needed.
    if role := ctx.role_annotations("cert-manager"):
        values["serviceAccount"] = {"annotations": role}
    return values


def external_dns(ctx: ValuesContext) -> dict[str, Any]:
    ingress = ctx.spec.ingress
    settings = ingress.external_dns
    values: dict[str, Any] = {
        "provider": {"name": settings.provider},
        "interval": go_duration(settings.sync_interval),
        "policy": settings.policy,
        "registry": "txt",
        "txtOwnerId": ctx.spec.eks.cluster_name,
        "domainFilters": [ingress.domain],
        # The gateway's Service carries every hostname (one wildcard record); no Ingress
        # objects are used, so only Services are watched.
        "sources": ["service"],
        "resources": spec_resources(settings.resources),
        "serviceMonitor": {"enabled": True},
    }
    if settings.provider == "cloudflare":
        token = {"secretKeyRef": {"name": ctx.dns_token_secret, "key": "api-token"}}
        values["env"] = [{"name": "CF_API_TOKEN", "valueFrom": token}]
    if role := ctx.role_annotations("external-dns"):
        values["serviceAccount"] = {"annotations": role}
    return values


def emissary_crds(ctx: ValuesContext) -> dict[str, Any]:
    # Only getambassador.io/v3alpha1 is used, so the v1/v2 versions and the apiext conversion
    # webhook they need stay out (earlier chart versions installed them by default).
    return {"enableLegacyVersions": False}


def ambassador(ctx: ValuesContext) -> dict[str, Any]:
    settings = ctx.spec.ingress.ambassador
    domain = ctx.spec.ingress.domain
    tags = Identity.of(ctx.spec).tags("ambassador")
    annotations = {
        f"{_AWS_LB}type": "nlb",
        f"{_AWS_LB}cross-zone-load-balancing-enabled": "true",
        # Owner tags let the platform's inventory find the load balancer it caused.
        f"{_AWS_LB}additional-resource-tags": ",".join(f"{k}={v}" for k, v in tags.items()),
        EXTERNAL_DNS_HOSTNAME: f"{domain},*.{domain}",
    }
    return {
        "replicaCount": settings.replicas,
        "resources": spec_resources(settings.resources),
        "service": {"type": "LoadBalancer", "annotations": annotations},
        # Emissary listens on nothing until Listeners exist: HTTP 8080 and HTTPS 8443.
        "createDefaultListeners": True,
        "module": _module_config(settings),
        "metrics": {"serviceMonitor": {"enabled": True}},
    }


def _module_config(settings: AmbassadorSettings) -> dict[str, Any]:
    """The ``ambassador`` Module's config; a switch that is off leaves Emissary's default.

    Client keep-alive needs nothing here: Envoy keeps downstream connections open by default.
    """
    config: dict[str, Any] = {}
    if settings.connection_pooling:
        config["cluster_idle_timeout_ms"] = CLUSTER_IDLE_TIMEOUT_MS
        config["cluster_max_connection_lifetime_ms"] = CLUSTER_MAX_CONNECTION_LIFETIME_MS
        config["circuit_breakers"] = [CIRCUIT_BREAKERS]
    if settings.keep_alive:
        config["keepalive"] = UPSTREAM_KEEPALIVE
    if settings.compression:
        config["gzip"] = {"enabled": True}
    return config


BUILDERS = {
    "cert-manager": cert_manager,
    "external-dns": external_dns,
    "emissary-crds": emissary_crds,
    "ambassador": ambassador,
}
