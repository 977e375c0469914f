"""The constraint families of the MILP (models/formulation.md §9, §10), one function each.

Each `define_*` function takes the `Context` (the instance's tables, the recorder of the array
model and the placement variables x), adds its variables and rows to one block of the model, and
returns the `Costs` it contributes: latency, energy and accuracy terms, node and arc busy time,
and the constants every plan pays. `milp.build_milp` calls them in order and adds the costs up;
the limits and the objective are families too, and read only those sums. Symbols are the
formulation's: x[v,k], z/f (one consumer), r/y (several consumers), g (cuts), e/u/s (encodings),
M (memory), P (the period).

To add a family, see docs/adding-a-constraint-family.md.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

from .cost import Tables, Tensor
from .instance import Instance, Weights

Terms = list[tuple[float, int]]  # (coefficient, column)


class BuildTimeout(TimeoutError):
    """The model was not built before the deadline."""


@dataclass
class Costs:
    """What a family adds to the objective and the limits (§4, §5, §7, §10)."""

    latency: Terms = field(default_factory=list)  # s
    energy: Terms = field(default_factory=list)  # J
    accuracy: Terms = field(default_factory=list)  # accuracy lost, a fraction
    node_load: dict[int, Terms] = field(default_factory=lambda: defaultdict(list))  # s per node
    arc_load: dict[int, Terms] = field(default_factory=lambda: defaultdict(list))  # s per arc
    const_latency: float = 0.0  # transfers every plan makes
    const_energy: float = 0.0
    const_load: dict[int, float] = field(default_factory=lambda: defaultdict(float))
    no_route: list[int] = field(default_factory=list)  # transfer columns without a route

    def __iadd__(self, other: Costs) -> Costs:
        self.latency += other.latency
        self.energy += other.energy
        self.accuracy += other.accuracy
        for k, terms in other.node_load.items():
            self.node_load[k] += terms
        for a, terms in other.arc_load.items():
            self.arc_load[a] += terms
        self.const_latency += other.const_latency
        self.const_energy += other.const_energy
        for a, load in other.const_load.items():
            self.const_load[a] += load
        self.no_route += other.no_route
        return self


class Context:
    """What every family reads: the instance, its tables, the recorder, x[v,k], and which costs
    the objective and the limits price."""

    def __init__(self, inst: Instance, rec, deadline: float | None = None) -> None:
        from .cost import tables

        self.inst = inst
        self.tb: Tables = tables(inst)
        self.rec = rec
        self.deadline = deadline  # a time.perf_counter() value
        o = inst.objective
        self.weights: Weights | None = o.weights() if o.additive else None
        self.need_energy = self.weights is not None and self.weights.energy > 0
        self.need_loads = not o.additive
        # Flows price a path by its latency alone: usable when nothing else is priced per route.
        self.transfer_model = "pair" if self.need_energy or self.need_loads else "flow"
        tb = self.tb
        # The sink node; -1 (no node) when there is none, so that `q == ctx.sink` is False.
        self.sink: int = -1 if tb.sink is None else tb.sink
        # (layer, node) pairs a plan may use: pins and unusable nodes are left out (§9).
        pairs = [(v, k) for v in range(len(tb.layers)) for k in tb.allowed[v]]
        self.x: dict[tuple[int, int], int] = rec.vars(
            "", "x", pairs, "x[v,k] = 1 iff layer v runs on node k", binary=True
        )
        self.into: dict[int, list[int]] = defaultdict(list)
        self.out_of: dict[int, list[int]] = defaultdict(list)
        for a, arc in enumerate(tb.arcs):
            self.into[arc.head].append(a)
            self.out_of[arc.tail].append(a)

    def tick(self, i: int) -> None:
        """Raise `BuildTimeout` past the deadline (looked at when i is a multiple of 16: every
        16th layer or tensor; 256 tensors of a 1000 x 16 chain took 1.2 s)."""
        if self.deadline is not None and not i & 15 and time.perf_counter() > self.deadline:
            raise BuildTimeout("building the model took longer than the time limit")

    def targets(self, t: Tensor, sink: bool = True) -> list[int]:
        """Nodes that may need tensor t: where its consumers may run, and the sink."""
        nodes = {q for c in t.consumers for q in self.tb.allowed[c]}
        if sink and t.to_sink:
            nodes.add(self.sink)
        return sorted(nodes)

    def producers(self, t: Tensor) -> list[int]:
        """Nodes that may hold tensor t: the source for the input, else its layer's nodes."""
        return [self.tb.source] if t.producer < 0 else self.tb.allowed[t.producer]

    def unit_flow(self, v: int, c: int, arcs: dict[int, int]) -> Iterator[tuple[int, tuple]]:
        """Rows (k, (0, terms, 0)) of a unit flow on `arcs` from where v runs to where c runs."""
        x = self.x
        for k in range(len(self.tb.nodes)):
            terms = [(1.0, x[v, k])] if (v, k) in x else []
            if (c, k) in x:
                terms.append((-1.0, x[c, k]))
            terms += [(1.0, arcs[a]) for a in self.into[k]]
            terms += [(-1.0, arcs[a]) for a in self.out_of[k]]
            yield k, (0.0, terms, 0.0)

    # ------------------------------------------------------------------ charging costs

    def compute(self, costs: Costs, k: int, secs: float, var: int) -> None:
        """Charge `secs` of compute on node k, spent when column `var` is 1 (§1, §4, §5, §7)."""
        if secs == 0.0:
            return
        costs.latency.append((secs, var))
        if self.need_energy:
            costs.energy.append((secs * float(self.tb.compute_power_w[k]), var))
        if self.need_loads:
            costs.node_load[k].append((secs, var))

    def send(
        self, costs: Costs, size: float, p: int, q: int, var: int | None, dist: np.ndarray
    ) -> None:
        """Charge a transfer p -> q of `size` bytes on its fixed route (§2-§5, §7), made when
        column `var` is 1 (always when `var` is None); `dist` is D for that size."""
        if p == q:
            return
        lat = float(dist[p, q])
        if not np.isfinite(lat):  # q cannot be reached from p: the transfer must not happen
            if var is None:  # pragma: no cover - Tables reports such instances as infeasible
                raise ValueError(f"a transfer every plan makes has no route ({p} -> {q})")
            costs.no_route.append(var)
            return
        if self.need_energy or self.need_loads:
            energy, arcs, arc_loads = self.tb.route_terms(size, p, q)
            loads = list(zip(arcs, arc_loads, strict=True))
        else:
            energy, loads = 0.0, []
        if var is None:
            costs.const_latency += lat
            costs.const_energy += energy
            for a, load in loads:
                costs.const_load[a] += load
            return
        costs.latency.append((lat, var))
        if self.need_energy:
            costs.energy.append((energy, var))
        for a, load in loads:
            costs.arc_load[a].append((load, var))


