"""Valid inequalities that raise the MILP's bound without changing its optimum (formulation §9).

Each family is a function of the cost tables (`cost.Tables`) and the model's handles (x[v,k], the
period P) that returns rows {index: (lb, terms, ub)} in the form `milp._Recorder.constraints`
takes; `add_cuts` is the one call the model builder makes. Every family is valid for every plan
the MILP can return, so the optimum is unchanged: the docstrings give the argument, and
tests/test_cuts.py checks the MILP with the cuts against brute force for every objective.
"""

from __future__ import annotations

import numpy as np

from .cost import Tables

Terms = list[tuple[float, object]]
Rows = dict
# A combinatorial bound is computed in floating point from the same times the node rows sum; it is
# shrunk by this relative margin so that rounding can never make it exceed the optimum's P.
_MARGIN = 1e-9


def layer_period_rows(tb: Tables, x: dict, P: object) -> Rows:
    """P >= sum_k c[v,k] x[v,k] for every layer v (§7).

    Valid: the node k that runs v is busy at least c[v,k] per period, and P is at least each
    node's busy time. The node rows already imply it for integral x, but not for fractional x:
    the LP relaxation may split a large layer over many nodes, and this row stops it from hiding
    the layer's time that way (it implies P >= max_v min_k c[v,k]).
    """
    rows = {}
    for v, ks in enumerate(tb.allowed):
        terms = [(-float(tb.compute_s[v, k]), x[v, k]) for k in ks if tb.compute_s[v, k] > 0]
        if terms:
            rows[v] = (0.0, [(1.0, P), *terms], None)
    return rows


def _closures(tb: Tables) -> tuple[np.ndarray, np.ndarray]:
    """(anc, desc): anc[u, a] iff layer a is a strict ancestor of u; desc[w, d] iff d is a strict
    descendant of w (layers are in topological order)."""
    V = len(tb.layers)
    anc = np.zeros((V, V), dtype=bool)
    for t in tb.tensors:
        if t.producer < 0:
            continue
        for c in t.consumers:
            anc[c] |= anc[t.producer]
            anc[c, t.producer] = True
    return anc, anc.T.copy()


def _smallest_bytes(tb: Tables, ti: int) -> float:
    """The fewest bytes tensor ti can cross the network in (raw or any of its encodings, §10)."""
    t = tb.tensors[ti]
    return min([t.size_bytes, *(f.size_bytes for f in t.encodings)])


