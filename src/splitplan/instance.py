"""Instances: the DNN's per-layer data, the network of compute nodes, objective and constraints.

An `Instance` is immutable and validated once, when it is built (from JSON or in code); everything
downstream trusts it. Every problem a user can make in an instance is reported as one
`InstanceError` carrying the file, the field path (e.g. ``dnn.layers[3].inputs``) and the reason.

The file format is ``splitplan-instance/1``; its JSON Schema ships as
``splitplan/schema/instance.schema.json`` and the cost model it feeds is ``models/formulation.md``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import MappingProxyType
from typing import Any, NamedTuple

from .errors import SplitplanError

FORMAT = "splitplan-instance/1"
INPUT = "input"  # reserved name of the raw input tensor, which exists at network.source
RAW = "raw"  # reserved name of a tensor's own form, which every tensor may be sent in
OBJECTIVE_KINDS = ("latency", "throughput", "energy", "weighted")


class InstanceError(SplitplanError, ValueError):
    """A user mistake in an instance: which file, which field, what is wrong."""

    def __init__(self, field: str, reason: str, file: str | None = None) -> None:
        super().__init__(reason, field=field, file=file)

    def in_file(self, file: str) -> InstanceError:
        return InstanceError(self.field, self.reason, file)


@dataclass(frozen=True)
class Encoding:
    """Another form a tensor may cross the network in: a compressed code (e.g. a bottleneck
    encoder at one of its widths, or int8 quantisation) of `size_bytes`.

    The sender runs the encoder once before sending (`encode_time_s` per device class, else
    `encode_flops` / flops_per_s), every receiver runs the decoder (`decode_*`), and the
    model's accuracy drops by `accuracy_loss` (a fraction: 0.01 is one point) when the tensor
    is sent in this form. The raw form (`RAW`) is always available at no cost.
    """

    name: str
    size_bytes: float
    encode_flops: float = 0.0
    encode_time_s: Mapping[str, float] = field(default_factory=dict)
    decode_flops: float = 0.0
    decode_time_s: Mapping[str, float] = field(default_factory=dict)
    accuracy_loss: float = 0.0


@dataclass(frozen=True)
class Layer:
    """One splittable layer. `time_s` maps a device class to a measured compute time in seconds;
    `encodings` are the forms other than raw its output may be sent in."""

    name: str
    inputs: tuple[str, ...]
    flops: float = 0.0
    param_bytes: float = 0.0
    out_bytes: float = 0.0
    time_s: Mapping[str, float] = field(default_factory=dict)
    encodings: tuple[Encoding, ...] = ()

    def __post_init__(self) -> None:
        # A single input may be given as a string (`Layer("a", "input")`); iterating it would
        # read one tensor per character.
        if isinstance(self.inputs, str):
            object.__setattr__(self, "inputs", (self.inputs,))
        elif not isinstance(self.inputs, tuple):
            object.__setattr__(self, "inputs", tuple(self.inputs))
        if not isinstance(self.encodings, tuple):
            object.__setattr__(self, "encodings", tuple(self.encodings))
        at = f"Layer({self.name!r})"
        for key in ("flops", "param_bytes", "out_bytes"):
            _check_number(getattr(self, key), f"{at}.{key}")
        _check_times(self.time_s, f"{at}.time_s")


@dataclass(frozen=True)
class DNN:
    """Layers in topological order; `output` (default: the last layer) is the result tensor.
    `input_encodings` are the forms other than raw the input may be sent in."""

    name: str
    input_bytes: float
    layers: tuple[Layer, ...]
    output: str | None = None
    input_encodings: tuple[Encoding, ...] = ()

    @property
    def output_layer(self) -> str:
        return self.output if self.output is not None else self.layers[-1].name


@dataclass(frozen=True)
class Node:
    """A compute node. `memory_bytes=None` means unlimited; a missing power is 0 W."""

    name: str
    flops_per_s: float
    device_class: str | None = None
    memory_bytes: float | None = None
    compute_power_w: float = 0.0
    tx_power_w: float = 0.0

    def __post_init__(self) -> None:
        at = f"Node({self.name!r})"
        _check_number(self.flops_per_s, f"{at}.flops_per_s", positive=True)
        if self.memory_bytes is not None:
            _check_number(self.memory_bytes, f"{at}.memory_bytes")
        _check_number(self.compute_power_w, f"{at}.compute_power_w")
        _check_number(self.tx_power_w, f"{at}.tx_power_w")


@dataclass(frozen=True)
class Link:
    """A network link; bidirectional links carry traffic both ways with separate capacity."""

    source: str
    target: str
    bandwidth_bytes_per_s: float
    latency_s: float = 0.0
    bidirectional: bool = True

    def __post_init__(self) -> None:
        at = f"Link({self.source!r}, {self.target!r})"
        _check_number(self.bandwidth_bytes_per_s, f"{at}.bandwidth_bytes_per_s", positive=True)
        _check_number(self.latency_s, f"{at}.latency_s")


@dataclass(frozen=True)
class Network:
    nodes: tuple[Node, ...]
    links: tuple[Link, ...]
    source: str
    sink: str | None = None


class Weights(NamedTuple):
    """Weights of an additive objective (`Objective.weights()`)."""

    latency: float  # per s
    energy: float  # per J
    accuracy: float  # per unit of accuracy lost (a fraction)


@dataclass(frozen=True)
class Objective:
    """`kind`: latency, throughput, energy or weighted (latency_weight x s + energy_weight x J
    + accuracy_weight x the accuracy lost to encodings, a fraction)."""

    kind: str = "latency"
    latency_weight: float = 1.0
    energy_weight: float = 0.0
    accuracy_weight: float = 0.0

    @property
    def additive(self) -> bool:
        """A weighted sum over layers and transfers (every kind but throughput, a maximum)."""
        return self.kind != "throughput"

    def weights(self) -> Weights:
        """The weights of latency (per s), energy (per J) and accuracy loss (per unit fraction)
        of an additive objective: latency (1, 0, 0), energy (0, 1, 0), weighted as given.
        Raises ValueError for throughput, which is not a sum."""
        if self.kind == "latency":
            return Weights(1.0, 0.0, 0.0)
        if self.kind == "energy":
            return Weights(0.0, 1.0, 0.0)
        if self.kind == "weighted":
            return Weights(self.latency_weight, self.energy_weight, self.accuracy_weight)
        raise ValueError(f"the {self.kind} objective is not a weighted sum")

    def value(self, ev: Any) -> float:
        """The objective's value for an evaluation (`cost.Evaluation`: §4, §5, §7, §10)."""
        if not self.additive:
            return ev.period_s
        w = self.weights()
        value = w.latency * ev.latency_s
        if w.energy:
            value += w.energy * ev.energy_j
        if w.accuracy:
            value += w.accuracy * ev.accuracy_loss
        return value


