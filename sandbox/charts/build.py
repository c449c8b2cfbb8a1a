"""Builds the sandbox's chart repository: every stand-in packaged, plus index.yaml.

A chart is Chart.yaml, values.yaml (the stand-in's defaults), standin.yaml (what to render)
and the shared templates of ``templates/``; CRDs a real chart keeps in crds/ go there too.
Archives are gzip tars with the chart folder on top, written with fixed timestamps and
ordering so that rebuilding yields identical bytes and digests.

``python -m sandbox.charts.build OUT_DIR`` builds a repository into OUT_DIR.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import tarfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml

from sandbox.charts.crds import crd_documents
from sandbox.charts.standins import StandIn, StandIns, load_standins

TEMPLATES_DIR = Path(__file__).with_name("templates")
INDEX_FILE = "index.yaml"
# One fixed instant for archive entries and index dates: rebuilds are byte-identical.
BUILT_AT = datetime(2026, 1, 1, tzinfo=UTC)
_BUILT_AT_TEXT = BUILT_AT.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Dumper(yaml.SafeDumper):
    """Plain YAML: no anchors, multi-line strings as literal blocks."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, text: str) -> yaml.Node:
    style = "|" if "\n" in text else None
    return dumper.represent_scalar("tag:yaml.org,2002:str", text, style=style)


_Dumper.add_representer(str, _represent_str)


def to_yaml(data: Any) -> str:
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, default_flow_style=False, width=100)


def description(name: str, standin: StandIn) -> str:
    return (
        f"Sandbox stand-in for {name} {standin.version} ({standin.source}): renders the real "
        "chart's main objects from the same values keys; runs no software."
    )


def chart_metadata(name: str, standin: StandIn) -> dict[str, Any]:
    return {
        "apiVersion": "v2",
        "name": name,
        "version": standin.version,
        "appVersion": standin.app_version,
        "description": description(name, standin),
        "type": "application",
        "annotations": {"sandbox.platform.io/upstream": standin.source},
    }


def render_spec(name: str, standin: StandIn, presets: dict[str, Any]) -> dict[str, Any]:
    """The chart's standin.yaml: what the shared templates render, with defaults filled in."""
    chart_only = {"version", "app_version", "source", "values", "crds"}
    spec = standin.model_dump(mode="json", exclude=chart_only, exclude_none=True)
    spec["name"] = standin.name or name
    if standin.crds and standin.crds.location == "templates":
        spec["crds"] = standin.crds.model_dump(mode="json", exclude={"groups"}, exclude_none=True)
        spec["crds"]["documents"] = crd_documents(standin.crds)
    if standin.uses_presets:
        spec["resource_presets"] = presets
    return spec


def chart_files(name: str, standin: StandIn, presets: dict[str, Any]) -> dict[str, bytes]:
    """Every file of the chart, by path inside the chart folder."""
    values_header = f"# Defaults of the values keys the sandbox stand-in of {name} reads.\n"
    files = {
        "Chart.yaml": to_yaml(chart_metadata(name, standin)),
        "values.yaml": values_header + (to_yaml(standin.values) if standin.values else "{}\n"),
        "standin.yaml": to_yaml(render_spec(name, standin, presets)),
    }
    for template in sorted(TEMPLATES_DIR.iterdir()):
        files[f"templates/{template.name}"] = template.read_text()
    if standin.crds and standin.crds.location == "crds":
        for document in crd_documents(standin.crds):
            files[f"crds/{document['metadata']['name']}.yaml"] = to_yaml(document)
    return {path: text.encode() for path, text in files.items()}


def package(name: str, files: dict[str, bytes]) -> bytes:
    """A helm chart archive: gzip tar, chart folder on top, reproducible bytes."""
    buffer = io.BytesIO()
    mtime = int(BUILT_AT.timestamp())
    with (
        gzip.GzipFile(fileobj=buffer, mode="wb", mtime=mtime) as gz,
        tarfile.open(fileobj=gz, mode="w", format=tarfile.USTAR_FORMAT) as tar,
    ):
        for path in sorted(files):
            data = files[path]
            entry = tarfile.TarInfo(f"{name}/{path}")
            entry.size, entry.mtime, entry.mode = len(data), mtime, 0o644
            tar.addfile(entry, io.BytesIO(data))
    return buffer.getvalue()


def write_chart(name: str, out_dir: Path, standins: StandIns | None = None) -> Path:
    """The unpacked chart ``out_dir/<name>`` (for helm lint or reading); returns its folder."""
    standins = standins or load_standins()
    folder = out_dir / name
    for path, data in chart_files(name, standins.charts[name], standins.resource_presets).items():
        (folder / path).parent.mkdir(parents=True, exist_ok=True)
        (folder / path).write_bytes(data)
    return folder


def archive_name(name: str, standin: StandIn) -> str:
    return f"{name}-{standin.version}.tgz"


def build_repository(out_dir: Path, standins: StandIns | None = None) -> Path:
    """Write every stand-in's archive and index.yaml into ``out_dir``; returns ``out_dir``."""
    standins = standins or load_standins()
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: dict[str, list[dict[str, Any]]] = {}
    written = set()
    for name in sorted(standins.charts):
        standin = standins.charts[name]
        archive = package(name, chart_files(name, standin, standins.resource_presets))
        filename = archive_name(name, standin)
        (out_dir / filename).write_bytes(archive)
        written.add(filename)
        entries[name] = [
            {
                **chart_metadata(name, standin),
                "created": _BUILT_AT_TEXT,
                "digest": hashlib.sha256(archive).hexdigest(),
                "urls": [filename],
            }
        ]
    for stale in out_dir.glob("*.tgz"):
        if stale.name not in written:
            stale.unlink()
    index = {"apiVersion": "v1", "entries": entries, "generated": _BUILT_AT_TEXT}
    (out_dir / INDEX_FILE).write_text(to_yaml(index))
    return out_dir


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Build the sandbox chart repository.")
    parser.add_argument("out_dir", type=Path, help="folder to write the archives and index into")
    args = parser.parse_args(argv)
    print(build_repository(args.out_dir))


if __name__ == "__main__":
    main()
