"""Profiled DAGs on GPU clusters, for the throughput benchmarks (issue 13's "profiled DAGs of
300+ layers on 8-16 GPUs").

    python benchmarks/make_gpu_clusters.py [--models resnet101,...]
        # writes benchmarks/data/MODEL-op-gpu{8,16}.json (a minute)

Each file is a zoo model profiled by `splitplan profile --granularity op` (torch.fx: every
operation a layer, so ViT-Tiny has 261 layers, ResNet-50 175 and ResNet-101 345, with their skip
connections)
over a cluster network written here: 8 or 16 GPUs in four classes of equal size (H100, A100, T4,
RTX 2080 Ti; roofline times from `splitplan.devices`, estimates, not measurements: no GPU was
available), every pair linked at 10 Gbit/s (1.25e9 B/s, 20 us), the input arriving at and the
output leaving from the first H100, throughput objective. The host-cpu times measured while
profiling are in the files but no node has that class.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from splitplan.devices import DEFAULT_EFFICIENCY, DEVICES

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "data"
CLASSES = ("h100", "a100", "t4", "rtx-2080-ti")
LINK = {"bandwidth_bytes_per_s": 1.25e9, "latency_s": 20e-6}
MODELS = ("vit-tiny", "resnet50", "resnet101")


def cluster(n_gpus: int) -> dict:
    """A splitplan-instance/1 file holding the cluster network (and a one-layer placeholder
    DNN, which `profile --network-from` replaces)."""
    nodes = []
    for i in range(n_gpus):
        cls = DEVICES[CLASSES[i * len(CLASSES) // n_gpus]]
        nodes.append(
            {
                "name": f"gpu{i}-{cls.name}",
                "class": cls.name,
                "flops_per_s": cls.peak_flops_per_s * DEFAULT_EFFICIENCY,
                "memory_bytes": cls.memory_bytes,
                "compute_power_w": cls.power_w,
                "tx_power_w": 0.0,
            }
        )
    links = [
        {"from": a["name"], "to": b["name"], **LINK}
        for i, a in enumerate(nodes)
        for b in nodes[i + 1 :]
    ]
    return {
        "format": "splitplan-instance/1",
        "name": f"gpu-cluster-{n_gpus}",
        "dnn": {
            "name": "placeholder",
            "input_bytes": 4.0,
            "layers": [{"name": "l0", "inputs": ["input"], "flops": 1.0, "out_bytes": 4.0}],
            "output": "l0",
        },
        "network": {
            "nodes": nodes,
            "links": links,
            "source": nodes[0]["name"],
            "sink": nodes[0]["name"],
        },
        "objective": {"kind": "throughput"},
        "constraints": {},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS), help="zoo models, comma-separated")
    models = ap.parse_args().models.split(",")
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for n_gpus in (8, 16):
            net = Path(tmp) / f"cluster-{n_gpus}.json"
            net.write_text(json.dumps(cluster(n_gpus)))
            for model in models:
                out = OUT / f"{model}-op-gpu{n_gpus}.json"
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "splitplan.cli",
                        "profile",
                        "--model",
                        model,
                        "--granularity",
                        "op",
                        "--network-from",
                        str(net),
                        "-o",
                        str(out),
                    ],
                    check=True,
                )


if __name__ == "__main__":
    main()
