"""The Helm values each chart of the platform gets, built from the platform spec.

Every guide setting that concerns a chart is passed under the key the real upstream chart
reads at the catalogue's pinned version. Values are plain JSON-able dicts and depend only on
their inputs, so comparing them tells whether a release needs an upgrade.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

from tasks.values import data, gitops, ingress, mesh, observability, runner, security
from tasks.values.context import ValuesContext, catalogue_namespaces
from tasks.values.observability import service_url

Builder = Callable[[ValuesContext], dict[str, Any]]

BUILDERS: dict[str, Builder] = {
    **runner.BUILDERS,
    **ingress.BUILDERS,
    **observability.BUILDERS,
    **gitops.BUILDERS,
    **security.BUILDERS,
    **mesh.BUILDERS,
    **data.BUILDERS,
}


def chart_values(component: str, ctx: ValuesContext) -> dict[str, Any]:
    """Values for a helm-release component of the catalogue; KeyError for any other name."""
    if component not in BUILDERS:
        raise KeyError(f"{component!r} is not a helm-release component with chart values")
    # A copy: builders share their constant parts, and callers may change what they get.
    return copy.deepcopy(BUILDERS[component](ctx))


__all__ = [
    "BUILDERS",
    "ValuesContext",
    "catalogue_namespaces",
    "chart_values",
    "service_url",
]
