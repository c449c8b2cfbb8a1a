"""Label and field selectors, in the string syntax of the API and as metav1.LabelSelector."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class SelectorError(ValueError):
    pass


@dataclass(frozen=True)
class Requirement:
    key: str
    op: str  # "=", "!=", "in", "notin", "exists", "!", "gt", "lt"
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        present = self.key in labels
        value = labels.get(self.key)
        if self.op == "exists":
            return present
        if self.op == "!":
            return not present
        if self.op in ("=", "in"):
            return present and value in self.values
        if self.op in ("!=", "notin"):
            return not present or value not in self.values
        # gt / lt compare integers; a non-integer label never matches
        try:
            number = int(value) if value is not None else None
        except ValueError:
            return False
        if number is None:
            return False
        bound = int(self.values[0])
        return number > bound if self.op == "gt" else number < bound

    def __str__(self) -> str:
        if self.op == "exists":
            return self.key
        if self.op == "!":
            return f"!{self.key}"
        if self.op in ("in", "notin"):
            return f"{self.key} {self.op} ({','.join(self.values)})"
        symbol = {"gt": ">", "lt": "<"}.get(self.op, self.op)
        return f"{self.key}{symbol}{self.values[0]}"


@dataclass(frozen=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()
    nothing: bool = False  # a selector that matches no object (e.g. an invalid expression)

    def matches(self, labels: Mapping[str, str] | None) -> bool:
        if self.nothing:
            return False
        labels = labels or {}
        return all(r.matches(labels) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements and not self.nothing

    def __str__(self) -> str:
        return ",".join(str(r) for r in self.requirements)


_TOKEN = re.compile(r"\s*(\(|\)|,|!=|==|=|!|>|<|[^\s(),!=<>]+)")
_SET_OPS = {"in", "notin"}


def _tokens(text: str) -> list[str]:
    tokens, pos = [], 0
    text = text.strip()
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if not match:
            raise SelectorError(f"unable to parse label selector {text!r}")
        tokens.append(match.group(1))
        pos = match.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return tokens


def parse_label_selector(text: str | None) -> LabelSelector:
    """Parse ``a=b,c!=d,e in (f,g),h notin (i),j,!k,l>3``."""
    if not text or not text.strip():
        return LabelSelector()
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise SelectorError(f"unexpected end of label selector {text!r}")
        i += 1
        return tokens[i - 1]

    while i < len(tokens):
        token = take()
        if token == "!":
            requirements.append(Requirement(take(), "!"))
        else:
            key = token
            nxt = tokens[i] if i < len(tokens) else ","
            if nxt == ",":
                requirements.append(Requirement(key, "exists"))
            elif nxt in ("=", "==", "!="):
                take()
                value = tokens[i] if i < len(tokens) and tokens[i] != "," else ""
                if value:
                    take()
                requirements.append(Requirement(key, "!=" if nxt == "!=" else "=", (value,)))
            elif nxt in (">", "<"):
                take()
                bound = take()
                if not bound.lstrip("-").isdigit():
                    raise SelectorError(f"{key}{nxt}{bound}: the value must be an integer")
                requirements.append(Requirement(key, "gt" if nxt == ">" else "lt", (bound,)))
            elif nxt in _SET_OPS:
                take()
                if take() != "(":
                    raise SelectorError(f"expected '(' after {key} {nxt} in {text!r}")
                values: list[str] = []
                while True:
                    item = take()
                    if item == ")":
                        break
                    if item != ",":
                        values.append(item)
                requirements.append(Requirement(key, nxt, tuple(values)))
            else:
                raise SelectorError(f"unable to parse label selector {text!r} at {nxt!r}")
        if i < len(tokens):
            if tokens[i] != ",":
                raise SelectorError(f"expected ',' in label selector {text!r}")
            i += 1
    return LabelSelector(tuple(requirements))


def selector_from_dict(selector: Mapping[str, Any] | None) -> LabelSelector:
    """A metav1.LabelSelector ({matchLabels, matchExpressions}); an empty one matches all."""
    if not selector:
        return LabelSelector()
    requirements = [
        Requirement(k, "=", (str(v),)) for k, v in (selector.get("matchLabels") or {}).items()
    ]
    for expr in selector.get("matchExpressions") or []:
        op = {"In": "in", "NotIn": "notin", "Exists": "exists", "DoesNotExist": "!"}.get(
            expr.get("operator", "")
        )
        if op is None:
            return LabelSelector(nothing=True)
        requirements.append(Requirement(expr.get("key", ""), op, tuple(expr.get("values") or ())))
    return LabelSelector(tuple(requirements))


@dataclass(frozen=True)
class FieldRequirement:
    path: str
    value: str
    negate: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return (field_value(obj, self.path) == self.value) != self.negate


@dataclass(frozen=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return all(r.matches(obj) for r in self.requirements)

    def empty(self) -> bool:
        return not self.requirements


def field_value(obj: Mapping[str, Any], path: str) -> str:
    """A dotted path's value as a field selector compares it: missing fields read as ''."""
    current: Any = obj
    for part in path.split("."):
        if not isinstance(current, Mapping) or part not in current:
            return ""
        current = current[part]
    if isinstance(current, bool):
        return "true" if current else "false"
    if current is None or isinstance(current, (Mapping, list)):
        return ""
    return str(current)


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, current, escaped = [], [], False
    for char in text:
        if escaped:
            current.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def parse_field_selector(text: str | None) -> FieldSelector:
    """Parse ``metadata.name=x,status.phase!=Running`` (``\\`` escapes ``,`` and ``=``)."""
    if not text or not text.strip():
        return FieldSelector()
    requirements = []
    for raw in _split_unescaped(text, ","):
        term = raw.strip()
        if not term:
            continue
        for op in ("!=", "==", "="):
            index = _unescaped_index(term, op)
            if index >= 0:
                path, value = term[:index].strip(), _unescape(term[index + len(op) :].strip())
                if not path:
                    raise SelectorError(f"invalid field selector {text!r}")
                requirements.append(FieldRequirement(path, value, op == "!="))
                break
        else:
            raise SelectorError(f"invalid field selector {text!r}: {term!r} has no operator")
    return FieldSelector(tuple(requirements))


def _unescaped_index(text: str, needle: str) -> int:
    i = 0
    while i < len(text):
        if text[i] == "\\":
            i += 2
            continue
        if text.startswith(needle, i):
            return i
        i += 1
    return -1


def _unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)
