"""benchmarks/memory_gap.py's relaxations are lower bounds (brute force), so that the numbers
models/formulation.md §9 quotes from it ("Tried and left out") are bounds on the optimum; and
benchmarks/bounds.py --families reruns some rows and keeps the others."""

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import brute_force, close

from splitplan.generate import random_instance
from splitplan.milp import build_milp
from splitplan.solvers import solve_standard_form

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, BENCH / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


memory_gap = _load("memory_gap")

# Tiny DAGs (skips) whose memory binds, over the additive objectives and three topologies.
CASES = [
    random_instance(
        5,
        3,
        seed=seed,
        topology=("mesh", "chain", "star")[seed % 3],
        skip_prob=0.5,
        memory_fraction=(0.2, 0.3)[seed % 2],
        objective=objective,
    )
    for seed in range(3)
    for objective in ("latency", "weighted", "energy")
]


@pytest.fixture(scope="module")
def optima() -> list:
    return [brute_force(inst) for inst in CASES]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_run_formulation_keeps_the_optimum(i, optima):
    """The model with the runs added has the brute-force optimum (both exact solvers), and its
    LP relaxation lies between the model's and the optimum."""
    inst, best = CASES[i], optima[i]
    assert best is not None
    milp = build_milp(inst)
    extended, _ = memory_gap.with_runs(milp)
    for solver in ("highs", "ortools"):
        res = solve_standard_form(extended, solver)
        assert res.termination == "optimal", solver
        assert close(res.objective, best[0]), (solver, res.objective, best[0])
        # the plan read back is one the evaluator costs at the optimum too
        assert close(
            memory_gap.splitplan.evaluate(inst, milp.read_assignment(res.values)).objective(inst),
            best[0],
        )
    base = solve_standard_form(milp.matrix, "highs", relax=True).objective
    runs = solve_standard_form(extended, "highs", relax=True).objective
    assert base - 1e-9 <= runs <= best[0] * (1 + 1e-7) + 1e-12


def test_run_formulation_is_not_vacuous():
    """Memory leaves some runs out, and on some case the runs raise the LP bound."""
    raised = 0
    for inst in CASES:
        milp = build_milp(inst)
        extended, n_runs = memory_gap.with_runs(milp)
        V, K = len(milp.tables.layers), len(milp.tables.nodes)
        assert n_runs < K * V * (V + 1) // 2
        base = solve_standard_form(milp.matrix, "highs", relax=True).objective
        runs = solve_standard_form(extended, "highs", relax=True).objective
        raised += runs > base * (1 + 1e-6)
    assert raised >= 1


@pytest.mark.parametrize("i", range(0, len(CASES), 3))
def test_compute_only_bounds_the_compute_of_the_optimum(i, optima):
    """Memory and compute alone (no transfers) is at most the optimal plan's compute part, and
    the instance without skips is no dearer than with them (fewer transfers, less memory)."""
    inst, best = CASES[i], optima[i]
    milp = build_milp(inst)
    gap = solve_standard_form(memory_gap.compute_only(milp), "highs")
    assert gap.termination == "optimal"
    compute = memory_gap.compute_part(inst, best[1])
    assert gap.objective <= compute * (1 + 1e-7) + 1e-12
    chain = memory_gap.without_skips(inst)
    assert all(len(la.inputs) == 1 for la in chain.dnn.layers)
    chain_best = brute_force(chain)
    assert chain_best is not None and chain_best[0] <= best[0] * (1 + 1e-9)


def test_with_runs_needs_a_backbone():
    inst = random_instance(4, 3, seed=0, skip_prob=0.5, memory_fraction=0.3)
    layers = list(inst.dnn.layers)
    layers[3] = type(layers[3])(**{**layers[3].__dict__, "inputs": ("l1",)})
    from dataclasses import replace

    bad = replace(inst, dnn=replace(inst.dnn, layers=tuple(layers)))
    with pytest.raises(ValueError, match="first input"):
        memory_gap.with_runs(build_milp(bad))


def test_bounds_families_rerun_keeps_other_rows(tmp_path):
    """`bounds.py --families` replaces the rows it reruns and keeps the others (timings are
    never asserted)."""
    out = tmp_path / "bounds.json"
    old = {"family": "some other family", "runs": []}
    stale = {"family": "throughput chain 30x4", "runs": [], "stale": True}
    shipped = [{"instance": "x", "lp_gap": 0.5, "lp_gap_cuts": 0.0}]
    out.write_text(json.dumps({"rows": [old, stale], "shipped": shipped}))
    args = ["--quick", "--time-limit", "1", "--families", "throughput chain 30x4"]
    subprocess.run(
        [sys.executable, str(BENCH / "bounds.py"), *args, "-o", str(out)],
        check=True,
        capture_output=True,
    )
    rows = json.loads(out.read_text())["rows"]
    assert [r["family"] for r in rows] == ["some other family", "throughput chain 30x4"]
    assert "stale" not in rows[1] and len(rows[1]["runs"]) == 2
    assert len(rows[1]["load_average"]) == 6
    assert json.loads(out.read_text())["shipped"] == shipped


def test_memory_gap_measures_the_quick_instance():
    """memory_gap.py's measures run on its quick instance (in-process, 1 s limits; timings are
    never asserted) and order as bounds must: every relaxation at most the plan found."""
    ((label, make),) = memory_gap.QUICK
    row = memory_gap.measure(label, make(), 1.0)
    best = row["best_plan"]["value"]
    assert row["runs"]["n_runs"] > 0 and len(row["load_average"]) == 6
    assert row["root_lp"]["value"] <= best
    assert (
        row["runs"]["root_lp"] is None or row["root_lp"]["value"] - 1e-9 <= row["runs"]["root_lp"]
    )
    assert row["runs"]["root_lp"] is None or row["runs"]["root_lp"] <= best
    assert row["compute_only"]["lp"] <= row["best_plan"]["compute"] * (1 + 1e-9)


