"""The cost model: the single source of truth of what a placement costs.

Every rule here is written out in ``models/formulation.md`` (section numbers are cited as §n). The
MILP encodes the same rules; `evaluate` costs any assignment with plain Python and numpy, no solver,
so that the two can be checked against each other.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from .errors import AssignmentError
from .instance import INPUT, RAW, Encoding, Instance, Node

# Relative tolerance for preferring an earlier-found route when two have the same latency, so that
# routes are deterministic.
_TIE = 1e-12


@dataclass(frozen=True, eq=False)
class Form:
    """An encoding of a tensor with its per-node codec times (§10)."""

    name: str
    size_bytes: float
    encode_s: np.ndarray  # per node: the encoder's time when that node sends the tensor
    decode_s: np.ndarray  # per node: the decoder's time when that node receives it
    accuracy_loss: float


@dataclass(frozen=True)
class Tensor:
    """A tensor that may cross the network: the raw input (producer -1) or a layer's output."""

    name: str
    producer: int  # layer index, or -1 for the raw input (which sits at the source node)
    size_bytes: float
    consumers: tuple[int, ...]  # layer indices
    to_sink: bool  # the output tensor, sent to network.sink
    encodings: tuple[Form, ...] = ()  # forms other than raw (§10)

    def form(self, name: str | None) -> Form | None:
        """The encoding called `name` (None for raw); unknown names raise ValueError."""
        if name is None or name == RAW:
            return None
        for f in self.encodings:
            if f.name == name:
                return f
        known = ", ".join([RAW, *(f.name for f in self.encodings)])
        raise ValueError(f"tensor '{self.name}' has no encoding {name!r}; it has {known}")


def time_on(times: Mapping[str, float], flops: float, node: Node) -> float:
    """§1: the measured time of the node's class, else flops / flops_per_s."""
    t = times.get(node.device_class) if node.device_class else None
    return t if t is not None else flops / node.flops_per_s


def _forms(encodings: tuple[Encoding, ...], nodes: tuple[Node, ...]) -> tuple[Form, ...]:
    return tuple(
        Form(
            e.name,
            e.size_bytes,
            np.array([time_on(e.encode_time_s, e.encode_flops, n) for n in nodes]),
            np.array([time_on(e.decode_time_s, e.decode_flops, n) for n in nodes]),
            e.accuracy_loss,
        )
        for e in encodings
    )


@dataclass(frozen=True)
class Arc:
    """One direction of a link."""

    tail: int
    head: int
    bandwidth_bytes_per_s: float
    latency_s: float

    def hop_time_s(self, size_bytes: float) -> float:
        return self.latency_s + size_bytes / self.bandwidth_bytes_per_s  # §2 store and forward


@dataclass(frozen=True)
class PathCost:
    """A tensor's route between two nodes and what it costs (§2, §5, §7)."""

    nodes: tuple[str, ...]
    arcs: tuple[int, ...]
    loads_s: tuple[float, ...]  # B / bandwidth per arc
    time_s: float
    energy_j: float


class Routing:
    """The routes of one tensor size (`Tables.routing`): `terms(a, b)` is (transmit energy in J,
    arc indices, load in s per arc) of the route a -> b, as `Tables.path_cost` gives them."""

    def __init__(self, tb: Tables, size_bytes: float, routes: dict) -> None:
        self.tb, self.size, self.routes = tb, size_bytes, routes

    def terms(self, a: int, b: int) -> tuple[float, tuple[int, ...], list[float]]:
        arcs, e0, e1, inv_bw = self._route(a, b)
        size = self.size
        return e0 + size * e1, arcs, [size * inv for inv in inv_bw]

    def energy_terms(self, a: int, b: int) -> tuple[float, float]:
        """(e0, e1): the route a -> b's transmit energy is e0 + e1 x size, for every size this
        routing serves."""
        _, e0, e1, _ = self._route(a, b)
        return e0, e1

    def _route(self, a: int, b: int) -> tuple:
        hit = self.routes.get((a, b))
        if hit is None:
            tb = self.tb
            path = tb.route(self.size, a, b)
            if path is None:
                raise ValueError(f"{tb.nodes[b]} cannot be reached from {tb.nodes[a]}")
            arcs = tuple(tb.arc_index[hop] for hop in itertools.pairwise(path))
            tx = [float(tb.tx_power_w[tb.arcs[i].tail]) for i in arcs]
            inv_bw = [1.0 / tb.arcs[i].bandwidth_bytes_per_s for i in arcs]
            e0 = sum(tb.arcs[i].latency_s * w for i, w in zip(arcs, tx, strict=True))
            e1 = sum(w * inv for w, inv in zip(tx, inv_bw, strict=True))
            hit = self.routes[a, b] = (arcs, e0, e1, inv_bw)
        return hit


