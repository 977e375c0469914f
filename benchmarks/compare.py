"""Optimum vs heuristics: how far above the proven optimum each method lands, and how fast.

    python benchmarks/compare.py            # the table in the README (a few minutes on 2 cores)
    python benchmarks/compare.py --quick    # two small instances (the test suite runs this)

Runs `splitplan.baselines.compare` on every instance in instances/ and on generated families
(chains and DAGs, 20 to 1000 layers, 2 to 16 nodes, some with memory limits). Each cell is
"% above the optimum (wall time)"; "inf." means the method's plan violates a constraint (memory,
pins) or it found none; "n/a" means it does not apply. Heuristic searches get --time-limit s each;
the MILP gets --milp-time-limit s and starts from the best heuristic plan. Where the MILP does not
prove optimality in time, the row is marked "(vs bound)" and the % is above its lower bound.
Results go to benchmarks/compare.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from _common import machine

import splitplan
from splitplan.baselines import METHODS, compare
from splitplan.generate import pipeline_instance, random_instance

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = [
    # (label, kwargs of random_instance)
    ("chain 20x2", dict(n_layers=20, n_nodes=2)),
    ("chain 100x4 chain-net", dict(n_layers=100, n_nodes=4, topology="chain")),
    (
        "DAG 100x4 star, memory",
        dict(n_layers=100, n_nodes=4, topology="star", skip_prob=0.3, memory_fraction=0.3),
    ),
    (
        "DAG 100x8 mesh, memory",
        dict(n_layers=100, n_nodes=8, topology="mesh", skip_prob=0.3, memory_fraction=0.2),
    ),
    (
        "DAG 300x8 mesh, memory, weighted",
        dict(
            n_layers=300,
            n_nodes=8,
            topology="mesh",
            skip_prob=0.2,
            memory_fraction=0.2,
            objective="weighted",
        ),
    ),
    ("chain 300x16 mesh", dict(n_layers=300, n_nodes=16, topology="mesh")),
    ("DAG 1000x16 mesh", dict(n_layers=1000, n_nodes=16, topology="mesh", skip_prob=0.2)),
]
# Throughput rows, where the pipeline planners' DPs apply (`generate.pipeline_instance`, seed 0;
# benchmarks/pipeline.py has the larger families)
PIPELINE = [
    ("pipeline chain 100x8 hetero, throughput", dict(n_layers=100, n_nodes=8)),
    (
        "pipeline chain 50x4 hetero, memory, throughput",
        dict(n_layers=50, n_nodes=4, memory_fraction=0.3),
    ),
    (
        "pipeline DAG 100x8 identical, throughput",
        dict(n_layers=100, n_nodes=8, family="identical", skip_prob=0.2),
    ),
]
QUICK = [
    ("chain 20x2", dict(n_layers=20, n_nodes=2)),
    (
        "DAG 30x4 mesh, memory",
        dict(n_layers=30, n_nodes=4, topology="mesh", skip_prob=0.3, memory_fraction=0.3),
    ),
]


def cell(row, optimum) -> str:
    if row.plan is None:
        return "n/a"
    gap = row.above_optimum(optimum)
    if gap is None:
        return f"inf. ({row.wall_s:.2f} s)"
    return f"{100 * gap:.1f} % ({row.wall_s:.2f} s)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--time-limit", type=float, default=2.0, help="per heuristic search, s")
    parser.add_argument("--milp-time-limit", type=float, default=60.0, help="per MILP solve, s")
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("compare.json")))
    args = parser.parse_args()
    cases = (
        []
        if args.quick
        else [
            (f"instances/{p.name}", splitplan.load_instance(p))
            for p in sorted((ROOT / "instances").glob("*.json"))
            if p.name != "reference.json"  # the shipped optima, not an instance
        ]
    )
    cases += [
        (label, random_instance(seed=0, **kw)) for label, kw in (QUICK if args.quick else FAMILIES)
    ]
    if not args.quick:
        cases += [(label, pipeline_instance(seed=0, **kw)) for label, kw in PIPELINE]
    began = machine()
    table, results = [], []
    for solver in ("highs", "ortools"):  # imports and solver start-up are not counted
        splitplan.solve(random_instance(10, 3, seed=0), solver=solver)
    for label, inst in cases:
        result = compare(
            inst, METHODS, args.time_limit, seed=0, milp_time_limit_s=args.milp_time_limit
        )
        rows, optimum, proven = result.rows, result.reference, result.proven
        table.append((label + ("" if proven else " (vs bound)"), optimum, rows))
        results.append(
            {
                "instance": label,
                "reference": optimum,
                "proven": proven,
                "methods": {
                    r.method: {
                        "above_optimum": r.above_optimum(optimum),
                        "wall_s": r.wall_s,
                        "status": r.plan.status if r.plan else "not_applicable",
                    }
                    for r in rows
                },
            }
        )
        print(f"  {label}: done", flush=True)
    if not args.quick:
        Path(args.output).write_text(
            json.dumps(
                {
                    "machine": began,
                    "loadavg_1min_at_end": machine()["loadavg_1min"],
                    "time_limit_s": args.time_limit,
                    "milp_time_limit_s": args.milp_time_limit,
                    "results": results,
                },
                indent=1,
            )
            + "\n"
        )
    print()
    print("| instance | " + " | ".join(METHODS) + " |")
    print("|---|" + "---|" * len(METHODS))
    for label, optimum, rows in table:
        print(f"| {label} | " + " | ".join(cell(r, optimum) for r in rows) + " |")


if __name__ == "__main__":
    main()
