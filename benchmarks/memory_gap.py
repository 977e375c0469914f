"""Why the LP relaxation is weak on memory-limited DAGs (issue 13, dual side): a diagnosis.

    python benchmarks/memory_gap.py            # the two issue-13 rows (about 10 min on 2 cores)
    python benchmarks/memory_gap.py --quick    # a 30 x 4 instance (seconds)
    python benchmarks/memory_gap.py --node-contents --time-limit 900   # the node-contents bound
    python benchmarks/memory_gap.py --prove --time-limit 3600   # HiGHS alone, long: the optimum

For the `latency DAG 100x8 mesh memory` and `weighted DAG 300x8 mesh memory` families of
`benchmarks/bounds.py`, it measures where the root LP's value and the best known plan's cost go,
and what three relaxations that are tighter in one respect each give (all are lower bounds on the
optimum; models/formulation.md §9, "Tried and left out", reads the numbers):

- `split`: the objective of the root LP and of the best plan, split into compute (Σ c x, the
  weighted cost of §8) and transfers (the rest);
- `compute_only`: memory and compute alone, no transfers (a generalised assignment problem): its
  LP and its MIP optimum. Their difference is what the integrality of the memory knapsacks can
  add to the bound at most, cover cuts included;
- `no_skips`: the same instance with its skip connections removed (each layer keeps its first
  input: a chain): root LP, the best plan HiGHS finds in the time limit, and the root LP with
  the run formulation;
- `runs`: the model with the run formulation below added, root LP. Run (k, i, j) says node k
  runs the backbone layers i..j (layer i's first input is layer i-1) as one maximal run; a run
  exists only when its layers are allowed on k and fit (Σ π + the largest working set ≤ mem_k).
  x[v,k] = Σ of the runs on k that hold v; w[i,k,k'] (k ≠ k') moves the backbone from k to k'
  between layers i-1 and i, with Σ_k' w[i,k,k'] = Σ runs on k ending at i-1 and Σ_k w[i,k,k'] =
  Σ runs on k' starting at i; and the model's own cost of tensor i-1 ≥ Σ D(k,k') w[i,k,k'].
  Every plan satisfies it (its maximal runs, the transitions between them, and its transfer of
  layer i-1's output to layer i costs at least that route; tests/test_memory_gap.py checks it
  against brute force). The relaxation may still keep a fraction of every layer of a window
  heavier than node k's memory on k, but now pays for moving that fraction off k and back.

- `node_contents` (`--node-contents`, its own file `memory_gap_node_contents.json`): the
  model's LP with a Dantzig-Wolfe master over what each node runs (`NodeContents`), solved by
  column generation within the time limit; its Lagrangian bound holds at every iteration.

- `prove` (`--prove`, its own file `memory_gap_prove.json`): HiGHS alone on the full model, one
  thread, for a long time: where it proves optimality, the optimum that the other measures are
  read against, and the times its better plans came.

The best plan is `splitplan.pipeline.best_start` (5 s at most), improved by HiGHS from that start
and then by `pipeline.local_search`. Timings on a shared machine are noisy; the load averages are
recorded. Results: benchmarks/memory_gap.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import sys
import time
from pathlib import Path

import highspy
import numpy as np
import scipy.sparse as sp

import splitplan
from splitplan.baselines import pair_costs
from splitplan.cost import tables
from splitplan.generate import random_instance
from splitplan.instance import Instance
from splitplan.milp import Milp, StandardForm, build_milp
from splitplan.solvers import solve_standard_form

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

FAMILIES = [
    (
        "latency DAG 100x8 mesh memory",
        lambda: random_instance(100, 8, topology="mesh", skip_prob=0.3, memory_fraction=0.2),
    ),
    (
        "weighted DAG 300x8 mesh memory",
        lambda: random_instance(
            300, 8, topology="mesh", skip_prob=0.2, memory_fraction=0.2, objective="weighted"
        ),
    ),
]
QUICK = [
    (
        "latency DAG 30x4 mesh memory",
        lambda: random_instance(30, 4, topology="mesh", skip_prob=0.3, memory_fraction=0.3),
    ),
]


# --------------------------------------------------------------------------- the run formulation


def _transfer_costs(milp: Milp) -> dict[int, list[tuple[int, float]]]:
    """{tensor: [(column, objective coefficient)]} of the transfer columns priced per tensor
    (f, z, y: §9); tensors fixed in place or encoded have none and get no cost row."""
    sf, out = milp.matrix, {}
    for fam in milp.families:
        if fam.kind == "var" and fam.block == "transfer" and fam.name in ("f", "z", "y"):
            for j, key in enumerate(fam.keys, fam.start):
                if sf.c[j]:
                    out.setdefault(key[0], []).append((j, float(sf.c[j])))
    return out


def with_runs(milp: Milp) -> tuple[StandardForm, int]:
    """The model's matrix with the run formulation (module docstring) added: (matrix, number of
    runs). Needs a backbone: layer i's first input is layer i-1, for every i ≥ 1."""
    inst, tb, sf = milp.instance, milp.tables, milp.matrix
    V, K = len(tb.layers), len(tb.nodes)
    for i in range(1, V):
        if inst.dnn.layers[i].inputs[0] != tb.layers[i - 1]:
            raise ValueError(f"layer {tb.layers[i]}'s first input is not {tb.layers[i - 1]}")
    weights = inst.objective.weights() if inst.objective.additive else None
    n0 = len(sf.c)
    n_new = 0
    rows: list[tuple[float, list[tuple[int, float]], float]] = []

    def column() -> int:
        nonlocal n_new
        n_new += 1
        return n0 + n_new - 1

    runs: dict[tuple[int, int, int], int] = {}
    starting: dict[tuple[int, int], list[int]] = {}
    ending: dict[tuple[int, int], list[int]] = {}
    for k in range(K):
        cap = tb.memory_bytes[k]
        for i in range(V):
            params, work = 0.0, 0.0
            for j in range(i, V):
                if k not in tb.allowed[j]:
                    break
                params += float(tb.param_bytes[j])
                work = max(work, float(tb.work_bytes[j]))
                if cap is not None and params + work > cap:
                    break
                runs[k, i, j] = col = column()
                starting.setdefault((i, k), []).append(col)
                ending.setdefault((j, k), []).append(col)
    holding: dict[tuple[int, int], list[int]] = {}
    for (k, i, j), col in runs.items():
        for v in range(i, j + 1):
            holding.setdefault((v, k), []).append(col)
    for (v, k), xcol in milp.x.items():  # x[v,k] = the runs on k that hold v
        rows.append((0.0, [(xcol, 1.0), *((c, -1.0) for c in holding.get((v, k), []))], 0.0))
    priced = _transfer_costs(milp)
    for i in range(1, V):
        ti = tb.tensor_index[tb.layers[i - 1]]
        size = tb.tensors[ti].size_bytes
        dist, _ = tb.shortest_paths(size)
        w = {
            (k, q): column()
            for k in range(K)
            for q in range(K)
            if k != q and (i - 1, k) in ending and (i, q) in starting and np.isfinite(dist[k, q])
        }
        for k in range(K):
            if (i - 1, k) in ending:
                out = [(w[k, q], -1.0) for q in range(K) if (k, q) in w]
                rows.append((0.0, [*((c, 1.0) for c in ending[i - 1, k]), *out], 0.0))
            if (i, k) in starting:
                into = [(w[p, k], -1.0) for p in range(K) if (p, k) in w]
                rows.append((0.0, [*((c, 1.0) for c in starting[i, k]), *into], 0.0))
        if weights is None or ti not in priced:
            continue
        terms = list(priced[ti])
        for (k, q), col in w.items():
            cost = weights.latency * float(dist[k, q])
            if weights.energy:
                cost += weights.energy * tb.route_energy_j(size, k, q)
            terms.append((col, -cost))
        rows.append((0.0, terms, np.inf))
    n1 = n0 + n_new
    A = sp.csr_matrix((sf.A_value, sf.A_index, sf.A_start), shape=(len(sf.row_lb), n0))
    data = [v for _, terms, _ in rows for _, v in terms]
    index = [c for _, terms, _ in rows for c, _ in terms]
    starts = np.cumsum([0, *(len(terms) for _, terms, _ in rows)])
    B = sp.csr_matrix((data, index, starts), shape=(len(rows), n1))
    A2 = sp.vstack([sp.hstack([A, sp.csr_matrix((A.shape[0], n_new))]), B]).tocsr()
    A2.sort_indices()
    extended = dataclasses.replace(
        sf,
        c=np.concatenate([sf.c, np.zeros(n_new)]),
        col_lb=np.concatenate([sf.col_lb, np.zeros(n_new)]),
        col_ub=np.concatenate([sf.col_ub, np.ones(n_new)]),
        integer=np.concatenate([sf.integer, np.zeros(n_new, dtype=bool)]),
        row_lb=np.concatenate([sf.row_lb, [r[0] for r in rows]]),
        row_ub=np.concatenate([sf.row_ub, [r[2] for r in rows]]),
        A_start=A2.indptr.astype(np.int64),
        A_index=A2.indices.astype(np.int64),
        A_value=A2.data.astype(float),
    )
    return extended, len(runs)


