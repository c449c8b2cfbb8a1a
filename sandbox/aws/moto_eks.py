"""Reads moto's EKS clusters and node groups through its own REST API, in process.

The requests go straight to the moto WSGI application (no socket, no fault injection), so
the sandbox sees exactly what a client would see from moto, in the API's shapes.
"""

from __future__ import annotations

import json
import logging
from urllib.parse import quote

from werkzeug.test import EnvironBuilder, run_wsgi_app

from sandbox.aws.moto_app import WsgiApp

log = logging.getLogger(__name__)


def signed_headers(region: str, service: str) -> dict[str, str]:
    """Headers that route a request to moto's backend for ``service`` in ``region``."""
    scope = f"testing/20250101/{region}/{service}/aws4_request"
    return {
        "Authorization": f"AWS4-HMAC-SHA256 Credential={scope}, SignedHeaders=host, Signature=0"
    }


class MotoEks:
    def __init__(self, app: WsgiApp):
        self._app = app

    def cluster(self, region: str, name: str) -> dict | None:
        status, body = self._get(region, f"/clusters/{quote(name, safe='')}")
        return body.get("cluster") if status == 200 else None

    def cluster_names(self, region: str) -> list[str]:
        return self._paged(region, "/clusters", "clusters")

    def nodegroups(self, region: str, cluster: str) -> list[dict]:
        """Every node group of a cluster (none if the cluster does not exist)."""
        base = f"/clusters/{quote(cluster, safe='')}/node-groups"
        groups = []
        for name in self._paged(region, base, "nodegroups"):
            status, body = self._get(region, f"{base}/{quote(name, safe='')}")
            if status == 200:
                groups.append(body["nodegroup"])
        return groups

    def _paged(self, region: str, path: str, key: str) -> list[str]:
        names: list[str] = []
        token = ""
        while True:
            query = {"maxResults": "100", **({"nextToken": token} if token else {})}
            status, body = self._get(region, path, query)
            if status != 200:
                return names
            names.extend(body.get(key) or [])
            token = body.get("nextToken") or ""
            if not token:
                return names

    def _get(self, region: str, path: str, query: dict | None = None) -> tuple[int, dict]:
        builder = EnvironBuilder(
            path=path, method="GET", query_string=query, headers=signed_headers(region, "eks")
        )
        try:
            chunks, status, _ = run_wsgi_app(self._app, builder.get_environ(), buffered=True)
            body = b"".join(chunks)
        except Exception:
            # moto raises instead of answering 404 for a few missing resources, e.g. the
            # node groups of a cluster that does not exist (any more).
            log.debug("moto EKS read %s failed", path, exc_info=True)
            return 500, {}
        code = int(status.split()[0])
        return code, json.loads(body) if code == 200 and body else {}
