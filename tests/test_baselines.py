"""Baselines: the chain DP and the min cut are exact where they apply; heuristics are honest."""

import pytest
from helpers import brute_force, close

import splitplan
from splitplan import baselines as B
from splitplan.cli import main
from splitplan.generate import TOPOLOGIES, random_instance


@pytest.mark.parametrize("objective", ["latency", "energy", "weighted"])
@pytest.mark.parametrize("seed", range(8))
def test_chain_dp_equals_milp_equals_brute_force(seed, objective):
    inst = random_instance(
        6, 3, seed=seed, topology=TOPOLOGIES[seed % 4], objective=objective, pin_first=seed % 2 == 0
    )
    best = brute_force(inst)
    dp = B.chain_dp(inst)
    milp = splitplan.solve(inst)
    assert dp.status == "optimal"
    assert close(dp.objective, best[0]) and close(milp.objective, best[0])


@pytest.mark.parametrize("objective", ["latency", "energy", "weighted"])
@pytest.mark.parametrize("seed", range(8))
def test_min_cut_equals_brute_force_on_two_nodes(seed, objective):
    inst = random_instance(
        7, 2, seed=seed, skip_prob=0.6, objective=objective, pin_first=seed % 3 == 0
    )
    best = brute_force(inst)
    cut = B.min_cut(inst)
    assert cut.status == "optimal"
    assert close(cut.objective, best[0])


def test_not_applicable_says_why():
    with pytest.raises(B.NotApplicable, match="not a chain"):
        B.chain_dp(random_instance(6, 3, seed=1, skip_prob=1.0))
    with pytest.raises(B.NotApplicable, match="throughput"):
        B.chain_dp(random_instance(6, 3, seed=1, objective="throughput"))
    with pytest.raises(B.NotApplicable, match="memory"):
        B.chain_dp(random_instance(6, 3, seed=2, memory_fraction=0.5))


@pytest.mark.parametrize("seed", range(4))
def test_heuristics_are_feasible_costed_by_the_evaluator_and_never_beat_the_milp(seed):
    inst = random_instance(
        12,
        4,
        seed=seed,
        topology=TOPOLOGIES[seed],
        skip_prob=0.3,
        memory_fraction=0.8,
        pin_first=True,
        objective="weighted",
    )
    result = B.compare(inst, B.METHODS, time_limit_s=0.1, seed=seed)
    rows, optimum = result.rows, result.optimum
    assert optimum is not None and result.proven and result.reference == optimum
    assert result.milp is not None and result.milp.objective == optimum
    for r in rows:
        if r.plan is None:
            assert r.note.startswith("not applicable")
            continue
        if r.plan.assignment is None:  # found nothing, and says so
            assert r.plan.status == "infeasible" and r.plan.reasons
            continue
        ev = splitplan.evaluate(inst, r.plan.assignment)
        assert ev.feasible == (r.plan.status != "infeasible"), (r.method, ev.violations)
        assert r.plan.objective == ev.objective(inst)
        if ev.feasible:
            assert r.plan.objective >= optimum * (1 - 1e-6), r.method
    feasible = {r.method for r in rows if r.plan and r.plan.status != "infeasible"}
    # The searches that model memory and pins find a feasible plan here.
    assert {"milp-highs", "milp-ortools", "greedy", "annealing", "genetic"} <= feasible


def test_heuristics_are_seeded():
    inst = random_instance(10, 3, seed=5, skip_prob=0.3)
    a = B.random_search(inst, time_limit_s=0.0, seed=3)
    b = B.random_search(inst, time_limit_s=0.0, seed=3)
    assert a.assignment == b.assignment


def test_compare_cli(capsys, tmp_path):
    path = tmp_path / "i.json"
    splitplan.save_instance(random_instance(8, 3, seed=2), path)
    assert (
        main(
            [
                "compare",
                str(path),
                "--methods",
                "milp-highs,dp,greedy",
                "--json",
                "--time-limit",
                "0.1",
            ]
        )
        == 0
    )
    import json

    out = json.loads(capsys.readouterr().out)
    assert [m["method"] for m in out["methods"]] == ["milp-highs", "dp", "greedy"]
    assert out["methods"][1]["above_optimum"] == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(SystemExit) as exc:
        main(["compare", str(path), "--methods", "magic"])
    assert exc.value.code == 2


@pytest.mark.parametrize("solver", ["highs", "ortools"])
def test_milp_started_from_a_heuristic_is_never_worse(solver):
    inst = random_instance(60, 6, seed=0, topology="mesh", skip_prob=0.3, memory_fraction=0.25)
    start = B.simulated_annealing(inst, time_limit_s=0.3)
    assert start.status == "feasible"
    plan = splitplan.solve(inst, solver, time_limit_s=2.0, initial=start.assignment)
    assert plan.solved and plan.evaluation.feasible
    assert plan.objective <= start.objective * (1 + 1e-9)
