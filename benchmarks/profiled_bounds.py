"""The period bounds of `splitplan.cuts` on the profiled GPU-cluster DAGs, and hand-built plans.

    python benchmarks/profiled_bounds.py     # seconds; prints tables (no JSON)

For each benchmarks/data/*-op-gpu*.json file (benchmarks/make_gpu_clusters.py): the crossing
bound at the source, the co-location bound, the knapsack bound started from the larger of the
two with the pooled budget of its first version (`rounding=False`: all arcs at the pivot's node
in one row) and with the rounded budgets out of and into that node (the default), each with its
wall time, and `period_lower_bound` as the model's row uses it. Then plans known without any
search, their periods by `splitplan.evaluate`, and the gap of the period row to the best:

- ResNet-101 over 8 GPUs, "middles": everything on the first H100 but the 3x3 convolution of
  layer-3 blocks 1-21 (with the batch norm and ReLUs around it), three per other GPU;
- ResNet-101 over 8 GPUs, "tail": the second H100 runs layer 4 from block 1 on (to the fc)
  and layer-3 block 1's middle, the other six GPUs three middles each (blocks 2-19);
- ResNet-101 over 16 GPUs, "tail": one GPU runs layer 4 from block 1 on, one block 0's 3x3
  and last 1x1 convolutions of layer 4, two a layer-2 middle each, eleven two layer-3 middles
  each.

Last, on ResNet-101 over 8 GPUs, what offloading one residual block's middle (the "middles" above)
to the second H100 costs that GPU and each of its links to the first, for a block of layers 2,
3 and 4, and the same for layer 4's tail of `tail_plan` (models/formulation.md §11 quotes them).
"""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import splitplan
from splitplan import cuts
from splitplan.cost import tables

DATA = Path(__file__).resolve().parent / "data"
MIDDLE = ("bn1", "relu", "conv2", "bn2", "relu'")


def hand_plan(inst: splitplan.Instance, per_gpu: int = 3) -> dict[str, str]:
    """Everything on the source; the middles of layer-3 blocks 1.. moved, `per_gpu` per GPU."""
    nodes = [n.name for n in inst.network.nodes]
    plan = {name: inst.network.source for name in inst.layer_names}
    others = itertools.cycle([n for n in nodes if n != inst.network.source])
    for block in range(1, 1 + per_gpu * (len(nodes) - 1)):
        gpu = next(others)
        for part in MIDDLE:
            plan[f"layer3.{block}.{part}"] = gpu
    return plan


def tail(names: list[str]) -> list[str]:
    """ResNet-101's layer 4 from block 1 on, to the fc: the ops after block 0's last ReLU."""
    return names[names.index("layer4.0.relu''") + 1 :]


def tail_plan(inst: splitplan.Instance) -> dict[str, str]:
    """Everything on the source but what each other GPU takes, in node order: "tail" (layer 4
    from block 1 to the fc), "layer4.0" (block 0's middle and last 1x1 convolution), or a
    block's middle ("layer3.5")."""
    nodes = [n.name for n in inst.network.nodes if n.name != inst.network.source]
    if len(nodes) == 7:
        loads = [["tail", "layer3.1"], *[[f"layer3.{b + i}" for i in range(3)] for b in (2, 5, 8)]]
        loads += [[f"layer3.{b + i}" for i in range(3)] for b in (11, 14, 17)]
    else:
        loads = [["tail"], ["layer4.0"], ["layer2.1"], ["layer2.2"]]
        loads += [[f"layer3.{b}", f"layer3.{b + 1}"] for b in range(1, 23, 2)]
    names = inst.layer_names
    plan = {name: inst.network.source for name in names}
    for gpu, load in zip(nodes, loads, strict=False):
        for part in load:
            if part == "tail":
                layers = tail(names)
            elif part == "layer4.0":
                layers = [f"layer4.0.{p}" for p in ("conv2", "bn2", "relu'", "conv3", "bn3")]
            else:
                layers = [f"{part}.{p}" for p in MIDDLE]
            for layer in layers:
                plan[layer] = gpu
    return plan


def main() -> None:
    print(
        "| file | crossing bound s | co-location s | knapsack pooled s (wall s) "
        "| knapsack rounded s (wall s) | period row s |"
    )
    print("|---|---|---|---|---|---|")
    rows = {}
    for path in sorted(DATA.glob("*-op-gpu*.json")):
        tb = tables(splitplan.load_instance(path))
        crossing = cuts.crossing_bound(tb, [tb.source])
        colocation = cuts.colocation_bound(tb)
        cells = []
        for rounding in (False, True):
            began = time.perf_counter()
            knapsack = cuts.knapsack_bound(tb, max(crossing, colocation), rounding=rounding)
            cells.append(f"{knapsack:.6g} ({time.perf_counter() - began:.2f})")
        began = time.perf_counter()
        rows[path.name] = row = cuts.period_lower_bound(tb)
        row_wall = time.perf_counter() - began
        print(
            f"| {path.name} | {crossing:.6g} | {colocation:.6g} | {cells[0]} | {cells[1]} "
            f"| {row:.6g} ({row_wall:.2f}) |"
        )
    print("\n| plan | period s (feasible) | gap of the period row |")
    print("|---|---|---|")
    for name in ("resnet101-op-gpu8.json", "resnet101-op-gpu16.json"):
        inst = splitplan.load_instance(DATA / name)
        plans = [("tail", tail_plan(inst))]
        if len(inst.network.nodes) == 8:
            plans.insert(0, ("middles", hand_plan(inst)))
        for label, plan in plans:
            ev = splitplan.evaluate(inst, plan)
            gap = (ev.period_s - rows[name]) / ev.period_s
            print(f"| {name} {label} | {ev.period_s:.6g} ({ev.feasible}) | {100 * gap:.2f} % |")
    print(
        "\n| resnet101-op-gpu8.json: a block's middle on the second H100 "
        "| compute us | link us each way |"
    )
    print("|---|---|---|")
    for block in ("layer2.1", "layer3.1", "layer4.1", "tail"):
        compute, link = offload(splitplan.load_instance(DATA / "resnet101-op-gpu8.json"), block)
        print(f"| {block} | {1e6 * compute:.1f} | {1e6 * link:.0f} |")


def offload(inst: splitplan.Instance, block: str) -> tuple[float, float]:
    """Everything on the source but `block`'s middle, on the next GPU (the second H100): that
    GPU's compute and the larger of the loads of its two arcs with the source (§7)."""
    source = inst.network.source
    gpu = next(n.name for n in inst.network.nodes if n.name != source)
    names = inst.layer_names
    plan = {name: source for name in names}
    if block == "tail":
        plan |= {name: gpu for name in tail(names)}
    else:
        plan |= {f"{block}.{part}": gpu for part in MIDDLE}
    ev = splitplan.evaluate(inst, plan)
    link = max(ev.link_load_s.get((source, gpu), 0.0), ev.link_load_s.get((gpu, source), 0.0))
    return ev.node_compute_s[gpu], link


if __name__ == "__main__":
    main()
