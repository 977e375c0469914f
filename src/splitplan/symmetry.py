"""Symmetry among interchangeable nodes (formulation §9, "Symmetry among identical nodes").

Two nodes are *interchangeable* when swapping them maps the instance to itself, so that every
plan and its swapped plan have the same evaluation (`cost.evaluate`: latency, energy, period,
memory, pins, limits). Within a class of interchangeable nodes k_1 < ... < k_m the model may then
ask that the nodes are used in order of first use along the layers' topological order:

    x[v,k_{i+1}] <= Σ_{u<v} x[u,k_i]      for every layer v and i < m,

written with prefix counts h[v,k] = Σ_{u<=v} x[u,k] so that the rows stay short. `add_symmetry`
adds them (the model builder's cuts hook, `milp.build_milp(..., cuts=True)`); `canonical` permutes
a plan (a MIP start) into the order they ask for, with the same evaluation. The docstrings give
the argument; tests/test_symmetry.py checks the model with the rows against brute force.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping

import numpy as np

from .cost import Tables


def _signature(tb: Tables, k: int) -> tuple:
    """What a node's own data contributes to the evaluation, as an exact (hashable) key: its
    compute column, powers, memory, codec times, and the layers it may run on (pins and §9's
    candidate reduction)."""
    codecs = tuple(
        (float(f.encode_s[k]), float(f.decode_s[k])) for t in tb.tensors for f in t.encodings
    )
    allowed = tuple(k in ks for ks in tb.allowed)
    return (
        tb.compute_s[:, k].tobytes(),
        float(tb.compute_power_w[k]),
        float(tb.tx_power_w[k]),
        tb.memory_bytes[k],
        codecs,
        allowed,
    )


def _sizes(tb: Tables) -> list[float]:
    """Every tensor size a route is asked for (raw and encoded forms, §2, §10)."""
    sizes = {float(t.size_bytes) for t in tb.tensors}
    sizes |= {float(f.size_bytes) for t in tb.tensors for f in t.encodings}
    return sorted(sizes)


def _next_hops(tb: Tables) -> list[np.ndarray]:
    """The distinct next-hop matrices of the routes of every size (`Tables.shortest_paths`)."""
    seen: dict[bytes, np.ndarray] = {}
    for size in [0.0, *_sizes(tb)]:
        nxt = tb.shortest_paths(size)[1]
        seen.setdefault(nxt.tobytes(), nxt)
    return list(seen.values())


def interchangeable(
    tb: Tables, k1: int, k2: int, next_hops: list[np.ndarray] | None = None
) -> bool:
    """Whether the transposition σ = (k1 k2) maps the instance to itself, so that a plan and its
    image under σ have the same evaluation (every objective, every constraint):

    - neither is the source nor the sink (the input starts at one, the output ends at the other);
    - equal `_signature` (compute times, powers, memory, codec times, allowed layers), and pins
      that name both or neither;
    - σ is an automorphism of the network with equal link attributes: the arc a -> b, as the
      tables index it, and the arc σ(a) -> σ(b) exist together with the same bandwidth and
      latency, and the multisets of arcs agree;
    - the routes the tables pick map onto each other: for every tensor size (raw and encoded),
      next_hop[σa, σb] = σ(next_hop[a, b]), hence route(σa, σb) = σ(route(a, b)) hop by hop
      (`Tables.route` walks the next hops). Ties between equally fast routes are broken by node
      index, which σ does not preserve in general: then the answer is no.

    Under these conditions every term of `cost.evaluate` of σ∘plan is the term of the plan at the
    swapped nodes: compute and codec times, powers and memory per node are equal, each transfer
    σp -> σq takes the image of the route p -> q, over arcs of equal bandwidth and latency sent by
    nodes of equal tx power, so latency, energy, every node's and arc's load (the period), every
    node's memory, pins and the limits are those of the plan. When in doubt the answer is no.
    """
    if k1 == k2:
        return True
    ends = {tb.source} | ({tb.sink} if tb.sink is not None else set())
    if k1 in ends or k2 in ends:
        return False
    if _signature(tb, k1) != _signature(tb, k2):
        return False
    n1, n2 = tb.nodes[k1], tb.nodes[k2]
    for allowed in tb.instance.constraints.pin.values():
        if (n1 in allowed) != (n2 in allowed):
            return False
    K = len(tb.nodes)
    sigma = np.arange(K)
    sigma[k1], sigma[k2] = k2, k1

    def attrs(i: int) -> tuple[float, float]:
        arc = tb.arcs[i]
        return (arc.bandwidth_bytes_per_s, arc.latency_s)

    for (a, b), i in tb.arc_index.items():
        j = tb.arc_index.get((int(sigma[a]), int(sigma[b])))
        if j is None or attrs(i) != attrs(j):
            return False
    arcs = sorted((a.tail, a.head, a.bandwidth_bytes_per_s, a.latency_s) for a in tb.arcs)
    mapped = sorted(
        (int(sigma[a.tail]), int(sigma[a.head]), a.bandwidth_bytes_per_s, a.latency_s)
        for a in tb.arcs
    )
    if arcs != mapped:
        return False
    image = np.append(sigma, -1)  # σ on next hops, -1 (unreachable) fixed
    for nxt in next_hops if next_hops is not None else _next_hops(tb):
        if not np.array_equal(nxt[np.ix_(sigma, sigma)], image[nxt]):
            return False
    return True


def node_classes(tb: Tables) -> list[list[int]]:
    """Classes of interchangeable nodes with two or more members, each sorted by index.

    A node joins a class when it is interchangeable with the class's first member (its
    representative); the transpositions (k_1 k) for k in a class generate every permutation of
    the class, so every permutation of a class maps plans to plans of equal evaluation. A node
    interchangeable with some member but not with the representative starts a class of its own
    (a finer partition than the true orbits: valid, only less symmetry is broken)."""
    hops = None
    classes: list[list[int]] = []
    groups: dict[tuple, list[int]] = {}
    for k in range(len(tb.nodes)):
        groups.setdefault(_signature(tb, k), []).append(k)
    for members in groups.values():
        if len(members) < 2:
            continue
        if hops is None:
            hops = _next_hops(tb)
        found: list[list[int]] = []
        for k in members:
            for cls in found:
                if interchangeable(tb, cls[0], k, hops):
                    cls.append(k)
                    break
            else:
                found.append([k])
        classes += [cls for cls in found if len(cls) > 1]
    return sorted(classes)


def canonical(
    tb: Tables, classes: list[list[int]], assignment: Mapping[str, str]
) -> dict[str, str]:
    """`assignment` ({layer: node}) with the nodes of each class renamed so that they are used in
    order of first use along the topological order of the layers (what `add_symmetry`'s rows
    ask): the i-th node of a class to be used becomes k_i, unused nodes come last. A permutation
    within classes, so the evaluation is unchanged (`interchangeable`). Layers or nodes it does
    not know are kept as they are."""
    first: dict[int, int] = {}
    for v, layer in enumerate(tb.layers):
        k = tb.node_index.get(assignment.get(layer, ""))
        if k is not None:
            first.setdefault(k, v)
    rename: dict[str, str] = {}
    for cls in classes:
        ranked = sorted(cls, key=lambda k: (first.get(k, len(tb.layers)), k))
        rename |= {tb.nodes[k]: tb.nodes[target] for k, target in zip(ranked, cls, strict=True)}
    return {layer: rename.get(node, node) for layer, node in assignment.items()}


def add_symmetry(ctx) -> list[list[int]]:
    """Order the nodes of each class of `node_classes` by first use (block `symmetry`); returns
    the classes (none: nothing is added).

    For consecutive k_i, k_{i+1} of a class and every layer v (topological order),
    `order`: x[v,k_{i+1}] <= h[v-1,k_i], with `prefix`: h[v,k] = h[v-1,k] + x[v,k] (h[-1,k] = 0),
    so h[v,k] counts the layers 0..v on k. Valid for every objective: take an optimal plan, sort
    each class's nodes by first use (unused last) and rename them k_1, k_2, ... in that order
    (`canonical`); the renamed plan has the same evaluation, and if it runs v on k_{i+1}, then
    k_{i+1} is first used at some u' <= v and k_i earlier, at u < u' <= v, so h[v-1,k_i] >= 1.
    The rows constrain x only, and the MILP's other columns complete any plan at its cost, so an
    optimal plan remains feasible for the model: the optimum is unchanged."""
    tb, rec, x = ctx.tb, ctx.rec, ctx.x
    classes = node_classes(tb)
    if not classes:
        return []
    V = len(tb.layers)
    b = rec.block("symmetry", "§9: interchangeable nodes are used in order of first use")
    leaders = [k for cls in classes for k in cls[:-1]]
    keys = [(v, k) for k in leaders for v in range(V - 1)]
    h = rec.vars(b, "h", keys, "h[v,k]: layers 0..v placed on node k", bounds=(0, V))
    prefix, order = {}, {}
    for k in leaders:
        for v in range(V - 1):
            terms = [(1.0, h[v, k])]
            if v > 0:
                terms.append((-1.0, h[v - 1, k]))
            if (v, k) in x:
                terms.append((-1.0, x[v, k]))
            prefix[v, k] = (0.0, terms, 0.0)
    for cls in classes:
        for k, nxt in itertools.pairwise(cls):
            for v in range(V):
                if (v, nxt) not in x:
                    continue
                terms = [(1.0, x[v, nxt])]
                if v > 0:
                    terms.append((-1.0, h[v - 1, k]))
                order[v, nxt] = (None, terms, 0.0)
    rec.constraints(b, "prefix", prefix, "h[v,k] = h[v-1,k] + x[v,k]")
    rec.constraints(b, "order", order, "x[v,k_{i+1}] <= h[v-1,k_i]")
    return classes
