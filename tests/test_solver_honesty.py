"""Solvers must not claim what is not true (issue 13): `optimal` only within the stated gap of a
proven bound, `infeasible` only when no plan exists, for HiGHS, SCIP and CP-SAT alike."""

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import brute_force
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splitplan
from splitplan import generate, pipeline, solvers
from splitplan.generate import TOPOLOGIES, random_instance
from splitplan.milp import build_milp

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(__file__).resolve().parent / "data"
SOLVERS = ("highs", "ortools", "ortools-cpsat")
# Found by brute force over random instances (energy objective, memory limits, max_latency_s):
# SCIP 10 (OR-Tools 9.15) said "optimal" for plans 2.5x (scip-*4x2), 2.3x (6x3) and 5.3x (4x3)
# the optimum, HiGHS 1.12's presolve for a plan 1.7x the optimum (highs-*6x3; solvers._highs
# runs HiGHS on MIPs without presolve since).
CASES = sorted(DATA.glob("*.json"))
REL = 1e-6  # the default stated relative gap (plan.solve's mip_rel_gap)


def within(value: float, optimum: float) -> bool:
    """`value` is the optimum within the stated gap (and never below it)."""
    tol = REL * abs(optimum) + 1e-12
    return optimum - tol <= value <= optimum + tol


def assert_honest(inst: splitplan.Instance, plan: splitplan.Plan, best) -> None:
    """The plan's claims agree with brute force (`best` = (optimum, assignment) or None)."""
    if best is None:
        assert plan.status == "infeasible", (plan.solver, plan.status, plan.reasons)
        return
    assert plan.status != "infeasible", (plan.solver, plan.reasons)
    assert plan.solved and plan.evaluation.feasible, (plan.solver, plan.status, plan.reasons)
    assert plan.objective >= best[0] - REL * abs(best[0]) - 1e-12, (plan.solver, plan.objective)
    if plan.bound is not None:
        assert plan.bound <= best[0] + REL * abs(best[0]) + 1e-12, (plan.solver, plan.bound)
    if plan.status == "optimal":
        assert within(plan.objective, best[0]), (plan.solver, plan.objective, best[0])
        assert within(plan.milp_objective, plan.objective), (plan.solver, plan.milp_objective)


# --------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("name", ["memory-multisplit", "skip-dag"])
def test_cpsat_shipped_instances(name):
    """CP-SAT through pywraplp said infeasible on memory-multisplit (continuous working-set
    columns became Booleans) and optimal 6e-4 above the optimum on skip-dag (its 2^16 objective
    scaling)."""
    inst = splitplan.load_instance(ROOT / "instances" / f"{name}.json")
    reference = splitplan.solve(inst, solver="highs")
    assert reference.status == "optimal"
    plan = splitplan.solve(inst, solver="ortools-cpsat")
    assert plan.status == "optimal", (plan.status, plan.reasons)
    assert within(plan.objective, reference.objective), (plan.objective, reference.objective)
    assert plan.bound <= reference.objective * (1 + 1e-12)


def test_cpsat_cli_memory_multisplit(capsys):
    from splitplan.cli import main

    path = ROOT / "instances" / "memory-multisplit.json"
    assert main(["solve", str(path), "--solver", "ortools-cpsat", "--json"]) == 0
    assert '"status": "optimal"' in capsys.readouterr().out


# HiGHS 1.12's dominated-column presolve rule cuts off this optimum; switching the rule off
# crashed HiGHS elsewhere, so it is a known defect of the solver, not worked around
# (models/formulation.md §9 "Solvers"). The test starts passing when HiGHS is fixed.
KNOWN: set[tuple[str, str]] = set()  # (case, solver) pairs a solver still gets wrong


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("path", CASES, ids=[p.stem for p in CASES])
def test_regression_cases(path, solver, request):
    """Every backend, with and without the optimum as a MIP start, proves the brute-force
    optimum."""
    if (path.stem, solver) in KNOWN:
        request.applymarker(pytest.mark.xfail(reason="HiGHS 1.12 presolve defect", strict=False))
    inst = splitplan.load_instance(path)
    best = brute_force(inst)
    assert best is not None
    for start in (None, best[1]):
        plan = splitplan.solve(inst, solver=solver, initial=start)
        assert plan.status == "optimal", (solver, plan.status, plan.reasons)
        assert within(plan.objective, best[0]), (solver, start, plan.objective, best[0])
        assert_honest(inst, plan, best)


