"""HiGHS with and without presolve on our MILPs, side by side (why `solvers._highs` runs MIPs
without it).

    python benchmarks/highs_presolve.py            # the README's numbers (about 6 minutes)
    python benchmarks/highs_presolve.py --quick    # two small cases, seconds

HiGHS 1.12's presolve once proved a wrong optimum (tests/data/highs-*.json), so every MIP answer
used to be checked by a second run without presolve. This measures, on the families of
benchmarks/run.py and the memory-limited and large families of benchmarks/bounds.py, one run of
HiGHS with presolve and one without, on the same matrix, same limit, no MIP start: status, wall
time, bound and the plan's objective. Results go to benchmarks/highs_presolve.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import machine
from bounds import identical_workers

from splitplan import solvers
from splitplan.generate import random_instance
from splitplan.milp import build_milp

ROOT = Path(__file__).resolve().parents[1]
GAPS = (1e-9, 1e-6)  # splitplan's stated absolute (objective units) and relative gaps
CASES = [
    # (label, builder)
    ("latency chain 150x5", lambda s: random_instance(150, 5, seed=s, topology="chain")),
    ("latency chain 300x10", lambda s: random_instance(300, 10, seed=s, topology="chain")),
    (
        "latency DAG 300x10 star",
        lambda s: random_instance(300, 10, seed=s, topology="star", skip_prob=0.2),
    ),
    (
        "energy chain 150x5",
        lambda s: random_instance(150, 5, seed=s, topology="chain", objective="energy"),
    ),
    (
        "throughput chain 150x5",
        lambda s: random_instance(150, 5, seed=s, topology="chain", objective="throughput"),
    ),
    (
        "latency DAG 1000x16 mesh",
        lambda s: random_instance(1000, 16, seed=s, topology="mesh", skip_prob=0.2),
    ),
    (
        "latency DAG 100x8 mesh memory",
        lambda s: random_instance(
            100, 8, seed=s, topology="mesh", skip_prob=0.3, memory_fraction=0.2
        ),
    ),
    (
        "weighted DAG 300x8 mesh memory",
        lambda s: random_instance(
            300,
            8,
            seed=s,
            topology="mesh",
            skip_prob=0.2,
            memory_fraction=0.2,
            objective="weighted",
        ),
    ),
    (
        "throughput identical 300x8 memory",
        lambda s: identical_workers(300, 8, memory_fraction=0.2, seed=s),
    ),
    (
        "throughput chain 300x16",
        lambda s: random_instance(300, 16, seed=s, objective="throughput"),
    ),
]
QUICK = CASES[:2]


def one(sf, limit_s: float, presolve: bool) -> dict:
    raw = solvers._highs_run(sf, limit_s, False, GAPS, None, False, None, presolve=presolve)
    value = None if raw.values is None else float(sf.c @ raw.values + sf.offset)
    return {
        "termination": raw.termination,
        "wall_s": raw.solve_time_s,
        "bound": raw.bound,
        "objective": value,
        "bb_nodes": raw.nodes,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--time-limit", type=float, default=30.0, help="per run, s")
    args = ap.parse_args()
    cases, seeds = (QUICK, 1) if args.quick else (CASES, args.seeds)
    rows = []
    for label, make in cases:
        for seed in range(seeds):
            inst = make(seed)
            began = time.perf_counter()
            milp = build_milp(inst)
            # scaled exactly as splitplan.solve scales it for HiGHS
            sf = solvers.scale(milp.matrix)[0]
            row = {"case": label, "seed": seed, "build_s": time.perf_counter() - began}
            row["rows"], row["columns"] = len(sf.row_lb), len(sf.c)
            for presolve in (True, False):
                row["presolve" if presolve else "no_presolve"] = one(sf, args.time_limit, presolve)
            rows.append(row)
            on, off = row["presolve"], row["no_presolve"]
            print(
                f"{label} seed {seed}: presolve {on['termination']} {on['wall_s']:.2f} s "
                f"bound {on['bound']}; without {off['termination']} {off['wall_s']:.2f} s "
                f"bound {off['bound']}",
                flush=True,
            )
    name = "highs_presolve_quick.json" if args.quick else "highs_presolve.json"
    out = ROOT / "benchmarks" / name
    out.write_text(
        json.dumps({"machine": machine(), "time_limit_s": args.time_limit, "rows": rows}, indent=1)
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
