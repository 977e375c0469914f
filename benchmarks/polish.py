"""Polishing (`splitplan.polish`, models/formulation.md §11): `solve` with and without it.

    python benchmarks/polish.py                 # three families, 60 s each way (about 9 min)
    python benchmarks/polish.py --only ResNet   # one family
    python benchmarks/polish.py --presolve      # one neighbourhood solve, HiGHS presolve on/off
    python benchmarks/polish.py --starts        # the MIP start on the memory families
    python benchmarks/polish.py --only DAG --modes after,beside --seeds 1,2,3   # other seeds

For the families where the full model's search stalls (a profiled DAG's period, binding memory
with a sum objective), `splitplan.solve(inst, time_limit_s=LIMIT, polish=MODE)` side by side in
one run, for the modes "off" (the whole limit to the solver), "after" (a quarter of the solver's
time kept for polishing its plan) and "beside" (the search in a second process while the solver
has the whole limit): the plan's cost, the proven bound, the gap, and what polishing found.
`--seeds` reruns the modes with the search's neighbourhoods visited in the order of other seeds
(`splitplan.plan.POLISH_SEED`; `solve` uses 0): a local search's end depends on it. Results go
to the file's "seeds" rows. `--presolve` times the first neighbourhood `polish` solves on
ResNet-101 x 8 GPUs (the busiest node and the least busy one) with HiGHS' presolve on and
off. `--starts` costs `best_start` (1 s and 5 s) and its priced beam on the memory families.
Results: benchmarks/polish.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import machine

import splitplan
import splitplan.plan
from splitplan import pipeline
from splitplan.generate import random_instance

DATA = Path(__file__).resolve().parent / "data"
MODES = ("off", "after", "beside")
CASES = [
    (
        "profiled ResNet-101 345-op DAG x 8 GPUs, throughput",
        lambda: splitplan.load_instance(DATA / "resnet101-op-gpu8.json"),
    ),
    (
        "DAG 100x8 mesh, memory, latency",
        lambda: random_instance(100, 8, topology="mesh", skip_prob=0.3, memory_fraction=0.2),
    ),
    (
        "DAG 300x8 mesh, memory, weighted",
        lambda: random_instance(
            300, 8, topology="mesh", skip_prob=0.2, memory_fraction=0.2, objective="weighted"
        ),
    ),
]


def run(inst: splitplan.Instance, limit: float, mode: str, seed: int = 0) -> dict:
    kept = splitplan.plan.POLISH_SEED
    splitplan.plan.POLISH_SEED = seed
    try:
        began = time.perf_counter()
        plan = splitplan.solve(inst, time_limit_s=limit, polish=mode)
        wall = time.perf_counter() - began
    finally:
        splitplan.plan.POLISH_SEED = kept
    return {
        "seed": seed,
        "status": plan.status,
        "objective": plan.objective,
        "bound": plan.bound,
        "gap": plan.gap,
        "wall_s": wall,
        "solve_s": plan.solve_time_s,
        "polish_s": plan.polish_time_s,
        "polish_improvements": plan.polish_improvements,
    }


def presolve() -> dict:
    """One neighbourhood of `polish` on ResNet-101 x 8 GPUs, solved with presolve on and off."""
    from splitplan.milp import build_milp
    from splitplan.polish import _bottleneck, _busy, _restricted
    from splitplan.solvers import solve_milp

    inst = splitplan.load_instance(DATA / "resnet101-op-gpu8.json")
    start = pipeline.best_start(inst, 5.0)
    ev = splitplan.evaluate(inst, start)
    milp = build_milp(inst, incumbent_s=ev.period_s)
    tb = milp.tables
    core = {tb.node_index[n] for n in _bottleneck(inst, ev)}
    busy = _busy(tb, ev)
    other = min((k for k in range(len(tb.nodes)) if k not in core), key=lambda k: busy[k])
    group = core | {other}
    out = {"start_period_s": ev.period_s, "group": sorted(tb.nodes[k] for k in group)}
    for on in (True, False):
        began = time.perf_counter()
        result, _ = solve_milp(
            _restricted(milp, start, group),
            "highs",
            time_limit_s=60,
            start=milp.start_vector(start),
            presolve=on,
        )
        period = splitplan.evaluate(inst, milp.read_assignment(result.values)).period_s
        out["presolve_on" if on else "presolve_off"] = {
            "termination": result.termination,
            "period_s": period,
            "wall_s": time.perf_counter() - began,
        }
        print(f"presolve {'on' if on else 'off'}: {out['presolve_on' if on else 'presolve_off']}")
    return out


def starts() -> list[dict]:
    """`best_start` with 1 s and 5 s budgets (`solve` gives it min(5 s, 10 % of the limit) on
    these families) and, inside it, the priced beam's plan with half of each budget."""
    rows = []
    for label, make in CASES:
        inst = make()
        if inst.objective.kind == "throughput":
            continue
        for budget in (1.0, 5.0):
            row: dict = {"family": label, "budget_s": budget}
            began = time.perf_counter()
            plan = pipeline.best_start(inst, budget)
            row["best_start"] = splitplan.evaluate(inst, plan).objective(inst)
            row["best_start_s"] = time.perf_counter() - began
            began = time.perf_counter()
            plan = pipeline.priced_beam(inst, began + budget / 2)
            row["priced_beam"] = splitplan.evaluate(inst, plan).objective(inst)
            row["priced_beam_s"] = time.perf_counter() - began
            rows.append(row)
            print(
                f"{label} | {budget:g} s | best_start {row['best_start']:.6g} | "
                f"priced beam {row['priced_beam']:.6g} ({row['priced_beam_s']:.2f} s)",
                flush=True,
            )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--time-limit", type=float, default=60.0)
    ap.add_argument("--only", default=None, help="substring of the family labels")
    ap.add_argument("--presolve", action="store_true")
    ap.add_argument("--starts", action="store_true")
    ap.add_argument("--modes", default=",".join(MODES), help="comma-separated: off,after,beside")
    ap.add_argument("--seeds", default=None, help="comma-separated seeds of the search")
    ap.add_argument("-o", "--output", default=str(Path(__file__).with_name("polish.json")))
    args = ap.parse_args()
    path = Path(args.output)
    saved = json.loads(path.read_text()) if path.exists() else {}
    saved["machine"] = machine()
    modes = [m for m in args.modes.split(",") if m]
    if args.presolve:
        saved["presolve"] = presolve()
    elif args.starts:
        saved["starts"] = starts()
    elif args.seeds:
        seeds = [int(x) for x in args.seeds.split(",")]
        rows = saved.setdefault("seeds", [])
        for label, make in CASES:
            if args.only and args.only.lower() not in label.lower():
                continue
            for mode in modes:
                for seed in seeds:
                    r = run(make(), args.time_limit, mode, seed)
                    rows[:] = [
                        x
                        for x in rows
                        if (x["family"], x["mode"], x["seed"]) != (label, mode, seed)
                    ]
                    rows.append({"family": label, "mode": mode, **r})
                    print(
                        f"{label} | {mode} | seed {seed} | {r['objective']:.6g}, "
                        f"{r['bound']:.6g}, {100 * r['gap']:.1f} %",
                        flush=True,
                    )
    else:
        saved["time_limit_s"] = args.time_limit
        rows = {row["family"]: row for row in saved.get("rows", [])}
        print(
            "| family | off: cost, bound, gap | after: cost, bound, gap (polish s, better plans) "
            "| beside: cost, bound, gap (polish s, better plans) |"
        )
        print("|---|---|---|---|")
        for label, make in CASES:
            if args.only and args.only.lower() not in label.lower():
                continue
            row = {"family": label}
            for mode in modes:
                row[mode] = run(make(), args.time_limit, mode)
            rows[label] = row
            cells = []
            for mode in modes:
                r = row[mode]
                cell = f"{r['objective']:.6g}, {r['bound']:.6g}, {100 * r['gap']:.1f} %"
                if mode != "off":
                    cell += f" ({r['polish_s']:.1f} s, {r['polish_improvements']})"
                cells.append(cell)
            print(f"| {label} | {' | '.join(cells)} |", flush=True)
        saved["rows"] = list(rows.values())
    saved["loadavg_1min_at_end"] = machine()["loadavg_1min"]
    path.write_text(json.dumps(saved, indent=1) + "\n")


if __name__ == "__main__":
    main()
