"""The simulated Prometheus's HTTP API and PromQL subset, on hand-made targets (no servers)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from sandbox.kube.prometheus_api import PrometheusApi, ServerInfo
from sandbox.kube.prometheus_query import Matcher, QueryError, parse_up_selector, up_series
from sandbox.kube.prometheus_targets import (
    Discovery,
    DroppedTarget,
    Target,
    duration_seconds,
)
from sandbox.kube.proxy import ProxyRequest

pytestmark = pytest.mark.sandbox

NOW = 1_767_225_600.0  # 2026-01-01T00:00:00Z
POOL_A, POOL_B = "serviceMonitor/apps/web/0", "podMonitor/apps/jobs/0"
TARGET_KEYS = {
    "discoveredLabels",
    "labels",
    "scrapePool",
    "scrapeUrl",
    "globalUrl",
    "lastError",
    "lastScrape",
    "lastScrapeDuration",
    "health",
    "scrapeInterval",
    "scrapeTimeout",
}


def target(pool: str, instance: str, healthy: bool = True, job: str = "web") -> Target:
    return Target(
        scrape_pool=pool,
        labels={"instance": instance, "job": job, "namespace": "apps"},
        discovered_labels={"__address__": instance, "job": pool},
        scrape_url=f"http://{instance}/metrics",
        healthy=healthy,
        scrape_interval="30s",
        scrape_timeout="10s",
    )


DISCOVERY = Discovery(
    pools=[POOL_A, POOL_B],
    active=[
        target(POOL_A, "10.0.0.1:8080"),
        target(POOL_A, "10.0.0.2:8080", healthy=False),
        target(POOL_B, "10.0.0.3:9100", job="apps/jobs"),
    ],
    dropped=[DroppedTarget(POOL_A, {"__address__": "10.0.0.1:80", "job": POOL_A})],
)


def api(prefix: str = "/", clock: float = NOW) -> PrometheusApi:
    return PrometheusApi(ServerInfo("3.5.0", prefix), lambda: DISCOVERY, lambda: clock)


def get(
    server: PrometheusApi, path: str, query: str = "", method: str = "GET", form: str = ""
) -> tuple[int, Any]:
    headers = {"Content-Type": "application/x-www-form-urlencoded"} if form else {}
    response = server.handle(ProxyRequest(method, path, query, headers, form.encode(), "9090"))
    if response.content_type == "application/json":
        return response.status, json.loads(response.body)
    return response.status, response.body.decode()


# -- /api/v1/targets --------------------------------------------------------------------------


def test_targets_carry_prometheus_fields_and_simulated_scrapes() -> None:
    status, body = get(api(), "/api/v1/targets", "state=active")
    assert (status, body["status"]) == (200, "success")
    data = body["data"]
    assert (data["droppedTargets"], data["droppedTargetCounts"]) == ([], None)
    up, down, other = data["activeTargets"]
    assert set(up) == TARGET_KEYS
    assert (up["health"], up["lastError"]) == ("up", "")
    assert (down["health"], down["lastError"]) == (
        "down",
        'Get "http://10.0.0.2:8080/metrics": dial tcp 10.0.0.2:8080: connect: connection refused',
    )
    scraped = [seconds(item["lastScrape"]) for item in (up, down, other)]
    assert all(NOW - 30 < when <= NOW for when in scraped)
    # one interval later, each target has been scraped once more
    _, later = get(api(clock=NOW + 30), "/api/v1/targets", "state=active")
    assert [seconds(t["lastScrape"]) for t in later["data"]["activeTargets"]] == pytest.approx(
        [when + 30 for when in scraped]
    )


def seconds(timestamp: str) -> float:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


@pytest.mark.parametrize(
    ("query", "active", "dropped", "counts"),
    [
        ("", 3, 1, {POOL_A: 1, POOL_B: 0}),
        ("state=any", 3, 1, {POOL_A: 1, POOL_B: 0}),
        ("state=ACTIVE", 3, 0, None),
        ("state=dropped", 0, 1, {POOL_A: 1, POOL_B: 0}),
        ("state=bogus", 0, 0, None),
        (f"scrapePool={POOL_B}", 1, 0, {POOL_B: 0}),
    ],
)
def test_targets_filters(query: str, active: int, dropped: int, counts: dict | None) -> None:
    status, body = get(api(), "/api/v1/targets", query)
    assert status == 200
    data = body["data"]
    assert len(data["activeTargets"]) == active
    assert len(data["droppedTargets"]) == dropped
    assert data["droppedTargetCounts"] == counts


# -- routes -----------------------------------------------------------------------------------


def test_routes_status_pages_and_errors() -> None:
    server = api()
    assert get(server, "/-/ready") == (200, "Prometheus Server is Ready.\n")
    assert get(server, "/-/healthy") == (200, "Prometheus Server is Healthy.\n")
    status, body = get(server, "/api/v1/status/buildinfo")
    assert (status, body["data"]["version"]) == (200, "3.5.0")
    assert get(server, "/api/v1/nothing") == (404, "404 page not found\n")
    assert get(server, "/api/v1/targets", method="POST") == (405, "Method Not Allowed\n")


def test_route_prefix() -> None:
    server = api(prefix="/prom")
    assert get(server, "/prom/-/ready")[0] == 200
    assert get(server, "/prom/api/v1/targets")[0] == 200
    assert get(server, "/-/ready")[0] == 404
    assert get(server, "/promx/-/ready")[0] == 404


def test_server_info_from_the_prometheus_container() -> None:
    statefulset = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": "config-reloader", "image": "quay.io/x/reloader:v0.1"},
                        {
                            "name": "prometheus",
                            "image": "registry:5000/prometheus/prometheus:v2.55.1",
                            "args": ["--web.route-prefix=/prom", "--storage.tsdb.path=/p"],
                        },
                    ]
                }
            }
        }
    }
    assert ServerInfo.of(statefulset) == ServerInfo("2.55.1", "/prom")
    assert ServerInfo.of({}) == ServerInfo("unknown", "/")
    untagged = {"spec": {"template": {"spec": {"containers": [{"image": "registry:5000/p"}]}}}}
    assert ServerInfo.of(untagged).version == "unknown"


# -- /api/v1/query ----------------------------------------------------------------------------


def test_up_query_answers_from_the_targets() -> None:
    status, body = get(api(), "/api/v1/query", "query=up&time=1767225000.5")
    assert status == 200
    result = body["data"]["result"]
    assert body["data"]["resultType"] == "vector"
    assert [(r["metric"]["instance"], r["value"]) for r in result] == [
        ("10.0.0.1:8080", [1767225000.5, "1"]),
        ("10.0.0.2:8080", [1767225000.5, "0"]),
        ("10.0.0.3:9100", [1767225000.5, "1"]),
    ]
    assert list(result[0]["metric"]) == ["__name__", "instance", "job", "namespace"]

    status, body = get(api(), "/api/v1/query", method="POST", form="query=up%7Bjob%3D%22web%22%7D")
    assert (status, len(body["data"]["result"])) == (200, 2)
    status, body = get(api(), "/api/v1/query", "query=up&time=2026-01-01T00:00:00Z")
    assert body["data"]["result"][0]["value"][0] == NOW


@pytest.mark.parametrize(
    ("query", "status", "error_type"),
    [
        ("", 400, "bad_data"),
        ("query=", 400, "bad_data"),
        ("query=sum(up)", 422, "execution"),
        ("query=node_load1", 422, "execution"),
        ("query=up&time=yesterday", 400, "bad_data"),
        ("query=up%7Bjob%3D~%22(%22%7D", 400, "bad_data"),  # up{job=~"("}
        ("query=up%7B__name__%3D%22x%22%7D", 400, "bad_data"),  # up{__name__="x"}
    ],
)
def test_query_errors(query: str, status: int, error_type: str) -> None:
    got, body = get(api(), "/api/v1/query", query)
    assert (got, body["status"], body["errorType"]) == (status, "error", error_type)
    assert body["error"]


@pytest.mark.parametrize(
    ("query", "matchers"),
    [
        ("up", [Matcher("__name__", "=", "up")]),
        (" up { } ", [Matcher("__name__", "=", "up")]),
        (
            "up{job='a', instance=~\"10\\\\..*\",}",
            [
                Matcher("__name__", "=", "up"),
                Matcher("job", "=", "a"),
                Matcher("instance", "=~", "10\\..*"),
            ],
        ),
        (
            '{__name__="up",pod!~`web-.*`}',
            [Matcher("__name__", "=", "up"), Matcher("pod", "!~", "web-.*")],
        ),
    ],
)
def test_up_selectors_parse(query: str, matchers: list[Matcher]) -> None:
    assert parse_up_selector(query) == matchers


@pytest.mark.parametrize(
    "query",
    ["up + 1", "up{job}", 'up{job="a"', '{job="a"}', "rate(up[5m])"],
)
def test_other_expressions_are_refused(query: str) -> None:
    with pytest.raises(QueryError) as caught:
        parse_up_selector(query)
    assert (caught.value.status, caught.value.error_type) == (422, "execution")


def test_matchers_are_anchored_and_missing_labels_are_empty() -> None:
    series = [({"job": "web", "instance": "10.0.0.1:80"}, True), ({"job": "webhook"}, False)]
    assert len(up_series(parse_up_selector('up{job=~"web"}'), series)) == 1
    assert len(up_series(parse_up_selector('up{job!~"web.*"}'), series)) == 0
    assert len(up_series(parse_up_selector('up{instance=""}'), series)) == 1
    assert len(up_series(parse_up_selector('up{instance!="x"}'), series)) == 2
    (sample,) = up_series(parse_up_selector('up{job="webhook"}'), series)
    assert sample == {"metric": {"__name__": "up", "job": "webhook"}, "value": "0"}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("1m30s", 90), ("500ms", 0.5), ("1h", 3600), ("1d2h", 93600)],
)
def test_durations(text: str, seconds: float) -> None:
    assert duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "30", "1.5s", "s", "10x"])
def test_invalid_durations(text: str) -> None:
    with pytest.raises(ValueError):
        duration_seconds(text)
