"""The PromQL the simulated Prometheus evaluates: vector selectors of the ``up`` series.

``up``, ``up{job="x", namespace=~"a|b"}`` and ``{__name__="up", ...}`` are answered from the
targets (1 for a healthy target, 0 for a down one). Every other expression is valid PromQL
the sandbox has no data for, so it is refused as an execution error rather than answered
with a made-up result.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

UP = "up"
_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_OPERATORS = ("=~", "!~", "!=", "=")  # longest first
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "`": "`"}


class QueryError(Exception):
    """A query the API refuses; ``error_type`` and ``status`` as Prometheus reports them."""

    def __init__(self, message: str, error_type: str = "execution", status: int = 422):
        super().__init__(message)
        self.error_type = error_type
        self.status = status


def unsupported(query: str) -> QueryError:
    return QueryError(
        f"the sandbox's Prometheus evaluates only selectors of the {UP!r} series; "
        f"cannot evaluate {query!r}"
    )


@dataclass(frozen=True)
class Matcher:
    name: str
    op: str  # "=", "!=", "=~", "!~"
    value: str

    def matches(self, labels: dict[str, str]) -> bool:
        value = labels.get(self.name, "")
        if self.op == "=":
            return value == self.value
        if self.op == "!=":
            return value != self.value
        found = re.fullmatch(self.value, value, re.DOTALL) is not None  # PromQL anchors regexes
        return found if self.op == "=~" else not found


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def _skip_space(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def _peek(self) -> str:
        self._skip_space()
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def _word(self, pattern: re.Pattern[str]) -> str | None:
        self._skip_space()
        match = pattern.match(self.text, self.pos)
        if match is None:
            return None
        self.pos = match.end()
        return match.group()

    def _string(self) -> str:
        quote = self._peek()
        if quote not in ('"', "'", "`"):
            raise ValueError("expected a quoted label value")
        self.pos += 1
        out = []
        while self.pos < len(self.text):
            char = self.text[self.pos]
            self.pos += 1
            if char == quote:
                return "".join(out)
            if char == "\\" and quote != "`" and self.pos < len(self.text):
                escaped = self.text[self.pos]
                self.pos += 1
                out.append(_ESCAPES.get(escaped, "\\" + escaped))
            else:
                out.append(char)
        raise ValueError("unterminated quoted string")

    def _matcher(self) -> Matcher:
        name = self._word(_LABEL)
        if name is None:
            raise ValueError("expected a label name")
        self._skip_space()
        for op in _OPERATORS:
            if self.text.startswith(op, self.pos):
                self.pos += len(op)
                value = self._string()
                if op in ("=~", "!~"):
                    re.compile(value)  # an invalid regex is a parse error
                return Matcher(name, op, value)
        raise ValueError(f"expected a matching operator after {name!r}")

    def selector(self) -> list[Matcher]:
        matchers = []
        metric = self._word(_NAME)
        if metric is not None:
            matchers.append(Matcher("__name__", "=", metric))
        if self._peek() == "{":
            self.pos += 1
            while self._peek() != "}":
                matcher = self._matcher()
                if metric is not None and matcher.name == "__name__":
                    raise QueryError(
                        'invalid parameter "query": parse error: metric name must not be set '
                        f'twice: "{metric}" or "{matcher.value}"',
                        error_type="bad_data",
                        status=400,
                    )
                matchers.append(matcher)
                if self._peek() == ",":
                    self.pos += 1
                elif self._peek() != "}":
                    raise ValueError("expected ',' or '}' in the label matchers")
            self.pos += 1
        if self._peek():
            raise ValueError(f"unexpected {self.text[self.pos :]!r}")
        if not matchers:
            raise ValueError("expected a vector selector")
        return matchers


def parse_up_selector(query: str) -> list[Matcher]:
    """The matchers of a selector of the ``up`` series; QueryError for anything else."""
    if not query.strip():
        raise QueryError(
            'invalid parameter "query": parse error: no expression found in input',
            error_type="bad_data",
            status=400,
        )
    try:
        matchers = _Parser(query).selector()
    except re.error as error:
        raise QueryError(
            f'invalid parameter "query": parse error: error parsing regexp: {error}',
            error_type="bad_data",
            status=400,
        ) from None
    except ValueError:
        raise unsupported(query) from None
    names = [m for m in matchers if m.name == "__name__"]
    if not any(m.op == "=" and m.value == UP for m in names):
        raise unsupported(query)
    return matchers


def up_series(matchers: list[Matcher], series: list[tuple[dict[str, str], bool]]) -> list[dict]:
    """The selected ``up`` samples, from (target labels, healthy) pairs, without timestamps."""
    found = []
    for target_labels, healthy in series:
        metric = {"__name__": UP, **target_labels}
        if all(m.matches(metric) for m in matchers):
            found.append({"metric": metric, "value": "1" if healthy else "0"})
    return found
