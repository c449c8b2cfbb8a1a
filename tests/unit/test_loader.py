"""Loading: deep overlay merging, environments, and bad files reported by name and line."""

from __future__ import annotations

import pytest

from blueprint.errors import SpecError
from blueprint.loader import deep_merge, environments, load_spec, load_spec_data, read_yaml


def test_deep_merge_merges_mappings_replaces_lists_and_scalars():
    base = {"a": {"b": 1, "c": {"d": 2, "e": 3}}, "l": [1, 2], "s": "x", "keep": True}
    overlay = {"a": {"c": {"e": 30, "f": 4}}, "l": [9], "s": "y", "new": {"k": "v"}}
    assert deep_merge(base, overlay) == {
        "a": {"b": 1, "c": {"d": 2, "e": 30, "f": 4}},
        "l": [9],
        "s": "y",
        "keep": True,
        "new": {"k": "v"},
    }
    assert base["a"]["c"]["e"] == 3, "the base is not modified"


def test_deep_merge_null_removes_a_key():
    assert deep_merge({"a": {"b": 1, "c": 2}}, {"a": {"b": None}}) == {"a": {"c": 2}}


def test_deep_merge_mapping_replaces_scalar_and_back():
    assert deep_merge({"a": 1}, {"a": {"b": 2}}) == {"a": {"b": 2}}
    assert deep_merge({"a": {"b": 2}}, {"a": 1}) == {"a": 1}


def test_environment_overlays_merge_deeply():
    prod = load_spec("production")
    default = load_spec()
    # Overlaid values change...
    assert prod.node_groups["workload"].max_size == 12
    assert prod.network.nat_gateways == "per-az"
    # ...and siblings the overlay does not mention keep the defaults.
    assert (
        prod.node_groups["workload"].instance_types
        == default.node_groups["workload"].instance_types
    )
    assert prod.node_groups["workload"].capacity_type == "SPOT"
    assert prod.observability.prometheus.retention == "15d"
    assert prod.observability.prometheus.storage_size == "200Gi"
    assert load_spec("sandbox").platform.environment == "sandbox"


def test_known_environments():
    assert {"sandbox", "production"} <= set(environments())


def test_unknown_environment_lists_known_ones():
    with pytest.raises(SpecError) as caught:
        load_spec("staging")
    assert "unknown environment 'staging'" in caught.value.problems[0]
    assert "sandbox" in caught.value.problems[0]


def test_spec_file_merges_last(tmp_path):
    f = tmp_path / "site.yaml"
    f.write_text("node_groups:\n  workload:\n    max_size: 5\n")
    spec = load_spec("production", f)
    assert spec.node_groups["workload"].max_size == 5
    assert spec.node_groups["workload"].min_size == 2  # from the production overlay


def test_bad_yaml_names_file_and_line(tmp_path):
    f = tmp_path / "broken.yaml"
    f.write_text("eks:\n  cluster_name: [unclosed\n  version: 1\n")
    with pytest.raises(SpecError) as caught:
        read_yaml(f)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{f}:") and "invalid YAML" in problem
    assert ":3:" in problem or ":2:" in problem


def test_top_level_must_be_a_mapping(tmp_path):
    f = tmp_path / "list.yaml"
    f.write_text("- a\n- b\n")
    with pytest.raises(SpecError, match="expected a mapping"):
        read_yaml(f)


def test_missing_file(tmp_path):
    with pytest.raises(SpecError, match="cannot read"):
        load_spec_data(spec_file=tmp_path / "absent.yaml")


def test_empty_overlay_changes_nothing(tmp_path):
    f = tmp_path / "empty.yaml"
    f.write_text("")
    assert load_spec("sandbox", f) == load_spec("sandbox")


def test_config_dir_override(tmp_path, monkeypatch):
    (tmp_path / "environments").mkdir()
    (tmp_path / "platform.yaml").write_text("platform: {name: x}\n")
    monkeypatch.setenv("PLATFORM_CONFIG_DIR", str(tmp_path))
    assert load_spec_data() == {"platform": {"name": "x"}}
