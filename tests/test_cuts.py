"""The valid inequalities of `splitplan.cuts` never cut off an optimum (brute force), raise the
LP relaxation's bound, and leave the other objectives' models untouched."""

import itertools
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_solvers_reach, brute_force

import splitplan
from splitplan.cost import tables
from splitplan.cuts import (
    crossing_bound,
    crossing_sets,
    period_lower_bound,
    work_bound,
)
from splitplan.generate import pipeline_instance, random_instance
from splitplan.instance import RAW
from splitplan.milp import build_milp
from splitplan.solvers import solve_standard_form


def _variants(objective: str) -> list:
    """Tiny instances over the options the bounds read: topologies, skips (DAGs), memory that
    binds, pins, no sink, a sink away from the source, encodings (smaller forms)."""
    out = []
    for seed in range(6):
        topo = ("chain", "star", "mesh")[seed % 3]
        out.append(random_instance(4, 3, seed=seed, topology=topo, objective=objective))
    out.append(random_instance(5, 3, seed=1, skip_prob=0.6, objective=objective))
    out.append(random_instance(5, 3, seed=2, memory_fraction=0.3, objective=objective))
    out.append(
        random_instance(5, 3, seed=3, memory_fraction=0.2, skip_prob=0.5, objective=objective)
    )
    out.append(random_instance(4, 3, seed=4, pin_first=True, objective=objective))
    out.append(random_instance(4, 3, seed=5, with_sink=False, objective=objective))
    out.append(
        random_instance(3, 3, seed=6, topology="mesh", encoding_prob=0.8, objective=objective)
    )
    out.append(random_instance(3, 2, seed=9, encoding_prob=1.0, objective=objective))
    inst = random_instance(4, 4, seed=7, topology="chain", objective=objective)
    out.append(replace(inst, network=replace(inst.network, sink="n3"), name="sink-n3"))
    inst = random_instance(4, 3, seed=8, topology="chain", objective=objective)
    out.append(replace(inst, network=replace(inst.network, source="n2"), name="source-n2"))
    return out


THROUGHPUT = _variants("throughput")


def brute_force_with_forms(inst: splitplan.Instance) -> tuple | None:
    """The optimum over every assignment and, for tensors with encodings (§10), every form."""
    tb = tables(inst)
    coded = [t for t in tb.tensors if t.encodings]
    if not coded:
        return brute_force(inst)
    choices = [[RAW, *(f.name for f in t.encodings)] for t in coded]
    best = None
    for combo in itertools.product(tb.nodes, repeat=len(tb.layers)):
        assignment = dict(zip(tb.layers, combo, strict=True))
        for forms in itertools.product(*choices):
            encodings = dict(zip([t.name for t in coded], forms, strict=True))
            ev = splitplan.evaluate(inst, assignment, encodings)
            if ev.feasible and (best is None or ev.objective(inst) < best[0]):
                best = (ev.objective(inst), assignment)
    return best


@pytest.fixture(scope="module")
def optima() -> dict:
    return {inst.name + str(i): brute_force_with_forms(inst) for i, inst in enumerate(THROUGHPUT)}


@pytest.mark.parametrize("i", range(len(THROUGHPUT)))
def test_period_bounds_never_exceed_the_optimum(i, optima):
    inst = THROUGHPUT[i]
    best = optima[inst.name + str(i)]
    assert best is not None
    tb = tables(inst)
    assert period_lower_bound(tb) <= best[0]
    # every set of nodes around the source or sink, not only those the model uses
    K = len(tb.nodes)
    for size in range(1, K):
        for S in itertools.combinations(range(K), size):
            assert crossing_bound(tb, list(S)) <= best[0] * (1 + 1e-9), S


def _fast_node_limited(seed: int, fraction: float = 0.3) -> splitplan.Instance:
    """A hetero pipeline instance whose fastest node holds only `fraction` of the parameters
    (plus the largest working set): it cannot take the share of the work its speed would give."""
    inst = pipeline_instance(6, 3, seed=seed)
    tb = tables(inst)
    fast = int(tb.compute_s.sum(axis=0).argmin())
    cap = fraction * float(tb.param_bytes.sum()) + float(tb.work_bytes.max())
    nodes = tuple(
        replace(n, memory_bytes=cap) if k == fast else n for k, n in enumerate(inst.network.nodes)
    )
    return replace(inst, network=replace(inst.network, nodes=nodes), name=f"fast-limited-{seed}")


# Instances where the work every node shares sets the bound: identical workers, and nodes whose
# memory keeps the fastest from taking its share (the memory duals of `work_bound` matter).
WORK = [
    pipeline_instance(5, 3, seed=1, family="identical"),
    pipeline_instance(5, 3, seed=2),
    _fast_node_limited(1),
    _fast_node_limited(3),
    pipeline_instance(6, 3, seed=4, family="identical", memory_fraction=0.35),
    pipeline_instance(5, 3, seed=5, skip_prob=0.5, memory_fraction=0.4),
]


