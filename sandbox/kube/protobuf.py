"""Decoding the Kubernetes protobuf encoding for the kinds typed Go clients send us.

helm's release storage (a typed client-go clientset) writes Secrets as
``application/vnd.kubernetes.protobuf``: the bytes ``k8s\\x00`` followed by a runtime.Unknown
envelope whose ``raw`` field holds the object. Only the kinds such clients write are described
here (Secret, ConfigMap, Namespace and DeleteOptions); responses are always JSON.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"


class ProtobufError(ValueError):
    pass


# A message schema maps field numbers to (JSON name, field type, nested schema).
Schema = dict[int, tuple[str, str, Any]]

TIME: Schema = {1: ("seconds", "int", None), 2: ("nanos", "int", None)}
TYPE_META: Schema = {1: ("apiVersion", "string", None), 2: ("kind", "string", None)}
UNKNOWN: Schema = {
    1: ("typeMeta", "message", TYPE_META),
    2: ("raw", "raw", None),
    3: ("contentEncoding", "string", None),
    4: ("contentType", "string", None),
}
OWNER_REFERENCE: Schema = {
    1: ("kind", "string", None),
    3: ("name", "string", None),
    4: ("uid", "string", None),
    5: ("apiVersion", "string", None),
    6: ("controller", "bool", None),
    7: ("blockOwnerDeletion", "bool", None),
}
MANAGED_FIELDS_ENTRY: Schema = {
    1: ("manager", "string", None),
    2: ("operation", "string", None),
    3: ("apiVersion", "string", None),
    4: ("time", "time", None),
    6: ("fieldsType", "string", None),
    7: ("fieldsV1", "fields", None),
    8: ("subresource", "string", None),
}
OBJECT_META: Schema = {
    1: ("name", "string", None),
    2: ("generateName", "string", None),
    3: ("namespace", "string", None),
    4: ("selfLink", "string", None),
    5: ("uid", "string", None),
    6: ("resourceVersion", "string", None),
    7: ("generation", "int", None),
    8: ("creationTimestamp", "time", None),
    9: ("deletionTimestamp", "time", None),
    10: ("deletionGracePeriodSeconds", "int", None),
    11: ("labels", "map", "string"),
    12: ("annotations", "map", "string"),
    13: ("ownerReferences", "repeated", OWNER_REFERENCE),
    14: ("finalizers", "strings", None),
    17: ("managedFields", "repeated", MANAGED_FIELDS_ENTRY),
}
SECRET: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: ("data", "map", "bytes"),
    3: ("type", "string", None),
    4: ("stringData", "map", "string"),
    5: ("immutable", "bool", None),
}
CONFIG_MAP: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: ("data", "map", "string"),
    3: ("binaryData", "map", "bytes"),
    4: ("immutable", "bool", None),
}
NAMESPACE_CONDITION: Schema = {
    1: ("type", "string", None),
    2: ("status", "string", None),
    4: ("lastTransitionTime", "time", None),
    5: ("reason", "string", None),
    6: ("message", "string", None),
}
NAMESPACE: Schema = {
    1: ("metadata", "message", OBJECT_META),
    2: ("spec", "message", {1: ("finalizers", "strings", None)}),
    3: (
        "status",
        "message",
        {1: ("phase", "string", None), 2: ("conditions", "repeated", NAMESPACE_CONDITION)},
    ),
}
DELETE_OPTIONS: Schema = {
    1: ("gracePeriodSeconds", "int", None),
    2: (
        "preconditions",
        "message",
        {1: ("uid", "string", None), 2: ("resourceVersion", "string", None)},
    ),
    3: ("orphanDependents", "bool", None),
    4: ("propagationPolicy", "string", None),
    5: ("dryRun", "strings", None),
}

KINDS: dict[str, Schema] = {
    "Secret": SECRET,
    "ConfigMap": CONFIG_MAP,
    "Namespace": NAMESPACE,
    "DeleteOptions": DELETE_OPTIONS,
}


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ProtobufError("truncated varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ProtobufError("varint too long")


def fields(buf: bytes) -> Iterator[tuple[int, int, Any]]:
    """(field number, wire type, value) for each field of a message."""
    pos = 0
    while pos < len(buf):
        tag, pos = _varint(buf, pos)
        number, wire = tag >> 3, tag & 7
        if wire == 0:
            value, pos = _varint(buf, pos)
        elif wire == 2:
            size, pos = _varint(buf, pos)
            if pos + size > len(buf):
                raise ProtobufError("truncated length-delimited field")
            value, pos = buf[pos : pos + size], pos + size
        elif wire == 1:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == 5:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ProtobufError(f"unsupported wire type {wire}")
        if pos > len(buf):
            raise ProtobufError("truncated field")
        yield number, wire, value


def _signed(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _text(value: Any) -> str:
    if not isinstance(value, bytes):
        raise ProtobufError("expected a length-delimited string")
    try:
        return value.decode()
    except UnicodeDecodeError as exc:
        raise ProtobufError(f"invalid UTF-8 in a string field: {exc}") from None


def _time(value: bytes) -> str:
    parts = decode_message(value, TIME)
    stamp = datetime.fromtimestamp(parts.get("seconds", 0), UTC)
    return stamp.strftime("%Y-%m-%dT%H:%M:%SZ")


def decode_message(buf: bytes, schema: Schema) -> dict[str, Any]:
    """A message as its JSON form (bytes base64, times RFC 3339); unknown fields are skipped."""
    out: dict[str, Any] = {}
    for number, _wire, value in fields(buf):
        spec = schema.get(number)
        if spec is None:
            continue
        name, kind, sub = spec
        if kind == "string":
            out[name] = _text(value)
        elif kind == "raw":
            out[name] = value
        elif kind == "int":
            out[name] = _signed(value) if isinstance(value, int) else 0
        elif kind == "bool":
            out[name] = bool(value)
        elif kind == "time":
            out[name] = _time(value)
        elif kind == "message":
            out[name] = decode_message(value, sub)
        elif kind == "repeated":
            out.setdefault(name, []).append(decode_message(value, sub))
        elif kind == "strings":
            out.setdefault(name, []).append(_text(value))
        elif kind == "fields":
            raw = decode_message(value, {1: ("Raw", "raw", None)}).get("Raw", b"{}")
            out[name] = json.loads(raw or b"{}")
        elif kind == "map":
            entry = decode_message(value, {1: ("key", "string", None), 2: ("value", "raw", None)})
            data = entry.get("value", b"")
            out.setdefault(name, {})[entry.get("key", "")] = (
                base64.b64encode(data).decode() if sub == "bytes" else _text(data)
            )
    return out


def decode(body: bytes) -> dict[str, Any]:
    """A protobuf-encoded request body as the JSON object it stands for."""
    if not body.startswith(MAGIC):
        raise ProtobufError("missing the k8s protobuf prefix")
    envelope = decode_message(body[len(MAGIC) :], UNKNOWN)
    type_meta = envelope.get("typeMeta") or {}
    kind = type_meta.get("kind", "")
    if envelope.get("contentEncoding"):
        raise ProtobufError(f"unsupported content encoding {envelope['contentEncoding']!r}")
    schema = KINDS.get(kind)
    if schema is None:
        raise ProtobufError(f"protobuf decoding of kind {kind!r} is not supported; send JSON")
    obj = decode_message(envelope.get("raw", b""), schema)
    if type_meta.get("apiVersion"):
        obj = {"apiVersion": type_meta["apiVersion"], "kind": kind, **obj}
    else:
        obj = {"kind": kind, **obj}
    return obj