@pytest.mark.parametrize("seed", range(6))
def test_cpsat_memory_limited_with_start(seed):
    """Memory-limited random instances that HiGHS proves, with and without a feasible MIP start
    that the evaluator confirms: CP-SAT finds the same optimum, never "infeasible"."""
    inst = random_instance(
        8, 3, seed=seed, topology="mesh", skip_prob=0.3, memory_fraction=0.35, objective="energy"
    )
    reference = splitplan.solve(inst, solver="highs")
    assert reference.status == "optimal"
    start = {name: inst.node_names[0] for name in inst.layer_names}
    feasible_start = splitplan.evaluate(inst, start).feasible
    for initial in (None, start if feasible_start else reference.assignment):
        plan = splitplan.solve(inst, solver="ortools-cpsat", initial=initial)
        assert plan.status == "optimal", (plan.status, plan.reasons)
        assert within(plan.objective, reference.objective)


# --------------------------------------------------------------------------- the verdict


def _claims(monkeypatch, solver: str, termination: str) -> None:
    """Make `solver`'s backend return no point and the given termination."""
    fake = solvers._Raw(termination, None, None, 0.0, None, "fake")
    name = {"ortools": "_scip", "ortools-cpsat": "_cpsat", "highs": "_highs"}[solver]
    monkeypatch.setattr(solvers, name, lambda *a, **k: fake)


def test_infeasible_claim_refuted_by_a_feasible_start(monkeypatch, tiny_instance):
    _claims(monkeypatch, "ortools-cpsat", "infeasible")
    start = {"a": "dev", "b": "srv"}
    assert splitplan.evaluate(tiny_instance, start).feasible
    plan = splitplan.solve(tiny_instance, solver="ortools-cpsat", initial=start)
    assert plan.status == "feasible" and plan.assignment == start
    assert plan.bound is None and any("claim is wrong" in r for r in plan.reasons)


@pytest.mark.parametrize("solver", ["ortools", "ortools-cpsat"])
def test_ortools_infeasible_claim_is_checked_with_highs(monkeypatch, tiny_instance, solver):
    _claims(monkeypatch, solver, "infeasible")
    plan = splitplan.solve(tiny_instance, solver=solver)
    assert plan.status == "error" and not plan.solved
    assert "HiGHS found a plan" in plan.reasons[0]


def test_time_limit_without_a_plan(monkeypatch, tiny_instance):
    _claims(monkeypatch, "highs", "time_limit")
    plan = splitplan.solve(tiny_instance, solver="highs", time_limit_s=1.0)
    assert plan.status == "time_limit" and not plan.solved


def test_objective_disagreement_is_surfaced(monkeypatch, tiny_instance):
    """If the MILP's objective and the evaluator's cost of the same plan disagree (a bug), the
    plan is returned without a bound and the reason says so."""
    real = solvers.solve_standard_form

    def skewed(*args, **kw):
        result = real(*args, **kw)
        result.objective *= 1.01
        return result

    monkeypatch.setattr(solvers, "solve_standard_form", skewed)
    plan = splitplan.solve(tiny_instance, solver="highs")
    assert plan.status == "feasible" and plan.bound is None
    assert any("disagree" in r for r in plan.reasons)


def test_optimal_needs_the_gap_closed(monkeypatch, tiny_instance):
    """A solver that says optimal with a bound below the stated gap gets `feasible`."""
    real = solvers.solve_standard_form

    def weak(*args, **kw):
        result = real(*args, **kw)
        result.bound = result.objective * 0.99
        return result

    monkeypatch.setattr(solvers, "solve_standard_form", weak)
    # the tables' own bound (the objective floor) proves this tiny instance optimal by itself;
    # without it the verdict rests on the solver's bound alone
    monkeypatch.setattr(splitplan.milp, "_objective_floor", lambda *a: 0.0)
    plan = splitplan.solve(tiny_instance, solver="highs")
    assert plan.termination == "optimal" and plan.status == "feasible"
    assert plan.gap == pytest.approx(0.01, rel=1e-6)
    assert any("reported optimal" in r for r in plan.reasons)


@pytest.mark.parametrize("solver", SOLVERS)
def test_time_limit_is_read_from_the_solver(solver):
    """The termination says time_limit because the solver said so (SCIP through MathOpt, HiGHS'
    model status, CP-SAT stopping without proof), whatever the elapsed time."""
    milp = build_milp(random_instance(150, 5, seed=0, objective="throughput"))
    result, _ = solvers.solve_milp(milp, solver, time_limit_s=0.001)
    assert result.termination == "time_limit", (result.termination, result.message)
    assert result.status in ("time_limit", "feasible")


