"""`pipeline.best_start` (the MIP start `splitplan.solve` uses for the period) at a few budgets.

    python benchmarks/primal_starts.py                  # about 2 minutes; prints a table
    python benchmarks/primal_starts.py --budgets 1 5 20 --only ResNet-101

For the profiled GPU-cluster DAGs (benchmarks/data/*-op-gpu*.json) and some generated pipeline
families: the evaluator's period of `best_start(inst, budget)` and its wall time per budget, and
on ResNet-101 x 8 GPUs the plan of `benchmarks/profiled_bounds.py` known without search. No JSON:
the lead's tables are benchmarks/pipeline.json.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import splitplan
from splitplan import pipeline
from splitplan.generate import pipeline_instance

DATA = Path(__file__).resolve().parent / "data"
CASES = [
    ("resnet101-op-gpu8", dict(file="resnet101-op-gpu8.json")),
    ("resnet101-op-gpu16", dict(file="resnet101-op-gpu16.json")),
    ("resnet50-op-gpu8", dict(file="resnet50-op-gpu8.json")),
    ("resnet50-op-gpu16", dict(file="resnet50-op-gpu16.json")),
    ("vit-tiny-op-gpu8", dict(file="vit-tiny-op-gpu8.json")),
    ("vit-tiny-op-gpu16", dict(file="vit-tiny-op-gpu16.json")),
    ("chain 300x8 hetero", dict(n_layers=300, n_nodes=8)),
    ("chain 300x16 hetero", dict(n_layers=300, n_nodes=16)),
    ("chain 1000x16 identical", dict(n_layers=1000, n_nodes=16, family="identical")),
    ("DAG 300x8 identical", dict(n_layers=300, n_nodes=8, family="identical", skip_prob=0.2)),
]


def load(kw: dict) -> splitplan.Instance:
    if "file" in kw:
        return splitplan.load_instance(DATA / kw["file"])
    return pipeline_instance(**kw)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--budgets", type=float, nargs="+", default=[1.0, 5.0])
    ap.add_argument("--only", default=None, help="substring of the case labels")
    args = ap.parse_args()
    print(f"load average {os.getloadavg()[0]:.2f}, {os.cpu_count()} CPUs")
    head = " | ".join(f"{b:g} s: period (wall s)" for b in args.budgets)
    print(f"| case | {head} |")
    print("|---|" + "---|" * len(args.budgets))
    for label, kw in CASES:
        if args.only and args.only.lower() not in label.lower():
            continue
        cells = []
        for budget in args.budgets:
            inst = load(kw)  # fresh: no cached tables from the previous budget
            began = time.perf_counter()
            plan = pipeline.best_start(inst, budget)
            wall = time.perf_counter() - began
            ev = splitplan.evaluate(inst, plan) if plan else None
            period = ev.period_s if ev and ev.feasible else float("inf")
            cells.append(f"{period:.6g} ({wall:.2f})")
        print(f"| {label} | " + " | ".join(cells) + " |", flush=True)
    if not args.only or "resnet101-op-gpu8".startswith(args.only.lower()):
        from profiled_bounds import hand_plan

        inst = load(CASES[0][1])
        period = splitplan.evaluate(inst, hand_plan(inst)).period_s
        print(f"\nhand plan, resnet101-op-gpu8: {period:.6g} s")


if __name__ == "__main__":
    main()
