"""How well `splitplan.solve` keeps its time limit: wall time against the limit, by phase.

    nice -n 5 python benchmarks/deadline.py          # the README's figures (about 2 minutes)
    python benchmarks/deadline.py --quick            # one small instance, 1 s (the tests run it)

Per instance (splitplan.generate.pipeline_instance, throughput) and solver: the wall time of
`splitplan.solve(inst, solver, time_limit_s=LIMIT)` in a warm process, its overshoot (wall -
limit), the plan's `build_time_s` (the MIP start, the model and reading it back) and
`solve_time_s` (the solver's own call), and what is left (the verdict). Each solve runs `--repeats`
times; the table shows the largest overshoot. Results go to benchmarks/deadline.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import machine

import splitplan
from splitplan.generate import pipeline_instance

FAMILIES = [
    ("chain 100x8 hetero", dict(n_layers=100, n_nodes=8), ("highs", "ortools", "ortools-cpsat")),
    ("chain 1000x16 hetero", dict(n_layers=1000, n_nodes=16), ("highs", "ortools")),
]
QUICK = [("chain 30x4 hetero", dict(n_layers=30, n_nodes=4), ("highs",))]


def run(families, limit_s: float, repeats: int) -> list[dict]:
    splitplan.solve(pipeline_instance(20, 3), time_limit_s=5.0)  # imports and solver start-up
    rows = []
    for label, kw, solvers in families:
        inst = pipeline_instance(**kw)
        for solver in solvers:
            runs = []
            for _ in range(repeats):
                began = time.perf_counter()
                plan = splitplan.solve(inst, solver, time_limit_s=limit_s)
                wall = time.perf_counter() - began
                runs.append(
                    {
                        "wall_s": wall,
                        "overshoot_s": wall - limit_s,
                        "build_s": plan.build_time_s,
                        "solve_s": plan.solve_time_s,
                        "rest_s": wall - plan.build_time_s - plan.solve_time_s,
                        "status": plan.status,
                        "termination": plan.termination,
                        "gap": plan.gap,
                    }
                )
                print(f"  {label:<22} {solver:<14} wall {wall:.2f} s", flush=True)
            worst = max(runs, key=lambda r: r["overshoot_s"])
            row = {"family": label, "solver": solver, "limit_s": limit_s, "runs": runs}
            rows.append(row | worst)
    return rows


def markdown(rows: list[dict]) -> str:
    out = [
        "| instance | solver | limit s | wall s | overshoot s | build s | solve s | rest s "
        "| status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['family']} | {r['solver']} | {r['limit_s']:g} | {r['wall_s']:.2f} | "
            f"**{r['overshoot_s']:+.2f}** | {r['build_s']:.2f} | {r['solve_s']:.2f} | "
            f"{r['rest_s']:.2f} | {r['status']} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small instance, a 1 s limit")
    ap.add_argument("--limit", type=float, default=None, help="time limit, s (10; quick: 1)")
    ap.add_argument("--repeats", type=int, default=None, help="solves per row (2; quick: 1)")
    ap.add_argument("-o", "--output", default=str(Path(__file__).with_name("deadline.json")))
    args = ap.parse_args()
    limit = args.limit if args.limit is not None else (1.0 if args.quick else 10.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    before = machine()
    rows = run(QUICK if args.quick else FAMILIES, limit, repeats)
    result = {"machine": before, "loadavg_1min_after": machine()["loadavg_1min"], "rows": rows}
    if not args.quick:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(
        f"load average {before['loadavg_1min']:.2f} before, {result['loadavg_1min_after']:.2f} "
        f"after; {before['cpus']} CPUs"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
