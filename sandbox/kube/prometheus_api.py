"""The HTTP API of a simulated Prometheus server: a faithful subset of Prometheus 3's.

Routes, under the server's route prefix: ``/-/healthy``, ``/-/ready``,
``/api/v1/status/buildinfo``, ``/api/v1/targets`` (``state``, ``scrapePool``) and
``/api/v1/query`` (GET or form POST; see prometheus_query.py). JSON bodies carry Prometheus's
envelope: ``{"status": "success", "data": ...}`` or ``{"status": "error", "errorType",
"error"}``. Scrapes are simulated: each target was last scraped within its interval (at a
stable per-target offset, as Prometheus spreads scrapes), and a down target's error is the
refused connection of a process that does not answer yet.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs

from sandbox.kube.prometheus_query import QueryError, parse_up_selector, up_series
from sandbox.kube.prometheus_targets import Discovery, Target, duration_seconds
from sandbox.kube.proxy import ProxyRequest, ProxyResponse

PROMETHEUS_CONTAINER = "prometheus"  # the container name the operator (and the stand-in) use
FORM = "application/x-www-form-urlencoded"
TEXT = "text/plain; charset=utf-8"


@dataclass(frozen=True)
class ServerInfo:
    version: str  # e.g. "3.5.0"
    route_prefix: str  # "/" or e.g. "/prometheus"

    @classmethod
    def of(cls, statefulset: dict[str, Any]) -> ServerInfo:
        """What the Prometheus container of a StatefulSet runs: its image tag and flags."""
        pod_spec = ((statefulset.get("spec") or {}).get("template") or {}).get("spec") or {}
        containers = pod_spec.get("containers") or []
        main = next((c for c in containers if c.get("name") == PROMETHEUS_CONTAINER), None)
        main = main or (containers[0] if containers else {})
        image = (main.get("image") or "").split("@", 1)[0]  # without a digest
        tag = image.rsplit(":", 1)[1] if ":" in image.rsplit("/", 1)[-1] else ""
        prefix = "/"
        for arg in main.get("args") or []:
            if arg.startswith("--web.route-prefix="):
                prefix = arg.split("=", 1)[1] or "/"
        return cls(version=tag.removeprefix("v") or "unknown", route_prefix=prefix)


def _json(status: int, body: Any) -> ProxyResponse:
    return ProxyResponse(status, json.dumps(body, separators=(",", ":")).encode())


def _success(data: Any) -> ProxyResponse:
    return _json(200, {"status": "success", "data": data})


def _error(status: int, error_type: str, message: str) -> ProxyResponse:
    return _json(status, {"status": "error", "errorType": error_type, "error": message})


def _text(status: int, text: str) -> ProxyResponse:
    return ProxyResponse(status, text.encode(), TEXT)


def _rfc3339(seconds: float) -> str:
    """A time as Go's RFC3339Nano prints it (trailing zeros of the fraction trimmed)."""
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")
    return text.rstrip("0").rstrip(".") + "Z"