# --------------------------------------------------------------------------- §1 placement


def define_assignment(ctx: Context) -> Costs:
    """§1: every layer runs on exactly one node, Σ_k x[v,k] = 1 (block `assign`), at the cost
    c_{v,k} x[v,k] (latency, energy at P^c_k, busy time of k)."""
    b = ctx.rec.block("assign", "§1: every layer runs on exactly one node")
    rows = {v: (1.0, [(1.0, ctx.x[v, k]) for k in ks], 1.0) for v, ks in enumerate(ctx.tb.allowed)}
    ctx.rec.constraints(b, "one_node", rows, "sum_k x[v,k] = 1")
    costs = Costs()
    for (v, k), var in ctx.x.items():
        ctx.tick(v)
        ctx.compute(costs, k, float(ctx.tb.compute_s[v, k]), var)
    return costs


# --------------------------------------------------------------------------- §2, §3 transfers


@dataclass
class TensorCases:
    """The tensors that cross the network, by the case of §9 that encodes them."""

    fixed: list[int] = field(default_factory=list)  # the producer has one node, or no consumer
    single: list[int] = field(default_factory=list)  # one consumer, not the sink
    multi: list[int] = field(default_factory=list)  # several consumers, or one and the sink
    encoded: list[int] = field(default_factory=list)  # tensors with encodings (§10)


def classify_tensors(ctx: Context) -> TensorCases:
    """Sort the tensors into the cases of §9 (a tensor that goes nowhere is in none)."""
    cases = TensorCases()
    for ti, t in enumerate(ctx.tb.tensors):
        if not t.consumers and not t.to_sink:
            continue  # a result that goes nowhere (no sink, or a dead branch)
        if t.encodings:
            cases.encoded.append(ti)
        elif len(ctx.producers(t)) == 1 or not t.consumers:
            cases.fixed.append(ti)
        elif len(t.consumers) == 1 and not t.to_sink:
            cases.single.append(ti)
        else:
            cases.multi.append(ti)
    return cases


