"""Helpers shared by the tests: brute force over every assignment, tolerances, and the
solvers-against-brute-force assertions."""

import itertools

import splitplan
from splitplan.cost import tables


def brute_force(inst: splitplan.Instance) -> tuple[float, dict[str, str]] | None:
    """The optimum over every assignment of layers to nodes, costed by the evaluator."""
    tb = tables(inst)
    best = None
    for combo in itertools.product(tb.nodes, repeat=len(tb.layers)):
        assignment = dict(zip(tb.layers, combo, strict=True))
        ev = splitplan.evaluate(inst, assignment)
        if ev.feasible:
            value = ev.objective(inst)
            if best is None or value < best[0]:
                best = (value, assignment)
    return best


def close(a: float, b: float, rel: float = 1e-6) -> bool:
    return abs(a - b) <= rel * max(1.0, abs(a), abs(b))


def assert_solvers_reach(inst: splitplan.Instance, best: tuple | None) -> None:
    """HiGHS and OR-Tools both prove the brute-force optimum `best` (or infeasibility, with a
    reason, when it is None), and the MILP's objective equals the evaluator's."""
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