def _node_contents(inst, time_limit_s: float = 60.0) -> tuple[dict, float]:
    """The node-contents relaxation solved from `best_start`'s plan and the windows, and the
    model's root LP."""
    from splitplan.pipeline import best_start

    milp = build_milp(inst)
    relaxation = memory_gap.NodeContents(milp)
    relaxation.add_windows()
    relaxation.add_plan(best_start(inst, 1.0))
    root = solve_standard_form(milp.matrix, "highs", relax=True).objective
    return relaxation.solve(time_limit_s), root


@pytest.fixture(scope="module")
def node_contents() -> list:
    return [_node_contents(inst) for inst in CASES]


@pytest.mark.parametrize("i", range(len(CASES)))
def test_node_contents_bound_lies_between_the_root_lp_and_the_optimum(i, optima, node_contents):
    """Column generation converges on the tiny cases; its bound is the master's value, at most
    the brute-force optimum (every plan is a point of the master) and at least the model's root
    LP (the master keeps the model's rows)."""
    (result, root), best = node_contents[i], optima[i]
    assert result["converged"], result
    assert result["bound"] <= best[0] * (1 + 1e-7) + 1e-12, (result, best[0])
    assert result["bound"] >= root - 1e-7 * max(1.0, abs(root))
    assert abs(result["master"] - result["bound"]) <= 1e-6 * max(1.0, abs(result["master"]))


def test_node_contents_bound_rises_above_the_root_lp(node_contents):
    """The sets' borders cost something: on most tiny cases the bound is above the model's root
    LP, and on some it reaches the optimum where the root LP does not."""
    raised = sum(result["bound"] > root * (1 + 1e-6) for result, root in node_contents)
    assert raised >= len(CASES) // 2, [(r["bound"], root) for r, root in node_contents]


def test_node_contents_bound_is_valid_before_it_converges():
    """Stopped after its first pricing round, the Lagrangian bound is still at most the optimum
    (it holds for any multipliers), on a case where column generation needs more rounds."""
    inst = random_instance(8, 3, seed=4, topology="mesh", skip_prob=0.5, memory_fraction=0.3)
    best = brute_force(inst)
    result, _ = _node_contents(inst, time_limit_s=0.0)
    assert result["iterations"] == 1 and not result["converged"]
    assert result["bound"] <= best[0] * (1 + 1e-7) + 1e-12


def test_node_contents_refuses_the_period():
    inst = random_instance(5, 3, seed=0, skip_prob=0.5, memory_fraction=0.3, objective="throughput")
    with pytest.raises(ValueError, match="additive"):
        memory_gap.NodeContents(build_milp(inst))


@pytest.mark.parametrize("i", [0, 4, 8])
def test_prove_finds_and_proves_the_brute_force_optimum(i, optima):
    """`--prove`'s run (HiGHS alone, one thread) on tiny cases: status optimal, the evaluator's
    cost of its plan is the brute-force optimum, and its bound matches; each better plan it
    reports is no worse than the one before."""
    row = memory_gap.prove(CASES[i], 30.0)
    assert row["status"] == "optimal" and row["feasible"]
    assert close(row["value"], optima[i][0])
    assert row["bound"] <= row["value"] * (1 + 1e-6) + 1e-12
    values = [row["start"]] + [found["value"] for found in row["improvements"]]
    assert all(b <= a * (1 + 1e-9) for a, b in itertools.pairwise(values))


def test_prove_run_of_one_family_keeps_the_other_rows(tmp_path, monkeypatch):
    """`--prove --family` (like `--node-contents`) replaces its own row of the output file and
    keeps the other families' rows; `--from-known` then proves again from the row's plan and
    keeps that run in the row."""
    out = tmp_path / "prove.json"
    other = {"family": "some other family", "value": 1.0}
    stale = {"family": "latency DAG 30x4 mesh memory", "stale": True}
    out.write_text(json.dumps({"rows": [other, stale]}))
    args = ["memory_gap.py", "--quick", "--prove", "--family", "30x4", "--time-limit", "2"]
    monkeypatch.setattr(sys, "argv", [*args, "-o", str(out)])
    memory_gap.main()
    rows = json.loads(out.read_text())["rows"]
    assert [r["family"] for r in rows] == ["some other family", "latency DAG 30x4 mesh memory"]
    assert "stale" not in rows[1] and rows[1]["time_limit_s"] == 2.0 and "machine" in rows[1]
    monkeypatch.setattr(sys, "argv", [*args, "--time-limit", "30", "--from-known", "-o", str(out)])
    memory_gap.main()
    again = json.loads(out.read_text())["rows"]
    assert again[0] == other and {k: v for k, v in again[1].items() if k != "from_known"} == rows[1]
    known = again[1]["from_known"]
    assert known["start"] == rows[1]["value"] and known["status"] == "optimal"
    assert known["value"] <= rows[1]["value"] * (1 + 1e-9)


def test_from_known_needs_a_plan(tmp_path, monkeypatch, capsys):
    out = tmp_path / "none.json"
    argv = ["memory_gap.py", "--quick", "--prove", "--from-known", "-o", str(out)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        memory_gap.main()
    assert "run --prove first" in capsys.readouterr().err