def define_single_transfers(ctx: Context, block: str, tensors: list[int]) -> Costs:
    """§9, one consumer c of a tensor t produced by a movable layer v.

    Latency priced alone (`flow`): a unit flow f[t,a] ∈ [0,1] on the arcs, `flow_balance`
    x[v,k] − x[c,k] + Σ_{a into k} f[t,a] − Σ_{a out of k} f[t,a] = 0, at cost Σ_a h_a(B_t) f[t,a]
    (a cheapest unit flow is a shortest path). Otherwise (`pair`) a transportation problem
    z[t,p,q] with `pair_out` Σ_q z = x[v,p] and `pair_in` Σ_p z = x[c,q], at the route's latency,
    energy and arc loads. Both are totally unimodular per tensor."""
    tb, x, costs = ctx.tb, ctx.x, Costs()
    if ctx.transfer_model == "flow":
        keys = [(ti, a) for ti in tensors for a in range(len(tb.arcs))]
        f = ctx.rec.vars(block, "f", keys, "f[t,a]: flow of tensor t on arc a")
        rows_bal = {}
        for ti in tensors:
            ctx.tick(ti)
            t = tb.tensors[ti]
            (c,) = t.consumers
            arcs = {a: f[ti, a] for a in range(len(tb.arcs))}
            for k, row in ctx.unit_flow(t.producer, c, arcs):
                rows_bal[ti, k] = row
            for a, arc in enumerate(tb.arcs):
                costs.latency.append((arc.hop_time_s(t.size_bytes), f[ti, a]))
        ctx.rec.constraints(
            block, "flow_balance", rows_bal, "x[producer,k] - x[consumer,k] + inflow - outflow = 0"
        )
        return costs
    reach = tb.reach
    pairs: list[tuple[int, int, int]] = []
    for ti in tensors:
        t = tb.tensors[ti]
        (c,) = t.consumers
        pairs += [(ti, p, q) for p in tb.allowed[t.producer] for q in tb.allowed[c] if reach[p, q]]
    z = ctx.rec.vars(block, "z", pairs, "z[t,p,q]: tensor t goes from p to q")
    z_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ti, p, q in z:
        z_of[ti].append((p, q))
    rows_out, rows_in = {}, {}
    # ctx.send, inlined: this loop runs |K|² times per tensor (a 1000 x 16 chain: 256,000)
    latency, energy, arc_load = costs.latency, costs.energy, costs.arc_load
    need_energy = ctx.need_energy
    for ti in tensors:
        ctx.tick(ti)
        t = tb.tensors[ti]
        (c,) = t.consumers
        v, size = t.producer, t.size_bytes
        dist = tb.shortest_paths(size)[0].tolist()
        route = tb.routing(size).terms
        out: dict[int, Terms] = defaultdict(list)
        inn: dict[int, Terms] = defaultdict(list)
        for p, q in z_of[ti]:
            col = z[ti, p, q]
            out[p].append((1.0, col))
            inn[q].append((1.0, col))
            if p == q:
                continue
            latency.append((dist[p][q], col))  # finite: z exists only where q is reachable
            route_energy, on_arcs, loads = route(p, q)
            if need_energy:
                energy.append((route_energy, col))
            for a, load in zip(on_arcs, loads, strict=True):
                arc_load[a].append((load, col))
        for p in tb.allowed[v]:
            rows_out[ti, p] = (0.0, [*out[p], (-1.0, x[v, p])], 0.0)
        for q in tb.allowed[c]:
            rows_in[ti, q] = (0.0, [*inn[q], (-1.0, x[c, q])], 0.0)
    ctx.rec.constraints(block, "pair_out", rows_out, "sum_q z[t,p,q] = x[producer(t),p]")
    ctx.rec.constraints(block, "pair_in", rows_in, "sum_p z[t,p,q] = x[consumer(t),q]")
    return costs


def needed_at(ctx: Context, tensors: Iterable[int]) -> list[tuple[int, int]]:
    """Keys (t, q) of r for the nodes q that may need t besides its producer's only node and the
    sink (which always gets a tensor that goes there)."""
    tb, keys = ctx.tb, []
    for ti in tensors:
        t = tb.tensors[ti]
        producers = ctx.producers(t)
        skip = {producers[0]} if len(producers) == 1 else set()
        skip |= {ctx.sink} if t.to_sink else set()
        keys += [(ti, q) for q in ctx.targets(t, sink=False) if q not in skip]
    return keys


