"""Write the hand-made instances of this folder: `python instances/make_handmade.py`.

Layer data are ResNet-18 on a 224x224x3 fp32 image, computed by hand from its architecture
(FLOPs = 2 x multiply-accumulates; bytes at 4 bytes per value). Node speeds are *effective*
FLOP/s (a fraction of datasheet peak that such devices reach on convolutions), and link figures are
typical of the technology named; they are illustrative, not measurements. Profiled instances with
measured times come from `splitplan profile` (see README.md in this folder).
"""

from __future__ import annotations

import json
from pathlib import Path

HERE = Path(__file__).parent
F = 4  # bytes per fp32 value


def conv(cin: int, cout: int, k: int, hw_out: int) -> tuple[float, float]:
    """(FLOPs, param bytes) of a bias-free k x k convolution with an hw_out x hw_out output."""
    macs = cin * cout * k * k * hw_out * hw_out
    return 2.0 * macs, float(cin * cout * k * k * F)


def layer(name, inputs, flops, params, out, **time_s):
    d = {"name": name, "inputs": inputs, "flops": flops, "param_bytes": params, "out_bytes": out}
    if time_s:
        d["time_s"] = time_s
    return d


def resnet18_blocks() -> list[dict]:
    """ResNet-18 as 12 layers: stem, max-pool, 8 basic blocks, average pool, classifier."""
    f, p = conv(3, 64, 7, 112)
    layers = [layer("conv1", ["input"], f, p, 64 * 112 * 112 * F, **{"jetson-nano": 0.0061})]
    layers.append(layer("maxpool", ["conv1"], 64 * 56 * 56 * 9.0, 0.0, 64 * 56 * 56 * F))
    prev, cin = "maxpool", 64
    for stage, (cout, hw) in enumerate([(64, 56), (128, 28), (256, 14), (512, 7)], start=1):
        for block in range(2):
            first = block == 0 and stage > 1
            fa, pa = conv(cin if block == 0 else cout, cout, 3, hw)
            fb, pb = conv(cout, cout, 3, hw)
            fd, pd = conv(cin, cout, 1, hw) if first else (0.0, 0.0)
            name = f"layer{stage}.{block}"
            layers.append(layer(name, [prev], fa + fb + fd, pa + pb + pd, cout * hw * hw * F))
            prev = name
        cin = cout
    layers.append(layer("avgpool", [prev], 512 * 49.0, 0.0, 512 * F))
    layers.append(layer("fc", ["avgpool"], 2.0 * 512 * 1000, (512 * 1000 + 1000) * F, 1000 * F))
    return layers


def resnet18_convs() -> list[dict]:
    """ResNet-18 at convolution granularity: each basic block is conv-a, conv-b and the residual
    add, whose second input is the block's input (or its 1x1 downsample): the skip connections."""
    f, p = conv(3, 64, 7, 112)
    layers = [layer("conv1", ["input"], f, p, 64 * 112 * 112 * F)]
    layers.append(layer("maxpool", ["conv1"], 64 * 56 * 56 * 9.0, 0.0, 64 * 56 * 56 * F))
    prev, cin = "maxpool", 64
    for stage, (cout, hw) in enumerate([(64, 56), (128, 28), (256, 14), (512, 7)], start=1):
        for block in range(2):
            name = f"layer{stage}.{block}"
            out = cout * hw * hw * F
            fa, pa = conv(cin if block == 0 else cout, cout, 3, hw)
            fb, pb = conv(cout, cout, 3, hw)
            layers.append(layer(f"{name}.conv_a", [prev], fa, pa, out))
            layers.append(layer(f"{name}.conv_b", [f"{name}.conv_a"], fb, pb, out))
            skip = prev
            if block == 0 and stage > 1:
                fd, pd = conv(cin, cout, 1, hw)
                layers.append(layer(f"{name}.downsample", [prev], fd, pd, out))
                skip = f"{name}.downsample"
            layers.append(layer(f"{name}.add", [f"{name}.conv_b", skip], 2.0 * out / F, 0.0, out))
            prev = f"{name}.add"
        cin = cout
    layers.append(layer("avgpool", [prev], 512 * 49.0, 0.0, 512 * F))
    layers.append(layer("fc", ["avgpool"], 2.0 * 512 * 1000, (512 * 1000 + 1000) * F, 1000 * F))
    return layers


PHONE = {
    "name": "phone",
    "class": "jetson-nano",
    "flops_per_s": 1e10,
    "memory_bytes": 4e9,
    "compute_power_w": 5.0,
    "tx_power_w": 1.2,
}
EDGE = {
    "name": "edge",
    "class": "jetson-orin",
    "flops_per_s": 3e11,
    "memory_bytes": 16e9,
    "compute_power_w": 40.0,
    "tx_power_w": 10.0,
}
CLOUD = {
    "name": "cloud",
    "class": "a100",
    "flops_per_s": 1e13,
    "memory_bytes": 80e9,
    "compute_power_w": 300.0,
    "tx_power_w": 10.0,
}
LTE = {"bandwidth_bytes_per_s": 2.5e6, "latency_s": 0.02}  # ~20 Mbit/s uplink, 20 ms
WIFI = {"bandwidth_bytes_per_s": 1.25e7, "latency_s": 0.003}  # ~100 Mbit/s Wi-Fi 5, 3 ms
WAN = {"bandwidth_bytes_per_s": 1.25e8, "latency_s": 0.005}  # 1 Gbit/s backhaul, 5 ms


