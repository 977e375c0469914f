"""The NAS loop on NAS-Bench-201 against the exact Pareto front and NASC's baselines.

    python benchmarks/nas_nb201.py [--network pi4-edge-wifi] [--trials 500] [--seeds 3] [--quick]

1. The exact front: all 15,625 cells planned (chain DP, equal to the MILP; see
   tests/test_nas_nb201.py) and their hypervolume (reference: chance accuracy, slowest cell).
2. Inner-loop rate: `search.evaluate` (profile look-up + MILP with HiGHS + bookkeeping) per s.
3. The Pareto search (NSGA-II, SQLite storage as by default): hypervolume of its front over the
   exact one after every 100 trials, per seed.
4. Constrained mode (maximise accuracy, latency <= SLO; TPE): the best accuracy found against
   the exact constrained optimum, (a) the most accurate cell split, (b) NAS-then-split (the most
   accurate cell whose device-only latency meets the SLO, then split) and (c) the joint search
   with a single split point (Neurosurgeon's plans, NASC's setting).
Writes benchmarks/nas_nb201.json and prints markdown tables.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import sys
import tempfile
import time
from pathlib import Path

from splitplan.devices import network_preset
from splitplan.nas.nb201 import Nb201Space, exact_front, nasc_comparison
from splitplan.nas.pareto import hypervolume_2d
from splitplan.nas.search import (
    StudySpec,
    baselines,
    evaluate,
    open_study,
    records,
    run,
)


def _machine() -> str:
    import os

    return (
        f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {platform.system()}"
    )


def _study(spec: StudySpec, sampler: str, seed: int, folder: str | None, name: str):
    """In memory unless `folder` is given: the sampler's choices do not depend on the storage,
    and SQLite's per-trial cost is measured apart (`seconds_per_trial`)."""
    storage = f"sqlite:///{folder}/{name}.db" if folder else None
    study, _ = open_study(spec, study_name=name, storage=storage, sampler=sampler, seed=seed)
    return study


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--network", default="pi4-edge-wifi")
    ap.add_argument("--trials", type=int, default=500)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--slo", type=float, nargs="*", default=[0.010, 0.015])
    ap.add_argument("--quick", action="store_true", help="100 archs, 40 trials, 1 seed")
    ap.add_argument("-o", "--output", help="default: benchmarks/nas_nb201.json (none in --quick)")
    args = ap.parse_args(argv)
    space, network = Nb201Space(), network_preset(args.network)
    archs = list(space.all_archs())
    if args.quick:
        archs = random.Random(0).sample(archs, 100)
        args.trials, args.seeds = 40, 1
    print(f"exact front over {len(archs)} cells on {args.network} ...", file=sys.stderr)
    exact = exact_front(space, network, archs=archs)
    ref = exact.reference
    exact_hv = exact.hypervolume
    result: dict = {
        "network": args.network,
        "machine": _machine(),
        "python": platform.python_version(),
        "exact": {
            "cells": len(archs),
            "seconds": exact.seconds,
            "front_size": len(exact.front),
            "hypervolume": exact_hv,
            "reference": ref,
        },
        "nasc": nasc_comparison(exact),
    }

    # inner-loop rate
    sample = random.Random(1).sample(archs, min(200, len(archs)))
    start = time.perf_counter()
    for arch in sample:
        evaluate(space, arch, network)
    rate = len(sample) / (time.perf_counter() - start)
    result["inner_loop_evals_per_s"] = rate

    pareto_runs = []
    with tempfile.TemporaryDirectory() as folder:
        for seed in range(args.seeds):
            spec = StudySpec("nb201", args.network, space_options={"dataset": "cifar10"})
            study = _study(spec, "nsga2", seed, None, f"pareto-{seed}")
            checkpoints, start = [], time.perf_counter()
            for upto in range(
                100 if not args.quick else 20, args.trials + 1, 100 if not args.quick else 20
            ):
                run(study, space, network, spec, upto)
                pts = [(r["accuracy"], r["latency_s"]) for r in records(study) if r["latency_s"]]
                checkpoints.append(
                    {
                        "trials": upto,
                        "hv_ratio": hypervolume_2d(pts, ref) / exact_hv,
                        "seconds": time.perf_counter() - start,
                        "unique_archs": len({r["arch"] for r in records(study)}),
                    }
                )
            pareto_runs.append({"seed": seed, "checkpoints": checkpoints})
            print(f"seed {seed}: {checkpoints[-1]}", file=sys.stderr)
        result["pareto_search"] = pareto_runs
        # the same search with the default SQLite storage: seconds per trial
        spec = StudySpec("nb201", args.network, space_options={"dataset": "cifar10"})
        timed = {}
        for where in (None, folder):
            study = _study(spec, "nsga2", 0, where, "storage-overhead")
            start = time.perf_counter()
            run(study, space, network, spec, 100 if not args.quick else 20)
            timed["sqlite" if where else "memory"] = (time.perf_counter() - start) / len(
                records(study)
            )
        result["seconds_per_trial"] = timed

        constrained = []
        for slo in args.slo:
            feasible = [c for c in exact.cells if c.latency_s <= slo]
            optimum = max(feasible, key=lambda c: c.accuracy) if feasible else None
            row = {"slo_s": slo, "exact_best_accuracy": optimum.accuracy if optimum else None}
            for single in (False, True):
                spec = StudySpec(
                    "nb201",
                    args.network,
                    slo_s=slo,
                    single_split=single,
                    space_options={"dataset": "cifar10"},
                )
                study = _study(spec, "tpe", 0, None, f"slo-{slo}-{single}")
                start = time.perf_counter()
                run(study, space, network, spec, min(args.trials, 300))
                ok = [
                    r
                    for r in records(study)
                    if r["latency_s"] is not None and r["latency_s"] <= slo
                ]
                best = max(ok, key=lambda r: r["accuracy"]) if ok else None
                key = "single_split" if single else "joint"
                row[key] = {
                    "best_accuracy": best["accuracy"] if best else None,
                    "latency_s": best["latency_s"] if best else None,
                    "arch": best["arch"] if best else None,
                    "trials": len(records(study)),
                    "pruned": sum(r["status"] == "pruned" for r in records(study)),
                    "seconds": time.perf_counter() - start,
                }
            base = baselines(space, network, slo_s=slo, archs=archs)
            row["most_accurate"] = base["most_accurate"]
            row["nas_then_split"] = base["nas_then_split"]
            constrained.append(row)
        result["constrained"] = constrained

    if args.output or not args.quick:
        out = args.output or Path(__file__).with_name("nas_nb201.json")
        Path(out).write_text(json.dumps(result, indent=1))
    print(f"## NAS on NB201, {args.network} ({result['machine']})\n")
    print(
        f"exact front: {len(exact.front)} points over {len(archs)} cells in {exact.seconds:.1f} s; "
        f"inner loop {rate:.0f} evaluations/s (MILP); a trial takes "
        f"{timed['memory'] * 1e3:.0f} ms in memory, {timed['sqlite'] * 1e3:.0f} ms with SQLite\n"
    )
    print(
        "| seed | "
        + " | ".join(f"HV @ {c['trials']}" for c in pareto_runs[0]["checkpoints"])
        + " | s |"
    )
    print("|---" * (len(pareto_runs[0]["checkpoints"]) + 2) + "|")
    for r in pareto_runs:
        cps = r["checkpoints"]
        print(
            f"| {r['seed']} | "
            + " | ".join(f"{100 * c['hv_ratio']:.1f} %" for c in cps)
            + f" | {cps[-1]['seconds']:.0f} |"
        )
    print(
        "\n| SLO ms | exact best % | joint search % | single split % | NAS-then-split % "
        "| most accurate (ms) |"
    )
    print("|---|---|---|---|---|---|")
    for row in constrained:
        nts = row["nas_then_split"]
        ma = row["most_accurate"]

        def pct(x):
            return f"{x:.2f}" if x is not None else "none"

        print(
            f"| {row['slo_s'] * 1e3:g} | {pct(row['exact_best_accuracy'])} | "
            f"{pct(row['joint']['best_accuracy'])} | {pct(row['single_split']['best_accuracy'])} | "
            f"{pct(nts['accuracy'] if nts else None)} | "
            f"{ma['accuracy']:.2f} ({ma['latency_s'] * 1e3:.1f}) |"
        )
    n = result["nasc"]
    print(
        f"\nNASC comparison: most accurate {n['most_accurate']['accuracy']:.2f} % at "
        f"{n['most_accurate']['latency_s'] * 1e3:.2f} ms (split) / "
        f"{n['most_accurate']['local_latency_s'] * 1e3:.2f} ms (device); fastest within 0.5 pt "
        f"{n['fastest_within_tolerance']['accuracy']:.2f} % at "
        f"{n['fastest_within_tolerance']['latency_s'] * 1e3:.2f} ms: "
        f"{n['reduction_vs_most_accurate_split_pct']:.1f} % less latency"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
