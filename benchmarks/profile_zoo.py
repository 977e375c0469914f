"""Profile every zoo model on this machine: layers, GFLOPs, and how long profiling takes.

    python benchmarks/profile_zoo.py [--device cpu|cuda] [--repeats 5]

The issue's target: ResNet-50 on this machine's CPU in under 60 s with median-of-5 timings.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from splitplan.profile import profile
from splitplan.zoo import ZOO, build


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--granularity", default="module")
    args = parser.parse_args()
    print(
        f"torch {torch.__version__}, {platform.machine()}, {torch.get_num_threads()} threads, "
        f"device {args.device}, granularity {args.granularity}, median of {args.repeats}"
    )
    print(
        "| model | layers | GFLOP | params MB | sum of layers ms | whole model ms | ratio | "
        "profiling s |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name in ZOO:
        model, x = build(name)
        start = time.perf_counter()
        dnn, rep = profile(
            model, x, granularity=args.granularity, repeats=args.repeats, device=args.device
        )
        took = time.perf_counter() - start
        print(
            f"| {name} | {len(dnn.layers)} | {sum(la.flops for la in dnn.layers) / 1e9:.2f} | "
            f"{sum(la.param_bytes for la in dnn.layers) / 1e6:.1f} | "
            f"{rep.sum_of_layers_s * 1e3:.2f} | {rep.whole_model_s * 1e3:.2f} | "
            f"{rep.ratio:.2f} | {took:.1f} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
