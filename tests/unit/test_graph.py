"""Graph checks and the earliest-start schedule, on small hand-computed graphs."""

from __future__ import annotations

import pytest

from blueprint.graph import graph_problems, schedule, topological_order

#      a(3) ─┬─> c(4) ─┬─> e(1)
#      b(5) ─┘         │
#      d(2) ───────────┘        f(1) (alone)
NEEDS = {"a": [], "b": [], "c": ["a", "b"], "d": [], "e": ["c", "d"], "f": []}
MINUTES = {"a": 3, "b": 5, "c": 4, "d": 2, "e": 1, "f": 1}


def test_hand_computed_critical_path():
    s = schedule(NEEDS, MINUTES)
    # c starts when b (the later of a, b) finishes at 5; e when c finishes at 9.
    assert {n: (slot.start, slot.finish) for n, slot in s.slots.items()} == {
        "a": (0, 3),
        "b": (0, 5),
        "c": (5, 9),
        "d": (0, 2),
        "e": (9, 10),
        "f": (0, 1),
    }
    assert s.makespan == 10
    assert s.critical_path == ["b", "c", "e"]
    assert {n for n, slot in s.slots.items() if slot.critical} == {"b", "c", "e"}
    # Slack: a may slip 2 (c waits for b), d may slip 7, f may slip 9.
    assert (s.slots["a"].slack, s.slots["d"].slack, s.slots["f"].slack) == (2, 7, 9)


def test_longer_branch_moves_the_critical_path():
    s = schedule(NEEDS, {**MINUTES, "d": 20})
    assert s.critical_path == ["d", "e"] and s.makespan == 21
    assert not s.slots["c"].critical


def test_topological_order_puts_needs_first():
    order = topological_order(NEEDS)
    for node, deps in NEEDS.items():
        assert all(order.index(d) < order.index(node) for d in deps)


def test_cycle_is_named_with_its_components():
    problems = graph_problems({"a": ["c"], "b": ["a"], "c": ["b"], "d": []})
    assert problems == ["dependency cycle: a -> c -> b -> a"]


def test_one_message_per_cycle_group():
    problems = graph_problems(
        {"a": ["b"], "b": ["a", "c"], "c": ["a"], "x": ["y"], "y": ["x"], "z": []}
    )
    assert problems == ["dependency cycle: a -> b -> a", "dependency cycle: x -> y -> x"]


def test_unknown_need_and_self_need():
    problems = graph_problems({"a": ["ghost"], "b": ["b"]})
    assert problems == [
        "component 'a' needs unknown component 'ghost'",
        "component 'b' needs itself",
    ]


def test_schedule_refuses_a_cycle():
    with pytest.raises(ValueError, match="dependency cycle"):
        schedule({"a": ["b"], "b": ["a"]}, {"a": 1, "b": 1})


def test_empty_graph():
    assert schedule({}, {}).makespan == 0
