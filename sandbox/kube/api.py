"""The Kubernetes REST API over the store: routing, verbs, content types, watch streams.

``KubeApi.handle`` maps one HTTP request to a response; server.py does the HTTP plumbing.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, unquote

import yaml

from sandbox.cluster import ClusterSource, split_endpoint
from sandbox.kube import admission, auth, discovery, media, protobuf, schemas, tables
from sandbox.kube.errors import ApiError, bad_request, not_found
from sandbox.kube.patch import (
    PatchError,
    json_patch,
    merge_patch,
    server_side_apply,
    strategic_merge_patch,
)
from sandbox.kube.proxy import ProxyRequest, ServiceProxies, split_service_ref
from sandbox.kube.resources import ResourceType
from sandbox.kube.selectors import selector_from_dict
from sandbox.kube.store import CRDS, Store, WatchClosed
from sandbox.settings import FaultBook, Latency

log = logging.getLogger(__name__)

VERSION = {
    "major": "1",
    "minor": "32",
    "gitVersion": "v1.32.3",
    "gitCommit": "0000000000000000000000000000000000000000",
    "gitTreeState": "clean",
    "buildDate": "2025-03-11T00:00:00Z",
    "goVersion": "go1.23.6",
    "compiler": "gc",
    "platform": "linux/amd64",
}
HEALTH_PATHS = ("/healthz", "/livez", "/readyz")
BOOKMARK_INTERVAL = 10.0  # seconds between bookmarks on an idle watch that asked for them
IDLE_TICK = 1.0  # how often an idle watch checks the server is still running
# Kinds whose DELETE answers with the deleted object rather than a Status.
_DELETE_RETURNS_OBJECT = {("", "Namespace")}

PodLogSource = Callable[[dict, str], str]
PATCHES: dict[str, Callable[[Any, Any], Any]] = {
    media.JSON_PATCH: json_patch,
    media.MERGE_PATCH: merge_patch,
    media.STRATEGIC_PATCH: strategic_merge_patch,
}


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: Mapping[str, str]
    body: bytes = b""
    host: str = "127.0.0.1"
    raw_query: str = ""  # the query string as sent, for the service proxy
    cluster: tuple[str, str] | None = None  # (region, name) when sent to an EKS endpoint
    # The cluster whose VPC the client is in (None: outside any), asked only when it matters.
    inside_vpc_of: Callable[[], tuple[str, str] | None] | None = None

    @classmethod
    def parse_target(cls, target: str) -> tuple[str, dict[str, str], str]:
        """Split ``/path?query`` into the path, its first query values and the raw query."""
        path, _, raw = target.partition("?")
        query = {k: v[0] for k, v in parse_qs(raw, keep_blank_values=True).items()}
        # Clients escape ':' and '/' inside a path segment (services/x%3A9090/proxy/...).
        return unquote(path), query, raw


@dataclass
class Response:
    status: int
    body: bytes = b""
    content_type: str = media.JSON
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False  # no answer: the connection is closed, as an unreachable host's
    # A chunked stream (watch); None items are idle ticks that let the server check the
    # client is still there.
    stream: Iterator[bytes | None] | None = None


def json_response(status: int, body: Any, content_type: str = media.JSON) -> Response:
    return Response(status, json.dumps(body, separators=(",", ":")).encode(), content_type)


def error_response(error: ApiError) -> Response:
    return json_response(error.code, error.status())


def _warned(response: Response, warnings: list[str]) -> Response:
    """The API server's ``Warning`` header (RFC 7234 code 299), one per warning."""
    if warnings:
        response.headers["Warning"] = ", ".join(f'299 - "{w}"' for w in warnings)
    return response


def _flag(query: Mapping[str, str], name: str) -> bool:
    return query.get(name, "").lower() in ("true", "1")


def _not_served(path: str) -> ApiError:
    return ApiError(404, "NotFound", f"the server could not find the requested resource ({path})")


def _method_not_allowed(method: str, what: str) -> ApiError:
    return ApiError(405, "MethodNotAllowed", f"{method} is not supported on {what}")


def default_pod_log(pod: dict, container: str) -> str:
    """What a simulated container prints: one line once it has started."""
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == container and (status.get("state") or {}).get("running"):
            started = status["state"]["running"].get("startedAt", "")
            return f"{started} {container}: started (simulated container, no real output)\n"
    return ""


