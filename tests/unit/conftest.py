from __future__ import annotations

import copy
from typing import Any

import pytest

from blueprint.loader import load_spec_data


@pytest.fixture(scope="session")
def _sandbox_data() -> dict[str, Any]:
    return load_spec_data("sandbox")


@pytest.fixture
def spec_data(_sandbox_data) -> dict[str, Any]:
    """A fresh, valid, mutable spec document (defaults + sandbox overlay)."""
    return copy.deepcopy(_sandbox_data)


def set_path(data: dict[str, Any], path: str, value: Any) -> None:
    """``set_path(d, "node_groups.system.min_size", 5)``; a path ending in ``+key`` adds."""
    *parents, last = path.split(".")
    node = data
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    if isinstance(node, list):
        node[int(last)] = value
    else:
        node[last.lstrip("+")] = value
