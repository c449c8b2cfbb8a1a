"""Loading the spec: the defaults, an environment overlay and a user file, merged deeply."""

from __future__ import annotations

import copy
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from blueprint.errors import SpecError, problems_from
from blueprint.spec import PlatformSpec

DEFAULTS_FILE = "platform.yaml"
ENVIRONMENTS_DIR = "environments"


def config_dir() -> Path:
    """``$PLATFORM_CONFIG_DIR`` or the repository's ``config/``."""
    override = os.environ.get("PLATFORM_CONFIG_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[1] / "config"


def environments(directory: Path | None = None) -> list[str]:
    folder = (directory or config_dir()) / ENVIRONMENTS_DIR
    return sorted(p.stem for p in folder.glob("*.yaml"))


def deep_merge(base: Mapping[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Merge ``overlay`` over ``base``: mappings merge key by key, anything else replaces,
    and a ``null`` in the overlay removes the key (so an overlay can drop a default)."""
    merged = copy.deepcopy(dict(base))
    for key, value in overlay.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def read_yaml(path: Path) -> dict[str, Any]:
    """A YAML mapping from ``path``; any other content is a SpecError naming the file."""
    try:
        text = path.read_text()
    except OSError as exc:
        raise SpecError([f"{path}: cannot read ({exc.strerror})"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise SpecError([f"{path}{where}: invalid YAML ({problem})"]) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SpecError([f"{path}: expected a mapping at the top, found {type(data).__name__}"])
    return data


def load_spec_data(
    env: str | None = None, spec_file: Path | str | None = None, directory: Path | None = None
) -> dict[str, Any]:
    """The merged, not yet validated spec document."""
    folder = directory or config_dir()
    data = read_yaml(folder / DEFAULTS_FILE)
    if env is not None:
        # A name, not a path: "../platform" would read the defaults as an overlay, and an
        # empty name would plan for no environment at all.
        known = environments(folder)
        if env not in known:
            listed = ", ".join(known) or "none"
            raise SpecError([f"--env: unknown environment {env!r} (known: {listed})"])
        data = deep_merge(data, read_yaml(folder / ENVIRONMENTS_DIR / f"{env}.yaml"))
    if spec_file:
        data = deep_merge(data, read_yaml(Path(spec_file)))
    return data


def validate_spec(data: Mapping[str, Any]) -> PlatformSpec:
    try:
        return PlatformSpec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(problems_from(exc)) from None


def load_spec(
    env: str | None = None, spec_file: Path | str | None = None, directory: Path | None = None
) -> PlatformSpec:
    """Defaults, then ``config/environments/<env>.yaml``, then ``spec_file``, validated."""
    return validate_spec(load_spec_data(env, spec_file, directory))