def _interrupted_result_is_honest(result: solvers.SolverResult) -> None:
    """A run stopped by the clock: `time_limit`, and `optimal` only with the gap closed."""
    assert result.termination in ("time_limit", "optimal"), (result.termination, result.message)
    if result.termination == "time_limit":
        assert result.status in ("time_limit", "feasible", "optimal")
    if result.status == "optimal":
        assert solvers.gap_closed(result.objective, result.bound, result.abs_gap, result.rel_gap)
    if result.values is None:
        assert result.objective is None and result.status == "time_limit"


@pytest.mark.parametrize("start", [False, True])
def test_highs_is_not_started_after_the_deadline(start):
    """With no time left (or less than HiGHS' unchecked set-up needs) HiGHS is not run: a
    well-formed `time_limit` result without a point or a bound, MIP start or not."""
    inst = generate.pipeline_instance(60, 6)
    milp = build_milp(inst)
    kw = {"start": milp.start_vector(pipeline.best_start(inst, 1.0))} if start else {}
    result, _ = solvers.solve_milp(milp, "highs", time_limit_s=0.0, **kw)
    assert result.termination == "time_limit" and result.status == "time_limit"
    assert result.values is None and result.objective is None and result.bound is None
    assert "before HiGHS was run" in result.message


def test_highs_stopped_by_a_short_limit_claims_nothing_unproven():
    """HiGHS started with a limit far too short for the model returns at its limit: no claim of
    optimality unless its bound closes the gap, here and in `plan.solve`'s verdict."""
    inst = generate.pipeline_instance(300, 8)
    milp = build_milp(inst)
    start = milp.start_vector(pipeline.best_start(inst, 1.0))
    # 1.5 s is above the set-up estimate (HIGHS_ROOT_S_PER_NZ): HiGHS runs, and stops itself
    result, _ = solvers.solve_milp(milp, "highs", time_limit_s=1.5, start=start)
    assert "before HiGHS was run" not in result.message
    _interrupted_result_is_honest(result)
    plan = splitplan.solve(inst, "highs", time_limit_s=1.0)
    assert plan.solved and plan.evaluation.feasible  # the MIP start, at least
    # feasible: the limit ran out while the model was being built (the start is returned)
    assert plan.status in ("time_limit", "feasible", "optimal"), (plan.status, plan.reasons)
    if plan.status == "optimal":
        assert plan.bound is not None and plan.gap is not None and plan.gap <= REL
    elif plan.bound is not None:
        assert plan.bound <= plan.objective


def test_plan_when_highs_is_skipped(monkeypatch):
    """`plan.solve` when HiGHS never runs (every model too big for the time left): the MIP start
    comes back as `time_limit` with only the tables' bound (the model's objective floor, which
    for the period holds `cuts.period_lower_bound`); without a start, no plan and the reason."""
    monkeypatch.setattr(solvers, "HIGHS_ROOT_S_PER_NZ", 1e3)
    inst = generate.pipeline_instance(20, 3)
    plan = splitplan.solve(inst, "highs", time_limit_s=30.0)
    assert plan.status == "time_limit" and plan.termination == "time_limit"
    assert plan.solved and plan.evaluation.feasible
    assert plan.bound == build_milp(inst).matrix.objective_floor <= plan.objective
    latency = random_instance(20, 3, seed=1, objective="latency")
    plan = splitplan.solve(latency, "highs", time_limit_s=30.0)
    assert plan.status == "time_limit" and not plan.solved
    assert plan.reasons == ["no feasible plan found within the time limit of 30.0 s"]


# --------------------------------------------------------------------------- scaling


def test_scaling_is_exact_and_near_one():
    inst = random_instance(10, 3, seed=3, objective="throughput", memory_fraction=0.5)
    sf = build_milp(inst).matrix
    scaled, units = solvers.scale(sf)
    for factors in (units.row_scale, units.col_unit, np.array([units.objective_unit])):
        assert np.all(np.log2(factors) == np.round(np.log2(factors)))  # powers of two
    rows = np.repeat(np.arange(len(sf.row_lb)), np.diff(sf.A_start))
    row_max = np.zeros(len(sf.row_lb))
    np.maximum.at(row_max, rows, np.abs(scaled.A_value))
    assert np.all((row_max[row_max > 0] >= 2**-0.5) & (row_max[row_max > 0] <= 2**0.5))
    assert 2**-0.5 <= np.abs(scaled.c).max() <= 2**0.5
    # Unscaling gives back the original numbers exactly.
    assert np.array_equal(
        scaled.A_value / units.row_scale[rows] / units.col_unit[sf.A_index], sf.A_value
    )
    assert np.array_equal(scaled.c * units.objective_unit / units.col_unit, sf.c)


