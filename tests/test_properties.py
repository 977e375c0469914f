"""Property tests: the MILP's objective equals the evaluator's cost of the plan it returns, and no
assignment the evaluator accepts beats it."""

from helpers import close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splitplan
from splitplan.generate import TOPOLOGIES, random_instance

instances = st.builds(
    random_instance,
    n_layers=st.integers(1, 14),
    n_nodes=st.integers(1, 5),
    seed=st.integers(0, 10_000),
    topology=st.sampled_from(TOPOLOGIES),
    skip_prob=st.sampled_from([0.0, 0.3, 0.7]),
    objective=st.sampled_from(["latency", "energy", "throughput", "weighted"]),
    memory_fraction=st.sampled_from([None, 0.5, 1.0]),
    pin_first=st.booleans(),
    max_latency_factor=st.sampled_from([None, 0.7, 1.5]),
    with_sink=st.booleans(),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances, data=st.data())
def test_milp_objective_equals_evaluator(inst, data):
    plan = splitplan.solve(inst, solver="highs")
    if not plan.solved:
        assert plan.status == "infeasible" and plan.reasons
        return
    ev = splitplan.evaluate(inst, plan.assignment)
    assert ev.feasible, ev.violations
    assert close(ev.objective(inst), plan.milp_objective), (ev.objective(inst), plan.milp_objective)
    assert plan.objective == ev.objective(inst)
    # No other assignment that satisfies the constraints costs less.
    nodes = inst.node_names
    for _ in range(20):
        other = {name: data.draw(st.sampled_from(nodes)) for name in inst.layer_names}
        ev_other = splitplan.evaluate(inst, other)
        if ev_other.feasible:
            assert ev_other.objective(inst) >= plan.objective * (1 - 1e-6) - 1e-12


@settings(max_examples=25, deadline=None)
@given(inst=instances)
def test_json_round_trip_keeps_the_instance(inst):
    again = splitplan.instance_from_dict(splitplan.instance_to_dict(inst))
    assert splitplan.instance_to_dict(again) == splitplan.instance_to_dict(inst)