def define_need(ctx: Context, block: str, keys: list[tuple[int, int]]) -> dict:
    """§9: r[t,q] ∈ [0,1] marks the nodes that need t, `need`: r[t,q] ≥ x[c,q] for each
    consumer c of t that may run on q. Every cost is non-decreasing in r, so r = max_c x[c,q]
    at an optimum. Returns {(t, q): column}."""
    r = ctx.rec.vars(block, "r", keys, "r[t,q]: some consumer of t runs on q")
    rows = {}
    for (ti, q), var in r.items():
        for c in ctx.tb.tensors[ti].consumers:
            if (c, q) in ctx.x:
                rows[ti, c, q] = (0.0, [(1.0, var), (-1.0, ctx.x[c, q])], None)
    ctx.rec.constraints(block, "need", rows, "r[t,q] >= x[c,q] for each consumer c of t")
    return r


def define_fixed_transfers(ctx: Context, tensors: list[int], r: dict) -> Costs:
    """§9, a producer fixed in place (the input at s, or a pinned layer) or an output that only
    goes to the sink: the transfer to q costs D(p,q)·x[c,q] (one consumer), D(p,q)·r[t,q]
    (several), a constant to the sink, or Σ_p D(p,d)·x[v,p] for an output with no consumer.
    Linear in x: no rows of its own."""
    tb, x, costs = ctx.tb, ctx.x, Costs()
    r_of: dict[int, list[int]] = defaultdict(list)
    for ti, q in r:
        r_of[ti].append(q)
    for ti in tensors:
        ctx.tick(ti)
        t = tb.tensors[ti]
        size = t.size_bytes
        dist, _ = tb.shortest_paths(size)
        if t.producer >= 0 and len(tb.allowed[t.producer]) > 1:  # output only to the sink
            for p in tb.allowed[t.producer]:
                ctx.send(costs, size, p, ctx.sink, x[t.producer, p], dist)
            continue
        (p,) = ctx.producers(t)
        if t.to_sink:
            ctx.send(costs, size, p, ctx.sink, None, dist)
        if len(t.consumers) == 1:
            (c,) = t.consumers
            for q in tb.allowed[c]:
                if not (t.to_sink and q == ctx.sink):
                    ctx.send(costs, size, p, q, x[c, q], dist)
        for q in r_of[ti]:
            ctx.send(costs, size, p, q, r[ti, q], dist)
    return costs


def define_multi_transfers(ctx: Context, block: str, tensors: list[int], r: dict) -> Costs:
    """§9, several consumers (or one and the sink): y[t,p,q] ∈ [0,1] picks where the copy at q
    comes from, `pick`: Σ_p y[t,p,q] = r[t,q] (= 1 at the sink), `pick_from`: y[t,p,q] ≤ x[v,p],
    at cost D(p,q) and the route's energy and arc loads for p ≠ q.

    Cuts (latency priced alone): a unit flow g[t,c,a] from x[v,·] to x[c,·] per consumer
    (`cut_balance`) and `cut`: Σ_{p≠q} D(p,q) y[t,p,q] ≥ Σ_a h_a(B_t) g[t,c,a]: t's transfers
    cost at least its cheapest route to any one consumer. Valid for every plan."""
    tb, x, costs = ctx.tb, ctx.x, Costs()
    keys = []
    for ti in tensors:
        t = tb.tensors[ti]
        keys += [(ti, p, q) for p in ctx.producers(t) for q in ctx.targets(t) if tb.reach[p, q]]
    y = ctx.rec.vars(block, "y", keys, "y[t,p,q]: t is sent from p to q")
    g_keys = []
    if ctx.transfer_model == "flow":
        g_keys = [
            (ti, c, a)
            for ti in tensors
            for c in tb.tensors[ti].consumers
            for a in range(len(tb.arcs))
        ]
    g = ctx.rec.vars(
        block, "g", g_keys, "g[t,c,a]: flow of t to consumer c on arc a (a cut)", bounds=(0, 1)
    )
    y_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for ti, p, q in y:
        y_of[ti].append((p, q))
    rows_pick, rows_from, rows_gbal, rows_gcut = {}, {}, {}, {}
    for ti in tensors:
        ctx.tick(ti)
        t = tb.tensors[ti]
        dist, _ = tb.shortest_paths(t.size_bytes)
        into: dict[int, Terms] = defaultdict(list)
        for p, q in y_of[ti]:
            var = y[ti, p, q]
            into[q].append((1.0, var))
            rows_from[ti, p, q] = (None, [(1.0, var), (-1.0, x[t.producer, p])], 0.0)
            ctx.send(costs, t.size_bytes, p, q, var, dist)
        for q, terms in into.items():
            if t.to_sink and q == ctx.sink:
                rows_pick[ti, q] = (1.0, terms, 1.0)
            elif (ti, q) in r:
                rows_pick[ti, q] = (0.0, [*terms, (-1.0, r[ti, q])], 0.0)
        if not g:
            continue
        cost = [(float(dist[p, q]), y[ti, p, q]) for p, q in y_of[ti] if p != q]
        for c in t.consumers:
            arcs = {a: g[ti, c, a] for a in range(len(tb.arcs))}
            for k, row in ctx.unit_flow(t.producer, c, arcs):
                rows_gbal[ti, c, k] = row
            flow_cost = [(-arc.hop_time_s(t.size_bytes), arcs[a]) for a, arc in enumerate(tb.arcs)]
            rows_gcut[ti, c] = (0.0, [*cost, *flow_cost], None)
    ctx.rec.constraints(block, "pick", rows_pick, "sum_p y[t,p,q] = r[t,q] (= 1 at the sink)")
    ctx.rec.constraints(block, "pick_from", rows_from, "y[t,p,q] <= x[producer(t),p]")
    ctx.rec.constraints(
        block, "cut_balance", rows_gbal, "x[producer,k] - x[c,k] + inflow - outflow = 0"
    )
    ctx.rec.constraints(block, "cut", rows_gcut, "sum D(p,q) y[t,p,q] >= sum_a h_a(B_t) g[t,c,a]")
    return costs