@dataclass(frozen=True)
class Constraints:
    """`pin` maps a layer to the nodes it may run on; `max_latency_s` bounds one inference;
    `max_accuracy_loss` bounds the accuracy lost to encodings (a fraction; the accuracy floor is
    the uncut model's accuracy minus it)."""

    pin: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    max_latency_s: float | None = None
    max_accuracy_loss: float | None = None


@dataclass(frozen=True)
class Instance:
    dnn: DNN
    network: Network
    objective: Objective = field(default_factory=Objective)
    constraints: Constraints = field(default_factory=Constraints)
    name: str = ""

    def __post_init__(self) -> None:
        _validate(self)

    # Convenience lookups; the cost module builds the dense arrays.
    @property
    def layer_names(self) -> list[str]:
        return [layer.name for layer in self.dnn.layers]

    @property
    def node_names(self) -> list[str]:
        return [node.name for node in self.network.nodes]

    def with_objective(self, objective: Objective) -> Instance:
        return Instance(self.dnn, self.network, objective, self.constraints, self.name)

    def with_constraints(self, constraints: Constraints) -> Instance:
        return Instance(self.dnn, self.network, self.objective, constraints, self.name)

    def without_encodings(self) -> Instance:
        """The same instance with every tensor sent raw (no encodings, no accuracy terms)."""
        dnn = replace(
            self.dnn,
            layers=tuple(replace(la, encodings=()) for la in self.dnn.layers),
            input_encodings=(),
        )
        return Instance(
            dnn,
            self.network,
            replace(self.objective, accuracy_weight=0.0),
            replace(self.constraints, max_accuracy_loss=None),
            self.name,
        )

    def to_dict(self) -> dict[str, Any]:
        return instance_to_dict(self)


# --------------------------------------------------------------------------- validation


def _check_number(value: Any, path: str, *, positive: bool = False) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InstanceError(path, f"must be a number, got {value!r}")
    # an integer literal beyond float range (JSON allows 1000...0) would raise OverflowError
    if not (isinstance(value, float) or abs(value) <= 1e308) or not math.isfinite(value):
        shown = (
            repr(value)
            if len(repr(value)) <= 40
            else f"{repr(value)[:20]}... (a number of {len(repr(value))} digits)"
        )
        raise InstanceError(path, f"must be finite, got {shown}")
    if positive and value <= 0:
        raise InstanceError(path, f"must be positive, got {value!r}")
    if value < 0:
        raise InstanceError(path, f"must not be negative, got {value!r}")


