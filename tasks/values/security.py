"""Workflow 5, security: OpenBao, OPA Gatekeeper and Falco, in the security namespace."""

from __future__ import annotations

from typing import Any

from tasks.values.context import (
    ValuesContext,
    fixed_resources,
    helm_fullname,
    release_name,
)

# Raft needs three voters to keep a quorum through the loss of one node.
OPENBAO_RAFT_VOTERS = 3
OPENBAO_RESOURCES = fixed_resources("100m", "256Mi", "500m", "512Mi")

GATEKEEPER_REPLICAS = 2
# Seconds between audits of existing objects against the constraints (the chart's default,
# stated so a change is a reviewed one).
GATEKEEPER_AUDIT_INTERVAL = 60
GATEKEEPER_RESOURCES = fixed_resources("100m", "256Mi", "1", "512Mi")


def openbao(ctx: ValuesContext) -> dict[str, Any]:
    return {
        "server": {
            "resources": OPENBAO_RESOURCES,
            "ha": {
                "enabled": True,
                "replicas": OPENBAO_RAFT_VOTERS,
                "raft": {"enabled": True, "setNodeId": True, "config": _raft_config()},
            },
            "dataStorage": {"enabled": True, "storageClass": ctx.storage_class},
        },
        "ui": {"enabled": True},
        "serverTelemetry": {"serviceMonitor": {"enabled": True}},
    }


def _raft_config() -> str:
    """The server configuration (HCL): raft storage joining its peers, metrics for Prometheus.

    TLS stays off inside the cluster as in the chart's own default (``global.tlsDisable``).
    The chart's ServiceMonitor scrapes without a token, so the listener allows that.
    """
    fullname = helm_fullname(release_name("openbao"), "openbao")
    peers = [f"http://{fullname}-{i}.{fullname}-internal:8200" for i in range(OPENBAO_RAFT_VOTERS)]
    joins = "".join(f'  retry_join {{\n    leader_api_addr = "{peer}"\n  }}\n' for peer in peers)
    return (
        "ui = true\n"
        'listener "tcp" {\n'
        "  tls_disable = 1\n"
        '  address = "[::]:8200"\n'
        '  cluster_address = "[::]:8201"\n'
        "  telemetry {\n"
        '    unauthenticated_metrics_access = "true"\n'
        "  }\n"
        "}\n"
        'storage "raft" {\n'
        '  path = "/openbao/data"\n'
        f"{joins}"
        "}\n"
        'service_registration "kubernetes" {}\n'
        "telemetry {\n"
        '  prometheus_retention_time = "30s"\n'
        "  disable_hostname = true\n"
        "}\n"
    )


def gatekeeper(ctx: ValuesContext) -> dict[str, Any]:
    # The chart has no ServiceMonitor; its pods expose Prometheus metrics on port 8888.
    return {
        "replicas": GATEKEEPER_REPLICAS,
        "auditInterval": GATEKEEPER_AUDIT_INTERVAL,
        "controllerManager": {"resources": GATEKEEPER_RESOURCES},
        "audit": {"resources": GATEKEEPER_RESOURCES},
    }


def falco(ctx: ValuesContext) -> dict[str, Any]:
    return {
        # EKS nodes (Amazon Linux 2023, kernel 6.1) run the modern eBPF probe, which needs no
        # kernel module or headers; with it Falco can drop privileges for a few capabilities.
        "driver": {"kind": "modern_ebpf", "modernEbpf": {"leastPrivileged": True}},
        "metrics": {"enabled": True},
        "serviceMonitor": {"create": True},
    }


BUILDERS = {"openbao": openbao, "opa": gatekeeper, "falco": falco}