# OpenAPI v2 without definitions. Clients (helm's hook builder, kubectl) insist on fetching
# the document, and skip schema validation for kinds it does not define: the simulator
# validates nothing, and says so by defining nothing.
OPENAPI_INFO = {"title": "Kubernetes", "version": VERSION["gitVersion"]}
OPENAPI_PROTOBUF = "application/com.github.proto-openapi.spec.v2.v1.0+protobuf"


def _proto_string(field: int, text: str) -> bytes:
    data = text.encode()
    return bytes([field << 3 | 2, len(data)]) + data


def _openapi_v2(req: Request) -> Response:
    if "protobuf" in (req.headers.get("Accept") or ""):
        # gnostic openapi_v2.Document: swagger = 1, info = 2 {title = 1, version = 2}
        info = _proto_string(1, OPENAPI_INFO["title"]) + _proto_string(2, OPENAPI_INFO["version"])
        body = _proto_string(1, "2.0") + bytes([2 << 3 | 2, len(info)]) + info
        return Response(200, body, OPENAPI_PROTOBUF)
    return json_response(
        200, {"swagger": "2.0", "info": OPENAPI_INFO, "paths": {}, "definitions": {}}
    )


class KubeApi:
    """Serves the Kubernetes REST API for one store."""

    def __init__(
        self,
        store: Store,
        proxies: ServiceProxies | None = None,
        pod_logs: PodLogSource = default_pod_log,
        faults: FaultBook | None = None,
        latency: Latency | None = None,
        cluster_source: ClusterSource | None = None,
    ):
        self.store = store
        self.cluster_source = cluster_source  # whose access entries an EKS token meets
        self.faults = faults or FaultBook()
        self.latency = latency or Latency()
        self.proxies = proxies or ServiceProxies()
        self.pod_logs = pod_logs
        self.stopping = threading.Event()
        self.bookmark_interval = BOOKMARK_INTERVAL

    # -- entry point ------------------------------------------------------------------

    def handle(self, req: Request) -> Response:
        req.cluster, req.path = split_endpoint(req.path)
        if req.cluster and self.cluster_source is not None:
            endpoint = self.cluster_source.endpoint(*req.cluster)
            if endpoint is None or not (
                endpoint.reachable_from_outside()  # first: it needs no look at the caller
                or endpoint.reachable_from(inside_vpc=self._inside_vpc(req))
            ):
                # A private endpoint (or one whose CIDRs leave this runner out) never
                # answers a client outside the VPC: the connection goes nowhere.
                log.info(
                    "%s %s: endpoint %s out of reach (%s)",
                    req.method,
                    req.path,
                    req.cluster,
                    endpoint,
                )
                return Response(0, drop=True)
        subject = f"{req.method} {req.path.rstrip('/') or '/'}"
        if self.faults.fire("kube-unavailable", subject):
            return error_response(
                ApiError(
                    503,
                    "ServiceUnavailable",
                    "the server is currently unable to handle the request",
                )
            )
        if self.faults.fire("kube-forbidden", subject):
            return error_response(
                ApiError(403, "Forbidden", f"the sandbox refuses {subject} (kube-forbidden fault)")
            )
        try:
            return self._route(req)
        except ApiError as error:
            return error_response(error)
        except Exception:
            log.exception("%s %s failed", req.method, req.path)
            return error_response(ApiError(500, "InternalError", "internal error in the simulator"))

    @staticmethod
    def _inside_vpc(req: Request) -> bool:
        """Whether the client is in the VPC of the cluster the request is for."""
        return req.inside_vpc_of is not None and req.inside_vpc_of() == req.cluster

    def _route(self, req: Request) -> Response:
        path = req.path.rstrip("/") or "/"
        if path in HEALTH_PATHS or path.startswith(tuple(p + "/" for p in HEALTH_PATHS)):
            return Response(200, b"ok", "text/plain; charset=utf-8")
        if path == "/version":
            return json_response(200, VERSION)
        try:
            access_key = auth.check(req.headers.get("Authorization"), self.latency)
        except auth.Unauthorized as refused:
            log.info("401 for %s %s: %s", req.method, path, refused)
            return error_response(ApiError(401, "Unauthorized", "Unauthorized"))
        if access_key and req.cluster and self.cluster_source is not None:
            grant = self.cluster_source.access(*req.cluster, access_key)
            refused_by = auth.authorize(grant, req.method, path)
            if refused_by is not None:
                log.info("%s for %s %s: %s", refused_by.code, req.method, path, refused_by)
                return error_response(refused_by)
        if path == "/openapi/v2":
            return _openapi_v2(req)
        if path == "/openapi/v3":
            return json_response(200, schemas.openapi_v3_root(self.store.registry))
        if path.startswith("/openapi/v3/"):
            doc = schemas.openapi_v3_group_version(
                self.store.registry, path.removeprefix("/openapi/v3/")
            )
            if doc is None:
                raise _not_served(path)
            return json_response(200, doc)
        if path == "/":
            return json_response(
                200, {"paths": ["/api", "/api/v1", "/apis", "/healthz", "/version"]}
            )
        parts = path.strip("/").split("/")
        if parts[0] == "api":
            if len(parts) == 1:
                return self._discovery_root(req, core=True)
            group, version, rest = "", parts[1], parts[2:]
        elif parts[0] == "apis":
            if len(parts) == 1:
                return self._discovery_root(req, core=False)
            group = parts[1]
            if len(parts) == 2:
                doc = discovery.api_group(self.store.registry, group)
                if doc is None:
                    raise _not_served(path)
                return json_response(200, doc)
            version, rest = parts[2], parts[3:]
        else:
            raise _not_served(path)
        if not rest:
            doc = discovery.resource_list(self.store.registry, group, version)
            if doc is None:
                raise _not_served(path)
            return json_response(200, doc)
        return self._resource(req, group, version, rest)

    def _discovery_root(self, req: Request, core: bool) -> Response:
        accept = media.parse_accept(req.headers.get("Accept"))
        wanted = media.negotiated_kind(
            accept, discovery.AGGREGATED_KIND, discovery.AGGREGATED_GROUP
        )
        if wanted is not None and wanted.params.get("v") in discovery.AGGREGATED_VERSIONS:
            version = wanted.params["v"]
            content_type = (
                f"{media.JSON};g={discovery.AGGREGATED_GROUP};v={version};"
                f"as={discovery.AGGREGATED_KIND}"
            )
            body = discovery.aggregated(self.store.registry, core, version)
            return json_response(200, body, content_type)
        if core:
            return json_response(200, discovery.api_versions(req.host))
        return json_response(200, discovery.group_list(self.store.registry))

    # -- resources --------------------------------------------------------------------

    def _resource(self, req: Request, group: str, version: str, rest: list[str]) -> Response:
        watch = _flag(req.query, "watch")
        if rest[0] == "watch":  # the deprecated /watch/ path prefix
            watch, rest = True, rest[1:]
        namespace = None
        namespace_sub = group == "" and len(rest) == 3 and rest[2] in ("status", "finalize")
        if len(rest) >= 3 and rest[0] == "namespaces" and not namespace_sub:
            namespace, rest = rest[1], rest[2:]
        if not rest:
            raise _not_served(req.path)
        plural, name = rest[0], rest[1] if len(rest) > 1 else None
        sub, tail = (rest[2], rest[3:]) if len(rest) > 2 else (None, [])
        rt = self.store.registry.by_path(group, version, plural)
        if rt is None or (namespace is not None and not rt.namespaced):
            raise _not_served(req.path)
        if sub is not None:
            return self._subresource(req, rt, namespace, name or "", sub, tail)
        if tail:
            raise _not_served(req.path)
        if name is None:
            return self._collection(req, rt, namespace, watch)
        if rt.namespaced and namespace is None:
            raise _not_served(req.path)
        if req.method == "GET":
            if watch:
                return self._watch(req, rt, namespace, name)
            return self._get(req, rt, namespace, name)
        if req.method == "PUT":
            return self._replace(req, rt, namespace, name, None)
        if req.method == "PATCH":
            return self._patch(req, rt, namespace, name, None)
        if req.method == "DELETE":
            return self._delete(req, rt, namespace, name)
        raise _method_not_allowed(req.method, f"{rt.describe()}/{name}")

    def _collection(
        self, req: Request, rt: ResourceType, namespace: str | None, watch: bool
    ) -> Response:
        if req.method == "GET":
            if watch:
                return self._watch(req, rt, namespace, None)
            return self._list(req, rt, namespace)
        if req.method == "POST":
            if rt.namespaced and namespace is None:
                raise _method_not_allowed("POST", f"{rt.describe()} across namespaces")
            return self._create(req, rt, namespace)
        if req.method == "DELETE":
            propagation = self._delete_options(req)[0]
            deleted = self.store.delete_collection(
                rt,
                namespace,
                req.query.get("labelSelector"),
                req.query.get("fieldSelector"),
                propagation,
            )
            return json_response(200, self._list_body(rt, deleted, self.store.resource_version))
        raise _method_not_allowed(req.method, rt.describe())

    def _get(self, req: Request, rt: ResourceType, namespace: str | None, name: str) -> Response:
        obj = self.store.get(rt, namespace, name)
        if obj is None:
            raise not_found(rt, name)
        return self._render(req, rt, [obj], obj["metadata"]["resourceVersion"], single=True)

    def _list(self, req: Request, rt: ResourceType, namespace: str | None) -> Response:
        items, rv = self.store.list(
            rt, namespace, req.query.get("labelSelector"), req.query.get("fieldSelector")
        )
        return self._render(req, rt, items, rv, single=False)

    @staticmethod
    def _list_body(rt: ResourceType, items: list[dict], rv: str) -> dict[str, Any]:
        return {
            "kind": rt.list_kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": rv},
            "items": items,
        }

    def _crd_of(self, rt: ResourceType) -> dict | None:
        return self.store.get(CRDS, None, f"{rt.plural}.{rt.group}") if rt.custom else None

    def _render(
        self, req: Request, rt: ResourceType, items: list[dict], rv: str, single: bool
    ) -> Response:
        """Objects as JSON, or as the Table / partial metadata the client asked for."""
        accept = media.parse_accept(req.headers.get("Accept"))
        wanted = media.negotiated_kind(accept, "Table", "meta.k8s.io")
        if wanted is not None:
            body = tables.table(
                rt, items, rv, req.query.get("includeObject", "Metadata"), self._crd_of(rt)
            )
            return json_response(200, body, wanted.render())
        partial_kind = "PartialObjectMetadata" if single else "PartialObjectMetadataList"
        wanted = media.negotiated_kind(accept, partial_kind, "meta.k8s.io")
        if wanted is not None:
            partial = [
                {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": o["metadata"],
                }
                for o in items
            ]
            if single:
                return json_response(200, partial[0], wanted.render())
            body = {
                "kind": partial_kind,
                "apiVersion": "meta.k8s.io/v1",
                "metadata": {"resourceVersion": rv},
                "items": partial,
            }
            return json_response(200, body, wanted.render())
        if single:
            return json_response(200, items[0])
        return json_response(200, self._list_body(rt, items, rv))

    # -- writes -----------------------------------------------------------------------

    def _decode(self, req: Request) -> Any:
        if not req.body.strip():
            raise bad_request("the request body is empty")
        content_type = media.parse_media_type(req.headers.get("Content-Type") or media.JSON)
        try:
            if content_type.essence == media.PROTOBUF:
                return protobuf.decode(req.body)
            if content_type.essence in (media.YAML, media.APPLY_PATCH, "application/x-yaml"):
                return yaml.safe_load(req.body)
            return json.loads(req.body)
        except protobuf.ProtobufError as exc:
            raise ApiError(415, "UnsupportedMediaType", str(exc)) from None
        except (ValueError, yaml.YAMLError) as exc:
            raise bad_request(f"the request body is not valid: {exc}") from None

    def _decode_object(
        self, req: Request, rt: ResourceType, namespace: str | None, name: str | None
    ) -> dict:
        obj = self._decode(req)
        if not isinstance(obj, dict):
            raise bad_request("the request body must be a JSON object")
        kind, api_version = obj.get("kind"), obj.get("apiVersion")
        if kind and kind != rt.kind:
            raise bad_request(f"the kind in the body ({kind}) does not match {rt.kind}")
        if api_version and api_version.rpartition("/")[0] != rt.group:
            raise bad_request(
                f"the API version in the data ({api_version}) does not match the expected "
                f"API version ({rt.api_version})"
            )
        meta = obj.get("metadata")
        if meta is None:
            meta = obj["metadata"] = {}
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        if rt.namespaced and namespace is not None:
            if meta.get("namespace") and meta["namespace"] != namespace:
                raise bad_request(
                    "the namespace of the provided object does not match the namespace sent "
                    "on the request"
                )
            meta["namespace"] = namespace
        if name is not None:
            if meta.get("name") and meta["name"] != name:
                raise bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the "
                    f"URL ({name})"
                )
            meta["name"] = name
        return obj

    @staticmethod
    def _dry_run(req: Request) -> bool:
        return req.query.get("dryRun") == "All"

    def _create(self, req: Request, rt: ResourceType, namespace: str | None) -> Response:
        obj = self._decode_object(req, rt, namespace, None)
        if "status" in rt.subresources:
            obj.pop("status", None)  # status is written through its subresource only
        warnings = schemas.validate(rt, obj, req.query.get(schemas.FIELD_VALIDATION))
        admission.admit(self.store, rt, obj, "CREATE")
        created = self.store.create(rt, obj, dry_run=self._dry_run(req))
        return _warned(json_response(201, created), warnings)

    def _replace(
        self, req: Request, rt: ResourceType, namespace: str | None, name: str, sub: str | None
    ) -> Response:
        obj = self._decode_object(req, rt, namespace, name)
        warnings = schemas.validate(rt, obj, req.query.get(schemas.FIELD_VALIDATION))
        if sub is None:
            admission.admit(self.store, rt, obj, "UPDATE")
        updated = self.store.replace(rt, obj, subresource=sub, dry_run=self._dry_run(req))
        return _warned(json_response(200, updated), warnings)

    def _patch(
        self, req: Request, rt: ResourceType, namespace: str | None, name: str, sub: str | None
    ) -> Response:
        content_type = media.parse_media_type(req.headers.get("Content-Type") or "").essence
        if content_type == media.APPLY_PATCH:
            return self._apply(req, rt, namespace, name, sub)
        applier = PATCHES.get(content_type)
        if applier is None or (rt.custom and content_type == media.STRATEGIC_PATCH):
            # Custom resources have no patch strategies, so no strategic merge either.
            raise ApiError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format ({content_type}) - accepted "
                "media types include: application/json-patch+json, "
                "application/merge-patch+json, application/apply-patch+yaml"
                + ("" if rt.custom else ", application/strategic-merge-patch+json"),
            )
        patch = self._decode(req)
        warnings: list[str] = []

        if sub == "scale":  # a Scale, not the object: nothing of the kind's schema to check
            return self._patch_scale(req, rt, namespace, name, lambda c: applier(c, patch))

        def change(current: dict) -> Any:
            patched = applier(current, patch)
            warnings[:] = schemas.validate(rt, patched, req.query.get(schemas.FIELD_VALIDATION))
            if sub is None:
                admission.admit(self.store, rt, patched, "UPDATE")
            return patched

        try:
            updated = self.store.modify(
                rt, namespace, name, change, subresource=sub, dry_run=self._dry_run(req)
            )
        except PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        return _warned(json_response(200, updated), warnings)

    def _apply(
        self, req: Request, rt: ResourceType, namespace: str | None, name: str, sub: str | None
    ) -> Response:
        """Server-side apply: create when missing, else merge the applied configuration."""
        manager = req.query.get("fieldManager")
        if not manager:
            raise bad_request("PATCH with apply requires a fieldManager")
        applied = self._decode_object(req, rt, namespace, name)
        dry_run = self._dry_run(req)
        directive = req.query.get(schemas.FIELD_VALIDATION)
        current = self.store.get(rt, namespace, name)
        if current is None:
            if sub is not None:
                raise not_found(rt, name)
            warnings = schemas.validate(rt, applied, directive)
            admission.admit(self.store, rt, applied, "CREATE")
            created = self.store.create(rt, applied, dry_run=dry_run)
            if not dry_run:
                self.store.remember_applied(created["metadata"]["uid"], manager, applied)
            return _warned(json_response(201, created), warnings)
        previous = self.store.last_applied(current["metadata"]["uid"], manager)
        strategic = not rt.custom
        warnings: list[str] = []

        def change(obj: dict) -> Any:
            merged = server_side_apply(obj, applied, previous, strategic)
            warnings[:] = schemas.validate(rt, merged, directive)
            if sub is None:
                admission.admit(self.store, rt, merged, "UPDATE")
            return merged

        try:
            updated = self.store.modify(
                rt, namespace, name, change, subresource=sub, dry_run=dry_run
            )
        except PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        if not dry_run:
            self.store.remember_applied(updated["metadata"]["uid"], manager, applied)
        return _warned(json_response(200, updated), warnings)

    def _delete_options(self, req: Request) -> tuple[str, dict[str, str]]:
        options: dict[str, Any] = {}
        if req.body.strip():
            decoded = self._decode(req)
            if isinstance(decoded, dict):
                options = decoded
        propagation = req.query.get("propagationPolicy") or options.get("propagationPolicy")
        orphan = req.query.get("orphanDependents") or options.get("orphanDependents")
        if not propagation and orphan is not None:
            propagation = "Orphan" if str(orphan).lower() == "true" else "Background"
        preconditions = options.get("preconditions") or {}
        if not isinstance(preconditions, dict):
            raise bad_request("preconditions must be an object")
        return propagation or "Background", {
            k: v for k, v in preconditions.items() if k in ("uid", "resourceVersion")
        }

    def _delete(self, req: Request, rt: ResourceType, namespace: str | None, name: str) -> Response:
        propagation, preconditions = self._delete_options(req)
        dry_run = self._dry_run(req) or "All" in (req.query.get("dryRun") or "")
        gone = self.store.delete(rt, namespace, name, propagation, preconditions, dry_run)
        if rt.custom or (rt.group, rt.kind) in _DELETE_RETURNS_OBJECT:
            return json_response(200, gone)
        status = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Success",
            "details": {
                "name": name,
                "group": rt.group,
                "kind": rt.plural,
                "uid": gone["metadata"]["uid"],
            },
        }
        return json_response(200, status)

    # -- subresources -----------------------------------------------------------------

    def _subresource(
        self,
        req: Request,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        sub: str,
        tail: list[str],
    ) -> Response:
        if sub not in rt.subresources or (rt.namespaced and namespace is None):
            raise _not_served(req.path)
        if sub == "proxy":
            return self._proxy(req, rt, namespace or "", name, tail)
        if tail:
            raise _not_served(req.path)
        if sub == "log":
            if req.method != "GET":
                raise _method_not_allowed(req.method, "pods/log")
            return self._log(req, rt, namespace or "", name)
        if sub == "scale":
            return self._scale(req, rt, namespace, name)
        # status
        if req.method == "GET":
            return self._get(req, rt, namespace, name)
        if req.method == "PUT":
            return self._replace(req, rt, namespace, name, "status")
        if req.method == "PATCH":
            return self._patch(req, rt, namespace, name, "status")
        raise _method_not_allowed(req.method, f"{rt.describe()}/status")

    @staticmethod
    def _scale_of(obj: dict) -> dict[str, Any]:
        meta = obj["metadata"]
        spec, status = obj.get("spec") or {}, obj.get("status") or {}
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: meta[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in meta
            },
            "spec": {"replicas": int(spec.get("replicas") or 0)},
            "status": {
                "replicas": int(status.get("replicas") or 0),
                "selector": str(selector_from_dict(spec.get("selector"))),
            },
        }

    def _scale(self, req: Request, rt: ResourceType, namespace: str | None, name: str) -> Response:
        if req.method == "GET":
            obj = self.store.get(rt, namespace, name)
            if obj is None:
                raise not_found(rt, name)
            return json_response(200, self._scale_of(obj))
        if req.method == "PATCH":
            return self._patch(req, rt, namespace, name, "scale")
        if req.method != "PUT":
            raise _method_not_allowed(req.method, f"{rt.describe()}/scale")
        scale = self._decode(req)
        if not isinstance(scale, dict):
            raise bad_request("the request body must be a Scale object")
        return self._patch_scale(req, rt, namespace, name, lambda _current: scale)

    def _patch_scale(
        self,
        req: Request,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        change: Callable[[dict], Any],
    ) -> Response:
        def rescale(obj: dict) -> dict:
            scale = change(self._scale_of(obj))
            replicas = (
                (scale.get("spec") or {}).get("replicas") if isinstance(scale, dict) else None
            )
            if not isinstance(replicas, int) or replicas < 0:
                raise ApiError(422, "Invalid", "spec.replicas: must be a non-negative integer")
            wanted_rv = (scale.get("metadata") or {}).get("resourceVersion")
            if wanted_rv:
                obj["metadata"]["resourceVersion"] = wanted_rv
            obj.setdefault("spec", {})["replicas"] = replicas
            return obj

        try:
            updated = self.store.modify(rt, namespace, name, rescale, dry_run=self._dry_run(req))
        except PatchError as exc:
            raise ApiError(422, "Invalid", str(exc)) from None
        return json_response(200, self._scale_of(updated))

    def _log(self, req: Request, rt: ResourceType, namespace: str, name: str) -> Response:
        pod = self.store.get(rt, namespace, name)
        if pod is None:
            raise not_found(rt, name)
        names = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
        container = req.query.get("container")
        if not container:
            if len(names) != 1:
                raise bad_request(
                    f"a container name must be specified for pod {name}, choose one of: "
                    f"[{' '.join(names)}]"
                )
            container = names[0]
        elif container not in names:
            raise bad_request(f"container {container} is not valid for pod {name}")
        return Response(200, self.pod_logs(pod, container).encode(), "text/plain")

    def _proxy(
        self, req: Request, rt: ResourceType, namespace: str, ref: str, tail: list[str]
    ) -> Response:
        service, port = split_service_ref(ref)
        if self.store.get(rt, namespace, service) is None:
            raise not_found(rt, service)
        handler = self.proxies.lookup(namespace, service, port)
        if handler is None:
            raise ApiError(
                503,
                "ServiceUnavailable",
                f'no endpoints available for service "{service}"',
                {"name": service, "kind": "services"},
            )
        sub_path = "/" + "/".join(tail)
        if req.path.endswith("/") and not sub_path.endswith("/"):
            sub_path += "/"
        answer = handler(
            ProxyRequest(req.method, sub_path, req.raw_query, dict(req.headers), req.body, port)
        )
        return Response(answer.status, answer.body, answer.content_type, dict(answer.headers))

    # -- watch ------------------------------------------------------------------------

    def _watch(
        self, req: Request, rt: ResourceType, namespace: str | None, name: str | None
    ) -> Response:
        query = req.query
        accept = media.parse_accept(req.headers.get("Accept"))
        as_table = media.negotiated_kind(accept, "Table", "meta.k8s.io")
        crd = self._crd_of(rt) if as_table else None
        include_object = query.get("includeObject", "Metadata")
        initial = query.get("sendInitialEvents")
        try:
            timeout = float(query["timeoutSeconds"]) if query.get("timeoutSeconds") else None
        except ValueError:
            raise bad_request("timeoutSeconds must be a number") from None
        try:
            watch = self.store.watch(
                rt,
                namespace,
                query.get("resourceVersion"),
                query.get("labelSelector"),
                query.get("fieldSelector"),
                name=name,
                initial_events=None if initial is None else initial == "true",
            )
        except ApiError as error:
            if error.code != 410:
                raise
            line = json.dumps({"type": "ERROR", "object": error.status()}) + "\n"
            return Response(200, line.encode())
        bookmarks = _flag(query, "allowWatchBookmarks")

        def encode(kind: str, obj: dict) -> bytes:
            if as_table and kind != "BOOKMARK":
                obj = tables.table(
                    rt, [obj], obj["metadata"].get("resourceVersion", ""), include_object, crd
                )
            return (
                json.dumps({"type": kind, "object": obj}, separators=(",", ":")) + "\n"
            ).encode()

        def bookmark(rv: str, initial_end: bool = False) -> bytes:
            meta: dict[str, Any] = {"resourceVersion": rv}
            if initial_end:
                meta["annotations"] = {"k8s.io/initial-events-end": "true"}
            return encode(
                "BOOKMARK", {"kind": rt.kind, "apiVersion": rt.api_version, "metadata": meta}
            )

        def events() -> Iterator[bytes | None]:
            deadline = time.monotonic() + timeout if timeout else None
            remaining_initial = watch.initial_count if initial == "true" else None
            last_bookmark = time.monotonic()
            try:
                if remaining_initial == 0:
                    yield bookmark(watch.start_rv, initial_end=True)
                while not self.stopping.is_set():
                    now = time.monotonic()
                    if deadline is not None and now >= deadline:
                        return
                    wait = IDLE_TICK if deadline is None else min(IDLE_TICK, deadline - now)
                    try:
                        event = watch.next(timeout=wait)
                    except WatchClosed:
                        return
                    if event is None:
                        idle_since = time.monotonic()
                        if bookmarks and idle_since - last_bookmark >= self.bookmark_interval:
                            caught_up = watch.caught_up()
                            if caught_up is not None:
                                last_bookmark = idle_since
                                yield bookmark(caught_up)
                        yield None
                        continue
                    yield encode(event.type, event.obj)
                    if remaining_initial:
                        remaining_initial -= 1
                        if remaining_initial == 0:
                            yield bookmark(watch.start_rv, initial_end=True)
            finally:
                watch.close()

        content_type = as_table.render() if as_table else media.JSON
        return Response(200, content_type=content_type, stream=events())
