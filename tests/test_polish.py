"""`splitplan.polish`: the model re-solved on neighbourhoods of nodes (models/formulation.md §11,
"Polishing"), against brute force."""

import itertools
import random
from pathlib import Path

import pytest
from helpers import brute_force, close

import splitplan
import splitplan.plan
import splitplan.solvers
from splitplan.cost import tables
from splitplan.generate import random_instance
from splitplan.milp import build_milp
from splitplan.polish import _restricted, polish
from splitplan.solvers import SolverResult, solve_milp

OBJECTIVES = ["latency", "energy", "throughput", "weighted"]
ROOT = Path(__file__).resolve().parent.parent


def _instance(objective: str, seed: int, n_layers: int = 6, n_nodes: int = 4):
    return random_instance(
        n_layers,
        n_nodes,
        seed,
        topology="mesh",
        skip_prob=0.3,
        objective=objective,
        memory_fraction=0.4,
    )


def _feasible_plans(inst):
    tb = tables(inst)
    for combo in itertools.product(tb.nodes, repeat=len(tb.layers)):
        plan = dict(zip(tb.layers, combo, strict=True))
        ev = splitplan.evaluate(inst, plan)
        if ev.feasible:
            yield ev.objective(inst), plan


def _neighbourhood_optimum(inst, plan, group: set[str], layers: set[str] | None = None) -> float:
    """Brute force over the plans that keep every layer off `group` (or, given, not in
    `layers`) in place and move the others within `group`."""
    free = [
        name
        for name in inst.layer_names
        if (plan[name] in group if layers is None else name in layers)
    ]
    best = float("inf")
    for combo in itertools.product(sorted(group), repeat=len(free)):
        cand = dict(plan) | dict(zip(free, combo, strict=True))
        ev = splitplan.evaluate(inst, cand)
        if ev.feasible:
            best = min(best, ev.objective(inst))
    return best