# --------------------------------------------------------------------------- node contents


class NodeContents:
    """The model's LP with a Dantzig-Wolfe master over each node's contents, by column generation.

    A column (k, S) says node k runs exactly the layers S, which fit its memory (Σ π + the
    largest working set ≤ mem_k); λ[k,S] ≥ 0 with Σ_S λ[k,S] = 1 for every node (the empty set
    included) and x[v,k] = Σ_{S ∋ v} λ[k,S]. Two rows per tensor t (made by layer u, read by the
    layers C, and by the sink d when it feeds it) tie the model's own cost of t (its priced
    transfer columns) to the sets:
    - `leaves`: cost_t ≥ Σ_k Σ_S a_t(k) λ[k,S] over the sets holding u and not all of C (or
      any set holding u on k ≠ d when t feeds the sink), with a_t(k) the cheapest send from k to
      a node some reader of t may run on (W_t(k, d) for the sink);
    - `arrives`: cost_t ≥ Σ_k Σ_S b_t(k) λ[k,S] over the sets holding some reader of t and not
      u (on d: every set without u when t feeds the sink), b_t(k) the cheapest send to k from a
      node u may run on.
    Both hold for every plan (its node contents are sets of this kind; t leaves u's node when a
    reader is elsewhere, and reaches each other node holding a reader once, at its own cost), so
    the master's LP is a relaxation and its value a lower bound on the optimum. Unlike the
    model's LP, it cannot keep a fraction of every layer on a node without paying for the
    borders of the sets that fraction is made of.

    The master is solved by column generation: the pricing problem of node k is a MILP over the
    layers it may run (a knapsack with the memory row, and an indicator per tensor row with a
    positive dual); every better set that MILP meets on its way becomes a column. The master's
    duals come from the interior point method without crossover (central duals: on the 30 x 4
    quick instance 48 rounds instead of 71 with the simplex's vertex duals), smoothed towards
    those of the best bound so far (Wentges, α = 0.5). The bound is Lagrangian (`lagrangian`),
    valid for any multipliers, so it holds at every round. Additive objectives without
    encodings only.
    """

    def __init__(self, milp: Milp) -> None:
        inst, tb, sf = milp.instance, milp.tables, milp.matrix
        if not inst.objective.additive or tb.has_encodings:
            raise ValueError("node contents: additive objectives without encodings only")
        self.milp, self.tb = milp, tb
        weights = inst.objective.weights()
        pair = pair_costs(tb, weights.latency, weights.energy)
        V, K = len(tb.layers), len(tb.nodes)
        self.V, self.K = V, K
        self.runs_on = [[v for v in range(V) if k in tb.allowed[v]] for k in range(K)]
        d = tb.sink
        # (t, u, readers, feeds the sink, a_t, b_t, the model's cost terms of t)
        self.tensors: list[tuple[int, int, list[int], bool, np.ndarray, np.ndarray, list]] = []
        for ti, terms in _transfer_costs(milp).items():
            t = tb.tensors[ti]
            if t.producer < 0:
                continue
            u, readers = t.producer, list(t.consumers)
            W = pair(t.size_bytes)
            targets = {q for c in readers for q in tb.allowed[c]} | ({d} if t.to_sink else set())
            a, b = np.zeros(K), np.zeros(K)
            for k in range(K):
                if t.to_sink and k != d:
                    a[k] = W[k, d]
                else:
                    a[k] = min((W[k, q] for q in targets if q != k), default=0.0)
                b[k] = min((W[p, k] for p in tb.allowed[u] if p != k), default=0.0)
            a[~np.isfinite(a)] = 0.0
            b[~np.isfinite(b)] = 0.0
            self.tensors.append((ti, u, readers, t.to_sink, a, b, terms))
        m0, n0 = len(sf.row_lb), len(sf.c)
        rows: list[tuple[float, list[tuple[int, float]], float]] = []
        self.link: dict[tuple[int, int], int] = {}
        for (v, k), col in milp.x.items():
            self.link[v, k] = m0 + len(rows)
            rows.append((0.0, [(col, 1.0)], 0.0))
        self.conv = {}
        for k in range(K):
            self.conv[k] = m0 + len(rows)
            rows.append((1.0, [], 1.0))
        self.leaves, self.arrives = {}, {}
        for ti, *_, terms in self.tensors:
            self.leaves[ti] = m0 + len(rows)
            rows.append((0.0, terms, np.inf))
            self.arrives[ti] = m0 + len(rows)
            rows.append((0.0, terms, np.inf))
        A = sp.csr_matrix((sf.A_value, sf.A_index, sf.A_start), shape=(m0, n0))
        index = [c for _, terms, _ in rows for c, _ in terms]
        value = [x for _, terms, _ in rows for _, x in terms]
        starts = np.cumsum([0, *(len(terms) for _, terms, _ in rows)])
        self.A = sp.vstack([A, sp.csr_matrix((value, index, starts), shape=(len(rows), n0))])
        self.A = self.A.tocsr()
        self.row_lb = np.concatenate([sf.row_lb, [r[0] for r in rows]])
        self.row_ub = np.concatenate([sf.row_ub, [r[2] for r in rows]])
        h = self.h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        lp = highspy.HighsLp()
        lp.num_col_, lp.num_row_ = n0, len(self.row_lb)
        lp.col_cost_, lp.offset_ = sf.c, sf.offset
        lp.col_lower_, lp.col_upper_ = sf.col_lb, sf.col_ub
        lp.row_lower_, lp.row_upper_ = self.row_lb, self.row_ub
        lp.a_matrix_.format_ = highspy.MatrixFormat.kRowwise
        lp.a_matrix_.start_, lp.a_matrix_.index_ = self.A.indptr, self.A.indices
        lp.a_matrix_.value_ = self.A.data
        h.passModel(lp)
        self.columns: set[tuple[int, frozenset[int]]] = set()

    # ---------------------------------------------------------------- columns

    def entries(self, k: int, layers: list[int]) -> tuple[list[int], list[float]]:
        """The master's rows and coefficients of column (k, layers)."""
        held = set(layers)
        rows = [self.conv[k], *(self.link[v, k] for v in layers)]
        vals = [1.0] + [-1.0] * len(layers)
        d = self.tb.sink
        for ti, u, readers, sink, a, b, _ in self.tensors:
            if u in held:
                if a[k] > 0 and ((sink and k != d) or any(c not in held for c in readers)):
                    rows.append(self.leaves[ti])
                    vals.append(-a[k])
            elif b[k] > 0 and ((sink and k == d) or any(c in held for c in readers)):
                rows.append(self.arrives[ti])
                vals.append(-b[k])
        return rows, vals

    def add(
        self, k: int, layers: list[int], entries: tuple[list[int], list[float]] | None = None
    ) -> bool:
        """Column (k, layers), unless the master has it; `entries` when already computed."""
        key = (k, frozenset(layers))
        if key in self.columns:
            return False
        self.columns.add(key)
        rows, vals = entries or self.entries(k, layers)
        self.h.addCol(0.0, 0.0, np.inf, len(rows), np.array(rows, np.int32), np.array(vals))
        return True

    def add_plan(self, plan: dict[str, str]) -> None:
        tb = self.tb
        for k in range(self.K):
            self.add(k, [v for v, name in enumerate(tb.layers) if tb.node_index[plan[name]] == k])

    def add_windows(self) -> None:
        """The empty set, each layer alone and the longest window of the topological order from
        each layer that fits, on every node it may run on (a master the pricing can start from)."""
        tb = self.tb
        for k in range(self.K):
            self.add(k, [])
            cap = np.inf if tb.memory_bytes[k] is None else tb.memory_bytes[k] * (1 + 1e-12)
            for i in self.runs_on[k]:
                window: list[int] = []
                params = work = 0.0
                for j in range(i, self.V):
                    params += tb.param_bytes[j]
                    work = max(work, tb.work_bytes[j])
                    if k not in tb.allowed[j] or params + work > cap:
                        break
                    window.append(j)
                self.add(k, [i])
                self.add(k, window)

    # ---------------------------------------------------------------- pricing and the bound

    def price(
        self, k: int, y: np.ndarray, time_limit_s: float = np.inf
    ) -> tuple[float, float, list[list[int]]]:
        """min over the sets S that fit node k of Σ_rows −y·(the column's entries), without the
        convexity row's dual: (value of the best set, the MILP's proven bound, the sets found,
        the best last: each better set the MILP met on its way). Stopped by `time_limit_s`, the
        bound is the MILP's proven one and the sets those it found."""
        tb, d = self.tb, self.tb.sink
        layers = self.runs_on[k]
        pos = {v: i for i, v in enumerate(layers)}
        cost = [float(y[self.link[v, k]]) for v in layers]
        extra: list[float] = []
        rows: list[tuple[float, dict[int, float], float]] = []
        const = 0.0

        def indicator(price: float) -> int:
            extra.append(price)
            return len(layers) + len(extra) - 1

        for ti, u, readers, sink, a, b, _ in self.tensors:
            pay = float(y[self.leaves[ti]]) * a[k]
            if pay > 1e-12 and u in pos:
                if sink and k != d:
                    cost[pos[u]] += pay
                else:
                    o = indicator(pay)  # o >= s_u - s_c
                    for c in readers:
                        row = {o: 1.0, pos[u]: -1.0} | ({pos[c]: 1.0} if c in pos else {})
                        rows.append((0.0, row, np.inf))
            pay = float(y[self.arrives[ti]]) * b[k]
            if pay > 1e-12:
                if sink and k == d:
                    const += pay
                    if u in pos:
                        cost[pos[u]] -= pay
                else:
                    inside = [c for c in readers if c in pos]
                    if inside:
                        i = indicator(pay)  # i >= s_c - s_u
                        for c in inside:
                            row = {i: 1.0, pos[c]: -1.0} | ({pos[u]: 1.0} if u in pos else {})
                            rows.append((0.0, row, np.inf))
        cap = tb.memory_bytes[k]
        n = len(layers) + len(extra) + (cap is not None)
        ub = np.ones(n)
        if cap is not None:
            m = n - 1  # the largest working set
            ub[m] = np.inf
            extra.append(0.0)
            params = {pos[v]: float(tb.param_bytes[v]) for v in layers}
            rows.append((-np.inf, params | {m: 1.0}, cap))
            rows += [(0.0, {m: 1.0, pos[v]: -float(tb.work_bytes[v])}, np.inf) for v in layers]
        h = highspy.Highs()
        h.setOptionValue("output_flag", False)
        h.setOptionValue("mip_rel_gap", 1e-9)
        h.setOptionValue("mip_abs_gap", 1e-12)
        h.setOptionValue("mip_improving_solution_save", True)
        h.setOptionValue("time_limit", max(float(time_limit_s), 0.1))
        none = np.array([], np.int32)
        h.addCols(n, np.array(cost + extra), np.zeros(n), ub, 0, none, none, np.array([]))
        for lo, row, hi in rows:
            h.addRow(lo, hi, len(row), np.array(list(row), np.int32), np.array(list(row.values())))
        binary = np.arange(len(layers), dtype=np.int32)
        h.changeColsIntegrality(
            len(binary), binary, np.full(len(binary), highspy.HighsVarType.kInteger)
        )
        h.run()
        info = h.getInfo()
        found = [saved.col_value for saved in h.getSavedMipSolutions()]
        sets = [[v for v in layers if values[pos[v]] > 0.5] for values in found]
        return info.objective_function_value + const, info.mip_dual_bound + const, sets

    def lagrangian(self, y: np.ndarray, best_sets: list[float]) -> float:
        """A lower bound on the master's LP for any row multipliers y: each row's bound times y
        (the convexity rows left to the sets), each model column at its cheapest bound under its
        reduced cost, plus each node's cheapest set (`best_sets`, proven bounds of `price`)."""
        y = np.where(np.abs(y) < 1e-12, 0.0, y)
        priced = y != 0
        priced[list(self.conv.values())] = False
        side = np.where(y > 0, self.row_lb, self.row_ub)[priced]
        if not np.all(np.isfinite(side)):
            return -np.inf
        total = float(np.dot(y[priced], side))
        sf = self.milp.matrix
        rc = sf.c - self.A.T @ y
        rc = np.where(np.abs(rc) < 1e-12, 0.0, rc)
        at = np.where(rc > 0, sf.col_lb, np.where(rc < 0, sf.col_ub, 0.0))
        if not np.all(np.isfinite(at[rc != 0])):
            return -np.inf
        return total + float(np.dot(rc[rc != 0], at[rc != 0])) + sum(best_sets) + sf.offset

    def solve(
        self, time_limit_s: float, alpha: float = 0.5, interior: bool = True, log=lambda line: None
    ) -> dict:
        """Column generation until no set has a negative reduced cost, the bound meets the
        master, or `time_limit_s`: {bound, master, iterations, columns, converged, seconds}."""
        began = time.perf_counter()
        if interior:  # the master's duals from the interior point method, without crossover
            self.h.setOptionValue("solver", "ipm")
            self.h.setOptionValue("run_crossover", "off")
        best, stable = -np.inf, None
        iterations, converged = 0, False
        master = None
        while True:
            iterations += 1
            self.h.run()
            if self.h.getModelStatus() != highspy.HighsModelStatus.kOptimal:
                raise RuntimeError("node contents: the master has no optimum (no plan given?)")
            master = self.h.getInfo().objective_function_value
            y = np.array(self.h.getSolution().row_dual)
            added = 0
            while True:
                at = y if stable is None else alpha * stable + (1 - alpha) * y
                left = time_limit_s - (time.perf_counter() - began)
                found = [self.price(k, at, max(left, 1.0) / self.K) for k in range(self.K)]
                bound = self.lagrangian(at, [min(b, 0.0) for _, b, _ in found])
                if bound > best:
                    best, stable = bound, at
                for k, (_, _, sets) in enumerate(found):
                    for chosen in sets:
                        if (k, frozenset(chosen)) in self.columns:
                            continue
                        rows, vals = self.entries(k, chosen)
                        if -float(np.dot(y[rows], vals)) < -1e-9:
                            added += self.add(k, chosen, (rows, vals))
                if added or at is y:
                    break
                stable = None  # mispricing: price at the master's duals
            elapsed = time.perf_counter() - began
            log(
                f"iteration {iterations}: master {master:.6g} bound {best:.6g} "
                f"columns {len(self.columns)} ({elapsed:.0f} s)"
            )
            converged = master - best <= 1e-7 * max(1.0, abs(master))
            if converged or not added or elapsed > time_limit_s:
                break
        return {
            "bound": best,
            "master": master,
            "iterations": iterations,
            "columns": len(self.columns),
            "converged": converged,
            "seconds": time.perf_counter() - began,
        }


