"""Seeded random instances: chains and DAGs of layers on chain, star, mesh and complete networks.

Used by the tests (small instances with brute-force optima) and the benchmark's scaling families.
Figures are drawn from ranges typical of edge inference (device ~1e9-1e10 FLOP/s, edge ~1e11,
cloud ~1e12; wireless 1e6-1e7 B/s, wired 1e8 B/s); they are synthetic, not measurements.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .instance import (
    DNN,
    INPUT,
    Constraints,
    Encoding,
    Instance,
    Layer,
    Link,
    Network,
    Node,
    Objective,
)

TOPOLOGIES = ("chain", "star", "mesh", "complete")


def random_dnn(n_layers: int, rng: np.random.Generator, skip_prob: float = 0.0) -> DNN:
    """A chain of layers, plus (with probability `skip_prob` per layer) a skip connection."""
    layers = _random_layers(n_layers, rng, skip_prob, (6, 9), (3, 6.5), (3, 6))
    return DNN("random", float(round(10 ** rng.uniform(4, 6))), tuple(layers))


def _random_layers(
    n_layers: int,
    rng: np.random.Generator,
    skip_prob: float,
    flops_exp: tuple[float, float],
    param_exp: tuple[float, float],
    out_exp: tuple[float, float],
) -> list[Layer]:
    """A chain l0 .. l{n-1} (plus skips with probability `skip_prob`), each size drawn
    log-uniformly: 10 ** U(*exp) FLOPs, parameter bytes and output bytes."""
    layers = []
    for i in range(n_layers):
        inputs = [INPUT if i == 0 else f"l{i - 1}"]
        if i >= 2 and rng.random() < skip_prob:
            inputs.append(f"l{int(rng.integers(0, i - 1))}")
        layers.append(
            Layer(
                name=f"l{i}",
                inputs=tuple(inputs),
                flops=float(10 ** rng.uniform(*flops_exp)),
                param_bytes=float(round(10 ** rng.uniform(*param_exp))),
                out_bytes=float(round(10 ** rng.uniform(*out_exp))),
            )
        )
    return layers


def random_network(
    n_nodes: int,
    rng: np.random.Generator,
    topology: str = "chain",
    memory_bytes: float | None = None,
) -> Network:
    """Node 0 is the device (source and sink); the others grow faster away from it."""
    if topology not in TOPOLOGIES:
        raise ValueError(f"unknown topology {topology!r}; expected one of {', '.join(TOPOLOGIES)}")
    nodes = []
    for k in range(n_nodes):
        speed = 1e9 * 10 ** (3 * k / max(n_nodes - 1, 1)) * rng.uniform(0.7, 1.3)
        nodes.append(
            Node(
                name=f"n{k}",
                flops_per_s=float(speed),
                memory_bytes=memory_bytes,
                compute_power_w=float(rng.uniform(2, 10) if k == 0 else rng.uniform(20, 300)),
                tx_power_w=float(rng.uniform(0.5, 2.0) if k == 0 else rng.uniform(5, 20)),
            )
        )

    def link(a: int, b: int) -> Link:
        wireless = a == 0 or b == 0
        bw = 10 ** rng.uniform(6, 7) if wireless else 10 ** rng.uniform(7.5, 8.5)
        lat = rng.uniform(5e-3, 2e-2) if wireless else rng.uniform(1e-3, 5e-3)
        return Link(f"n{a}", f"n{b}", float(bw), float(lat))

    pairs: list[tuple[int, int]] = []
    if topology == "chain":
        pairs = [(k, k + 1) for k in range(n_nodes - 1)]
    elif topology == "star":
        pairs = [(0, k) for k in range(1, n_nodes)]
    elif topology == "complete":
        pairs = [(a, b) for a in range(n_nodes) for b in range(a + 1, n_nodes)]
    else:  # a grid as square as possible
        cols = int(np.ceil(np.sqrt(n_nodes)))
        for k in range(n_nodes):
            if (k + 1) % cols and k + 1 < n_nodes:
                pairs.append((k, k + 1))
            if k + cols < n_nodes:
                pairs.append((k, k + cols))
    return Network(tuple(nodes), tuple(link(a, b) for a, b in pairs), "n0", "n0")


def random_instance(
    n_layers: int,
    n_nodes: int,
    seed: int = 0,
    topology: str = "chain",
    skip_prob: float = 0.0,
    objective: str = "latency",
    memory_fraction: float | None = None,
    pin_first: bool = False,
    max_latency_factor: float | None = None,
    with_sink: bool = True,
    encoding_prob: float = 0.0,
    max_accuracy_loss: float | None = None,
) -> Instance:
    """A random instance.

    `memory_fraction` gives every node memory_bytes = that fraction of all parameters (at least
    the largest layer's) plus the largest working set; `pin_first` pins the first layer to the
    device (privacy); `max_latency_factor` sets max_latency_s to that factor times the
    all-on-device latency; `with_sink=False` leaves the output where it is computed;
    `encoding_prob` gives each tensor, with that probability, 1-3 encodings (§10) and a weighted
    objective an accuracy weight; `max_accuracy_loss` bounds the accuracy they lose.
    """
    rng = np.random.default_rng(seed)
    dnn = random_dnn(n_layers, rng, skip_prob)
    mem = None
    if memory_fraction is not None:
        work = max(
            sum(
                dnn.input_bytes if s == INPUT else dnn.layers[int(s[1:])].out_bytes
                for s in la.inputs
            )
            + la.out_bytes
            for la in dnn.layers
        )
        params = [la.param_bytes for la in dnn.layers]
        mem = float(max(memory_fraction * sum(params), max(params)) + work)
    net = random_network(n_nodes, rng, topology, mem)
    if not with_sink:
        net = Network(net.nodes, net.links, net.source, None)
    weights = {"latency": 1.0, "energy": float(rng.uniform(0.05, 1.0))}
    obj = (
        Objective("weighted", weights["latency"], weights["energy"])
        if objective == "weighted"
        else Objective(objective)
    )
    pin = {dnn.layers[0].name: ("n0",)} if pin_first else {}
    limit = None
    if max_latency_factor is not None:
        local = sum(la.flops for la in dnn.layers) / net.nodes[0].flops_per_s
        limit = float(max_latency_factor * local)
    if encoding_prob > 0:  # its own stream, so that the rest of a seed's instance is unchanged
        dnn, obj = _with_encodings(dnn, obj, np.random.default_rng([seed, 10]), encoding_prob)
    return Instance(
        dnn,
        net,
        obj,
        Constraints(pin, limit, max_accuracy_loss),
        f"random-{n_layers}x{n_nodes}-{seed}",
    )


def random_encodings(size_bytes: float, rng: np.random.Generator) -> tuple[Encoding, ...]:
    """1-3 codes of a tensor: smaller codes cost more accuracy, and more codec work."""
    out = []
    for j in range(int(rng.integers(1, 4))):
        ratio = float(10 ** rng.uniform(-2, -0.3))
        out.append(
            Encoding(
                name=f"code{j}",
                size_bytes=float(round(size_bytes * ratio)),
                encode_flops=float(10 ** rng.uniform(5, 8)),
                decode_flops=float(10 ** rng.uniform(5, 8)),
                accuracy_loss=float(round(rng.uniform(0.0, 0.05) * (1 - ratio), 4)),
            )
        )
    return tuple(out)


def _with_encodings(
    dnn: DNN, obj: Objective, rng: np.random.Generator, prob: float
) -> tuple[DNN, Objective]:
    layers = tuple(
        replace(la, encodings=random_encodings(la.out_bytes, rng)) if rng.random() < prob else la
        for la in dnn.layers
    )
    inputs = random_encodings(dnn.input_bytes, rng) if rng.random() < prob else ()
    if obj.kind == "weighted":
        obj = replace(obj, accuracy_weight=float(rng.uniform(0.1, 5.0)))
    return replace(dnn, layers=layers, input_encodings=inputs), obj


PIPELINE_FAMILIES = ("hetero", "identical")


def pipeline_instance(
    n_layers: int,
    n_nodes: int,
    seed: int = 0,
    family: str = "hetero",
    topology: str = "complete",
    n_classes: int = 3,
    memory_fraction: float | None = None,
    skip_prob: float = 0.0,
) -> Instance:
    """A pipeline (throughput) instance as PipeEdge, EdgeShard and PipeDream assume them.

    `family` "hetero": node n0 (the source and sink, a slower device) and `n_nodes - 1` servers
    in `n_classes` device classes of equal size (as equal as possible); nodes of a class are
    identical, and so are their links (one bandwidth per pair of classes), so hosts of a class
    are interchangeable. "identical": every node the same, every link the same bandwidth.
    `topology` "complete" (a link between every pair) or "star" (every server linked to n0).
    `memory_fraction` gives every node memory_bytes = that fraction of all parameters (at least
    the largest layer's) plus the largest working set. `skip_prob` adds skip connections (a
    DAG). Layers: 1e8-3e9 FLOPs, outputs 30 kB-3 MB, parameters 0.1-30 MB; servers 1e10-3e11
    FLOP/s; links 1e8-1e9 B/s. Seeded; its own random stream, so other generators' seeds are
    unchanged.
    """
    if family not in PIPELINE_FAMILIES:
        raise ValueError(f"unknown family {family!r}; expected one of {PIPELINE_FAMILIES}")
    if topology not in ("complete", "star"):
        raise ValueError(f"unknown topology {topology!r}; expected complete or star")
    rng = np.random.default_rng([seed, 13])
    layers = _random_layers(n_layers, rng, skip_prob, (8, 9.5), (5, 7.5), (4.5, 6.5))
    dnn = DNN("pipeline", float(round(10 ** rng.uniform(5, 6.5))), tuple(layers))
    mem = None
    if memory_fraction is not None:
        work = max(
            sum(dnn.input_bytes if s == INPUT else layers[int(s[1:])].out_bytes for s in la.inputs)
            + la.out_bytes
            for la in layers
        )
        params = [la.param_bytes for la in layers]
        mem = float(max(memory_fraction * sum(params), max(params)) + work)
    if family == "identical":
        cls = [0] * n_nodes
        speeds = [float(10 ** rng.uniform(10.5, 11))]
        bw = np.full((1, 1), float(10 ** rng.uniform(8, 9)))
    else:
        n_classes = max(1, min(n_classes, n_nodes - 1))
        cls = [0] + [1 + (k * n_classes) // max(n_nodes - 1, 1) for k in range(n_nodes - 1)]
        speeds = [float(10 ** rng.uniform(9.5, 10))] + [
            float(10 ** rng.uniform(10, 11.5)) for _ in range(n_classes)
        ]
        bw = 10 ** rng.uniform(8, 9, size=(n_classes + 1, n_classes + 1))
        bw = np.minimum(bw, bw.T)  # one bandwidth per pair of classes, both ways
    nodes = tuple(
        Node(
            f"n{k}",
            speeds[cls[k]],
            device_class=f"class{cls[k]}",
            memory_bytes=mem,
            compute_power_w=10.0,
            tx_power_w=1.0,
        )
        for k in range(n_nodes)
    )
    pairs = (
        [(a, b) for a in range(n_nodes) for b in range(a + 1, n_nodes)]
        if topology == "complete"
        else [(0, k) for k in range(1, n_nodes)]
    )
    links = tuple(Link(f"n{a}", f"n{b}", float(bw[cls[a], cls[b]]), 1e-4) for a, b in pairs)
    net = Network(nodes, links, "n0", "n0")
    name = f"pipeline-{family}-{topology}-{n_layers}x{n_nodes}-{seed}"
    return Instance(dnn, net, Objective("throughput"), Constraints(), name)
