"""The PATCH flavours of the Kubernetes API: JSON merge, strategic merge, JSON patch, apply.

Strategic merge follows the patch strategies of the Kubernetes types: lists of objects with a
merge key are merged item by item, ``finalizers`` is merged as a set, every other list is
replaced. The merge keys below are those of the built-in types' ``patchMergeKey`` tags.
"""

from __future__ import annotations

from typing import Any

from sandbox.kube.store import copy_json


class PatchError(ValueError):
    """The patch does not apply to the object (rendered as 422 Invalid)."""


_CONTAINER_LISTS = frozenset({"containers", "initContainers", "ephemeralContainers"})
_MERGE_KEYS = {
    "containers": "name",
    "initContainers": "name",
    "ephemeralContainers": "name",
    "volumes": "name",
    "env": "name",
    "imagePullSecrets": "name",
    "resourceClaims": "name",
    "schedulingGates": "name",
    "volumeMounts": "mountPath",
    "volumeDevices": "devicePath",
    "hostAliases": "ip",
    "conditions": "type",
    "addresses": "type",
    "ownerReferences": "uid",
    "topologySpreadConstraints": "topologyKey",
}
_SET_LISTS = frozenset({"finalizers"})  # lists of scalars merged as sets
_DIRECTIVE_PREFIXES = ("$setElementOrder/", "$deleteFromPrimitiveList/")
_DIRECTIVES = frozenset({"$patch", "$retainKeys"})
_DELETE = object()


def merge_key(path: tuple[str, ...]) -> str | None:
    """The merge key of the list at ``path`` (field names from the object root)."""
    field = path[-1] if path else ""
    if field == "ports":
        # A container's ports merge by containerPort, a Service's by port.
        return "containerPort" if len(path) > 1 and path[-2] in _CONTAINER_LISTS else "port"
    return _MERGE_KEYS.get(field)


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: maps merge, ``null`` removes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy_json(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _is_directive(key: str) -> bool:
    return key in _DIRECTIVES or key.startswith(_DIRECTIVE_PREFIXES)


def _strip(value: Any) -> Any:
    """Patch content without strategic-merge directives, as it is stored."""
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not _is_directive(k) and v is not None}
    if isinstance(value, list):
        return [
            _strip(v) for v in value if not (isinstance(v, dict) and v.get("$patch") == "delete")
        ]
    return value


def strategic_merge_patch(target: Any, patch: Any, path: tuple[str, ...] = ()) -> Any:
    """Apply a strategic merge patch (as kubectl and helm compute them for built-in kinds)."""
    merged = _merge_map(target, patch, path)
    return {} if merged is _DELETE else merged


def _merge_map(original: Any, patch: Any, path: tuple[str, ...]) -> Any:
    if not isinstance(patch, dict):
        return copy_json(patch)
    directive = patch.get("$patch")
    if directive == "delete":
        return _DELETE
    if directive == "replace":
        return _strip(patch)
    if directive not in (None, "merge"):
        raise PatchError(f"unknown patch directive {directive!r}")
    result = dict(original) if isinstance(original, dict) else {}
    for key, value in patch.items():
        if _is_directive(key):
            if key.startswith("$deleteFromPrimitiveList/"):
                field = key.partition("/")[2]
                if isinstance(result.get(field), list):
                    result[field] = [v for v in result[field] if v not in (value or [])]
            continue
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):
            merged = _merge_map(result.get(key), value, (*path, key))
            if merged is _DELETE:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list):
            result[key] = _merge_list(result.get(key), value, (*path, key))
        else:
            result[key] = value
    for key, order in patch.items():
        if key.startswith("$setElementOrder/") and isinstance(order, list):
            field = key.partition("/")[2]
            if isinstance(result.get(field), list):
                result[field] = _reorder(result[field], order, merge_key((*path, field)))
    retain = patch.get("$retainKeys")
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    return result


def _merge_list(original: Any, patch: list, path: tuple[str, ...]) -> list:
    current = original if isinstance(original, list) else []
    if path[-1] in _SET_LISTS:
        return current + [v for v in patch if v not in current]
    key = merge_key(path)
    if key is None or not all(isinstance(item, dict) for item in patch):
        return _strip(patch)
    if any(item.get("$patch") == "replace" for item in patch):
        return [_strip(item) for item in patch if item.get("$patch") != "replace"]
    result = [copy_json(item) for item in current]
    for item in patch:
        wanted = item.get(key)
        index = next(
            (
                i
                for i, have in enumerate(result)
                if isinstance(have, dict) and have.get(key) == wanted
            ),
            None,
        )
        if item.get("$patch") == "delete":
            result = [
                have for have in result if not (isinstance(have, dict) and have.get(key) == wanted)
            ]
        elif index is None:
            result.append(_strip(item))
        else:
            result[index] = _merge_map(result[index], item, path)
    return result


def _reorder(items: list, order: list, key: str | None) -> list:
    def identity(item: Any) -> Any:
        return item.get(key) if key and isinstance(item, dict) else item

    wanted = [identity(o) for o in order]
    placed = sorted(
        (item for item in items if identity(item) in wanted),
        key=lambda item: wanted.index(identity(item)),
    )
    return placed + [item for item in items if identity(item) not in wanted]