def _check_name(value: Any, path: str) -> None:
    if not isinstance(value, str) or not value:
        raise InstanceError(path, f"must be a non-empty string, got {value!r}")


def _reachable(adjacency: dict[str, set[str]], start: str) -> set[str]:
    seen, stack = {start}, [start]
    while stack:
        for nxt in adjacency[stack.pop()]:
            if nxt not in seen:
                seen.add(nxt)
                stack.append(nxt)
    return seen


def _find_cycle(layers: tuple[Layer, ...]) -> list[str] | None:
    import networkx as nx

    graph = nx.DiGraph()
    names = {layer.name for layer in layers}
    for layer in layers:
        graph.add_node(layer.name)
        graph.add_edges_from((src, layer.name) for src in layer.inputs if src in names)
    try:
        return [u for u, _ in nx.find_cycle(graph)]
    except nx.NetworkXNoCycle:
        return None


def _check_times(times: Mapping[str, float], path: str) -> None:
    """A {device class: seconds} map of non-negative numbers."""
    for cls, t in times.items():
        _check_number(t, f"{path}.{cls}")


def _validate_encodings(encodings: tuple[Encoding, ...], path: str) -> None:
    names: set[str] = set()
    for j, enc in enumerate(encodings):
        at = f"{path}[{j}]"
        _check_name(enc.name, f"{at}.name")
        if enc.name == RAW:
            raise InstanceError(f"{at}.name", f"'{RAW}' is reserved for the tensor's own form")
        if enc.name in names:
            raise InstanceError(f"{at}.name", f"duplicate encoding name '{enc.name}'")
        names.add(enc.name)
        _check_number(enc.size_bytes, f"{at}.bytes")
        _check_number(enc.encode_flops, f"{at}.encode_flops")
        _check_number(enc.decode_flops, f"{at}.decode_flops")
        _check_times(enc.encode_time_s, f"{at}.encode_time_s")
        _check_times(enc.decode_time_s, f"{at}.decode_time_s")
        _check_number(enc.accuracy_loss, f"{at}.accuracy_loss")
        if enc.accuracy_loss > 1:
            raise InstanceError(
                f"{at}.accuracy_loss",
                f"is a fraction of the accuracy (0.01 = one point), got {enc.accuracy_loss!r}",
            )


def _validate_dnn(dnn: DNN) -> None:
    _check_name(dnn.name, "dnn.name")
    _check_number(dnn.input_bytes, "dnn.input_bytes")
    _validate_encodings(dnn.input_encodings, "dnn.input_encodings")
    if not dnn.layers:
        raise InstanceError("dnn.layers", "must list at least one layer")
    position: dict[str, int] = {}
    for i, layer in enumerate(dnn.layers):
        path = f"dnn.layers[{i}]"
        _check_name(layer.name, f"{path}.name")
        if layer.name == INPUT:
            raise InstanceError(f"{path}.name", f"'{INPUT}' is reserved for the raw input tensor")
        if layer.name in position:
            raise InstanceError(f"{path}.name", f"duplicate layer name '{layer.name}'")
        position[layer.name] = i
    for i, layer in enumerate(dnn.layers):
        path = f"dnn.layers[{i}]"
        if not layer.inputs:
            raise InstanceError(f"{path}.inputs", "must list at least one input tensor")
        if len(set(layer.inputs)) != len(layer.inputs):
            raise InstanceError(f"{path}.inputs", "lists the same tensor twice")
        for src in layer.inputs:
            if src == INPUT:
                continue
            if src not in position:
                raise InstanceError(
                    f"{path}.inputs", f"unknown tensor '{src}' (not '{INPUT}' nor a layer name)"
                )
            if position[src] >= i:
                cycle = _find_cycle(dnn.layers)
                if cycle:
                    loop = " -> ".join([*cycle, cycle[0]])
                    raise InstanceError(f"{path}.inputs", f"the layers form a cycle: {loop}")
                raise InstanceError(
                    f"{path}.inputs",
                    f"tensor '{src}' is produced by a later layer; layers must be in "
                    "topological order",
                )
        _check_number(layer.flops, f"{path}.flops")
        _check_number(layer.param_bytes, f"{path}.param_bytes")
        _check_number(layer.out_bytes, f"{path}.out_bytes")
        _check_times(layer.time_s, f"{path}.time_s")
        _validate_encodings(layer.encodings, f"{path}.encodings")
    if dnn.output is not None and dnn.output not in position:
        raise InstanceError("dnn.output", f"unknown layer '{dnn.output}'")