@pytest.mark.parametrize("solver", ["highs", "ortools", "ortools-cpsat"])
@pytest.mark.parametrize("objective", OBJECTIVES)
def test_a_neighbourhood_model_has_the_brute_force_optimum_of_its_neighbourhood(solver, objective):
    rng = random.Random(7)
    for seed in range(3):
        inst = _instance(objective, seed)
        plans = sorted(_feasible_plans(inst), key=lambda p: p[0])
        _, plan = plans[len(plans) // 2]  # a middling feasible plan
        tb = tables(inst)
        incumbent = splitplan.evaluate(inst, plan).period_s if objective == "throughput" else None
        milp = build_milp(inst, incumbent_s=incumbent)
        group = set(rng.sample(range(len(tb.nodes)), 2)) | {tb.node_index[plan[tb.layers[0]]]}
        result, _ = solve_milp(_restricted(milp, plan, group), solver)
        found = milp.read_assignment(result.values)
        ev = splitplan.evaluate(inst, found)
        names = {tb.nodes[k] for k in group}
        assert ev.feasible
        assert all(found[n] == plan[n] for n in inst.layer_names if plan[n] not in names)
        assert all(found[n] in names for n in inst.layer_names if plan[n] in names)
        assert close(ev.objective(inst), _neighbourhood_optimum(inst, plan, names)), (seed, group)
        # a window of layers, free on every node
        start = rng.randrange(len(tb.layers) - 2)
        window = set(range(start, start + 3))
        every = set(range(len(tb.nodes)))
        result, _ = solve_milp(_restricted(milp, plan, every, window), solver)
        found = milp.read_assignment(result.values)
        ev = splitplan.evaluate(inst, found)
        moved = {tb.layers[v] for v in window}
        assert ev.feasible
        assert all(found[n] == plan[n] for n in inst.layer_names if n not in moved)
        optimum = _neighbourhood_optimum(inst, plan, set(tb.nodes), moved)
        assert close(ev.objective(inst), optimum), (seed, window)


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_polish_ends_optimal_on_every_neighbourhood_of_its_last_size(objective):
    """With no deadline polish stops after passes over every level that improved nothing: its
    plan is then the best of each of the largest node groups (all nodes but one, on 4 nodes;
    for the period, those that hold the bottleneck) and of each layer window, by brute force."""
    from splitplan.polish import _bottleneck, _window_lengths, _windows

    for seed in range(2):
        inst = _instance(objective, seed)
        plans = sorted(_feasible_plans(inst), key=lambda p: p[0])
        _, plan = plans[-1]
        out = polish(build_milp(inst), plan, deadline=float("inf"))
        nodes = [n.name for n in inst.network.nodes]
        ev = splitplan.evaluate(inst, out.assignment)
        core = _bottleneck(inst, ev) if objective == "throughput" else frozenset()
        for group in itertools.combinations(nodes, len(nodes) - 1):
            if core <= set(group):
                best = _neighbourhood_optimum(inst, out.assignment, set(group))
                assert out.cost <= best * (1 + 1e-6) + 1e-12, (seed, group)
        lengths = _window_lengths(len(inst.layer_names))
        assert lengths
        for length in lengths:
            for window in _windows(len(inst.layer_names), length, random.Random(0)):
                layers = {inst.layer_names[v] for v in window}
                best = _neighbourhood_optimum(inst, out.assignment, set(nodes), layers)
                assert out.cost <= best * (1 + 1e-6) + 1e-12, (seed, sorted(window))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_polish_never_worsens_and_reports_the_evaluators_cost(objective):
    for seed in range(3):
        inst = _instance(objective, seed)
        plans = sorted(_feasible_plans(inst), key=lambda p: p[0])
        cost, plan = plans[-1]  # the worst feasible plan
        milp = build_milp(inst)
        out = polish(milp, plan, deadline=float("inf"))
        ev = splitplan.evaluate(inst, out.assignment, out.encodings)
        assert ev.feasible
        assert close(out.cost, ev.objective(inst))
        assert out.cost <= cost
        assert out.cost >= plans[0][0] * (1 - 1e-9)
        if out.improvements:
            assert close(out.milp_objective, out.cost)


def test_polish_refuses_an_infeasible_plan():
    inst = _instance("latency", 0)
    plan = {name: inst.network.nodes[1].name for name in inst.layer_names}
    assert not splitplan.evaluate(inst, plan).feasible  # all on one node breaks its memory
    with pytest.raises(ValueError, match="feasible plan"):
        polish(build_milp(inst), plan, deadline=float("inf"))


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_solve_polishes_when_the_solver_stalls(monkeypatch, objective):
    """The full model's solve returns nothing (as when it stops at the limit before a plan):
    `solve` polishes the MIP start within the share it kept, and its plan goes through the same
    checks as the solver's (the MILP's objective of the point equals the evaluator's cost)."""
    inst = _instance(objective, 1, n_layers=7)
    assert any(tables(inst).memory_may_bind(k) for k in range(4))
    # the start as given (for the period `solve` would first improve it by the pipeline search)
    monkeypatch.setattr(splitplan.plan, "_improved", lambda inst, initial, budget: dict(initial))
    plans = sorted(_feasible_plans(inst), key=lambda p: p[0])
    worst, start = plans[-1]
    calls = []

    def stalled(milp, solver="highs", **kw):
        calls.append(kw.get("time_limit_s"))
        if len(calls) == 1:
            empty = SolverResult("time_limit", None, None, None, 1e-12, 1e-6, 0.0, solver, 0, "")
            return empty, milp.matrix
        return solve_milp(milp, solver, **kw)

    monkeypatch.setattr(splitplan.solvers, "solve_milp", stalled)
    plan = splitplan.solve(inst, time_limit_s=30, initial=start, polish="after")
    assert len(calls) > 1
    assert calls[0] < 30 * (1 - splitplan.plan.POLISH_SHARE) + 1e-9
    assert plan.polish_improvements >= 1
    assert plan.objective < worst
    assert close(plan.objective, splitplan.evaluate(inst, plan.assignment).objective(inst))
    assert close(plan.milp_objective, plan.objective)
    assert plan.status == "time_limit"  # no bound was proven
    assert plan.to_dict()["polish_improvements"] == plan.polish_improvements
    assert "better plans" in plan.summary()


@pytest.mark.parametrize("objective", OBJECTIVES)
def test_solve_polishes_beside_a_stalled_solver(monkeypatch, objective):
    """As above, with the search in a second process while the solver has the whole limit:
    its plans come back and pass the same checks."""
    inst = _instance(objective, 1, n_layers=7)
    monkeypatch.setattr(splitplan.plan, "_improved", lambda inst, initial, budget: dict(initial))
    worst, start = max(_feasible_plans(inst), key=lambda p: p[0])
    calls = []

    def stalled(milp, solver="highs", **kw):
        calls.append(kw)
        empty = SolverResult("time_limit", None, None, None, 1e-12, 1e-6, 0.0, solver, 0, "")
        return empty, milp.matrix

    monkeypatch.setattr(splitplan.solvers, "solve_milp", stalled)
    plan = splitplan.solve(inst, time_limit_s=3, initial=start, polish="beside")
    assert len(calls) == 1
    assert calls[0]["time_limit_s"] > 2  # the whole limit, less the build
    assert callable(calls[0]["on_incumbent"])
    assert plan.polish_improvements >= 1
    assert 0 < plan.polish_time_s < 3 + 1
    assert plan.objective < worst
    assert close(plan.objective, splitplan.evaluate(inst, plan.assignment).objective(inst))
    assert close(plan.milp_objective, plan.objective)
    assert plan.status == "time_limit"


def test_the_search_beside_starts_from_the_solvers_first_plan_and_takes_better_ones():
    """Without a feasible start the second process waits for the solver's first plan; a better
    plan from the solver replaces the search's own (`polish._take`)."""
    import time

    from splitplan.polish import PolishProcess

    inst = _instance("latency", 2, n_layers=7)
    plans = sorted(_feasible_plans(inst), key=lambda p: p[0])
    milp = build_milp(inst)

    def point(plan):
        res, _ = solve_milp(_restricted(milp, plan, set()), "highs", start=milp.start_vector(plan))
        return res.values

    proc = PolishProcess(milp, None, time.perf_counter() + 20)
    proc.offer(point(plans[-1][1]))  # the worst plan: the search starts there
    out = proc.finish(time.perf_counter() + 20)
    assert proc.completed
    assert out is not None and out.improvements >= 1
    assert close(out.cost, plans[0][0])  # 7 layers: the search reaches the optimum

    class Offers:
        def __init__(self):
            self.sent = [point(plans[0][1])]  # the optimum, from "the solver"

        def latest(self):
            return self.sent.pop() if self.sent else None

        def stopped(self):
            return False

        def improved(self, best):
            raise AssertionError("nothing beats the optimum")

    out = polish(milp, plans[-1][1], float("inf"), exchange=Offers())
    assert close(out.cost, plans[0][0]) and out.improvements == 0
    assert close(out.milp_objective, out.cost)


def test_solve_does_not_polish_a_proven_optimum():
    inst = _instance("latency", 1, n_layers=7)
    for mode in ("beside", "after"):
        plan = splitplan.solve(inst, time_limit_s=30, polish=mode)
        assert plan.status == "optimal"
        assert plan.polish_time_s == 0.0
        assert close(plan.objective, brute_force(inst)[0])


def test_solve_refuses_an_unknown_polish_mode():
    with pytest.raises(ValueError, match="polish must be one of"):
        splitplan.solve(_instance("latency", 1), polish="sometimes")


def test_polish_starts_from_the_mip_start_unless_the_solvers_plan_is_strictly_better(monkeypatch):
    """Of two plans of equal cost, polishing starts from the MIP start (`plan._polished`)."""
    import splitplan.polish
    from splitplan.generate import pipeline_instance
    from splitplan.plan import _polished

    inst = pipeline_instance(n_layers=5, n_nodes=3, family="identical", seed=0)
    by_cost: dict[float, list[dict]] = {}
    for cost, plan in _feasible_plans(inst):
        by_cost.setdefault(round(cost, 12), []).append(plan)
    ties = next(plans for _, plans in sorted(by_cost.items()) if len(plans) > 1)
    worse = max(by_cost)
    seen = []
    monkeypatch.setattr(
        splitplan.polish, "polish", lambda milp, plan, *a, **k: seen.append(plan) or None
    )
    milp = build_milp(inst)
    start = splitplan.evaluate(inst, ties[0])
    _polished(milp, "highs", (ties[1], {}), start, deadline=0.0)
    assert seen[-1] == ties[0]  # a tie: the start
    _polished(milp, "highs", (ties[1], {}), splitplan.evaluate(inst, by_cost[worse][0]), 0.0)
    assert seen[-1] == ties[1]  # the solver's plan is better
    _polished(milp, "highs", None, start, 0.0)
    assert seen[-1] == ties[0]


def test_the_search_beside_takes_an_instance_file_with_its_read_only_mappings():
    """An instance read from a file holds read-only mappings (pins, measured times), which
    `pickle` refuses by itself: the second process gets them all the same."""
    import time

    from splitplan.polish import PolishProcess

    inst = splitplan.load_instance(ROOT / "instances" / "skip-dag.json")
    assert inst.constraints.pin
    plan = splitplan.solve(inst)
    proc = PolishProcess(build_milp(inst), plan.assignment, time.perf_counter() + 20)
    out = proc.finish(time.perf_counter() + 20)
    assert proc.completed
    assert out is None  # the optimum: nothing better
