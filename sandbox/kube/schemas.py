"""The schemas of the built-in kinds, as the API server of the simulated version knows them,
and the two things an API server does with them:

- publish them as OpenAPI v3 (``/openapi/v3``): each resource's PATCH operation carries its
  group-version-kind and the ``fieldValidation`` query parameter. kubectl and helm read
  that to learn that the server validates objects itself (every API server since 1.27
  does), and send objects unvalidated;
- validate what is written (create, replace, patch, apply): a value of the wrong type or a
  required field left out is rejected (422 Invalid, naming the field), an unknown field is
  rejected with ``fieldValidation=Strict`` (400), reported in a ``Warning`` header with
  ``Warn`` (the default) and left alone with ``Ignore``.

The schemas are the Kubernetes JSON schemas of the simulated minor version that the
``kubernetes-validate`` package ships. Custom resources are not validated: their CRDs'
schemas are not read.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import json
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import ValidationError

from sandbox.kube.errors import ApiError
from sandbox.kube.resources import Registry, ResourceType

KUBERNETES_MINOR = "1.32"
FIELD_VALIDATION = "fieldValidation"
DIRECTIVES = ("Strict", "Warn", "Ignore")
# Fields the server sets or keeps itself; an object as written is checked without them.
_SERVER_FIELDS = ("status",)


@functools.cache
def _definitions(strict: bool) -> dict[str, Any]:
    folder = f"v{KUBERNETES_MINOR}.0-local" + ("-strict" if strict else "")
    path = (
        importlib.resources.files("kubernetes_validate")
        / "kubernetes-json-schema"
        / folder
        / "_definitions.json"
    )
    return json.loads(path.read_text())["$defs"]


@functools.cache
def definition_names() -> dict[tuple[str, str, str], str]:
    """(group, version, kind) -> the name of its schema definition."""
    names = {}
    for name, schema in _definitions(False).items():
        for gvk in schema.get("x-kubernetes-group-version-kind", []):
            names[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return names


@functools.cache
def _validator(name: str, strict: bool) -> Draft202012Validator:
    definitions = _definitions(strict)
    return Draft202012Validator({"$defs": definitions, "$ref": f"#/$defs/{name}"})


def _field(error: ValidationError) -> str:
    parts = [str(p) if not isinstance(p, int) else f"[{p}]" for p in error.absolute_path]
    return ".".join(parts).replace(".[", "[") or "<root>"


def _first(errors: list[ValidationError]) -> ValidationError:
    # A oneOf (int or string) fails with its own message; the deepest error names the field.
    return max(errors, key=lambda e: (len(e.absolute_path), -len(e.message)))


def validate(rt: ResourceType, obj: dict[str, Any], directive: str | None) -> list[str]:
    """Check ``obj`` as written to ``rt``; raises ApiError when the API server would reject
    it, and returns the warnings it would send."""
    if rt.custom:
        return []
    name = definition_names().get((rt.group, rt.version, rt.kind))
    if name is None:
        return []
    directive = directive or "Warn"
    if directive not in DIRECTIVES:
        raise ApiError(
            400, "BadRequest", f"fieldValidation: {directive!r} is not one of {DIRECTIVES}"
        )
    written = {k: v for k, v in obj.items() if k not in _SERVER_FIELDS}
    errors = list(_validator(name, strict=False).iter_errors(written))
    if errors:
        error = _first(errors)
        title = f'{rt.kind}{"." + rt.group if rt.group else ""} "{_name(obj)}"'
        raise ApiError(
            422,
            "Invalid",
            f"{title} is invalid: {_field(error)}: Invalid value: {error.message}",
            {"name": _name(obj), "group": rt.group, "kind": rt.kind},
        )
    if directive == "Ignore":
        return []
    unknown = [
        field
        for error in _validator(name, strict=True).iter_errors(written)
        if error.validator == "additionalProperties"
        for field in _unknown(error)
    ]
    if unknown and directive == "Strict":
        raise ApiError(400, "BadRequest", "strict decoding error: " + ", ".join(unknown))
    return unknown


def _unknown(error: ValidationError) -> list[str]:
    """``unknown field "spec.foo"`` for each field the strict schema does not allow."""
    allowed = set(error.schema.get("properties", {}))
    at = _field(error)
    prefix = "" if at == "<root>" else f"{at}."
    return [f'unknown field "{prefix}{k}"' for k in sorted(error.instance) if k not in allowed]


def _name(obj: dict[str, Any]) -> str:
    return str((obj.get("metadata") or {}).get("name", ""))


# ----------------------------------------------------------------------------- OpenAPI v3


def _gv_path(rt: ResourceType) -> str:
    return f"apis/{rt.group}/{rt.version}" if rt.group else f"api/{rt.version}"


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16].upper()


def openapi_v3_root(registry: Registry) -> dict[str, Any]:
    paths = sorted({_gv_path(rt) for rt in registry.all() if not rt.custom})
    return {"paths": {p: {"serverRelativeURL": f"/openapi/v3/{p}?hash={_hash(p)}"} for p in paths}}


def openapi_v3_group_version(registry: Registry, gv_path: str) -> dict[str, Any] | None:
    types = [rt for rt in registry.all() if not rt.custom and _gv_path(rt) == gv_path]
    if not types:
        return None
    paths: dict[str, Any] = {}
    for rt in types:
        scope = "/namespaces/{namespace}" if rt.namespaced else ""
        item = f"/{gv_path}{scope}/{rt.plural}/{{name}}"
        paths[item] = {
            "patch": {
                "operationId": f"patch{rt.kind}",
                "x-kubernetes-group-version-kind": {
                    "group": rt.group,
                    "version": rt.version,
                    "kind": rt.kind,
                },
                "parameters": [
                    {
                        "name": FIELD_VALIDATION,
                        "in": "query",
                        "description": "Strict, Warn or Ignore: what the server does with "
                        "unknown or duplicate fields",
                        "schema": {"type": "string", "uniqueItems": True},
                    }
                ],
                "responses": {"200": {"description": "OK"}},
            }
        }
    return {
        "openapi": "3.0.0",
        "info": {"title": "Kubernetes", "version": f"v{KUBERNETES_MINOR}"},
        "paths": paths,
        "components": {"schemas": {}},
    }
