"""The exact accuracy / latency Pareto front of NAS-Bench-201 on device-edge networks.

    python benchmarks/nb201_front.py [--networks NET,NET,...] [--dataset cifar10]
                                     [--milp-sample 200] [--quick]

Plans all 15,625 NB201 cells on each network (default: pi4-edge-wifi, pi4-edge-lte,
phone-edge-wifi, phone-edge-lte) with the exact chain DP (each cell network is a
chain of 19 layers), checks the DP against the MILP (HiGHS) on a random sample and times both,
computes the front, its hypervolume (reference: chance accuracy and the slowest planned cell)
and NASC's comparison (the most accurate cell with its optimal split against the fastest cell
within 0.5 accuracy points of it). Writes benchmarks/nb201_front.json (not in --quick mode,
which plans 500 cells) and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import time
from pathlib import Path

from splitplan.nas import nb201
from splitplan.nas.nb201 import Nb201Space, exact_front, nasc_comparison, plan_latency

OUT = Path(__file__).resolve().parent / "nb201_front.json"


def kind(placement: str) -> str:
    if placement.count("[") == 1:
        return "local" if placement.startswith("device[") else "offload"
    return "split"


def op_times_check(space: Nb201Space, n: int, seed: int, rounds: int = 20) -> list[dict]:
    """How well the host-CPU primitive table describes real cell networks on this CPU (one
    thread): per network, the measured whole-network time against the table's sum, and each of
    the 19 blocks timed alone on its real input, as shares of their sum, against the table's
    shares (the per-layer split of the device latencies). Fastest of `rounds` interleaved runs."""
    import torch

    torch.set_num_threads(1)
    rng = random.Random(seed)
    archs = rng.sample(space.all_archs(), n)
    jobs = []  # (arch, block index or -1 for the whole network, module, input)
    with torch.no_grad():
        for arch in archs:
            model, x = nb201.build_model(arch), torch.randn(1, 3, 32, 32)
            jobs.append((arch, -1, model, x))
            blocks = [model.stem, *model.cells, model.head]
            for b, block in enumerate(blocks):
                jobs.append((arch, b, block, x))
                x = block(x)
        best = [float("inf")] * len(jobs)
        for _ in range(rounds):
            for j, (_, _, module, x) in enumerate(jobs):
                start = time.perf_counter()
                module(x)
                best[j] = min(best[j], time.perf_counter() - start)
    out = []
    for arch in archs:
        whole = next(best[j] for j, job in enumerate(jobs) if job[0] == arch and job[1] < 0)
        blocks = [best[j] for j, job in enumerate(jobs) if job[0] == arch and job[1] >= 0]
        table = [
            sum(space.op_times[k] * w for k, w in s.primitives) for s in nb201.layer_specs(arch)
        ]
        shares = [t / sum(blocks) for t in blocks]
        predicted = [t / sum(table) for t in table]
        out.append(
            {
                "index": space.index(arch),
                "measured_ms": whole * 1e3,
                "table_sum_ms": sum(table) * 1e3,
                "ratio": whole / sum(table),
                "max_share_error_points": 100
                * max(abs(p - q) for p, q in zip(shares, predicted, strict=True)),
                "measured_shares_pct": [round(100 * t, 2) for t in shares],
                "table_shares_pct": [round(100 * t, 2) for t in predicted],
            }
        )
    return out


def run_network(space: Nb201Space, network: str, archs, milp_sample: int, seed: int) -> dict:
    def progress(done: int, total: int) -> None:
        if done % 2500 == 0 or done == total:
            print(f"  {network}: {done}/{total}", file=sys.stderr, flush=True)

    res = exact_front(space, network, archs=archs, progress=progress)
    by_index = {c.index: c for c in res.cells}
    rng = random.Random(seed)
    sample = rng.sample([c.arch for c in res.cells], min(milp_sample, len(res.cells)))
    plan_latency(space, sample[0], network, method="milp")  # warm the solver up
    start = time.perf_counter()
    worst = 0.0
    for arch in sample:
        r = plan_latency(space, arch, network, method="milp")
        dp = by_index[r["index"]].latency_s
        worst = max(worst, abs(r["latency_s"] - dp) / dp)
    milp_rate = len(sample) / (time.perf_counter() - start)
    kinds = {k: 0 for k in ("local", "offload", "split")}
    for c in res.cells:
        kinds[kind(c.placement)] += 1
    front_kinds = {k: 0 for k in ("local", "offload", "split")}
    for c in res.front:
        front_kinds[kind(c.placement)] += 1
    hv_ms = res.hypervolume * 1e3
    box = (100 - res.reference[0]) * res.reference[1] * 1e3
    return {
        "network": network,
        "cells": len(res.cells),
        "method": res.method,
        "seconds": res.seconds,
        "evals_per_s": res.rate,
        "milp_sample": len(sample),
        "milp_evals_per_s": milp_rate,
        "milp_max_rel_diff_vs_dp": worst,
        "placements_all": kinds,
        "placements_front": front_kinds,
        "reference": {"accuracy_pct": res.reference[0], "latency_ms": res.reference[1] * 1e3},
        "hypervolume_pct_ms": hv_ms,
        "hypervolume_fraction_of_box": hv_ms / box,
        "nasc": nasc_comparison(res, 0.5),
        "front": [
            {
                "arch": c.arch,
                "index": c.index,
                "accuracy": c.accuracy,
                "latency_ms": c.latency_s * 1e3,
                "local_latency_ms": c.local_latency_s * 1e3,
                "placement": c.placement,
            }
            for c in res.front
        ],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--networks", default="pi4-edge-wifi,pi4-edge-lte,phone-edge-wifi,phone-edge-lte"
    )
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--milp-sample", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="500 cells, no JSON written")
    parser.add_argument("-o", "--out", default=str(OUT))
    args = parser.parse_args()
    space = Nb201Space(args.dataset)
    archs = None
    if args.quick:
        archs = random.Random(args.seed).sample(space.all_archs(), 500)
        args.milp_sample = min(args.milp_sample, 20)
    import torch

    results = {
        "what": "exact accuracy / latency Pareto front of NAS-Bench-201 on device-edge presets",
        "dataset": space.dataset,
        "accuracy": "NATS-Bench test accuracy, 200 epochs, mean over seeds (%)",
        "latency": "optimal plan's latency (splitplan cost model) with per-layer times = measured "
        "whole-network latencies (HW-NAS-Bench Pi 4 / Pixel 3, HELP RTX 2080 Ti) split by the "
        "host-CPU primitive table; hypervolume in accuracy points x ms",
        "machine": nb201.machine_description(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "op_times_machine": json.loads(nb201.OP_TIMES_FILE.read_text())["machine"],
        "op_times_check": op_times_check(space, 3 if args.quick else 8, args.seed),
        "networks": [],
    }
    for network in args.networks.split(","):
        results["networks"].append(run_network(space, network, archs, args.milp_sample, args.seed))
    if not args.quick:
        Path(args.out).write_text(json.dumps(results, indent=1) + "\n", encoding="utf-8")
    print(f"{results['machine']}, Python {results['python']}, torch {results['torch']}")
    print()
    print(
        "| network | cells | DP evals/s | MILP evals/s (sample) | max DP-MILP diff | "
        "local / offload / split (all) | front size (local / offload / split) | "
        "hypervolume (% x ms) | of the box |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results["networks"]:
        a, f = r["placements_all"], r["placements_front"]
        print(
            f"| {r['network']} | {r['cells']} | {r['evals_per_s']:.0f} | "
            f"{r['milp_evals_per_s']:.0f} ({r['milp_sample']}) | "
            f"{r['milp_max_rel_diff_vs_dp']:.1e} | {a['local']} / {a['offload']} / {a['split']} | "
            f"{len(r['front'])} ({f['local']} / {f['offload']} / {f['split']}) | "
            f"{r['hypervolume_pct_ms']:.1f} | {100 * r['hypervolume_fraction_of_box']:.1f} % |"
        )
    print()
    print(
        "| network | most accurate: index, acc %, split ms, local ms | fastest within 0.5 pt: "
        "index, acc %, split ms, local ms, placement | vs split | vs local |"
    )
    print("|---|---|---|---|---|")
    for r in results["networks"]:
        n = r["nasc"]
        b, q = n["most_accurate"], n["fastest_within_tolerance"]
        print(
            f"| {r['network']} | {b['index']}, {b['accuracy']:.2f}, {b['latency_s'] * 1e3:.2f}, "
            f"{b['local_latency_s'] * 1e3:.2f} | {q['index']}, {q['accuracy']:.2f}, "
            f"{q['latency_s'] * 1e3:.2f}, {q['local_latency_s'] * 1e3:.2f}, {q['placement']} | "
            f"-{n['reduction_vs_most_accurate_split_pct']:.1f} % | "
            f"-{n['reduction_vs_most_accurate_local_pct']:.1f} % |"
        )
    for r in results["networks"]:
        print()
        print(f"Front on {r['network']}:")
        print()
        print("| index | accuracy % | latency ms | local ms | placement |")
        print("|---|---|---|---|---|")
        for p in r["front"]:
            print(
                f"| {p['index']} | {p['accuracy']:.2f} | {p['latency_ms']:.3f} | "
                f"{p['local_latency_ms']:.3f} | {p['placement']} |"
            )
    check = results["op_times_check"]
    ratios = [c["ratio"] for c in check]
    errors = [c["max_share_error_points"] for c in check]
    print()
    print(
        f"host CPU, {len(check)} random cells: whole network / primitive-table sum "
        f"{min(ratios):.2f} .. {max(ratios):.2f}; largest error of a block's share of the time "
        f"{max(errors):.1f} points"
    )


if __name__ == "__main__":
    main()