def three_tier_chain() -> dict:
    return {
        "format": "splitplan-instance/1",
        "name": "resnet18-3tier-wifi",
        "dnn": {
            "name": "resnet18",
            "input_bytes": 3 * 224 * 224 * F,
            "layers": resnet18_blocks(),
            "output": "fc",
        },
        "network": {
            "nodes": [PHONE, EDGE, CLOUD],
            "links": [
                {"from": "phone", "to": "edge", **WIFI},
                {"from": "edge", "to": "cloud", **WAN},
            ],
            "source": "phone",
            "sink": "phone",
        },
        "objective": {"kind": "latency"},
        # Privacy: the raw image never leaves the phone.
        "constraints": {"pin": {"conv1": ["phone"]}},
    }


def edge_star() -> dict:
    """A phone that reaches three edge servers over three radios; minimise its battery energy
    under a 150 ms deadline."""
    edges = [
        ({**EDGE, "name": "edge-wifi"}, {"bandwidth_bytes_per_s": 1.5e7, "latency_s": 0.004}),
        (
            {**EDGE, "name": "edge-5g", "class": "a100", "flops_per_s": 8e12, "memory_bytes": 40e9},
            {"bandwidth_bytes_per_s": 6e6, "latency_s": 0.01},
        ),
        ({**EDGE, "name": "edge-lte", "flops_per_s": 1e12}, LTE),
    ]
    phone = {**PHONE, "tx_power_w": 1.2}
    return {
        "format": "splitplan-instance/1",
        "name": "resnet18-edge-star",
        "dnn": {"name": "resnet18", "input_bytes": 3 * 224 * 224 * F, "layers": resnet18_blocks()},
        "network": {
            "nodes": [phone] + [node for node, _ in edges],
            "links": [{"from": "phone", "to": node["name"], **ln} for node, ln in edges],
            "source": "phone",
            "sink": "phone",
        },
        "objective": {"kind": "energy"},
        "constraints": {"max_latency_s": 0.15},
    }


def skip_dag() -> dict:
    """ResNet-18 with its skip connections; weighted latency + energy on the 3-tier network."""
    inst = three_tier_chain()
    inst["name"] = "resnet18-dag-3tier"
    inst["dnn"] = {
        "name": "resnet18-convs",
        "input_bytes": 3 * 224 * 224 * F,
        "layers": resnet18_convs(),
    }
    inst["objective"] = {"kind": "weighted", "latency": 1.0, "energy": 0.01}
    return inst


def memory_multisplit() -> dict:
    """A 12-block transformer encoder (ViT-B-like, 28 MB of weights per block) over four small
    devices in a row, each with 120 MB for the model: no device holds more than four blocks, so
    every plan must cut the model in at least two places."""
    tokens, dim = 197, 768
    act = tokens * dim * F
    block_flops = 2.0 * tokens * (12 * dim * dim) + 4.0 * tokens * tokens * dim
    layers = [layer("embed", ["input"], 2.0 * 196 * 768 * 768, 768 * 768 * F, act)]
    for i in range(12):
        layers.append(
            layer(f"block{i}", [layers[-1]["name"]], block_flops, 12 * dim * dim * F, act)
        )
    layers.append(layer("head", [layers[-1]["name"]], 2.0 * dim * 1000, dim * 1000 * F, 1000 * F))
    nodes = [
        {
            "name": f"dev{k}",
            "class": "jetson-orin-nano",
            "flops_per_s": 2e11,
            "memory_bytes": 1.2e8,
            "compute_power_w": 10.0,
            "tx_power_w": 2.0,
        }
        for k in range(4)
    ]
    links = [
        {
            "from": f"dev{k}",
            "to": f"dev{k + 1}",
            "bandwidth_bytes_per_s": 1.25e8,
            "latency_s": 0.0005,
        }
        for k in range(3)
    ]
    return {
        "format": "splitplan-instance/1",
        "name": "vit-memory-pipeline",
        "dnn": {"name": "vit-b-like", "input_bytes": 3 * 224 * 224 * F, "layers": layers},
        "network": {"nodes": nodes, "links": links, "source": "dev0", "sink": "dev3"},
        "objective": {"kind": "latency"},
    }


INSTANCES = {
    "three-tier-chain.json": three_tier_chain,
    "edge-star.json": edge_star,
    "skip-dag.json": skip_dag,
    "memory-multisplit.json": memory_multisplit,
}

if __name__ == "__main__":
    for file, make in INSTANCES.items():
        (HERE / file).write_text(json.dumps(make(), indent=1) + "\n")
        print(f"wrote instances/{file}")
