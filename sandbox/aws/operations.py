"""Which AWS operation a request calls, as ``service:OperationName`` (e.g. ``eks:CreateCluster``).

The service is the SigV4 signing name from the request's credential scope (the prefix IAM
actions use too); the operation comes from the protocol: the ``Action`` parameter (query and
EC2), the ``X-Amz-Target`` header (JSON), the URI (Smithy RPC v2 CBOR) or, for REST services,
the method and path matched against the ``http.requestUri`` templates of botocore's service
model, which is the authoritative source of the URIs.
"""

from __future__ import annotations

import io
import re
import threading
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import parse_qs, unquote, urlsplit

import botocore.session
from botocore.model import OperationModel, ServiceModel

# Signing names that are not botocore service names, with the botocore services signed so.
SIGNING_NAME_SERVICES: dict[str, tuple[str, ...]] = {
    "elasticloadbalancing": ("elbv2", "elb"),
    "monitoring": ("cloudwatch",),
    "email": ("sesv2", "ses"),
    "states": ("stepfunctions",),
    "execute-api": ("apigatewaymanagementapi",),
}

CREDENTIAL = re.compile(
    r"Credential=[^/,\s]+/\d{8}/(?P<region>[^/]+)/(?P<service>[^/]+)/aws4_request"
)
CBOR_PATH = re.compile(r"^/service/[^/]+/operation/(?P<operation>[^/?]+)$")
LABEL = re.compile(r"\{([^}]+)\}")
FORM_CONTENT_TYPE = "application/x-www-form-urlencoded"
BODY_KEY = "sandbox.aws.body"


class Operation(NamedTuple):
    service: str  # signing name, e.g. "eks", "ec2", "elasticloadbalancing"
    name: str  # e.g. "CreateCluster"
    protocol: str  # botocore protocol: query, ec2, json, rest-json, rest-xml, smithy-rpc-v2-cbor
    region: str
    uri_params: dict[str, str]  # REST path labels, e.g. {"name": "prod", "addonName": "coredns"}

    def __str__(self) -> str:
        return f"{self.service}:{self.name}"


def request_body(environ: dict[str, Any]) -> bytes:
    """The request body, read once and put back so the next application can read it too."""
    if BODY_KEY not in environ:
        stream = environ.get("wsgi.input") or io.BytesIO()
        length = environ.get("CONTENT_LENGTH") or ""
        if length.isdigit():
            body = stream.read(int(length))
        elif environ.get("wsgi.input_terminated"):
            body = stream.read()
        else:
            body = b""
        environ[BODY_KEY] = body
        environ["wsgi.input"] = io.BytesIO(body)
        environ["CONTENT_LENGTH"] = str(len(body))
    return environ[BODY_KEY]


def replace_body(environ: dict[str, Any], body: bytes) -> None:
    environ[BODY_KEY] = body
    environ["wsgi.input"] = io.BytesIO(body)
    environ["CONTENT_LENGTH"] = str(len(body))


def credential_scope(environ: dict[str, Any]) -> tuple[str, str] | None:
    """(region, signing name) of a SigV4 request, signed in a header or presigned in the URL."""
    text = environ.get("HTTP_AUTHORIZATION") or ""
    if "Credential=" not in text:
        query = parse_qs(environ.get("QUERY_STRING") or "")
        text = "Credential=" + query["X-Amz-Credential"][0] if "X-Amz-Credential" in query else ""
    match = CREDENTIAL.search(text)
    return (match["region"], match["service"]) if match else None


@dataclass(frozen=True)
class Route:
    """One REST operation's URI template, compiled for matching.

    Operations can share a method and template (S3's PUT /{Bucket}/{Key+} is PutObject,
    CopyObject, UploadPart...): the required query parameters and headers of their input
    tell them apart, and among the matches the most specific one wins.
    """

    operation: str
    method: str
    path: re.Pattern[str]
    labels: tuple[str, ...]  # label of each regex group, in order
    query: tuple[tuple[str, str | None], ...]  # required query keys (and values)
    headers: tuple[str, ...]  # required headers, lower case
    rank: tuple[int, ...]

    @classmethod
    def compile(cls, operation: OperationModel) -> Route:
        path_template, _, query_template = operation.http["requestUri"].partition("?")
        pattern, labels, literal, greedy = "", [], 0, 0
        last = 0
        for match in LABEL.finditer(path_template):
            text = path_template[last : match.start()]
            pattern += re.escape(text)
            literal += len(text)
            label = match[1]
            if label.endswith("+"):
                pattern += "(.+)"
                labels.append(label[:-1])
                greedy += 1
            else:
                pattern += "([^/]+)"
                labels.append(label)
            last = match.end()
        tail = path_template[last:]
        literal += len(tail)
        pattern += re.escape(tail.rstrip("/")) + "/?"
        query: list[tuple[str, str | None]] = [
            (key, value if sep else None)
            for key, sep, value in (part.partition("=") for part in query_template.split("&"))
            if key
        ]
        headers: list[str] = []
        shape = operation.input_shape
        for member in shape.required_members if shape else ():
            serialization = shape.members[member].serialization
            location, wire_name = serialization.get("location"), serialization.get("name", member)
            if location == "querystring":
                query.append((wire_name, None))
            elif location == "header":
                headers.append(wire_name.lower())
        rank = (int(not operation.deprecated), literal, len(query), len(headers), -greedy)
        return cls(
            operation.name,
            operation.http["method"],
            re.compile(pattern),
            tuple(labels),
            tuple(query),
            tuple(headers),
            rank,
        )

    def match(
        self, method: str, path: str, query: dict[str, list[str]], headers: set[str]
    ) -> dict[str, str] | None:
        if method != self.method or not headers.issuperset(self.headers):
            return None
        found = self.path.fullmatch(path)
        if found is None:
            return None
        for key, value in self.query:
            if key not in query or (value is not None and value not in query[key]):
                return None
        pairs = zip(self.labels, found.groups(), strict=True)
        return {label: unquote(text) for label, text in pairs}


