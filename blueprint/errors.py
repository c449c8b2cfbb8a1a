"""One error type for every problem found in a spec or catalogue, before anything runs."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from pydantic import ValidationError

_LEADING_FIELD = re.compile(r"^([a-z_][a-z0-9_]*(?:\[\d+\])?(?:\.[a-z_][a-z0-9_]*)*): (.*)$")


class SpecError(ValueError):
    """A spec, overlay or catalogue is invalid; ``problems`` holds one message per problem."""

    def __init__(self, problems: Sequence[str]):
        self.problems = list(problems)
        super().__init__("\n".join(self.problems))


def field_path(loc: Iterable[str | int]) -> str:
    """``("node_groups", "system", "min_size")`` -> ``node_groups.system.min_size``; list
    indexes render as ``[i]``."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def problems_from(error: ValidationError, prefix: str = "") -> list[str]:
    """Turn pydantic's errors into ``path: message`` lines, one per problem."""
    problems = []
    for err in error.errors(include_url=False):
        # Model validators report at the model's own location; their message names the fields.
        # Tagged unions and function validators add loc parts that are not field names.
        loc = [
            p
            for p in err["loc"]
            if not (isinstance(p, str) and (p.startswith("function-") or p == "[key]"))
        ]
        parts = [prefix, *loc] if prefix else loc
        msg = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            msg = "unknown field"
        # A check of the whole document names its fields itself.
        for line in msg.splitlines():
            # A model's check that leads with one of its fields ("vpc_cidr: ...") reports
            # under that field's full path.
            sub = _LEADING_FIELD.match(line)
            if sub and parts:
                problems.append(f"{field_path(parts)}.{sub[1]}: {sub[2]}")
            elif parts:
                problems.append(f"{field_path(parts)}: {line}")
            else:
                problems.append(line)
    return problems


def reject(problems: Sequence[str]) -> None:
    """Raise from a validator when ``problems`` is not empty: one problem per line, so each
    reaches the user as its own message under the validator's field path."""
    if problems:
        raise ValueError("\n".join(problems))