class Tables:
    """Dense arrays of an instance that both the evaluator and the MILP read.

    Built once per instance (`tables(instance)` caches it).
    """

    def __init__(self, inst: Instance) -> None:
        self.instance = inst
        net, dnn = inst.network, inst.dnn
        self.layers = inst.layer_names
        self.nodes = inst.node_names
        self.layer_index = {name: i for i, name in enumerate(self.layers)}
        self.node_index = {name: k for k, name in enumerate(self.nodes)}
        self.source = self.node_index[net.source]
        self.sink = self.node_index[net.sink] if net.sink is not None else None
        V, K = len(self.layers), len(self.nodes)

        # §1 compute time: measured time of the node's class, else flops / flops_per_s.
        self.compute_s = np.array(
            [
                [time_on(layer.time_s, layer.flops, node) for node in net.nodes]
                for layer in dnn.layers
            ]
        ).reshape(V, K)
        self.compute_power_w = np.array([n.compute_power_w for n in net.nodes], dtype=float)
        self.tx_power_w = np.array([n.tx_power_w for n in net.nodes], dtype=float)
        self.memory_bytes = [n.memory_bytes for n in net.nodes]

        self.arcs: list[Arc] = []
        for link in net.links:
            a, b = self.node_index[link.source], self.node_index[link.target]
            self.arcs.append(Arc(a, b, link.bandwidth_bytes_per_s, link.latency_s))
            if link.bidirectional:
                self.arcs.append(Arc(b, a, link.bandwidth_bytes_per_s, link.latency_s))
        self.arc_index = {(arc.tail, arc.head): i for i, arc in enumerate(self.arcs)}

        # §3 tensors and who consumes them.
        out_bytes = {INPUT: dnn.input_bytes} | {la.name: la.out_bytes for la in dnn.layers}
        consumers: dict[str, list[int]] = {INPUT: []}
        consumers |= {la.name: [] for la in dnn.layers}
        for v, layer in enumerate(dnn.layers):
            for src in layer.inputs:
                consumers[src].append(v)
        output = dnn.output_layer
        self.output = self.layer_index[output]
        encodings = {INPUT: dnn.input_encodings} | {la.name: la.encodings for la in dnn.layers}
        self.tensors = [
            Tensor(
                name=name,
                producer=-1 if name == INPUT else self.layer_index[name],
                size_bytes=out_bytes[name],
                consumers=tuple(consumers[name]),
                to_sink=name == output and self.sink is not None,
                encodings=_forms(encodings[name], net.nodes),
            )
            for name in [INPUT, *self.layers]
        ]
        self.tensor_index = {t.name: i for i, t in enumerate(self.tensors)}
        self.has_encodings = any(t.encodings for t in self.tensors)
        # §6 working memory of a layer: its distinct input tensors plus its output.
        self.param_bytes = np.array([la.param_bytes for la in dnn.layers], dtype=float)
        self.work_bytes = np.array(
            [sum(out_bytes[s] for s in la.inputs) + la.out_bytes for la in dnn.layers], dtype=float
        )
        self._paths: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._path_costs: dict[tuple[float, int, int], PathCost | None] = {}
        # Routes per routing (a next-hop matrix, shared by every size that routes alike), for
        # `routing`: {routing: {(a, b): (arcs, Σ latency·tx power, Σ tx power / bandwidth,
        # 1 / bandwidth per arc)}}.
        self._routing_of: dict[float, int] = {}
        self._routing_ids: dict[bytes, int] = {}
        self._route_terms: dict[int, dict[tuple[int, int], tuple]] = {}
        self._energy_terms: dict[int, tuple[np.ndarray, np.ndarray]] = {}
        self.reasons: list[str] = []  # why the instance is infeasible, when it can be told upfront
        self.allowed = self._allowed_nodes()

    # ------------------------------------------------------------------ routing (§2)

    def shortest_paths(self, size_bytes: float) -> tuple[np.ndarray, np.ndarray]:
        """All-pairs (transfer time in s, next hop) for a tensor of `size_bytes` (Floyd-Warshall).

        Unreachable pairs have time inf and next hop -1. Cached per size.
        """
        key = float(size_bytes)
        hit = self._paths.get(key)
        if hit is not None:
            return hit
        K = len(self.nodes)
        dist = np.full((K, K), np.inf)
        nxt = np.full((K, K), -1, dtype=np.int64)
        np.fill_diagonal(dist, 0.0)
        nxt[np.arange(K), np.arange(K)] = np.arange(K)
        for arc in self.arcs:
            dist[arc.tail, arc.head] = arc.hop_time_s(key)
            nxt[arc.tail, arc.head] = arc.head
        for k in range(K):
            alt = dist[:, k : k + 1] + dist[k : k + 1, :]
            better = alt < dist * (1.0 - _TIE)
            if better.any():
                dist = np.where(better, alt, dist)
                nxt = np.where(better, nxt[:, k : k + 1], nxt)
        self._paths[key] = (dist, nxt)
        self._routing_of[key] = self._routing_ids.setdefault(nxt.tobytes(), len(self._routing_ids))
        return dist, nxt

    def route(self, size_bytes: float, a: int, b: int) -> list[int] | None:
        """Nodes from a to b on the fastest path for this size, or None if b is unreachable."""
        _, nxt = self.shortest_paths(size_bytes)
        if nxt[a, b] < 0:
            return None
        path = [a]
        while path[-1] != b:
            path.append(int(nxt[path[-1], b]))
        return path

    def path_cost(self, size_bytes: float, a: int, b: int) -> PathCost | None:
        """The route a -> b of a tensor of `size_bytes` with its time, energy and arc loads
        (§2, §5, §7); None when b is unreachable. Cached per (size, a, b)."""
        key = (float(size_bytes), a, b)
        if key in self._path_costs:
            return self._path_costs[key]
        path = self.route(size_bytes, a, b)
        cost = None
        if path is not None:
            arcs = tuple(self.arc_index[hop] for hop in itertools.pairwise(path))
            hops = [self.arcs[i].hop_time_s(size_bytes) for i in arcs]
            cost = PathCost(
                nodes=tuple(self.nodes[k] for k in path),
                arcs=arcs,
                loads_s=tuple(size_bytes / self.arcs[i].bandwidth_bytes_per_s for i in arcs),
                time_s=float(sum(hops)),
                # §5: each hop's sender transmits for the hop's time
                energy_j=float(
                    sum(
                        h * self.tx_power_w[self.arcs[i].tail]
                        for h, i in zip(hops, arcs, strict=True)
                    )
                ),
            )
        self._path_costs[key] = cost
        return cost

    def route_terms(
        self, size_bytes: float, a: int, b: int
    ) -> tuple[float, tuple[int, ...], list[float]]:
        """(transmit energy in J, arc indices, load in s per arc) of the route a -> b of a tensor
        of `size_bytes` (§2, §5, §7), as `path_cost` gives them; b must be reachable."""
        return self.routing(size_bytes).terms(a, b)

    def route_energy(self, size_bytes: float) -> np.ndarray:
        """K x K transmit energy in J of the route p -> q of a tensor of `size_bytes` (§5; 0 on
        the diagonal, inf where q cannot be reached): `route_energy_j` for every pair at once,
        from the routing's terms, linear in the size on a fixed route and cached per routing."""
        size = float(size_bytes)
        dist, _ = self.shortest_paths(size)
        key = self._routing_of[size]
        lin = self._energy_terms.get(key)
        if lin is None:
            routing = self.routing(size)
            K = len(self.nodes)
            e0, e1 = np.full((K, K), np.inf), np.zeros((K, K))
            for p, q in zip(*np.nonzero(np.isfinite(dist)), strict=True):
                e0[p, q], e1[p, q] = routing.energy_terms(int(p), int(q))
            lin = self._energy_terms[key] = (e0, e1)
        return lin[0] + size * lin[1]

    def routing(self, size_bytes: float) -> Routing:
        """The routes of a tensor of `size_bytes`, for the MILP: it asks for the route terms of
        every (tensor, producer node, consumer node), and tensors rarely share a size, so routes
        are cached per routing (the next-hop matrix, which every size that routes alike shares)
        and on a fixed route the energy Σ (λ_a + B / bw_a) P^tx_a and the loads B / bw_a are
        linear in the size B."""
        size = float(size_bytes)
        self.shortest_paths(size)  # computes the routing of this size where it is new
        routes = self._route_terms.setdefault(self._routing_of[size], {})
        return Routing(self, size, routes)

    def route_energy_j(self, size_bytes: float, a: int, b: int) -> float:
        """Transmit energy of the route a -> b (§5); b must be reachable."""
        cost = self.path_cost(size_bytes, a, b)
        if cost is None:
            raise ValueError(f"{self.nodes[b]} cannot be reached from {self.nodes[a]}")
        return cost.energy_j

    @cached_property
    def reach(self) -> np.ndarray:
        """reach[a, b]: some path leads from node a to node b."""
        return np.isfinite(self.shortest_paths(0.0)[0])

    # ------------------------------------------------------------------ allowed nodes

    def _allowed_nodes(self) -> list[list[int]]:
        """Per layer, the nodes it may run on in any feasible plan.

        A node is dropped when it is not pinned, when the input cannot reach it, when it cannot
        reach the sink although the layer feeds the output, or when the layer alone exceeds the
        node's memory. Dropping them is exact (no feasible plan uses them) and keeps the MILP small.
        """
        inst = self.instance
        reach = self.reach
        feeds_output = self._ancestors_of_output()
        allowed = []
        for v, layer in enumerate(inst.dnn.layers):
            pins = inst.constraints.pin.get(layer.name)
            cand = [self.node_index[n] for n in pins] if pins else list(range(len(self.nodes)))
            why = []
            keep = []
            for k in cand:
                if not reach[self.source, k]:
                    why.append(f"{self.nodes[k]} cannot be reached from the source")
                elif self.sink is not None and feeds_output[v] and not reach[k, self.sink]:
                    why.append(f"{self.nodes[k]} cannot reach the sink")
                elif self._exceeds_memory(v, k):
                    mem = self.memory_bytes[k]
                    need = self.param_bytes[v] + self.work_bytes[v]
                    why.append(
                        f"{self.nodes[k]} has memory_bytes {mem:g} but the layer alone needs "
                        f"{need:g} (param_bytes + inputs + out_bytes)"
                    )
                else:
                    keep.append(k)
            if not keep:
                where = "pinned nodes" if pins else "nodes"
                self.reasons.append(
                    f"layer '{layer.name}' fits none of its {where}: " + "; ".join(why)
                )
            allowed.append(keep)
        return allowed

    def compute_cost(self, latency_weight: float, energy_weight: float) -> np.ndarray:
        """V x K weighted cost of running each layer on each node (§1, §5: s x latency_weight
        + J x energy_weight); inf where the layer may not run."""
        cost = self.compute_s * (latency_weight + energy_weight * self.compute_power_w[None, :])
        blocked = np.full(cost.shape, np.inf)
        for v, ks in enumerate(self.allowed):
            blocked[v, ks] = 0.0
        return cost + blocked

    def memory_may_bind(self, k: int) -> bool:
        """Whether some plan could exceed node k's memory (if not, its limit needs no row)."""
        cap = self.memory_bytes[k]
        on = [v for v, ks in enumerate(self.allowed) if k in ks]
        return (
            cap is not None
            and bool(on)
            and (self.param_bytes[on].sum() + self.work_bytes[on].max() > cap)
        )

    @cached_property
    def memory_binds(self) -> bool:
        """Whether some node's memory may bind (`memory_may_bind` for any node)."""
        return any(self.memory_may_bind(k) for k in range(len(self.nodes)))

    def _exceeds_memory(self, v: int, k: int) -> bool:
        mem = self.memory_bytes[k]
        return mem is not None and self.param_bytes[v] + self.work_bytes[v] > mem

    def _ancestors_of_output(self) -> list[bool]:
        feeds = [False] * len(self.layers)
        feeds[self.output] = True
        for v in range(len(self.layers) - 1, -1, -1):
            if feeds[v]:
                for src in self.instance.dnn.layers[v].inputs:
                    if src != INPUT:
                        feeds[self.layer_index[src]] = True
        return feeds