def _validate_network(net: Network) -> dict[str, set[str]]:
    if not net.nodes:
        raise InstanceError("network.nodes", "must list at least one node")
    names: set[str] = set()
    for i, node in enumerate(net.nodes):
        path = f"network.nodes[{i}]"
        _check_name(node.name, f"{path}.name")
        if node.name in names:
            raise InstanceError(f"{path}.name", f"duplicate node name '{node.name}'")
        names.add(node.name)
        _check_number(node.flops_per_s, f"{path}.flops_per_s", positive=True)
        if node.memory_bytes is not None:
            _check_number(node.memory_bytes, f"{path}.memory_bytes")
        _check_number(node.compute_power_w, f"{path}.compute_power_w")
        _check_number(node.tx_power_w, f"{path}.tx_power_w")
        if node.device_class is not None:
            _check_name(node.device_class, f"{path}.class")
    adjacency: dict[str, set[str]] = {name: set() for name in names}
    pairs: set[tuple[str, str]] = set()
    for i, link in enumerate(net.links):
        path = f"network.links[{i}]"
        for end, key in ((link.source, "from"), (link.target, "to")):
            if end not in names:
                raise InstanceError(f"{path}.{key}", f"unknown node '{end}'")
        if link.source == link.target:
            raise InstanceError(f"{path}.to", f"a link cannot connect '{link.source}' to itself")
        _check_number(link.bandwidth_bytes_per_s, f"{path}.bandwidth_bytes_per_s", positive=True)
        _check_number(link.latency_s, f"{path}.latency_s")
        arcs = [(link.source, link.target)]
        if link.bidirectional:
            arcs.append((link.target, link.source))
        for arc in arcs:
            if arc in pairs:
                raise InstanceError(
                    path, f"a second link {arc[0]} -> {arc[1]}; merge them into one"
                )
            pairs.add(arc)
            adjacency[arc[0]].add(arc[1])
    if net.source not in names:
        raise InstanceError("network.source", f"unknown node '{net.source}'")
    if net.sink is not None:
        if net.sink not in names:
            raise InstanceError("network.sink", f"unknown node '{net.sink}'")
        if net.sink not in _reachable(adjacency, net.source):
            raise InstanceError(
                "network.sink",
                f"node '{net.sink}' cannot be reached from the source '{net.source}', "
                "but the output must be sent there",
            )
    return adjacency


# Largest time (s) or energy (J) one term of the model may take, and the largest total. The
# solvers treat coefficients near 1e15-1e20 as infinite (HiGHS rejects matrix values >= 1e15,
# SCIP's infinity is 1e20), and sums of 1e308 overflow to inf: issue 15 found `flops: 1e308`
# called valid and then `status error`. 1e12 s is 30,000 years, far beyond any real instance.
MAX_TERM = 1e12
MAX_TOTAL = 1e15
MAX_BYTES = 1e30  # all parameters and tensors together; memory sums beyond it overflow


class _Worst:
    """Per device class (None: nodes without one), what bounds a term's time and energy: the
    slowest node's FLOP/s, the largest W per FLOP/s and the largest power."""

    def __init__(self, nodes: tuple[Node, ...], power: str) -> None:
        self.groups: dict[str | None, tuple[Node, float, float]] = {}
        for node in nodes:
            watts = getattr(node, power)
            slow, ratio, most = self.groups.get(node.device_class, (node, 0.0, 0.0))
            if node.flops_per_s < slow.flops_per_s:
                slow = node
            self.groups[node.device_class] = (
                slow,
                max(ratio, watts / node.flops_per_s),
                max(most, watts),
            )

    def term(self, times: Mapping[str, float], flops: float) -> tuple[float, float, Node]:
        """The largest time (s) over the nodes, its node, and the largest energy (J)."""
        t_max, e_max, where = 0.0, 0.0, None
        for cls, (slow, ratio, most) in self.groups.items():
            measured = times.get(cls) if cls is not None else None
            if measured is not None:
                t, e = measured, measured * most
            else:
                t, e = flops / slow.flops_per_s, flops * ratio
            if where is None or t > t_max:
                t_max, where = t, slow
            e_max = max(e_max, e)
        assert where is not None  # a network has at least one node (checked before)
        return t_max, e_max, where


