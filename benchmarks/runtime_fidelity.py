"""Predicted against measured: zoo models x 3 plans x 2 emulated networks, run by `splitplan run`.

    python benchmarks/runtime_fidelity.py [--quick] [--models resnet18,mlp] [--requests 5]
        [--threads 1] [--per-layer] [-o benchmarks/runtime_fidelity.json]

Every node of the network has the class ``host-cpu``, so the planner's compute times are the ones
`splitplan profile` measured on this machine (with the same torch thread count as the nodes).
Per model and network, three fixed plans are exported and run, one process per node on this
machine with link emulation:

- ``one node``: every layer on the device;
- ``single split``: device, then edge from the layer with the smallest output in the middle half;
- ``revisit``: device, edge, device again, then cloud (quarters of the layers).

Each plan runs twice: one request at a time (latency) and pipelined (period). The table gives the
prediction, the median measurement and the relative error; the summary the median error and the
overheads that explain it (per segment: measured minus predicted compute; per transfer:
measured minus emulated time). ``--quick`` runs the MLP on one network (a smoke test).
``--per-layer`` also times every layer of the latency run (`splitplan run --per-layer`) and
reports, per plan, the median and the time-weighted relative error over its layers.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import machine

from splitplan import Constraints, Instance, Link, Network, Node, Objective
from splitplan.export import export
from splitplan.profile import profile
from splitplan.runtime import run_deployment
from splitplan.zoo import ZOO, load_model

NETWORKS = {
    # (device-edge, edge-cloud) as (bandwidth bytes/s, latency s)
    "wifi": ((12.5e6, 0.002), (125e6, 0.010)),  # 100 Mbit/s Wi-Fi, 1 Gbit/s backhaul
    "lte": ((2.5e6, 0.015), (12.5e6, 0.020)),  # 20 Mbit/s uplink, 100 Mbit/s backhaul
}


def network(kind: str) -> Network:
    (bw1, lat1), (bw2, lat2) = NETWORKS[kind]
    nodes = tuple(Node(n, 1e10, "host-cpu") for n in ("device", "edge", "cloud"))
    links = (Link("device", "edge", bw1, lat1), Link("edge", "cloud", bw2, lat2))
    return Network(nodes, links, "device", "device")


def plans(inst: Instance) -> dict[str, dict[str, str]]:
    names = inst.layer_names
    n = len(names)
    middle = range(max(1, n // 4), max(2, 3 * n // 4))
    k = min(middle, key=lambda i: inst.dnn.layers[i - 1].out_bytes)
    quarters = [max(1, n * q // 4) for q in (1, 2, 3)]
    revisit = {}
    for i, la in enumerate(names):
        part = sum(i >= q for q in quarters)
        revisit[la] = ("device", "edge", "device", "cloud")[part]
    return {
        "one node": dict.fromkeys(names, "device"),
        "single split": {la: "device" if i < k else "edge" for i, la in enumerate(names)},
        "revisit": revisit,
    }


def rel(measured: float | None, predicted: float) -> float | None:
    return None if measured is None or predicted <= 0 else (measured - predicted) / predicted


def layer_errors(layers: list[dict]) -> dict:
    """Per-layer |measured - predicted| / predicted: the median over layers, and the
    time-weighted one, sum |measured - predicted| / sum predicted (small layers' noise counts
    by their share of the time)."""
    pairs = [(d["measured_s"], d["predicted_s"]) for d in layers if d["predicted_s"] > 0]
    return {
        "layers": len(pairs),
        "layer_error_median": statistics.median(abs(m - p) / p for m, p in pairs),
        "layer_error_weighted": sum(abs(m - p) for m, p in pairs) / sum(p for _, p in pairs),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the MLP on one network")
    parser.add_argument("--models", help=f"comma-separated, default all: {', '.join(ZOO)}")
    parser.add_argument("--requests", type=int, default=5, help="timed requests per run")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per process")
    parser.add_argument("--repeats", type=int, default=10, help="profiling repeats")
    parser.add_argument(
        "--per-layer",
        action="store_true",
        help="also time every layer (run --per-layer) and report per-layer errors",
    )
    parser.add_argument("-o", "--output", help="write the rows and summary as JSON")
    args = parser.parse_args()
    models = ["mlp"] if args.quick else (args.models.split(",") if args.models else list(ZOO))
    nets = ["wifi"] if args.quick else list(NETWORKS)
    requests = 2 if args.quick else args.requests
    torch.set_num_threads(args.threads)
    info = machine() | {"threads_per_node": args.threads, "requests": requests}
    print(
        f"machine: {info['platform']}, {info['cpus']} CPUs, load {info['loadavg_1min']:.1f}, "
        f"torch {info.get('torch')}, {args.threads} thread(s) per node process, "
        f"{requests} timed requests per run (median)"
    )
    print(
        "| model | network | plan | segments | latency pred ms | latency meas ms | error | "
        "period pred ms | period meas ms | error |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    rows, seg_over, tr_over = [], [], []
    with tempfile.TemporaryDirectory(prefix="fidelity-") as tmp:
        for name in models:
            model, x = load_model(name)
            dnn, report = profile(model, x, repeats=args.repeats, warmup=3)  # once per model
            for kind in nets:
                inst = Instance(dnn, network(kind), Objective(), Constraints(), f"{name}-{kind}")
                for plan_name, assignment in plans(inst).items():
                    out = Path(tmp) / f"{name}-{kind}-{plan_name.replace(' ', '-')}"
                    export(model, x, inst, {"assignment": assignment}, out, model_ref=name)
                    lat = run_deployment(
                        out, requests=requests, threads=args.threads, per_layer=args.per_layer
                    )
                    pipe = run_deployment(
                        out, requests=max(requests, 3), pipelined=True, threads=args.threads
                    )
                    for s in lat.segments:
                        if s["measured_compute_s"] is not None:
                            seg_over.append(s["measured_compute_s"] - s["predicted_compute_s"])
                    for t in lat.transfers:
                        if t["measured_s"] is not None:
                            tr_over.append(t["measured_s"] - t["predicted_s"])
                    row = {
                        "model": name,
                        "network": kind,
                        "plan": plan_name,
                        "segments": len(lat.segments),
                        "transfers": len(lat.transfers),
                        "profile_ratio": report.ratio,
                        "predicted_latency_s": lat.predicted_latency_s,
                        "measured_latency_s": lat.measured_latency_s,
                        "latency_error": rel(lat.measured_latency_s, lat.predicted_latency_s),
                        "predicted_period_s": pipe.predicted_period_s,
                        "measured_period_s": pipe.measured_period_s,
                        "period_error": rel(pipe.measured_period_s, pipe.predicted_period_s),
                        "max_abs_diff": max(lat.max_abs_diff, pipe.max_abs_diff),
                        "loadavg_1min": machine()["loadavg_1min"],
                    }
                    if args.per_layer:
                        row |= layer_errors(lat.layers)
                    rows.append(row)

                    def pct(v: float | None) -> str:
                        return "-" if v is None else f"{100 * v:+.0f} %"

                    print(
                        f"| {name} | {kind} | {plan_name} | {row['segments']} | "
                        f"{1e3 * row['predicted_latency_s']:.1f} | "
                        f"{1e3 * (row['measured_latency_s'] or 0):.1f} | "
                        f"{pct(row['latency_error'])} | {1e3 * row['predicted_period_s']:.1f} | "
                        f"{1e3 * (row['measured_period_s'] or 0):.1f} | "
                        f"{pct(row['period_error'])} |",
                        flush=True,
                    )
    if args.per_layer:
        print(
            "\nper layer (run --per-layer): | model | network | plan | layers | median |error| "
            "| time-weighted |error| |"
        )
        for r in rows:
            print(
                f"| {r['model']} | {r['network']} | {r['plan']} | {r['layers']} | "
                f"{100 * r['layer_error_median']:.0f} % | {100 * r['layer_error_weighted']:.0f} % |"
            )
    lat_err = [abs(r["latency_error"]) for r in rows if r["latency_error"] is not None]
    per_err = [abs(r["period_error"]) for r in rows if r["period_error"] is not None]
    summary = {
        "median_abs_latency_error": statistics.median(lat_err) if lat_err else None,
        "median_abs_period_error": statistics.median(per_err) if per_err else None,
        "median_segment_overhead_s": statistics.median(seg_over) if seg_over else None,
        "median_transfer_overhead_s": statistics.median(tr_over) if tr_over else None,
        "max_abs_diff": max(r["max_abs_diff"] for r in rows),
        "median_layer_error_median": (
            statistics.median(r["layer_error_median"] for r in rows) if args.per_layer else None
        ),
        "median_layer_error_weighted": (
            statistics.median(r["layer_error_weighted"] for r in rows) if args.per_layer else None
        ),
        "loadavg_1min_end": machine()["loadavg_1min"],
    }
    print(
        f"\nmedian |latency error| {100 * (summary['median_abs_latency_error'] or 0):.1f} %, "
        f"median |period error| {100 * (summary['median_abs_period_error'] or 0):.1f} %; "
        f"per segment measured - predicted compute: median "
        f"{1e3 * (summary['median_segment_overhead_s'] or 0):.3f} ms; per transfer measured - "
        f"emulated: median {1e3 * (summary['median_transfer_overhead_s'] or 0):.3f} ms; "
        f"outputs max |diff| {summary['max_abs_diff']:.3g}"
    )
    if args.output:
        Path(args.output).write_text(
            json.dumps({"machine": info, "rows": rows, "summary": summary}, indent=1) + "\n"
        )
        print(f"wrote {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    start = time.perf_counter()
    code = main()
    print(f"({time.perf_counter() - start:.0f} s)", file=sys.stderr)
    sys.exit(code)