@pytest.mark.parametrize("i", range(len(WORK)))
def test_work_bound_never_exceeds_the_optimum(i):
    inst = WORK[i]
    best = brute_force(inst)
    assert best is not None
    tb = tables(inst)
    assert work_bound(tb) <= best[0] * (1 + 1e-9)
    assert period_lower_bound(tb) <= best[0] * (1 + 1e-9)


def test_work_bound_on_identical_workers_is_the_average_work():
    """Without memory limits, identical nodes share the work evenly at best: the bound is the
    total work over the nodes, computed here without the LP."""
    for inst in [WORK[0], pipeline_instance(40, 6, seed=7, family="identical")]:
        tb = tables(inst)
        expected = tb.compute_s.min(axis=1).sum() / len(tb.nodes)
        assert work_bound(tb) == pytest.approx(expected, rel=1e-9)


def test_work_bound_reads_the_memory_limits():
    """Where a node's memory keeps it from its share, the bound is higher than the same
    instance's without the limits, and still at most the optimum."""
    for inst in WORK[2:4]:
        free = replace(
            inst,
            network=replace(
                inst.network,
                nodes=tuple(replace(n, memory_bytes=None) for n in inst.network.nodes),
            ),
        )
        assert work_bound(tables(inst)) > work_bound(tables(free)) * (1 + 1e-3)


def test_the_bounds_are_not_vacuous(optima):
    """On some instances the crossing bound is the optimum (the device's link is the bottleneck),
    and on some it is above the LP relaxation without cuts."""
    tight = above_lp = 0
    for i, inst in enumerate(THROUGHPUT):
        best = optima[inst.name + str(i)][0]
        lb = period_lower_bound(tables(inst))
        tight += lb >= best * (1 - 1e-6)
        lp = solve_standard_form(build_milp(inst, cuts=False).matrix, relax=True).objective
        above_lp += lb > lp * (1 + 1e-3)
    assert tight >= 3 and above_lp >= 3, (tight, above_lp)


@pytest.mark.parametrize("i", range(len(THROUGHPUT)))
def test_milp_with_cuts_reaches_brute_force(i, optima):
    inst = THROUGHPUT[i]
    assert_solvers_reach(inst, optima[inst.name + str(i)])


@pytest.mark.parametrize("i", range(len(THROUGHPUT)))
def test_lp_bound_rises_and_stays_below_the_optimum(i, optima):
    inst = THROUGHPUT[i]
    best = optima[inst.name + str(i)][0]
    without = solve_standard_form(build_milp(inst, cuts=False).matrix, relax=True).objective
    with_cuts = solve_standard_form(build_milp(inst).matrix, relax=True).objective
    assert with_cuts >= without * (1 - 1e-9) - 1e-12
    assert with_cuts <= best * (1 + 1e-7)


def test_crossing_sets_grow_from_the_source():
    inst = random_instance(4, 5, seed=0, topology="chain", objective="throughput")
    sets = crossing_sets(tables(inst))
    assert sets == [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3]]


def test_memory_excludes_the_all_on_device_option():
    """With the device too small to hold the model, the bound cannot be the all-on-device period:
    it drops to what a split costs, and stays below the optimum."""
    inst = random_instance(5, 3, seed=2, memory_fraction=0.3, objective="throughput")
    tb = tables(inst)
    best = brute_force(inst)[0]
    assert tb.param_bytes.sum() + tb.work_bytes.max() > tb.memory_bytes[0]
    assert crossing_bound(tb, [0]) <= best
    roomy = random_instance(5, 3, seed=2, objective="throughput")
    assert crossing_bound(tables(roomy), [0]) <= brute_force(roomy)[0]


@pytest.mark.parametrize("objective", ["latency", "energy", "weighted"])
def test_other_objectives_are_untouched(objective):
    """The cuts are for the period only: the other objectives' matrices are unchanged."""
    for inst in _variants(objective)[:4]:
        a, b = build_milp(inst).matrix, build_milp(inst, cuts=False).matrix
        assert a.A_value.shape == b.A_value.shape
        assert np.array_equal(a.A_index, b.A_index) and np.array_equal(a.row_lb, b.row_lb)


def test_bounds_benchmark_quick_mode_runs(tmp_path):
    """benchmarks/bounds.py --quick runs and reports both models (timings are never asserted)."""
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "bounds.py"
    out = tmp_path / "bounds.json"
    proc = subprocess.run(
        [sys.executable, str(script), "--quick", "--time-limit", "0.5", "-o", str(out)],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| throughput chain 30x4 | yes |" in proc.stdout
    assert out.exists()
