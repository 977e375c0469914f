"""The placement MILP of ``models/formulation.md``: one Pyomo model, a block per constraint family.

Symbols follow the formulation: x[v,k] (layer v runs on node k), z[t,p,q] (tensor t goes from p to
q, single consumer), f[t,a] (flow of tensor t on arc a, latency objective), r[t,q] / y[t,p,q]
(tensor t needed at q / sent from p to q, several consumers), e[t,j] / u[t,j,p,q] / s[t,j,p]
(encoded tensors, §10: t's form is j / t is sent from p to q in form j / p encodes t in form j),
M[k] (working memory of node k) and P (the period). Each block's docstring names the section of
the cost model it encodes.

Every expression is built as a Pyomo `LinearExpression` from (coefficient, variable) terms, which
keeps the build fast and lets `solvers` read the matrix back without Pyomo's generic compilers.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np
import pyomo.environ as pyo
from pyomo.core.expr.numeric_expr import LinearExpression, MonomialTermExpression

from .cost import Tables, Tensor, tables
from .cuts import add_cuts
from .instance import Instance

Terms = list[tuple[float, object]]  # (coefficient, Pyomo variable)


def linear(terms: Terms, constant: float = 0.0) -> LinearExpression:
    """A Pyomo linear expression sum(c * var) + constant."""
    args: list = [MonomialTermExpression((c, var)) for c, var in terms if c != 0.0]
    if constant or not args:
        args.append(float(constant))
    return LinearExpression(args)


INF = float("inf")


@dataclass
class StandardForm:
    """min c.x + offset s.t. row_lb <= A x <= row_ub, col_lb <= x <= col_ub, x[integer] integral."""

    c: np.ndarray
    offset: float
    A_start: np.ndarray  # CSR row starts
    A_index: np.ndarray
    A_value: np.ndarray
    row_lb: np.ndarray
    row_ub: np.ndarray
    col_lb: np.ndarray
    col_ub: np.ndarray
    integer: np.ndarray  # bool per column
    columns: list  # Pyomo variables, in column order


def merge_duplicates(
    start: np.ndarray, index: np.ndarray, value: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sum repeated (row, column) entries of a CSR matrix (HiGHS rejects them)."""
    rows = np.repeat(np.arange(len(start) - 1), np.diff(start))
    order = np.lexsort((index, rows))
    rows, index, value = rows[order], index[order], value[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (index[1:] != index[:-1])
    at = np.flatnonzero(first)
    value = np.add.reduceat(value, at) if len(at) else value
    rows, index = rows[at], index[at]
    start = np.searchsorted(rows, np.arange(len(start)), side="left").astype(np.int64)
    return start, index, value


class _Recorder:
    """Adds variable and constraint families to Pyomo blocks and records the same rows and
    columns as arrays, so that the solver reads the matrix without walking Pyomo's expressions
    (`solvers.standard_form` does that walk; the tests check both give the same matrix)."""

    def __init__(self) -> None:
        self.columns: list = []
        self.col_of: dict[int, int] = {}
        self.col_lb: list[float] = []
        self.col_ub: list[float] = []
        self.integer: list[bool] = []
        self.rows: list[tuple[float | None, Terms, float | None]] = []

    def column(self, var, lb: float | None, ub: float | None, integer: bool = False) -> None:
        self.col_of[id(var)] = len(self.columns)
        self.columns.append(var)
        self.col_lb.append(-INF if lb is None else lb)
        self.col_ub.append(INF if ub is None else ub)
        self.integer.append(integer)

    def vars(
        self,
        block: pyo.Block,
        name: str,
        keys: list,
        doc: str,
        bounds=(0, 1),
        binary: bool = False,
    ) -> dict:
        """Add variable family `name` over `keys` to `block` (0/1 integers when `binary`);
        returns {key: var}."""
        if not keys:
            return {}
        dimen = len(keys[0]) if isinstance(keys[0], tuple) else 1
        index = pyo.Set(initialize=keys, dimen=dimen)
        block.add_component(f"{name}_index", index)
        domain = pyo.Binary if binary else pyo.Reals
        var = pyo.Var(index, doc=doc, bounds=bounds, domain=domain)
        block.add_component(name, var)
        out = {key: var[key] for key in keys}
        for v in out.values():
            self.column(v, *bounds, integer=binary)
        return out

    def constraints(self, block: pyo.Block, name: str, rows: dict, doc: str) -> None:
        """Add constraint family `name` to `block`: rows maps an index to (lb, terms, ub)."""
        if not rows:
            return
        keys = list(rows)
        index = pyo.Set(initialize=keys, dimen=len(keys[0]) if isinstance(keys[0], tuple) else 1)
        block.add_component(f"{name}_index", index)

        def rule(_b, *i):
            lb, terms, ub = rows[i if len(i) > 1 else i[0]]
            return (lb, linear(terms), ub)

        block.add_component(name, pyo.Constraint(index, rule=rule, doc=doc))
        self.rows.extend(rows.values())

    def standard_form(self, objective: Terms, offset: float) -> StandardForm:
        col_of = self.col_of
        starts, index, value, lbs, ubs = [0], [], [], [], []
        for lb, terms, ub in self.rows:
            for coef, var in terms:
                if coef != 0.0:
                    index.append(col_of[id(var)])
                    value.append(coef)
            starts.append(len(index))
            lbs.append(-INF if lb is None else lb)
            ubs.append(INF if ub is None else ub)
        c = np.zeros(len(self.columns))
        for coef, var in objective:
            c[col_of[id(var)]] += coef
        A_start, A_index, A_value = merge_duplicates(
            np.array(starts, dtype=np.int64),
            np.array(index, dtype=np.int64),
            np.array(value, dtype=float),
        )
        return StandardForm(
            c=c,
            offset=float(offset),
            A_start=A_start,
            A_index=A_index,
            A_value=A_value,
            row_lb=np.array(lbs, dtype=float),
            row_ub=np.array(ubs, dtype=float),
            col_lb=np.array(self.col_lb, dtype=float),
            col_ub=np.array(self.col_ub, dtype=float),
            integer=np.array(self.integer, dtype=bool),
            columns=self.columns,
        )


@dataclass
class Milp:
    """A built model with the maps needed to read a solution back."""

    instance: Instance
    tables: Tables
    model: pyo.ConcreteModel
    x: dict[tuple[int, int], object]
    encoding: str  # "flow" or "pair" for single-consumer transfers
    matrix: StandardForm = field(repr=False)
    form: dict[tuple[int, int], object] = field(default_factory=dict)  # e[t,j], j >= 1


class _Builder:
    def __init__(self, inst: Instance, cuts: bool = True) -> None:
        self.inst = inst
        self.cuts = cuts  # the valid inequalities of `cuts` (§9); off only to measure them
        self.tb = tables(inst)
        kind = inst.objective.kind
        self.need_energy = kind == "energy" or (
            kind == "weighted" and inst.objective.energy_weight > 0
        )
        self.need_loads = kind == "throughput"
        # Flows price a path by its latency alone: usable when nothing else is priced per route.
        self.encoding = "pair" if self.need_energy or self.need_loads else "flow"
        self.m = pyo.ConcreteModel(name=inst.name or "splitplan")
        self.rec = _Recorder()
        self.L: Terms = []  # latency, §4
        self.E: Terms = []  # device energy, §5
        self.A: Terms = []  # accuracy lost to encodings, §10
        self.form: dict[tuple[int, int], object] = {}
        self.node_load: dict[int, Terms] = defaultdict(list)  # §7
        self.arc_load: dict[int, Terms] = defaultdict(list)  # §7
        self.const_L = self.const_E = 0.0  # transfers every plan makes
        self.const_load: dict[int, float] = defaultdict(float)
        self._route_cache: dict[tuple[float, int, int], tuple[float, list[int]]] = {}
        self._into: dict[int, list[int]] = defaultdict(list)
        self._out_of: dict[int, list[int]] = defaultdict(list)
        for a, arc in enumerate(self.tb.arcs):
            self._into[arc.head].append(a)
            self._out_of[arc.tail].append(a)

    # ------------------------------------------------------------------ helpers

    def route_cost(self, size: float, p: int, q: int) -> tuple[float, list[int]]:
        """(energy in J, arc indices) of the fixed route p -> q of a tensor of `size` bytes."""
        key = (size, p, q)
        hit = self._route_cache.get(key)
        if hit is None:
            hit = (self.tb.route_energy_j(size, p, q), self.tb.route_arcs(size, p, q))
            self._route_cache[key] = hit
        return hit

    def send(self, size: float, p: int, q: int, var: object | None, dist) -> None:
        """Charge a transfer p -> q of `size` bytes on its fixed route, made when `var` is 1
        (always when `var` is None)."""
        if p == q:
            return
        lat = float(dist[p, q])
        energy, arcs = (
            self.route_cost(size, p, q) if self.need_energy or self.need_loads else (0, [])
        )
        loads = [(a, size / self.tb.arcs[a].bandwidth_bytes_per_s) for a in arcs]
        if var is None:
            self.const_L += lat
            self.const_E += energy
            for a, load in loads:
                self.const_load[a] += load
            return
        self.L.append((lat, var))
        if self.need_energy:
            self.E.append((energy, var))
        for a, load in loads:
            self.arc_load[a].append((load, var))

    # ------------------------------------------------------------------ blocks

    def build(self) -> Milp:
        m, tb = self.m, self.tb
        m.V = pyo.Set(initialize=range(len(tb.layers)), doc="layers, in topological order")
        m.K = pyo.Set(initialize=range(len(tb.nodes)), doc="compute nodes")
        m.A = pyo.Set(initialize=range(len(tb.arcs)), doc="arcs: one direction of a link")
        pairs = [(v, k) for v in range(len(tb.layers)) for k in tb.allowed[v]]
        m.VK = pyo.Set(initialize=pairs, dimen=2, doc="(layer, node) pairs a plan may use")
        m.x = pyo.Var(m.VK, domain=pyo.Binary, doc="x[v,k] = 1 iff layer v runs on node k")
        self.x = {vk: m.x[vk] for vk in pairs}
        for var in self.x.values():
            self.rec.column(var, 0, 1, integer=True)
        self.assignment_block()
        self.compute_terms()
        self.transfer_block()
        self.encoding_block()
        self.memory_block()
        self.latency_limit_block()
        self.accuracy_limit_block()
        self.objective()
        return Milp(self.inst, tb, m, self.x, self.encoding, self.matrix, self.form)

    def assignment_block(self) -> None:
        """§1: every layer runs on exactly one node (pins and unusable nodes are left out of VK)."""
        self.m.assign = b = pyo.Block()
        rows = {
            v: (1.0, [(1.0, self.x[v, k]) for k in ks], 1.0) for v, ks in enumerate(self.tb.allowed)
        }
        self.rec.constraints(b, "one_node", rows, "sum_k x[v,k] = 1")

    def compute_terms(self) -> None:
        """§1, §4, §5, §7: compute time, energy and node load of x[v,k]."""
        for (v, k), var in self.x.items():
            self.compute_on(k, float(self.tb.compute_s[v, k]), var)

    def transfer_block(self) -> None:
        """§2, §3: each tensor reaches every node that runs one of its consumers (and the sink).

        Three encodings, each exact and as tight as we know for its case:
        - a producer or consumer fixed in place: the transfer is linear in x;
        - one consumer: a transportation problem z[t,p,q] with marginals x[producer,.] and
          x[consumer,.] (pair), or, when only latency is priced, a unit flow f[t,a] on the arcs
          whose cheapest path is the cheapest route (flow; far fewer variables);
        - several consumers: r[t,q] >= x[c,q] marks the nodes that need the tensor and
          y[t,p,q] <= x[producer,p], sum_p y[t,p,q] = r[t,q] picks where it comes from.
        """
        m, tb = self.m, self.tb
        m.transfer = b = pyo.Block()
        reach, x = tb.reach, self.x
        z_keys, f_keys, r_keys, y_keys = [], [], [], []
        fixed, single, multi = [], [], []
        for ti, t in enumerate(tb.tensors):
            if not t.consumers and not t.to_sink:
                continue  # a result that goes nowhere (no sink, or a dead branch)
            if t.encodings:
                continue  # encoding_block
            producers = [tb.source] if t.producer < 0 else tb.allowed[t.producer]
            if len(producers) == 1 or not t.consumers:
                fixed.append(ti)
            elif len(t.consumers) == 1 and not t.to_sink:
                single.append(ti)
                (c,) = t.consumers
                if self.encoding == "flow":
                    f_keys += [(ti, a) for a in range(len(tb.arcs))]
                else:
                    z_keys += [(ti, p, q) for p in producers for q in tb.allowed[c] if reach[p, q]]
                continue
            else:
                multi.append(ti)
                y_keys += [(ti, p, q) for p in producers for q in self._targets(t) if reach[p, q]]
            if len(t.consumers) > 1 or (ti in multi):
                # Where the tensor is needed; the sink always gets it, so it needs no r.
                skip = {producers[0]} if len(producers) == 1 else set()
                skip |= {tb.sink} if t.to_sink else set()
                r_keys += [(ti, q) for q in self._targets(t, sink=False) if q not in skip]
        z = self.rec.vars(b, "z", z_keys, "z[t,p,q]: tensor t goes from p to q")
        f = self.rec.vars(b, "f", f_keys, "f[t,a]: flow of tensor t on arc a")
        r = self.rec.vars(b, "r", r_keys, "r[t,q]: some consumer of t runs on q")
        y = self.rec.vars(b, "y", y_keys, "y[t,p,q]: t is sent from p to q")
        g_keys = []
        if self.encoding == "flow":
            g_keys = [
                (ti, c, a)
                for ti in multi
                for c in tb.tensors[ti].consumers
                for a in range(len(tb.arcs))
            ]
        g = self.rec.vars(
            b, "g", g_keys, "g[t,c,a]: flow of t to consumer c on arc a (a cut)", bounds=(0, 1)
        )
        r_of: dict[int, list[int]] = defaultdict(list)
        for ti, q in r:
            r_of[ti].append(q)
        z_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for ti, p, q in z:
            z_of[ti].append((p, q))
        y_of: dict[int, list[tuple[int, int]]] = defaultdict(list)
        for ti, p, q in y:
            y_of[ti].append((p, q))

        rows_out, rows_in, rows_bal, rows_pick, rows_from = {}, {}, {}, {}, {}
        rows_gbal, rows_gcut = {}, {}
        for ti in fixed:
            t = tb.tensors[ti]
            size = t.size_bytes
            dist, _ = tb.shortest_paths(size)
            if t.producer >= 0 and len(tb.allowed[t.producer]) > 1:  # output only to the sink
                for p in tb.allowed[t.producer]:
                    self.send(size, p, tb.sink, x[t.producer, p], dist)
                continue
            p = tb.source if t.producer < 0 else tb.allowed[t.producer][0]
            if t.to_sink:
                self.send(size, p, tb.sink, None, dist)
            if len(t.consumers) == 1:
                (c,) = t.consumers
                for q in tb.allowed[c]:
                    if not (t.to_sink and q == tb.sink):
                        self.send(size, p, q, x[c, q], dist)
            for q in r_of[ti]:
                self.send(size, p, q, r[ti, q], dist)
        for ti in single:
            t = tb.tensors[ti]
            (c,) = t.consumers
            v = t.producer
            if self.encoding == "flow":
                arcs = {a: f[ti, a] for a in range(len(tb.arcs))}
                for k, row in self._unit_flow(v, c, arcs):
                    rows_bal[ti, k] = row
                for a, arc in enumerate(tb.arcs):
                    self.L.append((arc.hop_time_s(t.size_bytes), f[ti, a]))
                continue
            dist, _ = tb.shortest_paths(t.size_bytes)
            out: dict[int, Terms] = defaultdict(list)
            inn: dict[int, Terms] = defaultdict(list)
            for p, q in z_of[ti]:
                out[p].append((1.0, z[ti, p, q]))
                inn[q].append((1.0, z[ti, p, q]))
                self.send(t.size_bytes, p, q, z[ti, p, q], dist)
            for p in tb.allowed[v]:
                rows_out[ti, p] = (0.0, [*out[p], (-1.0, x[v, p])], 0.0)
            for q in tb.allowed[c]:
                rows_in[ti, q] = (0.0, [*inn[q], (-1.0, x[c, q])], 0.0)
        rows_need = self._need_rows(r)
        for ti in multi:
            t = tb.tensors[ti]
            dist, _ = tb.shortest_paths(t.size_bytes)
            into: dict[int, Terms] = defaultdict(list)
            for p, q in y_of[ti]:
                var = y[ti, p, q]
                into[q].append((1.0, var))
                rows_from[ti, p, q] = (None, [(1.0, var), (-1.0, x[t.producer, p])], 0.0)
                self.send(t.size_bytes, p, q, var, dist)
            for q, terms in into.items():
                if t.to_sink and q == tb.sink:
                    rows_pick[ti, q] = (1.0, terms, 1.0)
                elif (ti, q) in r:
                    rows_pick[ti, q] = (0.0, [*terms, (-1.0, r[ti, q])], 0.0)
            if not g:
                continue
            # The transfers of t cost at least its cheapest route to each one consumer.
            cost = [(float(dist[p, q]), y[ti, p, q]) for p, q in y_of[ti] if p != q]
            for c in t.consumers:
                arcs = {a: g[ti, c, a] for a in range(len(tb.arcs))}
                for k, row in self._unit_flow(t.producer, c, arcs):
                    rows_gbal[ti, c, k] = row
                flow_cost = [
                    (-arc.hop_time_s(t.size_bytes), arcs[a]) for a, arc in enumerate(tb.arcs)
                ]
                rows_gcut[ti, c] = (0.0, [*cost, *flow_cost], None)
        self.rec.constraints(b, "pair_out", rows_out, "sum_q z[t,p,q] = x[producer(t),p]")
        self.rec.constraints(b, "pair_in", rows_in, "sum_p z[t,p,q] = x[consumer(t),q]")
        self.rec.constraints(
            b, "flow_balance", rows_bal, "x[producer,k] - x[consumer,k] + inflow - outflow = 0"
        )
        self.rec.constraints(b, "need", rows_need, "r[t,q] >= x[c,q] for each consumer c of t")
        self.rec.constraints(b, "pick", rows_pick, "sum_p y[t,p,q] = r[t,q] (= 1 at the sink)")
        self.rec.constraints(b, "pick_from", rows_from, "y[t,p,q] <= x[producer(t),p]")
        self.rec.constraints(
            b, "cut_balance", rows_gbal, "x[producer,k] - x[c,k] + inflow - outflow = 0"
        )
        self.rec.constraints(b, "cut", rows_gcut, "sum D(p,q) y[t,p,q] >= sum_a h_a(B_t) g[t,c,a]")

    def compute_on(self, k: int, secs: float, var: object) -> None:
        """Charge `secs` of compute on node k, spent when `var` is 1 (§1, §4, §5, §7)."""
        if secs == 0.0:
            return
        self.L.append((secs, var))
        if self.need_energy:
            self.E.append((secs * float(self.tb.compute_power_w[k]), var))
        if self.need_loads:
            self.node_load[k].append((secs, var))

    def encoding_block(self) -> None:
        """§10: tensors with encodings cross the network in one chosen form.

        e[t,j] ∈ {0,1} picks t's form (j = 0 raw), Σ_j e[t,j] = 1. As for several consumers,
        r[t,q] ≥ x[c,q] marks where t is needed; it is kept on its node (u[t,0,q,q] ≤ x[v,q]) or
        sent from p in form j, u[t,j,p,q] with Σ_{j,p} u[t,j,p,q] = r[t,q] (= 1 at the sink),
        Σ_j u[t,j,p,q] ≤ x[v,p] and Σ_p u[t,j,p,q] ≤ e[t,j]. The sender encodes once:
        s[t,j,p] ≥ u[t,j,p,q]. Costs: D_{B_j}(p,q) and the decoder's time at q on u, the encoder's
        time at p and the accuracy loss on s.
        """
        m, tb, x = self.m, self.tb, self.x
        m.encode = b = pyo.Block()
        todo = [ti for ti, t in enumerate(tb.tensors) if t.encodings and (t.consumers or t.to_sink)]
        e_keys, r_keys, u_keys, s_keys = [], [], [], []
        for ti in todo:
            t = tb.tensors[ti]
            producers = [tb.source] if t.producer < 0 else tb.allowed[t.producer]
            e_keys += [(ti, j) for j in range(len(t.encodings) + 1)]
            r_keys += [
                (ti, q) for q in self._targets(t, sink=False) if not (t.to_sink and q == tb.sink)
            ]
            for q in self._targets(t):
                if q in producers:
                    u_keys.append((ti, 0, q, q))
                for p in producers:
                    if p != q and tb.reach[p, q]:
                        u_keys += [(ti, j, p, q) for j in range(len(t.encodings) + 1)]
            s_keys += [(ti, j, p) for j in range(1, len(t.encodings) + 1) for p in producers]
        if not todo:
            return
        e = self.rec.vars(
            b, "e", e_keys, "e[t,j] = 1 iff tensor t crosses the network in form j", binary=True
        )
        r = self.rec.vars(b, "r", r_keys, "r[t,q]: some consumer of t runs on q")
        u = self.rec.vars(b, "u", u_keys, "u[t,j,p,q]: t is sent from p to q in form j")
        s_var = self.rec.vars(b, "s", s_keys, "s[t,j,p]: p encodes t in form j")
        self.form = {(ti, j): var for (ti, j), var in e.items() if j > 0}

        rows_one, rows_pick, rows_from, rows_form, rows_enc = {}, {}, {}, {}, {}
        for ti in todo:
            t = tb.tensors[ti]
            rows_one[ti] = (1.0, [(1.0, e[ti, j]) for j in range(len(t.encodings) + 1)], 1.0)
        rows_need = self._need_rows(r)
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
            self.send(size, p, q, var, tb.shortest_paths(size)[0])
            if form is not None:
                self.compute_on(q, float(form.decode_s[q]), var)
                rows_enc[ti, j, p, q] = (0.0, [(1.0, s_var[ti, j, p]), (-1.0, var)], None)
        for ti, q in r:  # every node that may need t gets a row, even one nothing can reach
            rows_pick[ti, q] = (0.0, [*into[ti, q], (-1.0, r[ti, q])], 0.0)
        for ti in todo:
            if tb.tensors[ti].to_sink:
                rows_pick[ti, tb.sink] = (1.0, into[ti, tb.sink], 1.0)
        for (ti, p, q), terms in pair.items():
            v = tb.tensors[ti].producer
            if v >= 0:  # the input is always at the source
                rows_from[ti, p, q] = (None, [*terms, (-1.0, x[v, p])], 0.0)
        for (ti, j, q), terms in in_form.items():
            rows_form[ti, j, q] = (None, [*terms, (-1.0, e[ti, j])], 0.0)
        for (ti, j, p), var in s_var.items():
            form = tb.tensors[ti].encodings[j - 1]
            self.compute_on(p, float(form.encode_s[p]), var)
            if form.accuracy_loss:
                self.A.append((form.accuracy_loss, var))
        self.rec.constraints(b, "one_form", rows_one, "sum_j e[t,j] = 1")
        self.rec.constraints(b, "need", rows_need, "r[t,q] >= x[c,q] for each consumer c of t")
        self.rec.constraints(
            b, "pick", rows_pick, "sum_{j,p} u[t,j,p,q] = r[t,q] (= 1 at the sink)"
        )
        self.rec.constraints(b, "pick_from", rows_from, "sum_j u[t,j,p,q] <= x[producer(t),p]")
        self.rec.constraints(b, "in_form", rows_form, "sum_p u[t,j,p,q] <= e[t,j]")
        self.rec.constraints(b, "encode", rows_enc, "s[t,j,p] >= u[t,j,p,q]")

    def _need_rows(self, r: dict) -> dict:
        """Rows r[t,q] >= x[c,q] for each consumer c of t that may run on q."""
        rows = {}
        for (ti, q), var in r.items():
            for c in self.tb.tensors[ti].consumers:
                if (c, q) in self.x:
                    rows[ti, c, q] = (0.0, [(1.0, var), (-1.0, self.x[c, q])], None)
        return rows

    def _unit_flow(self, v: int, c: int, arcs: dict[int, object]):
        """Rows (k, (0, terms, 0)) of a unit flow on `arcs` from where v runs to where c runs."""
        x = self.x
        for k in range(len(self.tb.nodes)):
            terms = [(1.0, x[v, k])] if (v, k) in x else []
            if (c, k) in x:
                terms.append((-1.0, x[c, k]))
            terms += [(1.0, arcs[a]) for a in self._into[k]]
            terms += [(-1.0, arcs[a]) for a in self._out_of[k]]
            yield k, (0.0, terms, 0.0)

    def _targets(self, t: Tensor, sink: bool = True) -> list[int]:
        """Nodes that may need tensor t: where its consumers may run, and the sink."""
        nodes = {q for c in t.consumers for q in self.tb.allowed[c]}
        if sink and t.to_sink:
            nodes.add(self.tb.sink)
        return sorted(nodes)

    def memory_block(self) -> None:
        """§6: sum of param_bytes + the largest working set <= memory_bytes, per node."""
        m, tb = self.m, self.tb
        m.memory = b = pyo.Block()
        on: dict[int, list[int]] = defaultdict(list)
        for v, k in self.x:
            on[k].append(v)
        limited = [k for k in on if tb.memory_may_bind(k)]
        # Rows are divided by memory_bytes[k] (M[k] is a fraction of it): byte counts of 1e9
        # beside 0/1 variables would strain the solvers' tolerances.
        M = self.rec.vars(
            b, "M", limited, "M[k]: largest working set on node k / memory_bytes[k]", bounds=(0, 1)
        )
        rows_cap, rows_work = {}, {}
        for k in limited:
            cap = float(tb.memory_bytes[k])
            rows_cap[k] = (
                None,
                [*((float(tb.param_bytes[v]) / cap, self.x[v, k]) for v in on[k]), (1.0, M[k])],
                1.0,
            )
            for v in on[k]:
                rows_work[v, k] = (
                    0.0,
                    [(1.0, M[k]), (-float(tb.work_bytes[v]) / cap, self.x[v, k])],
                    None,
                )
        self.rec.constraints(b, "capacity", rows_cap, "sum_v param[v] x[v,k] / mem[k] + M[k] <= 1")
        self.rec.constraints(b, "working_set", rows_work, "M[k] >= work[v] x[v,k] / mem[k]")

    def accuracy_limit_block(self) -> None:
        """§10 with constraints.max_accuracy_loss: the accuracy lost to encodings <= the limit."""
        limit = self.inst.constraints.max_accuracy_loss
        self.m.accuracy_limit = b = pyo.Block()
        if limit is not None and self.A:
            rows = {0: (None, self.A, float(limit))}
            self.rec.constraints(b, "max_accuracy_loss", rows, "accuracy loss <= max_accuracy_loss")

    def latency_limit_block(self) -> None:
        """§4 with constraints.max_latency_s: latency <= the limit."""
        limit = self.inst.constraints.max_latency_s
        self.m.latency_limit = b = pyo.Block()
        if limit is not None:
            rows = {0: (None, self.L, float(limit) - self.const_L)}
            self.rec.constraints(b, "max_latency", rows, "latency <= max_latency_s")

    def objective(self) -> None:
        """§4, §5, §7: the objective of the instance."""
        m, o = self.m, self.inst.objective
        cl, ce = self.const_L, self.const_E
        if o.kind == "latency":
            terms, offset = self.L, cl
        elif o.kind == "energy":
            terms, offset = self.E, ce
        elif o.kind == "weighted":
            terms = [(o.latency_weight * c, v) for c, v in self.L]
            terms += [(o.energy_weight * c, v) for c, v in self.E]
            terms += [(o.accuracy_weight * c, v) for c, v in self.A]
            offset = o.latency_weight * cl + o.energy_weight * ce
        else:
            m.throughput = b = pyo.Block()
            b.P = pyo.Var(bounds=(0, None), doc="P: the period, s")
            self.rec.column(b.P, 0, None)
            node_rows = {
                k: (0.0, [(1.0, b.P), *((-c, v) for c, v in terms)], None)
                for k, terms in self.node_load.items()
            }
            arc_rows = {}
            for a in set(self.arc_load) | set(self.const_load):
                terms = [(1.0, b.P), *((-c, v) for c, v in self.arc_load.get(a, []))]
                arc_rows[a] = (self.const_load.get(a, 0.0), terms, None)
            self.rec.constraints(b, "node_period", node_rows, "P >= sum_v compute[v,k] x[v,k]")
            self.rec.constraints(
                b, "arc_period", arc_rows, "P >= sum over tensors routed on arc a of B / bandwidth"
            )
            if self.cuts:
                add_cuts(self, b, b.P)
            terms, offset = [(1.0, b.P)], 0.0
        m.objective = pyo.Objective(expr=linear(terms, offset), sense=pyo.minimize)
        self.matrix = self.rec.standard_form(terms, offset)


def build_milp(inst: Instance, cuts: bool = True) -> Milp:
    """Build the Pyomo model of an instance (see models/formulation.md); `cuts=False` leaves out
    the valid inequalities of `splitplan.cuts` (to measure what they bring)."""
    return _Builder(inst, cuts).build()