def _check_magnitudes(inst: Instance) -> None:
    """Reject numbers the model cannot hold: a term over `MAX_TERM` s or J, or a total over
    `MAX_TOTAL`, naming the field that makes it so (issue 15, defect 3)."""

    def too_big(path: str, value: float, what: str, unit: str) -> InstanceError:
        return InstanceError(
            path,
            f"{value:g} makes {what}; the model holds at most {MAX_TERM:g} {unit} per term "
            "(scale the units or check the number)",
        )

    nodes = inst.network.nodes
    for i, node in enumerate(nodes):
        for key in ("compute_power_w", "tx_power_w"):
            if not getattr(node, key) <= MAX_TERM:
                raise InstanceError(
                    f"network.nodes[{i}].{key}",
                    f"{getattr(node, key):g} W; the model holds at most {MAX_TERM:g} W",
                )
    obj = inst.objective
    # Energy enters the MILP only when the objective weighs it; otherwise it is only reported.
    uses_energy = obj.kind == "energy" or (obj.kind == "weighted" and obj.energy_weight > 0)
    compute = _Worst(nodes, "compute_power_w")
    total_s = total_j = 0.0

    def check(times: Mapping[str, float], flops: float, path: str, what: str) -> None:
        nonlocal total_s, total_j
        t, e, node = compute.term(times, flops)
        if not t <= MAX_TERM:
            raise too_big(path, flops, f"{what} take {t:g} s on node '{node.name}'", "s")
        if uses_energy and not e <= MAX_TERM:
            raise too_big(path, flops, f"{what} cost {e:g} J", "J")
        total_s += t
        total_j += e

    def check_codecs(encodings: tuple[Encoding, ...], path: str) -> None:
        for j, enc in enumerate(encodings):
            check(enc.encode_time_s, enc.encode_flops, f"{path}[{j}].encode_flops", "its encoder")
            check(enc.decode_time_s, enc.decode_flops, f"{path}[{j}].decode_flops", "its decoder")

    for i, layer in enumerate(inst.dnn.layers):
        check(layer.time_s, layer.flops, f"dnn.layers[{i}].flops", "its FLOPs")
        check_codecs(layer.encodings, f"dnn.layers[{i}].encodings")
    check_codecs(inst.dnn.input_encodings, "dnn.input_encodings")
    total_bytes = inst.dnn.input_bytes
    for i, layer in enumerate(inst.dnn.layers):
        total_bytes += layer.param_bytes + layer.out_bytes
        if not total_bytes <= MAX_BYTES:
            key = "param_bytes" if layer.param_bytes >= layer.out_bytes else "out_bytes"
            raise InstanceError(
                f"dnn.layers[{i}].{key}",
                f"param_bytes and out_bytes add up to {total_bytes:g} bytes by this layer; the "
                f"model holds at most {MAX_BYTES:g} (scale the units or check the numbers)",
            )
    # Transfers: the largest tensor over the slowest link, once per hop of the longest route.
    sizes = [("dnn.input_bytes", inst.dnn.input_bytes)]
    sizes += [(f"dnn.layers[{i}].out_bytes", la.out_bytes) for i, la in enumerate(inst.dnn.layers)]
    path, size = max(sizes, key=lambda item: item[1])
    links = inst.network.links
    if links:
        slowest = min(links, key=lambda ln: ln.bandwidth_bytes_per_s)
        hop_s = size / slowest.bandwidth_bytes_per_s
        hops = len(nodes) - 1
        tx_w = max(n.tx_power_w for n in nodes)
        if not hop_s <= MAX_TERM:
            raise too_big(
                path,
                size,
                f"one transfer over {slowest.source}-{slowest.target} take {hop_s:g} s",
                "s",
            )
        if uses_energy and not hop_s * tx_w <= MAX_TERM:
            raise too_big(path, size, f"one transfer cost {hop_s * tx_w:g} J", "J")
        total_s += hops * (hop_s + max(ln.latency_s for ln in links))
        total_j += hops * hop_s * tx_w
        for i, ln in enumerate(links):
            if not ln.latency_s <= MAX_TERM:
                raise too_big(f"network.links[{i}].latency_s", ln.latency_s, "one hop", "s")
    for key, weight, total, unit in (
        ("latency", obj.latency_weight, total_s, "s"),
        ("energy", obj.energy_weight, total_j, "J"),
    ):
        if (unit == "s" or uses_energy) and not total <= MAX_TOTAL:
            raise InstanceError(
                "dnn.layers",
                f"one inference may take up to {total:g} {unit} in all; the model holds at most "
                f"{MAX_TOTAL:g} (scale the units or check the numbers)",
            )
        if obj.kind == "weighted" and not weight * total <= MAX_TOTAL:
            raise InstanceError(
                f"objective.{key}",
                f"a weight of {weight:g} makes the objective up to {weight * total:g}; the "
                f"model holds at most {MAX_TOTAL:g}",
            )


