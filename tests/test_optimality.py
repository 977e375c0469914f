"""Both solvers return the brute-force optimum on small random instances, every objective."""

import pytest
from conftest import brute_force, close

import splitplan
from splitplan.generate import TOPOLOGIES, random_instance

OBJECTIVES = ("latency", "energy", "throughput", "weighted")
CASES = [
    # (layers, nodes, seed, topology, skip_prob, memory_fraction, pin_first, max_latency_factor)
    (
        n_layers,
        n_nodes,
        seed,
        TOPOLOGIES[seed % 4],
        0.4 * (seed % 3 > 0),
        (None, 0.45, 0.8)[seed % 3],
        seed % 2 == 0,
        (None, 0.6, 1.2)[(seed // 3) % 3],
    )
    for seed, (n_layers, n_nodes) in enumerate(
        [
            (8, 2),
            (6, 3),
            (5, 4),
            (7, 3),
            (6, 4),
            (4, 4),
            (8, 2),
            (6, 3),
            (5, 4),
            (7, 2),
            (5, 3),
            (6, 2),
        ]
    )
]


@pytest.mark.parametrize("objective", OBJECTIVES)
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[3]}-s{c[2]}")
def test_solvers_match_brute_force(case, objective):
    n_layers, n_nodes, seed, topo, skip, mem, pin, lat = case
    inst = random_instance(
        n_layers,
        n_nodes,
        seed=seed,
        topology=topo,
        skip_prob=skip,
        objective=objective,
        memory_fraction=mem,
        pin_first=pin,
        max_latency_factor=lat,
    )
    best = brute_force(inst)
    for solver in ("highs", "ortools"):
        plan = splitplan.solve(inst, solver=solver)
        if best is None:
            assert plan.status == "infeasible", solver
            assert plan.reasons, solver
            continue
        assert plan.status == "optimal", (solver, plan.status)
        assert plan.evaluation.feasible, plan.evaluation.violations
        assert close(plan.objective, best[0]), (solver, plan.objective, best[0])
        assert close(plan.milp_objective, plan.objective), (solver, plan.milp_objective)
        assert plan.bound is not None and plan.bound <= plan.objective * (1 + 1e-6) + 1e-12
        assert plan.gap is not None and plan.gap <= 1e-5


def test_cases_cover_infeasible_and_constrained():
    """The case list exercises pins, memory limits and latency limits, and some are infeasible."""
    assert any(c[5] is not None for c in CASES)
    assert any(c[6] for c in CASES)
    assert any(c[7] is not None for c in CASES)
    infeasible = 0
    for c in CASES:
        inst = random_instance(
            c[0],
            c[1],
            seed=c[2],
            topology=c[3],
            skip_prob=c[4],
            memory_fraction=c[5],
            pin_first=c[6],
            max_latency_factor=c[7],
        )
        infeasible += brute_force(inst) is None
    assert 0 < infeasible < len(CASES)
