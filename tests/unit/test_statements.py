"""The demo's line of PostgreSQL statements a hop: the components' roles only, the busiest first."""

from deploy.statements import per_hop


def test_the_components_statements_are_shared_over_the_hops_busiest_first() -> None:
    calls = {"bureau": 900, "gateway": 600, "planning": 300, "concord": 5_000, "reporter": 8}
    line = per_hop(calls, 100, frozenset({"bureau", "gateway", "planning", "water"}))
    assert line == "PostgreSQL: 1,800 statements, 18.0 a hop (bureau 9.0, gateway 6.0, planning 3.0)"


def test_a_run_without_hops_says_so_instead_of_dividing_by_none() -> None:
    assert per_hop({"bureau": 12}, 0, frozenset({"bureau"})) == "PostgreSQL: 12 statements, and no hop to share them"