def fast_cluster(seed: int) -> splitplan.Instance:
    """A small throughput DAG on a fast mesh: periods of about 1e-6 s."""
    inst = random_instance(7, 3, seed=seed, objective="throughput", topology="mesh", skip_prob=0.3)
    layers = tuple(replace(la, flops=la.flops * 1e-5, time_s={}) for la in inst.dnn.layers)
    links = tuple(
        replace(k, bandwidth_bytes_per_s=k.bandwidth_bytes_per_s * 1e4, latency_s=0.0)
        for k in inst.network.links
    )
    return replace(
        inst,
        dnn=replace(inst.dnn, layers=layers),
        network=replace(inst.network, links=links),
    )


@pytest.mark.parametrize("solver", SOLVERS)
@pytest.mark.parametrize("seed", [1, 2, 6, 7])
def test_microsecond_periods(seed, solver):
    """With the period P in seconds, its coefficient 1 dwarfed microsecond loads in the rows
    P >= load, which a feasibility tolerance of 1e-7 then let P undercut by 10 %: HiGHS returned
    plans 8-30 % above the brute-force optimum as optimal (seeds found by a sweep over 300).
    `solvers.scale` now counts P in units of a typical load for every backend."""
    inst = fast_cluster(seed)
    best = brute_force(inst)
    # started from everything on the source, not from the pipeline DPs (which find the optimum)
    start = {name: inst.network.source for name in inst.layer_names}
    plan = splitplan.solve(inst, solver=solver, initial=start)
    assert_honest(inst, plan, best)
    assert plan.status == "optimal", (plan.status, plan.reasons)


def test_the_objective_unit_is_at_most_a_lower_bound_of_the_optimum():
    """Solvers prune nodes within an absolute 1e-6 of the incumbent: an objective unit far above
    the optimum (latency: the largest single cost term, a slow transfer) would make that a
    large relative gap. The unit is at most the model's objective floor, itself a lower bound."""
    for objective in ("latency", "energy", "throughput", "weighted"):
        inst = random_instance(8, 3, seed=5, objective=objective, topology="chain")
        sf = build_milp(inst).matrix
        best = brute_force(inst)
        assert 0 < sf.objective_floor <= best[0] * (1 + 1e-9), objective
        _, units = solvers.scale(sf)
        assert units.objective_unit <= 2**0.5 * sf.objective_floor, objective


# --------------------------------------------------------------------------- property

instances = st.builds(
    random_instance,
    n_layers=st.integers(1, 5),
    n_nodes=st.integers(1, 3),
    seed=st.integers(0, 10_000),
    topology=st.sampled_from(TOPOLOGIES),
    skip_prob=st.sampled_from([0.0, 0.5, 0.9]),
    objective=st.sampled_from(["latency", "energy", "throughput", "weighted"]),
    memory_fraction=st.sampled_from([None, 0.3, 0.6]),
    pin_first=st.booleans(),
    max_latency_factor=st.sampled_from([None, 0.5, 1.0, 2.0]),
)


# Derandomized: the solver defects above hit ~1 in 400-600 energy instances with limits (now
# avoided), and a random draw of a rarer one would make the suite flaky; the sweeps behind the
# reports drew thousands.
@settings(
    max_examples=40,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(inst=instances)
def test_every_backend_is_honest(inst):
    """For every backend: optimal means the brute-force optimum within the stated gap, a bound
    is never above the optimum, infeasible means brute force finds nothing; on these tiny
    instances without a time limit every backend must also reach `optimal` (CP-SAT on the
    period: within 1e-5)."""
    best = brute_force(inst)
    for solver in SOLVERS:
        plan = splitplan.solve(inst, solver=solver)
        assert_honest(inst, plan, best)
        if best is None:
            continue
        cpsat_period = solver == "ortools-cpsat" and inst.objective.kind == "throughput"
        if cpsat_period and plan.status != "optimal":
            # The period lives on a grid of 2^-26 of a typical load: CP-SAT's proof of it can
            # stop just short of 1e-6, and then it is `feasible` with that (small) gap.
            assert plan.status == "feasible" and plan.gap <= 1e-5, (plan.status, plan.gap)
            continue
        assert plan.status == "optimal", (solver, plan.status, plan.reasons)