def define_no_route(ctx: Context, block: str, columns: list[int]) -> None:
    """§9: a transfer variable whose pair has no route is 0 (its consumer cannot run there)."""
    rows = {j: (None, [(1.0, var)], 0.0) for j, var in enumerate(columns)}
    ctx.rec.constraints(block, "no_route", rows, "x[c,q] = 0 or r[t,q] = 0 without a route")


def define_transfers(ctx: Context, cases: TensorCases) -> Costs:
    """§2, §3: each tensor reaches every node that runs one of its consumers (and the sink),
    by the case of §9 that fits it (block `transfer`)."""
    b = ctx.rec.block("transfer", "§2, §3: tensors reach the nodes that need them")
    costs = define_single_transfers(ctx, b, cases.single)
    several = [ti for ti in cases.fixed if len(ctx.tb.tensors[ti].consumers) > 1]
    r = define_need(ctx, b, needed_at(ctx, [*several, *cases.multi]))
    costs += define_multi_transfers(ctx, b, cases.multi, r)
    costs += define_fixed_transfers(ctx, cases.fixed, r)
    define_no_route(ctx, b, costs.no_route)
    return costs


# --------------------------------------------------------------------------- §10 encodings


def define_encoded_transfers(ctx: Context, tensors: list[int]) -> tuple[Costs, dict]:
    """§10: tensors with encodings cross the network in one chosen form (block `encode`).

    e[t,j] ∈ {0,1} picks t's form (j = 0 raw), `one_form` Σ_j e[t,j] = 1. As for several
    consumers, r[t,q] ≥ x[c,q] marks where t is needed; it is kept on its node (u[t,0,q,q]) or
    sent from p in form j, u[t,j,p,q], with `pick` Σ_{j,p} u[t,j,p,q] = r[t,q] (= 1 at the sink),
    `pick_from` Σ_j u[t,j,p,q] ≤ x[v,p] and `in_form` Σ_p u[t,j,p,q] ≤ e[t,j]. The sender
    encodes once: `encode` s[t,j,p] ≥ u[t,j,p,q]. Costs: D_{B_j}(p,q) and the decoder's time at
    q on u, the encoder's time at p and the accuracy loss on s. Returns (costs, {(t, j): e}) for
    j ≥ 1."""
    tb, x, costs = ctx.tb, ctx.x, Costs()
    if not tensors:
        return costs, {}
    b = ctx.rec.block("encode", "§10: the form each encoded tensor crosses the network in")
    e_keys, r_keys, u_keys, s_keys = [], [], [], []
    for ti in tensors:
        t = tb.tensors[ti]
        producers = ctx.producers(t)
        n_forms = len(t.encodings) + 1
        e_keys += [(ti, j) for j in range(n_forms)]
        r_keys += [(ti, q) for q in ctx.targets(t, sink=False) if not (t.to_sink and q == ctx.sink)]
        for q in ctx.targets(t):
            if q in producers:
                u_keys.append((ti, 0, q, q))
            for p in producers:
                if p != q and tb.reach[p, q]:
                    u_keys += [(ti, j, p, q) for j in range(n_forms)]
        s_keys += [(ti, j, p) for j in range(1, n_forms) for p in producers]
    e = ctx.rec.vars(
        b, "e", e_keys, "e[t,j] = 1 iff tensor t crosses the network in form j", binary=True
    )
    rows_one = {
        ti: (1.0, [(1.0, e[ti, j]) for j in range(len(tb.tensors[ti].encodings) + 1)], 1.0)
        for ti in tensors
    }
    ctx.rec.constraints(b, "one_form", rows_one, "sum_j e[t,j] = 1")
    r = define_need(ctx, b, r_keys)
    u = ctx.rec.vars(b, "u", u_keys, "u[t,j,p,q]: t is sent from p to q in form j")
    s_var = ctx.rec.vars(b, "s", s_keys, "s[t,j,p]: p encodes t in form j")

    rows_pick, rows_from, rows_form, rows_enc = {}, {}, {}, {}
    into: dict[tuple[int, int], Terms] = defaultdict(list)
    pair: dict[tuple[int, int, int], Terms] = defaultdict(list)
    in_form: dict[tuple[int, int, int], Terms] = defaultdict(list)
    for (ti, j, p, q), var in u.items():
        t = tb.tensors[ti]
        into[ti, q].append((1.0, var))
        pair[ti, p, q].append((1.0, var))
        if p == q:
            continue
        in_form[ti, j, q].append((1.0, var))
        form = t.encodings[j - 1] if j else None
        size = t.size_bytes if form is None else form.size_bytes
        ctx.send(costs, size, p, q, var, tb.shortest_paths(size)[0])
        if form is not None:
            ctx.compute(costs, q, float(form.decode_s[q]), var)
            rows_enc[ti, j, p, q] = (0.0, [(1.0, s_var[ti, j, p]), (-1.0, var)], None)
    for ti, q in r:  # every node that may need t gets a row, even one nothing can reach
        rows_pick[ti, q] = (0.0, [*into[ti, q], (-1.0, r[ti, q])], 0.0)
    for ti in tensors:
        if tb.tensors[ti].to_sink:
            rows_pick[ti, ctx.sink] = (1.0, into[ti, ctx.sink], 1.0)
    for (ti, p, q), terms in pair.items():
        v = tb.tensors[ti].producer
        if v >= 0:  # the input is always at the source
            rows_from[ti, p, q] = (None, [*terms, (-1.0, x[v, p])], 0.0)
    for (ti, j, q), terms in in_form.items():
        rows_form[ti, j, q] = (None, [*terms, (-1.0, e[ti, j])], 0.0)
    for (ti, j, p), var in s_var.items():
        form = tb.tensors[ti].encodings[j - 1]
        ctx.compute(costs, p, float(form.encode_s[p]), var)
        if form.accuracy_loss:
            costs.accuracy.append((form.accuracy_loss, var))
    ctx.rec.constraints(b, "pick", rows_pick, "sum_{j,p} u[t,j,p,q] = r[t,q] (= 1 at the sink)")
    ctx.rec.constraints(b, "pick_from", rows_from, "sum_j u[t,j,p,q] <= x[producer(t),p]")
    ctx.rec.constraints(b, "in_form", rows_form, "sum_p u[t,j,p,q] <= e[t,j]")
    ctx.rec.constraints(b, "encode", rows_enc, "s[t,j,p] >= u[t,j,p,q]")
    define_no_route(ctx, b, costs.no_route)
    return costs, {(ti, j): var for (ti, j), var in e.items() if j > 0}