def _validate(inst: Instance) -> None:
    _validate_dnn(inst.dnn)
    adjacency = _validate_network(inst.network)
    obj = inst.objective
    if obj.kind not in OBJECTIVE_KINDS:
        raise InstanceError(
            "objective.kind",
            f"unknown kind {obj.kind!r}; expected one of {', '.join(OBJECTIVE_KINDS)}",
        )
    _check_number(obj.latency_weight, "objective.latency")
    _check_number(obj.energy_weight, "objective.energy")
    _check_number(obj.accuracy_weight, "objective.accuracy")
    if obj.kind == "weighted" and obj.latency_weight == 0 and obj.energy_weight == 0:
        raise InstanceError(
            "objective", "a weighted objective needs a positive latency or energy weight"
        )
    cons = inst.constraints
    if cons.max_latency_s is not None:
        _check_number(cons.max_latency_s, "constraints.max_latency_s")
    if cons.max_accuracy_loss is not None:
        _check_number(cons.max_accuracy_loss, "constraints.max_accuracy_loss")
    layers = set(inst.layer_names)
    nodes = set(inst.node_names)
    from_source = _reachable(adjacency, inst.network.source)
    for layer, allowed in cons.pin.items():
        path = f"constraints.pin.{layer}"
        if layer not in layers:
            raise InstanceError(path, f"unknown layer '{layer}'")
        if not allowed:
            raise InstanceError(path, "must list at least one node")
        for node in allowed:
            if node not in nodes:
                raise InstanceError(path, f"unknown node '{node}'")
        if not set(allowed) & from_source:
            raise InstanceError(
                path,
                f"pinned to {', '.join(allowed)}, which the input cannot reach from the source "
                f"'{inst.network.source}'",
            )
    _check_magnitudes(inst)


# --------------------------------------------------------------------------- JSON I/O

_TOP_KEYS = {"format", "name", "dnn", "network", "objective", "constraints"}
_DNN_KEYS = {"name", "input_bytes", "layers", "output", "input_encodings"}
_LAYER_KEYS = {"name", "inputs", "flops", "param_bytes", "out_bytes", "time_s", "encodings"}
_ENC_KEYS = {
    "name",
    "bytes",
    "encode_flops",
    "encode_time_s",
    "decode_flops",
    "decode_time_s",
    "accuracy_loss",
}
_NET_KEYS = {"nodes", "links", "source", "sink"}
_NODE_KEYS = {"name", "class", "flops_per_s", "memory_bytes", "compute_power_w", "tx_power_w"}
_LINK_KEYS = {"from", "to", "bandwidth_bytes_per_s", "latency_s", "bidirectional"}
_OBJ_KEYS = {"kind", "latency", "energy", "accuracy"}
_CONS_KEYS = {"pin", "max_latency_s", "max_accuracy_loss"}


def _obj(value: Any, path: str, keys: set[str] | None, required: tuple[str, ...] = ()) -> dict:
    """`value` as an object with only `keys` (None: any key, a map such as `pin` or `time_s`)
    and every `required` one."""
    if not isinstance(value, dict):
        raise InstanceError(path, f"must be an object, got {type(value).__name__}")
    for key in value:
        if keys is not None and key not in keys:
            raise InstanceError(
                f"{path}.{key}" if path else key,
                f"unknown field; expected one of {', '.join(sorted(keys))}",
            )
    for key in required:
        if key not in value:
            raise InstanceError(f"{path}.{key}" if path else key, "is required")
    return value


def _list(value: Any, path: str) -> list:
    if not isinstance(value, list):
        raise InstanceError(path, f"must be a list, got {type(value).__name__}")
    return value


def _num(d: dict, key: str, path: str, default: Any = None, *, positive: bool = False) -> Any:
    value = d.get(key, default)
    if value is not None:
        _check_number(value, f"{path}.{key}", positive=positive)
    return value


def _str(d: dict, key: str, path: str, default: Any = None) -> Any:
    value = d.get(key, default)
    if value is not None:
        _check_name(value, f"{path}.{key}")
    return value


def _times(d: dict, key: str, path: str) -> MappingProxyType:
    """A {device class: seconds} map."""
    raw = d.get(key, {})
    times = _obj(raw, f"{path}.{key}", None)
    for cls in times:
        _num(times, cls, f"{path}.{key}")
    return MappingProxyType(dict(times))


def _encodings(raw: Any, path: str) -> tuple[Encoding, ...]:
    out = []
    for j, item in enumerate(_list(raw, path)):
        at = f"{path}[{j}]"
        e = _obj(item, at, _ENC_KEYS, ("name", "bytes"))
        out.append(
            Encoding(
                name=_str(e, "name", at),
                size_bytes=_num(e, "bytes", at),
                encode_flops=_num(e, "encode_flops", at, 0.0),
                encode_time_s=_times(e, "encode_time_s", at),
                decode_flops=_num(e, "decode_flops", at, 0.0),
                decode_time_s=_times(e, "decode_time_s", at),
                accuracy_loss=_num(e, "accuracy_loss", at, 0.0),
            )
        )
    return tuple(out)