# -- RFC 6902 JSON patch ---------------------------------------------------------------


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise PatchError(f"invalid JSON pointer {path!r}")
    return [p.replace("~1", "/").replace("~0", "~") for p in path[1:].split("/")]


def _index(container: list, token: str, allow_end: bool) -> int:
    if token == "-" and allow_end:
        return len(container)
    if not token.isdigit() or (len(token) > 1 and token.startswith("0")):
        raise PatchError(f"invalid array index {token!r}")
    index = int(token)
    if index > len(container) or (index == len(container) and not allow_end):
        raise PatchError(f"array index {index} out of range")
    return index


def _parent(doc: Any, tokens: list[str]) -> Any:
    current = doc
    for token in tokens[:-1]:
        if isinstance(current, dict):
            if token not in current:
                raise PatchError(f"path /{'/'.join(tokens)} does not exist")
            current = current[token]
        elif isinstance(current, list):
            current = current[_index(current, token, False)]
        else:
            raise PatchError(f"path /{'/'.join(tokens)} does not exist")
    return current


def _read(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        return doc
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path /{'/'.join(tokens)} does not exist")
        return parent[last]
    if isinstance(parent, list):
        return parent[_index(parent, last, False)]
    raise PatchError(f"path /{'/'.join(tokens)} does not exist")


def _add(doc: Any, tokens: list[str], value: Any) -> Any:
    if not tokens:
        return value
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        parent[last] = value
    elif isinstance(parent, list):
        parent.insert(_index(parent, last, True), value)
    else:
        raise PatchError(f"cannot add at /{'/'.join(tokens)}")
    return doc


def _remove(doc: Any, tokens: list[str]) -> Any:
    if not tokens:
        raise PatchError("cannot remove the whole document")
    parent, last = _parent(doc, tokens), tokens[-1]
    if isinstance(parent, dict):
        if last not in parent:
            raise PatchError(f"path /{'/'.join(tokens)} does not exist")
        del parent[last]
    elif isinstance(parent, list):
        del parent[_index(parent, last, False)]
    else:
        raise PatchError(f"path /{'/'.join(tokens)} does not exist")
    return doc


def json_patch(target: Any, operations: Any) -> Any:
    """Apply an RFC 6902 JSON patch (add, remove, replace, move, copy, test)."""
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    doc = copy_json(target)
    for op in operations:
        if not isinstance(op, dict) or "op" not in op or "path" not in op:
            raise PatchError(f"invalid JSON patch operation {op!r}")
        tokens = _pointer(op["path"])
        name = op["op"]
        if name in ("add", "replace", "test") and "value" not in op:
            raise PatchError(f"JSON patch {name} needs a value")
        if name == "add":
            doc = _add(doc, tokens, copy_json(op["value"]))
        elif name == "remove":
            doc = _remove(doc, tokens)
        elif name == "replace":
            _read(doc, tokens)  # the target must exist
            doc = (
                _add(_remove(doc, tokens), tokens, copy_json(op["value"]))
                if tokens
                else op["value"]
            )
        elif name in ("move", "copy"):
            source = _pointer(op.get("from", ""))
            value = copy_json(_read(doc, source))
            if name == "move":
                doc = _remove(doc, source)
            doc = _add(doc, tokens, value)
        elif name == "test":
            if _read(doc, tokens) != op["value"]:
                raise PatchError(f"test operation failed at {op['path']}")
        else:
            raise PatchError(f"unknown JSON patch operation {name!r}")
    return doc


# -- server-side apply -----------------------------------------------------------------


def removals(
    previous: Any, current: Any, path: tuple[str, ...] = (), keyed_lists: bool = True
) -> Any:
    """A strategic patch that is ``current`` plus deletions of what ``previous`` had extra.

    Server-side apply removes the fields a manager applied before and no longer applies; the
    manager's previous configuration stands in for the field ownership the API server tracks.
    """
    if not isinstance(current, dict):
        return copy_json(current)
    out = {k: copy_json(v) for k, v in current.items()}
    if not isinstance(previous, dict):
        return out
    for key, before in previous.items():
        if key not in current:
            out[key] = None
        elif isinstance(before, dict) and isinstance(current[key], dict):
            out[key] = removals(before, current[key], (*path, key), keyed_lists)
        elif keyed_lists and isinstance(before, list) and isinstance(current[key], list):
            out[key] = _list_removals(before, current[key], (*path, key))
    return out


def _list_removals(before: list, now: list, path: tuple[str, ...]) -> list:
    key = merge_key(path)
    if key is None or not all(isinstance(i, dict) for i in before + now):
        return copy_json(now)
    kept = {item.get(key): item for item in before}
    out = [removals(kept.get(item.get(key)), item, path) for item in now]
    present = {item.get(key) for item in now}
    out += [{key: k, "$patch": "delete"} for k in kept if k not in present]
    return out


def server_side_apply(current: dict, applied: dict, previous: dict | None, strategic: bool) -> dict:
    """The object after applying ``applied`` over ``current`` (``previous``: last apply)."""
    if strategic:
        return strategic_merge_patch(current, removals(previous, applied))
    # Custom resources have no merge keys here: their lists are replaced as a whole.
    return merge_patch(current, removals(previous, applied, keyed_lists=False))