def tables(inst: Instance) -> Tables:
    """The (cached) dense tables of an instance."""
    cached = inst.__dict__.get("_tables")
    if cached is None:
        cached = Tables(inst)
        object.__setattr__(inst, "_tables", cached)
    return cached


def latency_lower_bound(inst: Instance) -> float:
    """Each layer on its fastest allowed node and no transfers, s: no plan is faster (§4)."""
    return float(tables(inst).compute_cost(1.0, 0.0).min(axis=1).sum())


# --------------------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class Transfer:
    """One tensor sent from one node to another along its route (§3), in `encoding` (§10)."""

    tensor: str
    size_bytes: float
    source: str
    target: str
    route: tuple[str, ...]
    time_s: float
    energy_j: float
    encoding: str = RAW


@dataclass
class Evaluation:
    """The cost of one assignment under the cost model, with its breakdown and any violations.

    `codec_s` is the encoders' and decoders' time of encoded transfers (§10), `encodings` the
    tensors actually sent encoded and how, `accuracy_loss` what those encodings cost.
    """

    assignment: dict[str, str]
    compute_s: float
    transfer_s: float
    compute_energy_j: float
    transfer_energy_j: float
    period_s: float
    node_compute_s: dict[str, float]
    link_load_s: dict[tuple[str, str], float]
    memory_bytes: dict[str, float]
    transfers: list[Transfer]
    violations: list[str] = field(default_factory=list)
    codec_s: float = 0.0
    codec_energy_j: float = 0.0
    accuracy_loss: float = 0.0
    encodings: dict[str, str] = field(default_factory=dict)

    @property
    def latency_s(self) -> float:
        return self.compute_s + self.codec_s + self.transfer_s  # §4, §10

    @property
    def energy_j(self) -> float:
        return self.compute_energy_j + self.codec_energy_j + self.transfer_energy_j  # §5, §10

    @property
    def feasible(self) -> bool:
        return not self.violations

    def objective(self, inst: Instance) -> float:
        """The value of the instance's objective (§4, §5, §7, §10)."""
        return inst.objective.value(self)


