"""The recorded matrix is the Pyomo model's matrix; the model has one block per family."""

import numpy as np
import pyomo.environ as pyo
import pytest

from splitplan.generate import random_instance
from splitplan.milp import build_milp
from splitplan.solvers import standard_form


def dense(sf, order):
    A = np.zeros((len(sf.row_lb), len(order)))
    for i in range(len(sf.row_lb)):
        for p in range(sf.A_start[i], sf.A_start[i + 1]):
            A[i, order[id(sf.columns[sf.A_index[p]])]] += sf.A_value[p]
    return A


@pytest.mark.parametrize("objective", ["latency", "energy", "throughput", "weighted"])
@pytest.mark.parametrize("seed", range(3))
def test_recorded_matrix_equals_the_pyomo_model(objective, seed):
    inst = random_instance(
        9,
        4,
        seed=seed,
        topology="mesh",
        skip_prob=0.5,
        objective=objective,
        memory_fraction=0.4,
        pin_first=True,
        max_latency_factor=2.0,
    )
    milp = build_milp(inst)
    walked, recorded = standard_form(milp.model), milp.matrix
    order = {id(v): j for j, v in enumerate(walked.columns)}
    assert sorted(order) == sorted(id(v) for v in recorded.columns)
    perm = [order[id(v)] for v in recorded.columns]
    np.testing.assert_allclose(dense(walked, order), dense(recorded, order))
    for field in ("row_lb", "row_ub"):
        np.testing.assert_allclose(getattr(walked, field), getattr(recorded, field))
    for field in ("col_lb", "col_ub", "c", "integer"):
        np.testing.assert_array_equal(getattr(walked, field)[perm], getattr(recorded, field))
    assert walked.offset == pytest.approx(recorded.offset)


def test_blocks_are_named_after_the_constraint_families():
    milp = build_milp(
        random_instance(6, 3, seed=1, skip_prob=0.5, memory_fraction=0.3, max_latency_factor=2.0)
    )
    m = milp.model
    blocks = {b.local_name for b in m.component_objects(pyo.Block, descend_into=False)}
    assert {"assign", "transfer", "memory", "latency_limit"} <= blocks
    assert m.assign.one_node.doc == "sum_k x[v,k] = 1"
