"""The MILP against the pipeline planners' DPs on the period (throughput), side by side.

    python benchmarks/pipeline.py            # the README's table (about 25 minutes on 2 cores)
    python benchmarks/pipeline.py --quick    # small families, short limits (the tests run this)

Per family (splitplan.generate.pipeline_instance: chains of 50-1000 layers and a DAG on 4-16
nodes, heterogeneous or identical, complete or star networks, some memory-limited): the period
and wall time of each DP that applies (PipeEdge's, EdgeShard's throughput DP, the textbook stage
DP, PipeDream's optimizer; splitplan.pipeline), of `pipeline.best_start` (the MIP start
`splitplan.solve` uses by default, here with a 1 s budget), of the MILP (HiGHS) as
`splitplan.solve` runs it by default with a short limit (its start gets
`pipeline.start_budget_s` of it), and of the MILP with a long limit started from the best of the
DP plans and the short run's plan (what `splitplan compare` does). Periods are the evaluator's,
also as ratios to the best peer DP; the gap is against the MILP's proven bound. Results go to
benchmarks/pipeline.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import machine

import splitplan
from splitplan import pipeline
from splitplan.baselines import NotApplicable
from splitplan.generate import pipeline_instance

ROOT = Path(__file__).resolve().parents[1]
DPS = ("pipeedge", "edgeshard", "stages-dp", "pipedream")
FAMILIES = [
    # (label, kwargs of pipeline_instance)
    ("chain 100x8 hetero", dict(n_layers=100, n_nodes=8)),
    ("chain 300x8 hetero", dict(n_layers=300, n_nodes=8)),
    ("chain 300x16 hetero", dict(n_layers=300, n_nodes=16)),
    ("chain 1000x16 hetero", dict(n_layers=1000, n_nodes=16)),
    ("chain 100x8 hetero star", dict(n_layers=100, n_nodes=8, topology="star")),
    ("chain 50x4 hetero, memory", dict(n_layers=50, n_nodes=4, memory_fraction=0.3)),
    ("chain 300x8 hetero, memory", dict(n_layers=300, n_nodes=8, memory_fraction=0.2)),
    ("chain 1000x16 identical", dict(n_layers=1000, n_nodes=16, family="identical")),
    (
        "chain 300x8 identical, memory",
        dict(n_layers=300, n_nodes=8, family="identical", memory_fraction=0.2),
    ),
    ("DAG 300x8 identical", dict(n_layers=300, n_nodes=8, family="identical", skip_prob=0.2)),
    # profiled op-level DAGs on GPU clusters (benchmarks/make_gpu_clusters.py writes them)
    ("profiled ViT-Tiny 261-op DAG x 8 GPUs", dict(file="benchmarks/data/vit-tiny-op-gpu8.json")),
    ("profiled ViT-Tiny 261-op DAG x 16 GPUs", dict(file="benchmarks/data/vit-tiny-op-gpu16.json")),
    ("profiled ResNet-50 175-op DAG x 8 GPUs", dict(file="benchmarks/data/resnet50-op-gpu8.json")),
    (
        "profiled ResNet-50 175-op DAG x 16 GPUs",
        dict(file="benchmarks/data/resnet50-op-gpu16.json"),
    ),
    (
        "profiled ResNet-101 345-op DAG x 8 GPUs",
        dict(file="benchmarks/data/resnet101-op-gpu8.json"),
    ),
    (
        "profiled ResNet-101 345-op DAG x 16 GPUs",
        dict(file="benchmarks/data/resnet101-op-gpu16.json"),
    ),
]
QUICK = [
    ("chain 30x4 hetero", dict(n_layers=30, n_nodes=4)),
    ("chain 20x4 hetero, memory", dict(n_layers=20, n_nodes=4, memory_fraction=0.3)),
    ("DAG 20x3 identical", dict(n_layers=20, n_nodes=3, family="identical", skip_prob=0.3)),
]


def run_dp(inst: splitplan.Instance, method: str) -> dict:
    from splitplan.baselines import run_method

    start = time.perf_counter()
    try:
        plan = run_method(inst, method)
    except NotApplicable as exc:
        return {"applies": False, "why": str(exc)}
    wall = time.perf_counter() - start
    feasible = plan.status != "infeasible"
    return {
        "applies": True,
        "period_s": plan.objective if feasible else None,
        "wall_s": wall,
        "assignment": plan.assignment if feasible else None,
    }


def run_milp(inst: splitplan.Instance, limit_s: float, initial=None) -> dict:
    start = time.perf_counter()
    plan = splitplan.solve(inst, time_limit_s=limit_s, initial=initial)
    return {
        "status": plan.status,
        "period_s": plan.objective,
        "bound_s": plan.bound,
        "gap": plan.gap,
        "wall_s": time.perf_counter() - start,
        "build_s": plan.build_time_s,
        "assignment": plan.assignment,
    }


def memory_section(quick: bool) -> dict:
    """How fast `best_start` returns a plan on memory-limited random DAGs (the compare
    benchmark's families), against the MILP's first plan (HiGHS, short limit, no start)."""
    from splitplan.generate import random_instance

    cases = []
    for n_layers, n_nodes, frac in [(30, 4, 0.3)] if quick else [(100, 8, 0.2), (300, 8, 0.15)]:
        for seed in range(3 if quick else 10):
            inst = random_instance(
                n_layers,
                n_nodes,
                seed=seed,
                topology="mesh",
                skip_prob=0.3,
                memory_fraction=frac,
                objective="throughput" if seed % 2 else "latency",
            )
            t0 = time.perf_counter()
            first = pipeline.first_fit(inst)
            first_wall = time.perf_counter() - t0
            t0 = time.perf_counter()
            start = pipeline.best_start(inst, 1.0)
            wall = time.perf_counter() - t0
            ev = splitplan.evaluate(inst, start) if start else None
            cases.append(
                {
                    "instance": inst.name,
                    "objective": inst.objective.kind,
                    "start_feasible": bool(ev and ev.feasible),
                    "start_wall_s": wall,
                    "first_fit_feasible": first is not None,
                    "first_fit_wall_s": first_wall,
                }
            )
    return {
        "cases": cases,
        "found": sum(c["start_feasible"] for c in cases),
        "max_wall_s": max(c["start_wall_s"] for c in cases),
        "first_fit_found": sum(c["first_fit_feasible"] for c in cases),
        "first_fit_max_wall_s": max(c["first_fit_wall_s"] for c in cases),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="small families, short limits")
    ap.add_argument("--short", type=float, default=None, help="short MILP limit, s (10)")
    ap.add_argument("--long", type=float, default=None, help="long MILP limit, s (60)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--only",
        default=None,
        help="run the families whose label contains one of these comma-separated strings",
    )
    ap.add_argument(
        "--memory", action="store_true", help="only the first-plan timing on memory-limited DAGs"
    )
    args = ap.parse_args()
    if args.memory:
        mem = memory_section(args.quick) | {"machine": machine()}
        print(
            f"best_start: a feasible plan on {mem['found']} of {len(mem['cases'])} "
            f"memory-limited DAGs, at most {mem['max_wall_s']:.2f} s each (1 s budget); "
            f"first fit alone: {mem['first_fit_found']}, at most "
            f"{mem['first_fit_max_wall_s']:.2f} s"
        )
        if not args.quick:
            path = ROOT / "benchmarks" / "pipeline_memory.json"
            path.write_text(json.dumps(mem, indent=1) + "\n")
        return
    short = args.short or (2.0 if args.quick else 10.0)
    long = args.long or (4.0 if args.quick else 60.0)
    families = QUICK if args.quick else FAMILIES
    if args.only:
        families = [f for f in families if any(o in f[0] for o in args.only.split(","))]
    rows = []
    for label, kw in families:
        if "file" in kw:
            inst = splitplan.load_instance(ROOT / str(kw["file"]))
        else:
            inst = pipeline_instance(seed=args.seed, **kw)
        row: dict = {"family": label, "instance": inst.name}
        row["dps"] = {m: run_dp(inst, m) for m in DPS}
        t0 = time.perf_counter()
        start = pipeline.best_start(inst, 1.0)
        row["start"] = {
            "period_s": splitplan.evaluate(inst, start).period_s if start else None,
            "wall_s": time.perf_counter() - t0,
        }
        row["milp_short"] = run_milp(inst, short)
        row["milp_short"]["start_budget_s"] = pipeline.start_budget_s(inst, short)
        peers = [d for d in row["dps"].values() if d.get("period_s") is not None]
        best_peer = min(peers, key=lambda d: d["period_s"]) if peers else None
        warm = [row["milp_short"]] + ([best_peer] if best_peer else [])
        warm = [w for w in warm if w.get("assignment")]
        initial = min(warm, key=lambda w: w["period_s"])["assignment"] if warm else None
        row["milp_long"] = run_milp(inst, long, initial)
        row["best_peer_s"] = best_peer["period_s"] if best_peer else None
        for part in [*row["dps"].values(), row["milp_short"], row["milp_long"]]:
            part.pop("assignment", None)
        rows.append(row)
        print(line(row), flush=True)
    out = {
        "machine": machine(),
        "short_limit_s": short,
        "long_limit_s": long,
        "seed": args.seed,
        "rows": rows,
    }
    print()
    print(table(rows, short, long))
    if args.quick:
        return
    path = ROOT / "benchmarks" / "pipeline.json"
    if args.only and path.exists():  # a partial rerun replaces its own rows, keeps the others
        kept = json.loads(path.read_text())
        fresh = {r["family"]: r for r in rows}
        merged = [fresh.pop(r["family"], r) for r in kept["rows"]] + list(fresh.values())
        out["rows"] = merged
        rerun = {"families": sorted(r["family"] for r in rows), "machine": machine()}
        out["partial_reruns"] = [*kept.get("partial_reruns", []), rerun]
        out["machine"] = kept["machine"]
    path.write_text(json.dumps(out, indent=1) + "\n")


def _cell(period, wall, ref) -> str:
    if period is None:
        return "none"
    ratio = f" x{period / ref:.3f}" if ref else ""
    return f"{period:.4g}{ratio} ({wall:.2f} s)"


def line(row: dict) -> str:
    return f"{row['family']}: peer {row['best_peer_s']}, " + ", ".join(
        f"{k} {row[k]['period_s']}" for k in ("milp_short", "milp_long")
    )


def table(rows: list[dict], short: float, long: float) -> str:
    head = (
        "| family | PipeEdge | EdgeShard | stage DP | PipeDream | start (1 s) "
        f"| MILP {short:g} s: ratio, gap | MILP {long:g} s from the best DP: ratio, gap |"
    )
    lines = [head, "|---" * 8 + "|"]
    for r in rows:
        ref = r["best_peer_s"]
        cells = []
        for m in DPS:
            d = r["dps"][m]
            cells.append(_cell(d["period_s"], d["wall_s"], ref) if d["applies"] else "n/a")
        cells.append(_cell(r["start"]["period_s"], r["start"]["wall_s"], ref))
        for k in ("milp_short", "milp_long"):
            m = r[k]
            if m["period_s"] is None:
                cells.append(f"no plan ({m['status']})")
                continue
            ratio = f"x{m['period_s'] / ref:.3f}" if ref else f"{m['period_s']:.4g}"
            gap = f"{100 * m['gap']:.1f} %" if m["gap"] is not None else "-"
            cells.append(f"{ratio}, {gap}")
        lines.append(f"| {r['family']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
