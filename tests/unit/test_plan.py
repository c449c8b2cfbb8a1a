"""The platform plan: the DAG schedule beats the guide's phase plan."""

from __future__ import annotations

import itertools

import pytest

from blueprint.catalogue import PROFILES, load_catalogue
from blueprint.errors import SpecError
from blueprint.loader import load_spec
from blueprint.plan import plan, resolve_needs


@pytest.fixture(scope="module")
def spec():
    return load_spec("sandbox")


@pytest.mark.parametrize("profile", PROFILES)
def test_critical_path_is_below_the_guide_phase_plan(spec, profile):
    p = plan(spec, load_catalogue(), profile)
    assert p.critical_path_minutes < p.guide_phase_plan_minutes


def test_guide_phase_plan_figures(spec):
    p = plan(spec, load_catalogue())
    assert p.range_minutes["min"]["guide_phase_plan"] == 71
    assert p.range_minutes["max"]["guide_phase_plan"] == 97


def test_components_start_when_their_needs_finish(spec):
    p = plan(spec, load_catalogue(), "mid")
    by_name = {c.name: c for c in p.components}
    for c in p.components:
        assert c.start_min == max((by_name[n].finish_min for n in c.needs), default=0)


def test_critical_path_is_a_chain_of_needs(spec):
    p = plan(spec, load_catalogue())
    by_name = {c.name: c for c in p.components}
    path = p.critical_path
    assert by_name[path[0]].start_min == 0
    assert by_name[path[-1]].finish_min == p.critical_path_minutes
    for before, after in itertools.pairwise(path):
        assert before in by_name[after].needs
        assert by_name[before].finish_min == by_name[after].start_min
    assert all(by_name[n].critical for n in path)


def test_storage_is_off_the_critical_path(spec):
    p = plan(spec, load_catalogue())
    by_name = {c.name: c for c in p.components}
    assert by_name["mimir-storage"].start_min == 0 and not by_name["mimir-storage"].critical


def test_extra_needs_join_the_graph(spec):
    site = spec.model_copy(update={"extra_needs": {"kafka": {"openbao": "TLS keys from OpenBao"}}})
    needs = resolve_needs(site, load_catalogue())
    assert needs["kafka"]["openbao"] == "TLS keys from OpenBao"
    p = plan(site, load_catalogue())
    by_name = {c.name: c for c in p.components}
    assert by_name["kafka"].start_min == by_name["openbao"].finish_min


def test_extra_needs_cycle_and_unknowns_are_rejected(spec):
    site = spec.model_copy(
        update={"extra_needs": {"vpc": {"grafana": "made up"}, "nobody": {"vpc": "x"}}}
    )
    with pytest.raises(SpecError) as caught:
        plan(site, load_catalogue())
    problems = caught.value.problems
    assert "extra_needs.nobody: unknown component 'nobody'" in problems
    assert any(p.startswith("extra_needs: dependency cycle: vpc -> grafana") for p in problems)
