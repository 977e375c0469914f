"""Baselines: the chain DP and the min cut are exact where they apply; heuristics are honest."""

import json

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


def _without_wall_times(d):
    return {**d, "methods": [{k: v for k, v in m.items() if k != "wall_s"} for m in d["methods"]]}


def test_compare_result_to_dict_is_what_compare_json_prints(capsys, tmp_path):
    inst = random_instance(7, 3, seed=4, skip_prob=0.3, memory_fraction=0.6, pin_first=True)
    path = tmp_path / "i.json"
    splitplan.save_instance(inst, path)
    # deterministic methods only: the time-budgeted searches differ from run to run
    methods = ["dp", "milp-highs", "neurosurgeon", "greedy", "min-cut"]
    result = B.compare(inst, methods, time_limit_s=0.05, seed=3)
    argv = ["compare", str(path), "--methods", ",".join(methods), "--time-limit", "0.05"]
    assert main([*argv, "--seed", "3", "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert _without_wall_times(printed) == _without_wall_times(result.to_dict())
    # the optimum is the brute-force one, and the MILP plan behind it is one of the rows
    best = brute_force(inst)
    assert best is not None and result.proven and close(result.optimum, best[0])
    assert result.milp is result.row("milp-highs").plan
    assert [r.method for r in result.rows] == methods
    assert result.summary().splitlines()[0] == f"instance {inst.name}: optimum {result.optimum}"
    assert main([*argv, "--seed", "3"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == result.summary().splitlines()[0]


def test_compare_without_a_milp_method_still_solves_for_the_reference():
    inst = random_instance(6, 3, seed=1)
    result = B.compare(inst, ["greedy"], time_limit_s=0.05)
    assert result.milp is not None and result.milp.status == "optimal"
    assert result.reference == result.milp.objective and result.optimum == result.reference
    assert close(result.reference, brute_force(inst)[0])
    with pytest.raises(KeyError):
        result.row("dp")
    assert result.to_dict()["reference_is_optimum"] is True


def test_compare_against_a_bound_says_so(monkeypatch):
    """A MILP that proves nothing in time: the reference is its bound, `optimum` is None."""
    inst = random_instance(6, 3, seed=2)
    real = B.run_method

    def unproven(inst, method, *args):
        plan = real(inst, method, *args)
        if method.startswith("milp"):
            plan.status, plan.bound = "feasible", 0.5 * plan.objective
        return plan

    monkeypatch.setattr(B, "run_method", unproven)
    result = B.compare(inst, ["milp-highs", "greedy"], time_limit_s=0.05)
    assert not result.proven and result.optimum is None
    assert result.reference == result.milp.bound == result.row("milp-highs").plan.bound
    out = result.to_dict()
    assert out["optimum"] is None and out["reference"] == result.reference
    assert "no proven optimum; best lower bound" in result.summary()
    assert out["methods"][0]["above_optimum"] == pytest.approx(1.0)  # objective = 2 x bound