# --------------------------------------------------------------------------- the other measures


def compute_only(milp: Milp) -> StandardForm:
    """The model's placement and memory rows with the compute cost alone (no transfers): a
    lower bound on the compute part of every plan's cost."""
    sf = milp.matrix
    keep_cols = np.zeros(len(sf.c), dtype=bool)
    keep_rows = np.zeros(len(sf.row_lb), dtype=bool)
    for fam in milp.families:
        if fam.block in ("", "memory") and fam.kind == "var":
            keep_cols[fam.start : fam.stop] = True
        if fam.block in ("assign", "memory") and fam.kind == "con":
            keep_rows[fam.start : fam.stop] = True
    A = sp.csr_matrix((sf.A_value, sf.A_index, sf.A_start), shape=(len(sf.row_lb), len(sf.c)))
    A = A[keep_rows][:, keep_cols].tocsr()
    c = np.zeros(len(sf.c))
    cost = _compute_cost(milp.instance)
    for (v, k), col in milp.x.items():
        c[col] = cost[v, k]
    return dataclasses.replace(
        sf,
        c=c[keep_cols],
        offset=0.0,
        A_start=A.indptr.astype(np.int64),
        A_index=A.indices.astype(np.int64),
        A_value=A.data.astype(float),
        row_lb=sf.row_lb[keep_rows],
        row_ub=sf.row_ub[keep_rows],
        col_lb=sf.col_lb[keep_cols],
        col_ub=sf.col_ub[keep_cols],
        integer=sf.integer[keep_cols],
    )


