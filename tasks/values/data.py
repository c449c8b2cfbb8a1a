"""Workflow 7, data services: PostgreSQL, Redis and Kafka (Bitnami charts) on the gp3 class."""

from __future__ import annotations

from typing import Any

from tasks.values.context import ValuesContext, fixed_resources

# Bitnami stopped publishing its Debian-based images under docker.io/bitnami (only a few
# "latest" tags remain there); the versions these charts pin were moved, unchanged, to
# docker.io/bitnamilegacy. The charts refuse a substituted image unless told it is intended.
LEGACY_REPOSITORY = "bitnamilegacy"

# Starting volume sizes; the gp3 class allows growing a claim in place.
POSTGRESQL_VOLUME = "20Gi"
REDIS_VOLUME = "8Gi"
KAFKA_VOLUME = "20Gi"

# Explicit resources, so the charts' resourcesPreset sizes (meant for trials) are not used.
POSTGRESQL_RESOURCES = fixed_resources("250m", "256Mi", "1", "1Gi")
REDIS_RESOURCES = fixed_resources("100m", "128Mi", "500m", "512Mi")
# Kafka sizes its JVM heap at 75% of the container's memory limit.
KAFKA_RESOURCES = fixed_resources("250m", "1Gi", "1", "1Gi")
EXPORTER_RESOURCES = fixed_resources("25m", "32Mi", "100m", "128Mi")
JMX_EXPORTER_RESOURCES = fixed_resources("50m", "128Mi", "250m", "256Mi")

REDIS_REPLICAS = 2
# KRaft needs three controller votes to survive the loss of one node; the controllers also
# act as brokers (the chart's combined mode), so no separate broker pool is run.
KAFKA_CONTROLLERS = 3


def _shared(ctx: ValuesContext) -> dict[str, Any]:
    return {
        "global": {
            "defaultStorageClass": ctx.storage_class,
            "security": {"allowInsecureImages": True},
        }
    }


def _legacy(image: str) -> dict[str, str]:
    return {"repository": f"{LEGACY_REPOSITORY}/{image}"}


def postgresql(ctx: ValuesContext) -> dict[str, Any]:
    return {
        **_shared(ctx),
        "image": _legacy("postgresql"),
        "primary": {"resources": POSTGRESQL_RESOURCES, "persistence": {"size": POSTGRESQL_VOLUME}},
        "metrics": {
            "enabled": True,
            "image": _legacy("postgres-exporter"),
            "resources": EXPORTER_RESOURCES,
            "serviceMonitor": {"enabled": True},
        },
    }


def redis(ctx: ValuesContext) -> dict[str, Any]:
    node = {"resources": REDIS_RESOURCES, "persistence": {"size": REDIS_VOLUME}}
    return {
        **_shared(ctx),
        "image": _legacy("redis"),
        "architecture": "replication",
        "master": node,
        "replica": {**node, "replicaCount": REDIS_REPLICAS},
        "metrics": {
            "enabled": True,
            "image": _legacy("redis-exporter"),
            "resources": EXPORTER_RESOURCES,
            "serviceMonitor": {"enabled": True},
        },
    }


def kafka(ctx: ValuesContext) -> dict[str, Any]:
    return {
        **_shared(ctx),
        "image": _legacy("kafka"),
        "controller": {
            "replicaCount": KAFKA_CONTROLLERS,
            "controllerOnly": False,
            "resources": KAFKA_RESOURCES,
            "persistence": {"size": KAFKA_VOLUME},
        },
        "broker": {"replicaCount": 0},
        "metrics": {
            "jmx": {
                "enabled": True,
                "image": _legacy("jmx-exporter"),
                "resources": JMX_EXPORTER_RESOURCES,
            },
            "serviceMonitor": {"enabled": True},
        },
    }


BUILDERS = {"postgresql": postgresql, "redis": redis, "kafka": kafka}
