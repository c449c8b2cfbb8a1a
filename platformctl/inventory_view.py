"""Human-readable rendering of ``platformctl inventory``."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def render_inventory(found: dict[str, Any], console: Console) -> None:
    aws = Table(title=f"AWS resources ({found['environment']})", title_justify="left")
    for column in ("type", "id", "name"):
        aws.add_column(column)
    for row in found["aws"]:
        aws.add_row(row["type"], row["id"], row["name"])
    console.print(aws)
    if "cluster_error" in found:
        console.print(f"cluster: not reachable ({found['cluster_error']})", markup=False)
        return
    releases = Table(title="helm releases", title_justify="left")
    for column in ("name", "namespace", "chart", "version", "revision", "status"):
        releases.add_column(column)
    for row in found["helm_releases"]:
        releases.add_row(
            *(str(row[k]) for k in ("name", "namespace", "chart", "version", "revision", "status"))
        )
    console.print(releases)
    console.print("namespaces: " + (", ".join(found["namespaces"]) or "none"))