def without_skips(inst: Instance) -> Instance:
    """The instance with every layer's inputs but the first removed (its backbone chain)."""
    layers = tuple(dataclasses.replace(la, inputs=la.inputs[:1]) for la in inst.dnn.layers)
    return dataclasses.replace(inst, dnn=dataclasses.replace(inst.dnn, layers=layers))


def _compute_cost(inst: Instance) -> np.ndarray:
    """V x K: c_{v,k} in the objective's weights (§1, §5, §8; inf where v may not run)."""
    w = inst.objective.weights()
    return tables(inst).compute_cost(w.latency, w.energy)


def compute_part(inst: Instance, assignment: dict[str, str]) -> float:
    """Σ_v c_{v,σ(v)} in the objective's weights: the compute part of a plan's cost."""
    tb, cost = tables(inst), _compute_cost(inst)
    return float(sum(cost[v, tb.node_index[assignment[name]]] for v, name in enumerate(tb.layers)))


def _lp(sf: StandardForm, time_limit_s: float) -> tuple[float | None, float]:
    began = time.perf_counter()
    res = solve_standard_form(sf, "highs", relax=True, time_limit_s=time_limit_s)
    value = res.objective if res.termination == "optimal" else None
    return value, time.perf_counter() - began


def best_plan(inst: Instance, milp: Milp, time_limit_s: float) -> dict[str, str] | None:
    """best_start (5 s at most), then HiGHS from it, then local search (a third of the limit)."""
    from splitplan.pipeline import best_start, local_search

    start = best_start(inst, min(5.0, time_limit_s))
    res = solve_standard_form(
        milp.matrix,
        "highs",
        time_limit_s=time_limit_s,
        start=None if start is None else milp.start_vector(start),
    )
    plan = start if res.values is None else milp.read_assignment(res.values)
    if plan is None:
        return None
    return local_search(inst, plan, time.perf_counter() + time_limit_s / 3)