def instance_from_dict(data: Any) -> Instance:
    """Build and validate an instance from parsed JSON; raises `InstanceError` with field paths."""
    d = _obj(data, "", _TOP_KEYS, ("format", "dnn", "network"))
    if d["format"] != FORMAT:
        raise InstanceError("format", f"unsupported format {d['format']!r}; expected {FORMAT!r}")
    dd = _obj(d["dnn"], "dnn", _DNN_KEYS, ("input_bytes", "layers"))
    layers = []
    for i, raw in enumerate(_list(dd["layers"], "dnn.layers")):
        path = f"dnn.layers[{i}]"
        ld = _obj(raw, path, _LAYER_KEYS, ("name", "inputs"))
        inputs = _list(ld["inputs"], f"{path}.inputs")
        for j, src in enumerate(inputs):
            _check_name(src, f"{path}.inputs[{j}]")
        layers.append(
            Layer(
                name=_str(ld, "name", path),
                inputs=tuple(inputs),
                flops=_num(ld, "flops", path, 0.0),
                param_bytes=_num(ld, "param_bytes", path, 0.0),
                out_bytes=_num(ld, "out_bytes", path, 0.0),
                time_s=_times(ld, "time_s", path),
                encodings=_encodings(ld.get("encodings", []), f"{path}.encodings"),
            )
        )
    dnn = DNN(
        name=_str(dd, "name", "dnn", "dnn"),
        input_bytes=_num(dd, "input_bytes", "dnn"),
        layers=tuple(layers),
        output=_str(dd, "output", "dnn"),
        input_encodings=_encodings(dd.get("input_encodings", []), "dnn.input_encodings"),
    )
    nd = _obj(d["network"], "network", _NET_KEYS, ("nodes", "source"))
    nodes = []
    for i, raw in enumerate(_list(nd["nodes"], "network.nodes")):
        path = f"network.nodes[{i}]"
        n = _obj(raw, path, _NODE_KEYS, ("name", "flops_per_s"))
        nodes.append(
            Node(
                name=_str(n, "name", path),
                flops_per_s=_num(n, "flops_per_s", path, positive=True),
                device_class=_str(n, "class", path),
                memory_bytes=_num(n, "memory_bytes", path),
                compute_power_w=_num(n, "compute_power_w", path, 0.0),
                tx_power_w=_num(n, "tx_power_w", path, 0.0),
            )
        )
    links = []
    for i, raw in enumerate(_list(nd.get("links", []), "network.links")):
        path = f"network.links[{i}]"
        ln = _obj(raw, path, _LINK_KEYS, ("from", "to", "bandwidth_bytes_per_s"))
        bidirectional = ln.get("bidirectional", True)
        if not isinstance(bidirectional, bool):
            raise InstanceError(
                f"{path}.bidirectional", f"must be true or false, got {bidirectional!r}"
            )
        links.append(
            Link(
                source=_str(ln, "from", path),
                target=_str(ln, "to", path),
                bandwidth_bytes_per_s=_num(ln, "bandwidth_bytes_per_s", path, positive=True),
                latency_s=_num(ln, "latency_s", path, 0.0),
                bidirectional=bidirectional,
            )
        )
    network = Network(
        nodes=tuple(nodes),
        links=tuple(links),
        source=_str(nd, "source", "network"),
        sink=_str(nd, "sink", "network"),
    )
    od = _obj(d.get("objective", {"kind": "latency"}), "objective", _OBJ_KEYS, ("kind",))
    kind = od["kind"]
    if not isinstance(kind, str):
        raise InstanceError("objective.kind", f"must be a string, got {kind!r}")
    if kind != "weighted" and ({"latency", "energy", "accuracy"} & set(od)):
        raise InstanceError("objective", f"weights are only read for kind 'weighted', not {kind!r}")
    objective = Objective(
        kind=kind,
        latency_weight=_num(od, "latency", "objective", 1.0 if kind != "weighted" else 0.0),
        energy_weight=_num(od, "energy", "objective", 0.0),
        accuracy_weight=_num(od, "accuracy", "objective", 0.0),
    )
    cd = _obj(d.get("constraints", {}), "constraints", _CONS_KEYS)
    pins = {}
    pin_raw = _obj(cd.get("pin", {}), "constraints.pin", None)
    for layer, allowed in pin_raw.items():
        allowed = [allowed] if isinstance(allowed, str) else allowed
        allowed = _list(allowed, f"constraints.pin.{layer}")
        for node in allowed:
            _check_name(node, f"constraints.pin.{layer}")
        pins[layer] = tuple(allowed)
    constraints = Constraints(
        pin=MappingProxyType(pins),
        max_latency_s=_num(cd, "max_latency_s", "constraints"),
        max_accuracy_loss=_num(cd, "max_accuracy_loss", "constraints"),
    )
    name = d.get("name", dnn.name)
    _check_name(name, "name")
    return Instance(dnn, network, objective, constraints, name)


