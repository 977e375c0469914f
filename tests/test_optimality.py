"""Both solvers return the brute-force optimum on small random instances, every objective."""

import pytest
from helpers import assert_solvers_reach, brute_force

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
    assert_solvers_reach(inst, brute_force(inst))


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