def node_crossing_bound(tb: Tables, k0: int) -> float:
    """A lower bound on the period from node k0 when k0 is the source and/or the sink (§7).

    Let U be the layers not run on k0. If U is empty, P >= sum_v c[v,k0]. Otherwise:
    - k0 is the source: take u minimal in U (no ancestor of u in U). Every ancestor of u runs on
      k0, and every input tensor of u (the raw input, held at the source, or an ancestor's output)
      is sent from k0 to the node of u, over an arc out of k0: P >= B_t / max_{a out of k0} bw_a,
      with B_t the tensor's smallest form, and P >= k0's busy time >= sum_{a in anc(u)} c[a,k0].
    - k0 is the sink: take w maximal in U. Every descendant of w runs on k0, and w's output, if
      it goes anywhere (to a consumer, all on k0, or to the sink), arrives over an arc into k0:
      P >= B_w / max_{a into k0} bw_a and P >= sum_{d in desc(w)} c[d,k0].
    - both: u and w of the same U satisfy "w is not a strict ancestor of u", so anc(u) and
      desc(w) are disjoint (a layer in both would put w before u) and k0's busy time is at
      least the sum of both.
    An option is skipped when it is impossible: u or w pinned to k0, a layer placed on k0 that may
    not run there, or k0's memory (§6) not holding the layers placed on it. The bound is the
    smallest value over the remaining options, so it is at most the period of every feasible plan.
    """
    V = len(tb.layers)
    is_src, is_snk = k0 == tb.source, k0 == tb.sink
    on_ok = np.array([k0 in ks for ks in tb.allowed])
    off_ok = np.array([any(k != k0 for k in ks) for ks in tb.allowed])
    c0 = np.where(on_ok, tb.compute_s[:, k0], 0.0)
    mem = tb.memory_bytes[k0]
    params, work = tb.param_bytes.astype(float), tb.work_bytes.astype(float)
    options = []
    if on_ok.all() and (mem is None or params.sum() + work.max() <= mem):
        options.append(float(c0.sum()))
    anc, desc = _closures(tb)
    A = anc.astype(float)
    D = desc.astype(float)

    def side(closure: np.ndarray, Cf: np.ndarray) -> tuple[np.ndarray, ...]:
        load = Cf @ c0
        ok = ~(closure & ~on_ok[None, :]).any(axis=1)  # every layer placed on k0 may run there
        par = Cf @ params
        wmax = np.where(closure, work[None, :], 0.0).max(axis=1, initial=0.0)
        return load, ok, par, wmax

    bw_out = max((a.bandwidth_bytes_per_s for a in tb.arcs if a.tail == k0), default=0.0)
    bw_in = max((a.bandwidth_bytes_per_s for a in tb.arcs if a.head == k0), default=0.0)
    out = np.zeros(V)
    if is_src:
        for ti, t in enumerate(tb.tensors):
            for c in t.consumers:
                need = _smallest_bytes(tb, ti) / bw_out if bw_out > 0 else np.inf
                out[c] = max(out[c], need)
    inn = np.zeros(V)
    if is_snk:
        for ti, t in enumerate(tb.tensors):
            if t.producer >= 0 and (t.consumers or t.to_sink):
                inn[t.producer] = _smallest_bytes(tb, ti) / bw_in if bw_in > 0 else np.inf
    if is_src:
        lA, okA, pA, wA = side(anc, A)
        okA &= off_ok
    if is_snk:
        lD, okD, pD, wD = side(desc, D)
        okD &= off_ok
    if is_src and is_snk:
        # value[u, w] over pairs with w not a strict ancestor of u
        value = np.maximum(np.maximum(out[:, None], inn[None, :]), lA[:, None] + lD[None, :])
        ok = okA[:, None] & okD[None, :] & ~anc
        if mem is not None:
            ok &= pA[:, None] + pD[None, :] + np.maximum(wA[:, None], wD[None, :]) <= mem
        if ok.any():
            options.append(float(value[ok].min()))
    elif is_src:
        ok = okA & ((pA + wA <= mem) if mem is not None else True)
        if ok.any():
            options.append(float(np.maximum(out, lA)[ok].min()))
    elif is_snk:
        ok = okD & ((pD + wD <= mem) if mem is not None else True)
        if ok.any():
            options.append(float(np.maximum(inn, lD)[ok].min()))
    else:
        return 0.0
    return min(options) if options else 0.0


def period_lower_bound(tb: Tables) -> float:
    """The largest of the combinatorial period bounds (s): the busiest layer's best time
    max_v min_k c[v,k], and `node_crossing_bound` at the source and at the sink; shrunk by a
    relative 1e-9 against rounding."""
    best = [float(tb.compute_s[v, ks].min()) for v, ks in enumerate(tb.allowed) if ks]
    bound = max(best, default=0.0)
    for k0 in {tb.source, tb.sink} - {None}:
        bound = max(bound, node_crossing_bound(tb, k0))
    return bound * (1.0 - _MARGIN)


def add_cuts(builder, block, P: object) -> None:
    """Add the kept families to the throughput objective's block (the hook of `milp._Builder`)."""
    tb, x, rec = builder.tb, builder.x, builder.rec
    rec.constraints(block, "layer_period", layer_period_rows(tb, x, P), "P >= sum_k c[v,k] x[v,k]")
    lb = period_lower_bound(tb)
    if lb > 0:
        rec.constraints(block, "period_bound", {0: (lb, [(1.0, P)], None)}, "P >= crossing bound")