# --------------------------------------------------------------------------- §6 memory


def define_memory(ctx: Context) -> None:
    """§6: Σ_v π_v x[v,k] + M[k] ≤ mem_k (`capacity`) and M[k] ≥ w_v x[v,k] (`working_set`),
    for the nodes whose limit some plan could exceed (block `memory`). Rows are divided by
    mem_k (M[k] is a fraction of it): byte counts of 1e9 beside 0/1 variables would strain the
    solvers' tolerances."""
    tb, x = ctx.tb, ctx.x
    b = ctx.rec.block("memory", "§6: parameters and the largest working set fit")
    on: dict[int, list[int]] = defaultdict(list)
    for v, k in x:
        on[k].append(v)
    limited = [k for k in on if tb.memory_may_bind(k)]
    M = ctx.rec.vars(
        b, "M", limited, "M[k]: largest working set on node k / memory_bytes[k]", bounds=(0, 1)
    )
    rows_cap, rows_work = {}, {}
    for k in limited:
        cap = float(tb.memory_bytes[k])  # type: ignore[arg-type]  # memory_may_bind: a limit
        rows_cap[k] = (
            None,
            [*((float(tb.param_bytes[v]) / cap, x[v, k]) for v in on[k]), (1.0, M[k])],
            1.0,
        )
        for v in on[k]:
            rows_work[v, k] = (0.0, [(1.0, M[k]), (-float(tb.work_bytes[v]) / cap, x[v, k])], None)
    ctx.rec.constraints(b, "capacity", rows_cap, "sum_v param[v] x[v,k] / mem[k] + M[k] <= 1")
    ctx.rec.constraints(b, "working_set", rows_work, "M[k] >= work[v] x[v,k] / mem[k]")


