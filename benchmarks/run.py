"""Performance of the exact planner: build + solve time, status, LP-relaxation gap.

    python benchmarks/run.py              # the table in the README (a few minutes on 2 cores)
    python benchmarks/run.py --quick      # small sizes, seconds (the test suite runs this)

Each row is the median over seeds of a warm process (one solve is made first, so that imports and
solver start-up are not counted; the cold first call is reported separately). `build` is the
array model (`splitplan.milp`) and loading it into the solver; `solve` is the solver's own
time. `LP gap` is (optimum - LP relaxation) / optimum of the same formulation. Results are written
to benchmarks/results.json and printed as a Markdown table.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import splitplan
from splitplan.generate import random_instance
from splitplan.milp import build_milp
from splitplan.solvers import solve_standard_form

FAMILIES = [
    # (label, layers, nodes, topology, skip_prob, objective, solvers)
    ("chain", 150, 5, "chain", 0.0, "latency", ("highs", "ortools", "ortools-cpsat")),
    ("chain", 300, 10, "chain", 0.0, "latency", ("highs", "ortools", "ortools-cpsat")),
    ("DAG", 300, 10, "star", 0.2, "latency", ("highs", "ortools")),
    ("chain", 150, 5, "chain", 0.0, "energy", ("highs", "ortools")),
    ("chain", 150, 5, "chain", 0.0, "throughput", ("highs", "ortools")),
    ("DAG", 1000, 16, "mesh", 0.2, "latency", ("highs",)),
]
QUICK = [
    ("chain", 30, 3, "chain", 0.0, "latency", ("highs", "ortools", "ortools-cpsat")),
    ("DAG", 30, 4, "mesh", 0.3, "weighted", ("highs", "ortools")),
]


def lp_gap(inst: splitplan.Instance, optimum: float) -> float:
    sf = build_milp(inst).matrix
    lp = solve_standard_form(sf, "highs", relax=True)
    return (optimum - lp.objective) / optimum if optimum else 0.0


def run(families, seeds: int, time_limit_s: float) -> list[dict]:
    for solver in ("highs", "ortools", "ortools-cpsat"):  # warm up imports and solvers
        splitplan.solve(random_instance(10, 3, seed=0), solver=solver)
    rows = []
    for label, n_layers, n_nodes, topo, skip, objective, solvers in families:
        for solver in solvers:
            runs = []
            for seed in range(seeds):
                inst = random_instance(
                    n_layers, n_nodes, seed=seed, topology=topo, skip_prob=skip, objective=objective
                )
                start = time.perf_counter()
                plan = splitplan.solve(inst, solver=solver, time_limit_s=time_limit_s)
                total = time.perf_counter() - start
                milp = build_milp(inst)
                sf = milp.matrix
                runs.append(
                    {
                        "total_s": total,
                        "build_s": plan.build_time_s,
                        "solve_s": plan.solve_time_s,
                        "status": plan.status,
                        "gap": plan.gap,
                        "bb_nodes": plan.bb_nodes,
                        "objective": plan.objective,
                        "columns": len(sf.c),
                        "rows": len(sf.row_lb),
                        "lp_gap": lp_gap(inst, plan.objective) if solver == "highs" else None,
                    }
                )
            med = {
                k: statistics.median(r[k] for r in runs)
                for k in ("total_s", "build_s", "solve_s", "columns", "rows")
            }
            row = {
                "family": f"{label} {n_layers}x{n_nodes} {topo}",
                "objective": objective,
                "solver": solver,
                "seeds": seeds,
                **med,
                "statuses": sorted({r["status"] for r in runs}),
                "max_gap": max((r["gap"] or 0.0) for r in runs),
                "max_lp_gap": max((r["lp_gap"] or 0.0) for r in runs)
                if solver == "highs"
                else None,
                "objectives": [r["objective"] for r in runs],
            }
            rows.append(row)
            print(
                f"  {row['family']:<24} {objective:<10} {solver:<14} total {row['total_s']:.3f} s",
                flush=True,
            )
    return rows


def markdown(rows: list[dict]) -> str:
    out = [
        "| instances | objective | solver | columns x rows | build s | solve s | total s | "
        "status | gap | LP gap |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lp = "-" if r["max_lp_gap"] is None else f"{100 * r['max_lp_gap']:.2g} %"
        out.append(
            f"| {r['family']} | {r['objective']} | {r['solver']} | "
            f"{int(r['columns'])} x {int(r['rows'])} | {r['build_s']:.3f} | {r['solve_s']:.3f} | "
            f"**{r['total_s']:.3f}** | {'/'.join(r['statuses'])} | {100 * r['max_gap']:.2g} % "
            f"| {lp} |"
        )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("results.json")))
    args = parser.parse_args()
    cold_start = time.perf_counter()
    splitplan.solve(random_instance(150, 5, seed=99, topology="chain"))
    cold = time.perf_counter() - cold_start
    rows = run(QUICK if args.quick else FAMILIES, 1 if args.quick else args.seeds, args.time_limit)
    machine = (
        f"{platform.node() or 'unknown'}: {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}"
    )
    import os

    result = {
        "machine": machine,
        "cpus": os.cpu_count(),
        "cold_first_solve_150x5_s": cold,
        "rows": rows,
    }
    if not args.quick:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(
        f"machine: {machine}, {os.cpu_count()} CPUs; cold first solve of a 150x5 chain "
        f"(imports included): {cold:.2f} s"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