class OperationIdentifier:
    """Maps WSGI requests to operations; service models are loaded on first use and kept."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._session: botocore.session.Session | None = None
        self._available: frozenset[str] = frozenset()
        self._models: dict[str, ServiceModel] = {}
        self._routes: dict[str, list[Route]] = {}

    def identify(self, environ: dict[str, Any]) -> Operation | None:
        scope = credential_scope(environ)
        if scope is None:
            return None
        region, service = scope
        method = environ.get("REQUEST_METHOD", "GET").upper()
        path, query = self._path_and_query(environ, service)
        target = environ.get("HTTP_X_AMZ_TARGET") or ""
        params = dict(query)
        if not target and method == "POST" and self._is_form(environ):
            params.update(parse_qs(request_body(environ).decode("utf-8", "replace")))
        action = params.get("Action", [""])[0]
        version = params.get("Version", [""])[0]
        cbor = CBOR_PATH.match(path) if environ.get("HTTP_SMITHY_PROTOCOL") else None

        candidates = self._models_for(service)
        for model in candidates:
            protocols = model.metadata.get("protocols") or [model.protocol]
            name, protocol, labels = "", model.protocol, {}
            if cbor and "smithy-rpc-v2-cbor" in protocols:
                name, protocol = cbor["operation"], "smithy-rpc-v2-cbor"
            elif target and "json" in protocols:
                name, protocol = target.rpartition(".")[2], "json"
            elif action and {"query", "ec2"} & set(protocols):
                if version and len(candidates) > 1 and version != model.api_version:
                    continue
                name = action
                protocol = "ec2" if "ec2" in protocols else "query"
            elif model.protocol in ("rest-json", "rest-xml"):
                found = self._route(model, method, path, query, header_names(environ))
                if found:
                    name, labels = found
            if name and (name in model.operation_names or len(candidates) == 1):
                return Operation(service, name, protocol, region, labels)
        if action or target:
            protocol = "query" if action else "json"
            return Operation(service, action or target.rpartition(".")[2], protocol, region, {})
        return None

    def _path_and_query(self, environ: dict[str, Any], service: str) -> tuple[str, dict]:
        # The raw URI keeps percent-encoded slashes inside labels (e.g. ARNs) intact.
        raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
        if raw:
            parts = urlsplit(raw)
            path, query_string = parts.path, parts.query
        else:
            path, query_string = environ.get("PATH_INFO") or "/", environ.get("QUERY_STRING", "")
        if service == "s3":
            bucket = virtual_host_bucket(environ.get("HTTP_HOST") or "")
            if bucket:
                path = f"/{bucket}{path}"
        return path or "/", parse_qs(query_string, keep_blank_values=True)

    @staticmethod
    def _is_form(environ: dict[str, Any]) -> bool:
        return (environ.get("CONTENT_TYPE") or "").startswith(FORM_CONTENT_TYPE)

    def _models_for(self, signing_name: str) -> list[ServiceModel]:
        with self._lock:
            if self._session is None:
                self._session = botocore.session.get_session()
                self._available = frozenset(self._session.get_available_services())
            names = SIGNING_NAME_SERVICES.get(signing_name, (signing_name,))
            models = []
            for name in names:
                if name not in self._available:
                    continue
                if name not in self._models:
                    self._models[name] = self._session.get_service_model(name)
                models.append(self._models[name])
            return models

    def _route(
        self,
        model: ServiceModel,
        method: str,
        path: str,
        query: dict[str, list[str]],
        headers: set[str],
    ) -> tuple[str, dict[str, str]] | None:
        best: tuple[Route, dict[str, str]] | None = None
        for route in self._routes_of(model):
            labels = route.match(method, path, query, headers)
            if labels is not None and (best is None or route.rank > best[0].rank):
                best = (route, labels)
        return (best[0].operation, best[1]) if best else None

    def _routes_of(self, model: ServiceModel) -> list[Route]:
        with self._lock:
            routes = self._routes.get(model.service_name)
            if routes is None:
                routes = [Route.compile(model.operation_model(n)) for n in model.operation_names]
                self._routes[model.service_name] = routes
            return routes


def virtual_host_bucket(host: str) -> str | None:
    """The bucket of a virtual-hosted S3 request (``bucket.localhost:port``), if it is one."""
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    for base in (".localhost", ".s3.amazonaws.com"):
        if name.endswith(base) and len(name) > len(base):
            return name[: -len(base)]
    match = re.fullmatch(r"(?P<bucket>.+)\.s3[.-][a-z0-9-]+\.amazonaws\.com", name)
    return match["bucket"] if match else None


def header_names(environ: dict[str, Any]) -> set[str]:
    """The request's header names, lower case (WSGI keeps two of them outside HTTP_*)."""
    names = {key[5:] for key in environ if key.startswith("HTTP_")}
    names |= {key for key in ("CONTENT_TYPE", "CONTENT_LENGTH") if environ.get(key)}
    return {name.replace("_", "-").lower() for name in names}