def load_instance(path: str | Path) -> Instance:
    """Read and validate an instance file; every problem raises `InstanceError` naming the file."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InstanceError("", "no such file", str(path)) from None
    except IsADirectoryError:
        raise InstanceError("", "is a directory, not an instance file", str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InstanceError("", f"cannot read: {exc}", str(path)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InstanceError(
            "", f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}", str(path)
        ) from None
    except RecursionError:  # issue 15: deeply nested arrays reached the user as a traceback
        raise InstanceError("", "JSON nested too deeply to read", str(path)) from None
    try:
        return instance_from_dict(data)
    except InstanceError as exc:
        raise exc.in_file(str(path)) from None


def instance_to_dict(inst: Instance) -> dict[str, Any]:
    """The JSON form of an instance (`instance_from_dict` reads it back unchanged)."""

    def drop_none(d: dict) -> dict:
        return {k: v for k, v in d.items() if v is not None}

    def encodings(encs: tuple[Encoding, ...]) -> list[dict[str, Any]]:
        out = []
        for e in encs:
            ed: dict[str, Any] = {"name": e.name, "bytes": e.size_bytes}
            if e.encode_flops:
                ed["encode_flops"] = e.encode_flops
            if e.encode_time_s:
                ed["encode_time_s"] = dict(e.encode_time_s)
            if e.decode_flops:
                ed["decode_flops"] = e.decode_flops
            if e.decode_time_s:
                ed["decode_time_s"] = dict(e.decode_time_s)
            ed["accuracy_loss"] = e.accuracy_loss
            out.append(ed)
        return out

    layers = []
    for layer in inst.dnn.layers:
        ld: dict[str, Any] = {
            "name": layer.name,
            "inputs": list(layer.inputs),
            "flops": layer.flops,
            "param_bytes": layer.param_bytes,
            "out_bytes": layer.out_bytes,
        }
        if layer.time_s:
            ld["time_s"] = dict(layer.time_s)
        if layer.encodings:
            ld["encodings"] = encodings(layer.encodings)
        layers.append(ld)
    nodes = [
        drop_none(
            {
                "name": n.name,
                "class": n.device_class,
                "flops_per_s": n.flops_per_s,
                "memory_bytes": n.memory_bytes,
                "compute_power_w": n.compute_power_w,
                "tx_power_w": n.tx_power_w,
            }
        )
        for n in inst.network.nodes
    ]
    links = []
    for link in inst.network.links:
        ld = {
            "from": link.source,
            "to": link.target,
            "bandwidth_bytes_per_s": link.bandwidth_bytes_per_s,
            "latency_s": link.latency_s,
        }
        if not link.bidirectional:
            ld["bidirectional"] = False
        links.append(ld)
    objective: dict[str, Any] = {"kind": inst.objective.kind}
    if inst.objective.kind == "weighted":
        objective["latency"] = inst.objective.latency_weight
        objective["energy"] = inst.objective.energy_weight
        if inst.objective.accuracy_weight:
            objective["accuracy"] = inst.objective.accuracy_weight
    constraints: dict[str, Any] = {}
    if inst.constraints.pin:
        constraints["pin"] = {k: list(v) for k, v in inst.constraints.pin.items()}
    if inst.constraints.max_latency_s is not None:
        constraints["max_latency_s"] = inst.constraints.max_latency_s
    if inst.constraints.max_accuracy_loss is not None:
        constraints["max_accuracy_loss"] = inst.constraints.max_accuracy_loss
    return {
        "format": FORMAT,
        "name": inst.name or inst.dnn.name,
        "dnn": drop_none(
            {
                "name": inst.dnn.name,
                "input_bytes": inst.dnn.input_bytes,
                "layers": layers,
                "output": inst.dnn.output,
                "input_encodings": encodings(inst.dnn.input_encodings) or None,
            }
        ),
        "network": drop_none(
            {
                "nodes": nodes,
                "links": links,
                "source": inst.network.source,
                "sink": inst.network.sink,
            }
        ),
        "objective": objective,
        "constraints": constraints,
    }


def save_instance(inst: Instance, path: str | Path) -> None:
    Path(path).write_text(json.dumps(instance_to_dict(inst), indent=1) + "\n", encoding="utf-8")
