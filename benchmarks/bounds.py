"""What the valid inequalities of `splitplan.cuts` do to the MILP's bound (issue 13, dual side).

    python benchmarks/bounds.py             # the table in the README (about 30 min on 2 cores)
    python benchmarks/bounds.py --quick     # small sizes, a smoke test (seconds)
    python benchmarks/bounds.py --families "latency DAG 100x8 mesh memory"  # rerun some rows

For each instance family, the model is built with the cuts (`build_milp(inst)`) and without them
(`build_milp(inst, cuts=False)`) and solved by HiGHS once with a time limit; a callback records
the proven bound and the incumbent as the search goes, so that the bound and the gap at 1 s, 10 s
and 60 s come from one run. `root LP` is the LP relaxation's value; every gap is taken against
`best`, the best plan any run found (its evaluator cost; and the primal side's start,
`splitplan.pipeline.best_start`, where that module exists), so the two columns compare bounds on
the same footing; `gap@t` uses the run's own incumbent at that time. No MIP start is given to the
runs: what the bound does is measured alone. Timings on a shared machine are noisy.
Results: benchmarks/bounds.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import splitplan
from splitplan.generate import random_instance
from splitplan.instance import DNN, Constraints, Instance, Link, Network, Node, Objective
from splitplan.milp import build_milp

CHECKPOINTS_S = (1.0, 10.0, 60.0)


def identical_workers(
    n_layers: int, n_nodes: int, seed: int = 0, memory_fraction: float | None = None
) -> Instance:
    """A DNN on `n_nodes` identical workers, all linked to each other by identical links.

    The workers have one speed (1e11 FLOP/s), one memory (when `memory_fraction` is given: that
    fraction of all parameters plus the largest working set, as `generate.random_instance`) and
    equal powers; node w0 holds the input and takes the output. Layers come from
    `generate.random_dnn` (a chain). The other workers are interchangeable: any permutation of
    w1..w{n-1} maps the network onto itself.
    """
    base = random_instance(n_layers, 2, seed=seed, memory_fraction=memory_fraction)
    mem = base.network.nodes[0].memory_bytes
    nodes = tuple(
        Node(f"w{k}", 1e11, memory_bytes=mem, compute_power_w=100.0, tx_power_w=5.0)
        for k in range(n_nodes)
    )
    links = tuple(
        Link(f"w{a}", f"w{b}", 1e9, 1e-4) for a in range(n_nodes) for b in range(a + 1, n_nodes)
    )
    dnn: DNN = base.dnn
    return Instance(
        dnn,
        Network(nodes, links, "w0", "w0"),
        Objective("throughput"),
        Constraints(),
        f"identical-{n_layers}x{n_nodes}-{seed}",
    )


def _profiled(name: str):
    """A loader of benchmarks/data/NAME.json."""
    path = Path(__file__).resolve().parent / "data" / f"{name}.json"
    return lambda: splitplan.load_instance(path)


FAMILIES = [
    # (label, builder)
    ("throughput chain 100x8", lambda: random_instance(100, 8, objective="throughput")),
    ("throughput chain 300x8", lambda: random_instance(300, 8, objective="throughput")),
    ("throughput chain 300x16", lambda: random_instance(300, 16, objective="throughput")),
    (
        "throughput chain 300x16 mesh",
        lambda: random_instance(300, 16, topology="mesh", objective="throughput"),
    ),
    ("throughput identical 300x8 memory", lambda: identical_workers(300, 8, memory_fraction=0.2)),
    ("throughput identical 1000x16", lambda: identical_workers(1000, 16)),
    (
        "latency DAG 100x8 mesh memory",
        lambda: random_instance(100, 8, topology="mesh", skip_prob=0.3, memory_fraction=0.2),
    ),
    (
        "weighted DAG 300x8 mesh memory",
        lambda: random_instance(
            300, 8, topology="mesh", skip_prob=0.2, memory_fraction=0.2, objective="weighted"
        ),
    ),
    ("latency chain 150x5", lambda: random_instance(150, 5, topology="chain")),
    ("latency chain 300x10", lambda: random_instance(300, 10, topology="chain")),
    (
        "latency DAG 1000x16 mesh",
        lambda: random_instance(1000, 16, topology="mesh", skip_prob=0.2),
    ),
    # profiled op-level DAGs on GPU clusters (benchmarks/make_gpu_clusters.py)
    *(
        (f"throughput profiled {model} x {n} GPUs", _profiled(f"{model}-op-gpu{n}"))
        for model in ("vit-tiny", "resnet50", "resnet101")
        for n in (8, 16)
    ),
]
QUICK = [
    ("throughput chain 30x4", lambda: random_instance(30, 4, objective="throughput")),
    ("throughput identical 30x4 memory", lambda: identical_workers(30, 4, memory_fraction=0.3)),
    (
        "latency DAG 30x4 mesh memory",
        lambda: random_instance(30, 4, topology="mesh", skip_prob=0.3, memory_fraction=0.3),
    ),
]


def _highs_model(sf):
    import highspy

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(sf.c), len(sf.row_lb)
    lp.col_cost_, lp.offset_ = sf.c, sf.offset
    lp.col_lower_, lp.col_upper_ = sf.col_lb, sf.col_ub
    lp.row_lower_, lp.row_upper_ = sf.row_lb, sf.row_ub
    lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
    lp.a_matrix_.start_, lp.a_matrix_.index_ = sf.A_start, sf.A_index
    lp.a_matrix_.value_ = sf.A_value
    return lp


def measure(inst: Instance, cuts: bool, time_limit_s: float) -> dict:
    """Build, root LP and one timed MIP run, with (bound, incumbent) recorded over time."""
    import highspy

    began = time.perf_counter()
    milp = build_milp(inst, cuts=cuts)
    build_s = time.perf_counter() - began
    sf = milp.matrix
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.passModel(_highs_model(sf))
    h.run()
    root_lp = h.getInfo().objective_function_value
    root_lp_s = h.getRunTime()

    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("time_limit", float(time_limit_s))
    h.setOptionValue("mip_rel_gap", 1e-6)
    h.setOptionValue("presolve", "off")  # as splitplan.solve runs HiGHS on a MIP
    lp = _highs_model(sf)
    lp.integrality_ = [
        highspy.HighsVarType.kInteger if i else highspy.HighsVarType.kContinuous for i in sf.integer
    ]
    h.passModel(lp)
    trace: list[tuple[float, float, float]] = []

    def record(event) -> None:
        d = event.data_out
        trace.append((d.running_time, d.mip_dual_bound, d.mip_primal_bound))

    h.cbMipInterrupt += record
    h.cbMipImprovingSolution += record
    h.run()
    info = h.getInfo()
    incumbent = info.objective_function_value if info.primal_solution_status == 2 else np.inf
    # the last record stands at the limit (HiGHS stops a little past it)
    trace.append((min(h.getRunTime(), time_limit_s), info.mip_dual_bound, incumbent))
    values = np.array(h.getSolution().col_value) if info.primal_solution_status == 2 else None
    objective = None
    if values is not None:
        ev = splitplan.evaluate(inst, milp.read_assignment(values))
        objective = ev.objective(inst) if ev.feasible else None
    at = {}
    for t in CHECKPOINTS_S:
        seen = [r for r in trace if r[0] <= t]
        at[str(t)] = {
            "bound": max((r[1] for r in seen if np.isfinite(r[1])), default=None),
            "incumbent": min((r[2] for r in seen if np.isfinite(r[2])), default=None),
        }
    return {
        "cuts": cuts,
        "columns": len(sf.c),
        "rows": len(sf.row_lb),
        "build_s": build_s,
        "root_lp": root_lp,
        "root_lp_s": root_lp_s,
        "status": h.modelStatusToString(h.getModelStatus()),
        "solve_s": h.getRunTime(),
        "objective": objective,
        "bound": info.mip_dual_bound if np.isfinite(info.mip_dual_bound) else None,
        "at": at,
    }


def primal_start(inst: Instance, budget_s: float = 5.0) -> float | None:
    """The cost of the primal side's best start (`splitplan.pipeline.best_start`, issue 13),
    where that module exists: a better `best` makes every gap below more honest."""
    try:
        from splitplan.pipeline import best_start
    except ImportError:
        return None
    assignment = best_start(inst, budget_s)
    if assignment is None:
        return None
    ev = splitplan.evaluate(inst, assignment)
    return ev.objective(inst) if ev.feasible else None


def shipped_lp_gaps() -> list[dict]:
    """The throughput LP relaxation of every shipped instance without and with the cuts, against
    its proven optimum in instances/reference.json."""
    from splitplan.instance import load_instance
    from splitplan.solvers import solve_standard_form

    folder = Path(__file__).resolve().parents[1] / "instances"
    reference = json.loads((folder / "reference.json").read_text())["instances"]
    rows = []
    for name, kinds in sorted(reference.items()):
        if "throughput" not in kinds:
            continue
        inst = load_instance(folder / name).with_objective(Objective("throughput"))
        optimum = kinds["throughput"]["optimum"]
        lp = [
            solve_standard_form(build_milp(inst, cuts=cuts).matrix, "highs", relax=True).objective
            for cuts in (False, True)
        ]
        rows.append(
            {
                "instance": name,
                "optimum": optimum,
                "lp": lp[0],
                "lp_cuts": lp[1],
                "lp_gap": _gap(optimum, lp[0]),
                "lp_gap_cuts": _gap(optimum, lp[1]),
            }
        )
    return rows


def _gap(best: float | None, bound: float | None) -> float | None:
    if best is None or bound is None:
        return None
    return max(0.0, best - bound) / best if best else 0.0


def run(families, time_limit_s: float) -> list[dict]:
    rows = []
    for label, make in families:
        load_before = os.getloadavg()
        inst = make()
        runs = [measure(inst, cuts, time_limit_s) for cuts in (False, True)]
        found = [r["objective"] for r in runs if r["objective"] is not None]
        start = primal_start(inst)
        if start is not None:
            found.append(start)
        best = min(found) if found else None
        for r in runs:
            r["root_lp_gap"] = _gap(best, r["root_lp"])
            for a in r["at"].values():
                a["bound_gap"] = _gap(best, a["bound"])
                a["gap"] = _gap(a["incumbent"], a["bound"])
        # the 1, 5 and 15 min load averages before and after the row's runs (2 cores: > 2 is load)
        load = [round(x, 2) for x in (*load_before, *os.getloadavg())]
        rows.append(
            {
                "family": label,
                "instance": inst.name,
                "best": best,
                "start": start,
                "runs": runs,
                "load_average": load,
            }
        )
        off, on = runs
        print(
            f"  {label:<36} root LP gap {_pct(off['root_lp_gap'])} -> {_pct(on['root_lp_gap'])}, "
            f"solve {off['solve_s']:.1f} s -> {on['solve_s']:.1f} s",
            flush=True,
        )
    return rows


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.3g} %"


def markdown(rows: list[dict]) -> str:
    heads = " | ".join(f"bound gap / gap @{t:g} s" for t in CHECKPOINTS_S)
    out = [
        f"| family | cuts | build s | root LP gap | {heads} | status (s) |",
        "|---|---|---|---|" + "---|" * len(CHECKPOINTS_S) + "---|",
    ]
    for row in rows:
        for r in row["runs"]:
            cells = " | ".join(
                f"{_pct(r['at'][str(t)]['bound_gap'])} / {_pct(r['at'][str(t)]['gap'])}"
                for t in CHECKPOINTS_S
            )
            out.append(
                f"| {row['family']} | {'yes' if r['cuts'] else 'no'} | {r['build_s']:.2f} | "
                f"{_pct(r['root_lp_gap'])} | {cells} | {r['status']} ({r['solve_s']:.1f}) |"
            )
    return "\n".join(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke test)")
    parser.add_argument(
        "--time-limit", type=float, help="seconds per MIP run (default 60; 5 with --quick)"
    )
    parser.add_argument("--only", help="run only the families whose label contains this")
    parser.add_argument(
        "--families",
        nargs="+",
        metavar="LABEL",
        help="run only these families (exact labels, e.g. 'latency DAG 100x8 mesh memory'); "
        "their rows replace those of the same label in the output, the others are kept",
    )
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("bounds.json")))
    args = parser.parse_args()
    families = QUICK if args.quick else FAMILIES
    if args.only:
        families = [f for f in families if args.only in f[0]]
    if args.families:
        unknown = sorted(set(args.families) - {label for label, _ in families})
        if unknown:
            parser.error(f"unknown families: {', '.join(unknown)}")
        families = [f for f in families if f[0] in args.families]
    limit = args.time_limit or (5.0 if args.quick else max(CHECKPOINTS_S))
    partial = bool(args.only or args.families)
    shipped = [] if args.quick or partial else shipped_lp_gaps()
    rows = run(families, limit)
    out = Path(args.output)
    if partial and out.exists():  # a filtered run updates its rows and keeps the others
        previous = json.loads(out.read_text())
        fresh = {r["family"]: r for r in rows}
        kept = [fresh.pop(r["family"], r) for r in previous["rows"]]
        rows = kept + list(fresh.values())
        shipped = previous.get("shipped", [])
    result = {
        "machine": f"{platform.machine()}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs (shared with other jobs: timings are noisy)",
        "time_limit_s": limit,
        "shipped": shipped,
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(markdown(rows))
    print()
    print("| shipped instance (throughput) | LP gap without cuts | with cuts |")
    print("|---|---|---|")
    for r in shipped:
        print(f"| {r['instance']} | {_pct(r['lp_gap'])} | {_pct(r['lp_gap_cuts'])} |")


if __name__ == "__main__":
    main()
