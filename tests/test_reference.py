"""The shipped instances' reference optima and LP relaxations (instances/reference.json).

A change to the evaluator, the MILP or a solver that moves an optimum fails here, and so does a
change to the formulation that weakens an LP relaxation (the README's "LP gap 0" claims rest on
them). Stronger relaxations pass; rerun `python instances/make_reference.py` to record them.
"""

import json
from pathlib import Path

import pytest
from helpers import close

import splitplan
from splitplan.instance import Instance, Objective
from splitplan.milp import build_milp
from splitplan.solvers import solve_standard_form

INSTANCES = Path(__file__).resolve().parents[1] / "instances"
REFERENCE = json.loads((INSTANCES / "reference.json").read_text())["instances"]
CASES = [(name, kind) for name, rows in sorted(REFERENCE.items()) for kind in rows]


def test_every_shipped_instance_has_a_reference():
    shipped = {p.name for p in INSTANCES.glob("*.json") if p.name != "reference.json"}
    assert shipped == set(REFERENCE)


def _variant(name: str, kind: str) -> Instance:
    inst = splitplan.load_instance(INSTANCES / name)
    return inst if kind == "file" else inst.with_objective(Objective(kind))


@pytest.mark.parametrize(("name", "kind"), CASES)
def test_reference_optimum_and_lp_relaxation(name, kind):
    ref = REFERENCE[name][kind]
    inst = _variant(name, kind)
    assert inst.objective.kind == ref["objective_kind"]
    ev = splitplan.evaluate(inst, ref["assignment"], ref["encodings"])
    assert ev.feasible and close(ev.objective(inst), ref["optimum"])
    plan = splitplan.solve(inst)
    assert plan.status == "optimal" and close(plan.objective, ref["optimum"]), plan.objective
    lp = solve_standard_form(build_milp(inst).matrix, "highs", relax=True).objective
    assert lp >= ref["lp_relaxation"] - 1e-7 * abs(ref["optimum"]), "the LP relaxation weakened"
    assert lp <= ref["optimum"] * (1 + 1e-7)