# --------------------------------------------------------------------------- limits, objective


def define_latency_limit(ctx: Context, costs: Costs) -> None:
    """§4 with constraints.max_latency_s: latency ≤ the limit (block `latency_limit`)."""
    limit = ctx.inst.constraints.max_latency_s
    b = ctx.rec.block("latency_limit", "§4: latency <= max_latency_s")
    if limit is not None:
        rows = {0: (None, costs.latency, float(limit) - costs.const_latency)}
        ctx.rec.constraints(b, "max_latency", rows, "latency <= max_latency_s")


def define_accuracy_limit(ctx: Context, costs: Costs) -> None:
    """§10 with constraints.max_accuracy_loss: the accuracy lost to encodings ≤ the limit."""
    limit = ctx.inst.constraints.max_accuracy_loss
    b = ctx.rec.block("accuracy_limit", "§10: accuracy loss <= max_accuracy_loss")
    if limit is not None and costs.accuracy:
        rows = {0: (None, costs.accuracy, float(limit))}
        ctx.rec.constraints(b, "max_accuracy_loss", rows, "accuracy loss <= max_accuracy_loss")


def define_period(ctx: Context, costs: Costs) -> int:
    """§7: the period P ≥ each node's busy time (`node_period`) and each arc's
    (`arc_period`, with the constant transfers' load); returns P's column."""
    b = ctx.rec.block("throughput", "§7: the period is the busiest resource")
    P = ctx.rec.var(b, "P", "P: the period, s", (0, None))
    node_rows = {
        k: (0.0, [(1.0, P), *((-c, v) for c, v in terms)], None)
        for k, terms in costs.node_load.items()
    }
    arc_rows = {}
    for a in set(costs.arc_load) | set(costs.const_load):
        terms = [(1.0, P), *((-c, v) for c, v in costs.arc_load.get(a, []))]
        arc_rows[a] = (costs.const_load.get(a, 0.0), terms, None)
    ctx.rec.constraints(b, "node_period", node_rows, "P >= sum_v compute[v,k] x[v,k]")
    ctx.rec.constraints(
        b, "arc_period", arc_rows, "P >= sum over tensors routed on arc a of B / bandwidth"
    )
    return P


def define_objective(ctx: Context, costs: Costs) -> None:
    """§8: minimise α·latency + β·energy + γ·accuracy loss (latency and energy are the weights
    (1,0,0) and (0,1,0)), or the period P (§7)."""
    w = ctx.weights
    if w is None:
        ctx.rec.objective, ctx.rec.offset = [(1.0, define_period(ctx, costs))], 0.0
        return
    terms: Terms = []
    offset = 0.0
    for weight, part, constant in (
        (w.latency, costs.latency, costs.const_latency),
        (w.energy, costs.energy, costs.const_energy),
        (w.accuracy, costs.accuracy, 0.0),
    ):
        if weight:
            terms += part if weight == 1.0 else [(weight * c, v) for c, v in part]
            offset += weight * constant
    ctx.rec.objective, ctx.rec.offset = terms, offset