def measure(label: str, inst: Instance, time_limit_s: float) -> dict:
    """Every measure of the module docstring on one instance (objectives in the instance's own
    unit: s for latency, the weighted cost for weighted), each MIP and LP limited to
    `time_limit_s` seconds; None where a limit stopped it first."""
    load_before = os.getloadavg()
    milp = build_milp(inst)
    row: dict = {"family": label, "instance": inst.name}
    lp = solve_standard_form(milp.matrix, "highs", relax=True)
    cost = _compute_cost(inst)
    lp_compute = float(sum(cost[v, k] * lp.values[col] for (v, k), col in milp.x.items()))
    row["root_lp"] = {"value": lp.objective, "compute": lp_compute}
    plan = best_plan(inst, milp, time_limit_s)
    if plan is not None:
        value = splitplan.evaluate(inst, plan).objective(inst)
        row["best_plan"] = {"value": value, "compute": compute_part(inst, plan)}
    gap_sf = compute_only(milp)
    gap_lp, _ = _lp(gap_sf, time_limit_s)
    gap_mip = solve_standard_form(gap_sf, "highs", time_limit_s=time_limit_s)
    row["compute_only"] = {
        "lp": gap_lp,
        "mip": gap_mip.objective,
        "mip_bound": gap_mip.bound,
        "status": gap_mip.termination,
    }
    chain = without_skips(inst)
    chain_milp = build_milp(chain)
    chain_lp, _ = _lp(chain_milp.matrix, time_limit_s)
    chain_mip = solve_standard_form(chain_milp.matrix, "highs", time_limit_s=time_limit_s)
    chain_runs, _ = _lp(with_runs(chain_milp)[0], time_limit_s)
    row["no_skips"] = {
        "root_lp": chain_lp,
        "best": chain_mip.objective,
        "status": chain_mip.termination,
        "runs_root_lp": chain_runs,
    }
    extended, n_runs = with_runs(milp)
    runs_lp, runs_s = _lp(extended, time_limit_s)
    row["runs"] = {
        "n_runs": n_runs,
        "columns": len(extended.c),
        "rows": len(extended.row_lb),
        "root_lp": runs_lp,
        "root_lp_s": runs_s,
        "base_columns": len(milp.matrix.c),
        "base_rows": len(milp.matrix.row_lb),
    }
    row["load_average"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    return row


def node_contents(inst: Instance, time_limit_s: float, log=lambda line: None) -> dict:
    """The model's root LP, `best_start`'s plan (5 s at most) and the node-contents bound
    (`NodeContents`, started from that plan and the windows) within `time_limit_s`."""
    from splitplan.pipeline import best_start

    milp = build_milp(inst)
    root = solve_standard_form(milp.matrix, "highs", relax=True).objective
    plan = best_start(inst, min(5.0, time_limit_s))
    row = {"root_lp": root, "start": splitplan.evaluate(inst, plan).objective(inst)}
    relaxation = NodeContents(milp)
    relaxation.add_windows()
    relaxation.add_plan(plan)
    return row | relaxation.solve(time_limit_s, log=log)


def prove(
    inst: Instance,
    time_limit_s: float,
    log=lambda line: None,
    start: dict[str, str] | None = None,
) -> dict:
    """HiGHS alone on the full model (one thread, its default settings in `solve_standard_form`:
    presolve off) for up to `time_limit_s`, from `start` or else from `best_start`'s plan (5 s)
    improved by `local_search` (20 s; each at most the limit): its status, plan, bound and each
    better plan with its time. Where it proves optimality, the optimum is known for every other
    measure of the family (its gap to the best plan found fast, the relaxations' share of the
    gap); started from the optimum, it times the proof alone. The plan is costed by the
    evaluator."""
    from splitplan.pipeline import best_start, local_search

    began = time.perf_counter()
    if start is None:
        start = best_start(inst, min(5.0, time_limit_s))
        start = local_search(inst, start, time.perf_counter() + min(20.0, time_limit_s))
    milp = build_milp(inst)
    found: list[dict] = []

    def better(values: np.ndarray) -> None:
        cost = splitplan.evaluate(inst, milp.read_assignment(values)).objective(inst)
        found.append({"t_s": round(time.perf_counter() - began, 1), "value": cost})
        log(f"{found[-1]['t_s']} s: a plan of {cost:.6g}")

    solve_began = time.perf_counter()
    res = solve_standard_form(
        milp.matrix,
        "highs",
        time_limit_s=time_limit_s,
        threads=1,
        start=milp.start_vector(start),
        on_incumbent=better,
    )
    row = {
        "start": splitplan.evaluate(inst, start).objective(inst),
        "start_s": round(solve_began - began, 1),
        "status": res.termination,
        "solve_s": round(time.perf_counter() - solve_began, 1),
        "bound": res.bound,
        "improvements": found,
    }
    if res.values is not None:
        plan = milp.read_assignment(res.values)
        ev = splitplan.evaluate(inst, plan)
        row |= {"value": ev.objective(inst), "feasible": ev.feasible, "assignment": plan}
    return row


def _rows(output: Path) -> dict[str, dict]:
    """The rows of a results file by family ({} when there is no file)."""
    if not output.exists():
        return {}
    return {row["family"]: row for row in json.loads(output.read_text())["rows"]}


def _update_row(output: Path, row: dict) -> None:
    """Put `row` in the results file in place of its family's row, keeping the other families'
    rows as the file holds them now (runs of other families may have written since)."""
    rows = _rows(output) | {row["family"]: row}
    output.write_text(json.dumps({"rows": list(rows.values())}, indent=1) + "\n")


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small instance (a smoke test)")
    parser.add_argument(
        "--time-limit", type=float, help="seconds per MIP or LP (default 60; 5 with --quick)"
    )
    parser.add_argument(
        "--node-contents",
        action="store_true",
        help="only the node-contents bound (column generation), to memory_gap_node_contents.json",
    )
    parser.add_argument(
        "--prove",
        action="store_true",
        help="only HiGHS on the full model, one thread, to memory_gap_prove.json (the optimum "
        "where it proves it; give a long --time-limit)",
    )
    parser.add_argument(
        "--from-known",
        action="store_true",
        help="with --prove: start from the plan the output file holds for the family (its "
        "optimum, after a run that proved it), to time the proof alone; kept in its row as "
        "from_known",
    )
    parser.add_argument(
        "--family", help="only the families whose name contains this text (e.g. 100x8)"
    )
    parser.add_argument("-o", "--output", help="default: memory_gap[_node_contents|_prove].json")
    args = parser.parse_args()
    families = QUICK if args.quick else FAMILIES
    families = [f for f in families if args.family is None or args.family in f[0]]
    limit = args.time_limit or (5.0 if args.quick else 60.0)
    suffix = "_node_contents" if args.node_contents else "_prove" if args.prove else ""
    output = Path(args.output or Path(__file__).with_name(f"memory_gap{suffix}.json"))
    if args.from_known and not args.prove:
        parser.error("--from-known goes with --prove")
    if args.node_contents or args.prove:  # each row updates its own in the file (`--family`)
        for label, make in families:
            inst = make()
            if args.from_known:
                row = _rows(output).get(label, {})
                if "assignment" not in row:
                    parser.error(f"{output} holds no plan for {label!r}: run --prove first")
                log = functools.partial(print, label, "(from the known plan)", flush=True)
                known = prove(inst, limit, log=log, start=row["assignment"])
                known.pop("assignment", None)
                known = {"time_limit_s": limit, "machine": machine()} | known
                _update_row(output, _rows(output)[label] | {"from_known": known})
                continue
            row = {"family": label, "instance": inst.name, "time_limit_s": limit}
            row["machine"] = machine()  # each row its own: a file may hold several runs
            log = functools.partial(print, label, flush=True)
            row |= (node_contents if args.node_contents else prove)(inst, limit, log=log)
            print(json.dumps(row), flush=True)
            _update_row(output, row)  # after each row
        return
    rows = []
    for label, make in families:
        row = measure(label, make(), limit)
        rows.append(row)
        best, chain = row.get("best_plan", {}), row["no_skips"]
        print(
            f"{label}: root LP {_fmt(row['root_lp']['value'])} (compute "
            f"{_fmt(row['root_lp']['compute'])}), best plan {_fmt(best.get('value'))} (compute "
            f"{_fmt(best.get('compute'))}); compute only LP {_fmt(row['compute_only']['lp'])} "
            f"MIP {_fmt(row['compute_only']['mip'])}; without skips LP "
            f"{_fmt(chain['root_lp'])} (with runs {_fmt(chain['runs_root_lp'])}) "
            f"best {_fmt(chain['best'])}; "
            f"with runs LP {_fmt(row['runs']['root_lp'])} ({row['runs']['root_lp_s']:.1f} s)",
            flush=True,
        )
    result = {"machine": machine(), "time_limit_s": limit, "rows": rows}
    output.write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
