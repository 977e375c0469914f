"""The array model is the Pyomo model: `Milp.to_pyomo()` has the same matrix, a block per
section and a component per family, and Pyomo's solvers reach the same optimum."""

import numpy as np
import pyomo.environ as pyo
import pytest

import splitplan
from splitplan.generate import random_instance
from splitplan.milp import build_milp
from splitplan.solvers import standard_form


def dense(sf, order):
    A = np.zeros((len(sf.row_lb), len(order)))
    for i in range(len(sf.row_lb)):
        for p in range(sf.A_start[i], sf.A_start[i + 1]):
            A[i, order[sf.A_index[p]]] += sf.A_value[p]
    return A


def _instance(objective, seed):
    return random_instance(
        9,
        4,
        seed=seed,
        topology="mesh",
        skip_prob=0.5,
        objective=objective,
        memory_fraction=0.4,
        pin_first=True,
        max_latency_factor=2.0,
        encoding_prob=0.3 if seed == 2 else 0.0,
    )


@pytest.mark.parametrize("objective", ["latency", "energy", "throughput", "weighted"])
@pytest.mark.parametrize("seed", range(3))
def test_pyomo_model_has_the_recorded_matrix(objective, seed):
    milp = build_milp(_instance(objective, seed))
    walked, recorded = standard_form(milp.to_pyomo()), milp.matrix
    names = milp.column_names()
    assert sorted(names) == sorted(walked.columns)
    position = {name: j for j, name in enumerate(walked.columns)}
    perm = [position[name] for name in names]  # recorded column j is walked column perm[j]
    np.testing.assert_allclose(dense(walked, range(len(perm))), dense(recorded, perm), atol=1e-12)
    for field in ("row_lb", "row_ub"):
        np.testing.assert_allclose(getattr(walked, field), getattr(recorded, field))
    for field in ("col_lb", "col_ub", "c", "integer"):
        np.testing.assert_array_equal(getattr(walked, field)[perm], getattr(recorded, field))
    assert walked.offset == pytest.approx(recorded.offset)


def test_blocks_are_named_after_the_constraint_families():
    milp = build_milp(
        random_instance(6, 3, seed=1, skip_prob=0.5, memory_fraction=0.3, max_latency_factor=2.0)
    )
    m = milp.to_pyomo()
    blocks = {b.local_name for b in m.component_objects(pyo.Block, descend_into=False)}
    assert {"assign", "transfer", "memory", "latency_limit"} <= blocks
    assert m.assign.one_node.doc == "sum_k x[v,k] = 1"
    assert milp.family("assign", "one_node").doc == "sum_k x[v,k] = 1"
    rows = sum(len(f.keys) for f in milp.families if f.kind == "con")
    cols = sum(len(f.keys) for f in milp.families if f.kind == "var")
    assert (rows, cols) == (len(milp.matrix.row_lb), len(milp.matrix.c))


@pytest.mark.parametrize("objective", ["latency", "throughput"])
def test_a_pyomo_solver_reaches_the_same_optimum(objective):
    if not pyo.SolverFactory("appsi_highs").available(exception_flag=False):
        pytest.skip("Pyomo's appsi_highs interface is not available")
    inst = _instance(objective, 1)
    direct = splitplan.solve(inst)
    portable = splitplan.solve(inst, solver="pyomo:appsi_highs")
    assert direct.status == "optimal" and portable.status == "optimal"
    assert portable.objective == pytest.approx(direct.objective, rel=1e-6)
    assert portable.solver == "pyomo:appsi_highs"


def test_building_stops_at_the_deadline():
    # Regression (issue 15, defect 7): --time-limit did not cover building the model.
    import time

    from splitplan.milp import BuildTimeout

    inst = random_instance(600, 4, seed=0)
    with pytest.raises(BuildTimeout):
        build_milp(inst, deadline=time.perf_counter() - 1.0)
    plan = splitplan.solve(inst, time_limit_s=1e-9)
    assert plan.status == "time_limit" and plan.assignment is None
    assert plan.reasons == ["the time limit ran out while the model was being built"]


def test_a_start_comes_back_when_the_build_runs_out_of_time():
    """The period's MIP start is returned when the limit ends during the build: status
    time_limit, as when the solver stops with a plan in hand, and the reason says so."""
    from splitplan.generate import pipeline_instance

    plan = splitplan.solve(pipeline_instance(50, 4), time_limit_s=1e-6)
    assert plan.status == "time_limit" and plan.solved and plan.evaluation.feasible
    assert plan.bound is None and "while the model was being built" in plan.reasons[0]