def evaluate(
    inst: Instance, assignment: Mapping[str, str], encodings: Mapping[str, str] | None = None
) -> Evaluation:
    """Cost an assignment {layer: node} by the cost model, independent of any solver.

    `encodings` ({tensor: encoding name}, §10) says in which form a tensor crosses the network
    when it does; tensors not named, or named ``raw``, go raw, and an encoding of a tensor that
    stays on its node costs nothing. Constraint violations (pins, memory, latency and accuracy
    limits, missing routes) are listed in `Evaluation.violations` rather than raised, so that
    heuristics can be costed too. A layer missing from the assignment, an unknown node, tensor
    or encoding raises `ValueError`
    (`splitplan.errors.AssignmentError` for the assignment, naming the missing layers).
    """
    tb = tables(inst)
    missing = [name for name in tb.layers if name not in assignment]
    if missing:  # issue 15: a partial assignment gave "assigned to unknown node None"
        more = f" and {len(missing) - 10} more" if len(missing) > 10 else ""
        shown = ", ".join(missing[:10]) + more
        raise AssignmentError(
            f"places {len(tb.layers) - len(missing)} of {len(tb.layers)} layers; missing: {shown}",
            field="assignment",
        )
    extra = set(assignment) - set(tb.layer_index)
    if extra:
        raise AssignmentError(
            f"names unknown layers: {', '.join(sorted(extra))}", field="assignment"
        )
    place = np.empty(len(tb.layers), dtype=np.int64)
    for v, name in enumerate(tb.layers):
        node = assignment[name]
        if node not in tb.node_index:
            raise AssignmentError(f"unknown node {node!r}", field=f"assignment.{name}")
        place[v] = tb.node_index[node]
    forms = {}
    for tensor, name in (encodings or {}).items():
        if tensor not in tb.tensor_index:
            raise ValueError(f"encodings name unknown tensor {tensor!r}")
        forms[tensor] = tb.tensors[tb.tensor_index[tensor]].form(name)

    violations: list[str] = []
    compute = tb.compute_s[np.arange(len(tb.layers)), place]
    node_compute = np.bincount(place, weights=compute, minlength=len(tb.nodes))
    compute_energy = float(np.dot(compute, tb.compute_power_w[place]))

    transfers: list[Transfer] = []
    arc_load = np.zeros(len(tb.arcs))
    codec_s = codec_energy = accuracy_loss = 0.0
    applied: dict[str, str] = {}
    for t in tb.tensors:
        src = tb.source if t.producer < 0 else int(place[t.producer])
        sink = {tb.sink} if t.to_sink and tb.sink is not None else set()
        dests = sorted({int(place[c]) for c in t.consumers} | sink)
        dests = [dst for dst in dests if dst != src]
        form = forms.get(t.name)
        size = t.size_bytes if form is None else form.size_bytes
        if form is not None and dests:  # §10: encode once at the sender, decode at each receiver
            applied[t.name] = form.name
            accuracy_loss += form.accuracy_loss
            for k, secs in [(src, form.encode_s[src]), *((d, form.decode_s[d]) for d in dests)]:
                codec_s += secs
                codec_energy += secs * tb.compute_power_w[k]
                node_compute[k] += secs
        for dst in dests:
            cost = tb.path_cost(size, src, dst)
            if cost is None:
                violations.append(
                    f"tensor '{t.name}' cannot reach {tb.nodes[dst]} from {tb.nodes[src]}"
                )
                continue
            for arc, load in zip(cost.arcs, cost.loads_s, strict=True):
                arc_load[arc] += load
            transfers.append(
                Transfer(
                    t.name,
                    size,
                    tb.nodes[src],
                    tb.nodes[dst],
                    cost.nodes,
                    cost.time_s,
                    cost.energy_j,
                    RAW if form is None else form.name,
                )
            )

    # §6 memory per node: parameters of its layers + the largest working set among them.
    memory = {}
    for k, name in enumerate(tb.nodes):
        mine = place == k
        used = float(tb.param_bytes[mine].sum() + (tb.work_bytes[mine].max() if mine.any() else 0))
        memory[name] = used
        cap = tb.memory_bytes[k]
        if cap is not None and used > cap * (1 + 1e-9):
            violations.append(f"node {name} needs {used:g} bytes of memory > memory_bytes {cap:g}")
    for layer, allowed in inst.constraints.pin.items():
        if assignment[layer] not in allowed:
            violations.append(f"layer '{layer}' is pinned to {', '.join(allowed)}")

    link_load = {
        (tb.nodes[arc.tail], tb.nodes[arc.head]): float(arc_load[i])
        for i, arc in enumerate(tb.arcs)
    }
    ev = Evaluation(
        assignment={name: tb.nodes[place[v]] for v, name in enumerate(tb.layers)},
        compute_s=float(compute.sum()),
        transfer_s=float(sum(tr.time_s for tr in transfers)),
        compute_energy_j=compute_energy,
        transfer_energy_j=float(sum(tr.energy_j for tr in transfers)),
        period_s=float(max(node_compute.max(), arc_load.max(initial=0.0))),
        node_compute_s={name: float(node_compute[k]) for k, name in enumerate(tb.nodes)},
        link_load_s=link_load,
        memory_bytes=memory,
        transfers=transfers,
        violations=violations,
        codec_s=float(codec_s),
        codec_energy_j=float(codec_energy),
        accuracy_loss=float(accuracy_loss),
        encodings=applied,
    )
    limit = inst.constraints.max_latency_s
    if limit is not None and ev.latency_s > limit * (1 + 1e-9) + 1e-12:
        violations.append(f"latency {ev.latency_s:.6g} s > max_latency_s {limit:g}")
    max_loss = inst.constraints.max_accuracy_loss
    if max_loss is not None and accuracy_loss > max_loss * (1 + 1e-9) + 1e-12:
        violations.append(
            f"accuracy loss {accuracy_loss:.6g} > max_accuracy_loss {max_loss:g} "
            f"(encodings: {', '.join(f'{t} {e}' for t, e in applied.items())})"
        )
    return ev
