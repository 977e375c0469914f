"""The period bounds of `splitplan.cuts` on the profiled GPU-cluster DAGs, and a hand-built plan.

    python benchmarks/profiled_bounds.py     # seconds; prints a table (no JSON)

For each benchmarks/data/*-op-gpu*.json file (benchmarks/make_gpu_clusters.py): the crossing
bound at the source, the co-location bound, the knapsack bound started from the larger of the
two (with its wall time) and `period_lower_bound` as the model's row uses it. Then, on ResNet-101
over 8 GPUs, the plan that keeps everything on the first H100 but moves the 3x3 convolution of
layer-3 blocks 1-21 (with the batch norm and ReLUs around it) to the other seven GPUs, three each:
its period by `splitplan.evaluate`, a plan known without any search.
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import splitplan
from splitplan import cuts
from splitplan.cost import tables

DATA = Path(__file__).resolve().parent / "data"


def hand_plan(inst: splitplan.Instance, per_gpu: int = 3) -> dict[str, str]:
    """Everything on the source; the middles of layer-3 blocks 1.. moved, `per_gpu` per GPU."""
    nodes = [n.name for n in inst.network.nodes]
    plan = {name: inst.network.source for name in inst.layer_names}
    others = itertools.cycle([n for n in nodes if n != inst.network.source])
    for block in range(1, 1 + per_gpu * (len(nodes) - 1)):
        gpu = next(others)
        for part in ("bn1", "relu", "conv2", "bn2", "relu'"):
            plan[f"layer3.{block}.{part}"] = gpu
    return plan


def main() -> None:
    print("| file | crossing bound s | co-location s | knapsack s (wall s) | period row s |")
    print("|---|---|---|---|---|")
    for path in sorted(DATA.glob("*-op-gpu*.json")):
        tb = tables(splitplan.load_instance(path))
        crossing = cuts.crossing_bound(tb, [tb.source])
        colocation = cuts.colocation_bound(tb)
        began = time.perf_counter()
        knapsack = cuts.knapsack_bound(tb, max(crossing, colocation))
        wall = time.perf_counter() - began
        row = cuts.period_lower_bound(tb)
        print(
            f"| {path.name} | {crossing:.6g} | {colocation:.6g} | {knapsack:.6g} ({wall:.2f}) "
            f"| {row:.6g} |"
        )
    inst = splitplan.load_instance(DATA / "resnet101-op-gpu8.json")
    ev = splitplan.evaluate(inst, hand_plan(inst))
    print(f"\nhand-built plan, ResNet-101 x 8 GPUs: period {ev.period_s:.6g} s ", end="")
    print(f"(feasible: {ev.feasible})")


if __name__ == "__main__":
    main()