def _fraction(*parts: str) -> float:
    """A stable number in [0, 1) from some text."""
    digest = hashlib.sha256("/".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _parse_time(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        pass
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except ValueError:
        raise QueryError(
            f'invalid parameter "time": cannot parse "{text}" to a valid timestamp',
            error_type="bad_data",
            status=400,
        ) from None


class PrometheusApi:
    """Answers one Prometheus server's API from its targets, computed when asked."""

    def __init__(
        self,
        info: ServerInfo,
        targets: Callable[[], Discovery],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.info = info
        self._targets = targets
        self._clock = clock

    def handle(self, request: ProxyRequest) -> ProxyResponse:
        prefix = self.info.route_prefix.rstrip("/")
        if prefix and not (request.path == prefix or request.path.startswith(prefix + "/")):
            return _text(404, "404 page not found\n")
        path = request.path[len(prefix) :] or "/"
        route = {
            "/-/healthy": self._healthy,
            "/-/ready": self._ready,
            "/api/v1/status/buildinfo": self._buildinfo,
            "/api/v1/targets": self._targets_endpoint,
            "/api/v1/query": self._query,
        }.get(path.rstrip("/") or "/")
        if route is None:
            return _text(404, "404 page not found\n")
        allowed = ("GET", "HEAD", "POST") if route == self._query else ("GET", "HEAD")
        if request.method not in allowed:
            return _text(405, "Method Not Allowed\n")
        try:
            return route(request)
        except QueryError as error:
            return _error(error.status, error.error_type, str(error))

    # -- routes ---------------------------------------------------------------------------

    def _healthy(self, request: ProxyRequest) -> ProxyResponse:
        return _text(200, "Prometheus Server is Healthy.\n")

    def _ready(self, request: ProxyRequest) -> ProxyResponse:
        return _text(200, "Prometheus Server is Ready.\n")

    def _buildinfo(self, request: ProxyRequest) -> ProxyResponse:
        # Only the version is known (the image tag); the rest of a build stays blank.
        return _success(
            {
                "version": self.info.version,
                "revision": "",
                "branch": "",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "",
            }
        )

    def _targets_endpoint(self, request: ProxyRequest) -> ProxyResponse:
        params = _params(request)
        state = params.get("state", "").lower()
        pool = params.get("scrapePool", "")
        show_active = state in ("", "any", "active")
        show_dropped = state in ("", "any", "dropped")
        discovery = self._targets()
        now = self._clock()
        data: dict[str, Any] = {
            "activeTargets": [],
            "droppedTargets": [],
            "droppedTargetCounts": None,
        }
        if show_active:
            data["activeTargets"] = [
                self._active(t, now) for t in discovery.active if not pool or t.scrape_pool == pool
            ]
        if show_dropped:
            counts = {p: 0 for p in discovery.pools if not pool or p == pool}
            for dropped in discovery.dropped:
                if dropped.scrape_pool in counts:
                    counts[dropped.scrape_pool] += 1
                    data["droppedTargets"].append(
                        {
                            "discoveredLabels": dropped.discovered_labels,
                            "scrapePool": dropped.scrape_pool,
                        }
                    )
            data["droppedTargetCounts"] = counts
        return _success(data)

    def _query(self, request: ProxyRequest) -> ProxyResponse:
        params = _params(request)
        if "query" not in params:
            raise QueryError(
                'invalid parameter "query": parse error: no expression found in input',
                error_type="bad_data",
                status=400,
            )
        matchers = parse_up_selector(params["query"])
        at = _parse_time(params["time"]) if params.get("time") else self._clock()
        series = [(t.labels, t.healthy) for t in self._targets().active]
        samples = up_series(matchers, series)
        result = [{"metric": s["metric"], "value": [round(at, 3), s["value"]]} for s in samples]
        return _success({"resultType": "vector", "result": result})

    # -- targets --------------------------------------------------------------------------

    def _active(self, target: Target, now: float) -> dict[str, Any]:
        interval = duration_seconds(target.scrape_interval)
        offset = _fraction(target.scrape_pool, target.scrape_url) * interval
        last_scrape = now - ((now - offset) % interval)
        duration = round(0.002 + 0.03 * _fraction("duration", target.scrape_url), 6)
        error = ""
        if not target.healthy:
            error = (
                f'Get "{target.scrape_url}": dial tcp {target.instance}: '
                "connect: connection refused"
            )
        return {
            "discoveredLabels": target.discovered_labels,
            "labels": target.labels,
            "scrapePool": target.scrape_pool,
            "scrapeUrl": target.scrape_url,
            "globalUrl": target.scrape_url,
            "lastError": error,
            "lastScrape": _rfc3339(last_scrape),
            "lastScrapeDuration": duration,
            "health": "up" if target.healthy else "down",
            "scrapeInterval": target.scrape_interval,
            "scrapeTimeout": target.scrape_timeout,
        }


def _params(request: ProxyRequest) -> dict[str, str]:
    """Query parameters, with a form body's taking precedence (as Go's FormValue reads)."""
    found = {k: v[0] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
    content_type = next((v for k, v in request.headers.items() if k.lower() == "content-type"), "")
    if request.method == "POST" and content_type.split(";")[0].strip().lower() == FORM:
        form = parse_qs(request.body.decode(errors="replace"), keep_blank_values=True)
        found.update({k: v[0] for k, v in form.items()})
    return found
