"""Pipeline planners from the literature, a memory-aware first fit and a local search.

The dynamic programs that pipeline planners use to cut a DNN into contiguous stages, each stage on
its own node, reproduced from their papers, plus the fast constructions that `splitplan.solve`
uses as MIP starts (`best_start`). Every plan is costed by `splitplan.evaluate`, so the compare
table is on the one cost model (models/formulation.md §7); where each DP is exact for that model
and where it is only a heuristic is in models/formulation.md §11.

Methods (registered in `splitplan.baselines.METHODS`):

- `pipeedge`: PipeEdge's DP (Hu et al., 2022): the least period over contiguous stages of a
  chain, each node used at most once, over (layer, devices used per device class, last class),
  with memory limits. Nodes are grouped into classes of identical nodes (same compute times,
  memory, pins and role); the hosts of a class are taken in a fixed order, which is exact when
  they are interchangeable (also in their links).
- `edgeshard`: EdgeShard's throughput DP (Zhang et al., 2024): the same recurrence over the set
  of used nodes (every node its own class), so no interchangeability is assumed; 2^K states.
- `edgeshard-latency`: EdgeShard's latency DP over (layer, node of that layer), any node per
  layer, tracking the memory used on each node along the best path to a state.
- `stages-dp`: the textbook bottleneck DP that cuts a chain into at most K contiguous stages for
  K identical workers, over (layer, stages used).
- `pipedream`: PipeDream's optimizer (Narayanan et al., SOSP 2019) without stage replication
  (our model runs each layer once): the same recurrence over a topological order of a DAG, a cut
  sending every tensor that crosses it to the next stage; identical workers.
- `priced-beam` (ours, not a peer's): `priced_beam`, a beam over the topological order for sum
  objectives under memory limits, steered by Lagrangian prices on each node's memory.

The stage DPs minimise the period: the class DP (`pipeedge`, `edgeshard`) by bisection on the
period with a reachability pass over its states (relative tolerance 1e-9), the linear DP
(`stages-dp`, `pipedream`) directly as a min-max recurrence.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .baselines import is_chain
from .cost import Tables, tables
from .instance import Instance

if TYPE_CHECKING:
    from .plan import Plan

_RTOL = 1e-9  # bisection stops when hi <= lo (1 + _RTOL)
_MAX_DP_CELLS = 3e7  # states x prefixes of a stage DP; beyond that the DP is not applicable


def _not_applicable(reason: str) -> Exception:
    from .baselines import NotApplicable

    return NotApplicable(reason)


# --------------------------------------------------------------------------- stage tables


def _route_max_inv(tb: Tables, size_bytes: float) -> np.ndarray:
    """K x K: the largest 1 / bandwidth (s/B) over the arcs of the route a tensor of
    `size_bytes` takes from p to q (§2); 0 when p = q, inf when q is unreachable. With dedicated
    links (no arc shared by two transfers) a transfer of B bytes loads the period by B times
    this."""
    K = len(tb.nodes)
    dist, nxt = tb.shortest_paths(size_bytes)
    inv = np.zeros((K, K))
    for arc in tb.arcs:
        inv[arc.tail, arc.head] = 1.0 / arc.bandwidth_bytes_per_s
    cols = np.arange(K)[None, :].repeat(K, axis=0)
    hop = np.where(nxt >= 0, nxt, np.arange(K)[:, None])  # first hop p -> q
    first = inv[np.arange(K)[:, None], hop]
    best = first.copy()
    cur = hop
    for _ in range(K):  # walk every route one hop at a time
        best = np.maximum(best, first[cur, cols])
        cur = hop[cur, cols]
    best[~np.isfinite(dist)] = np.inf
    np.fill_diagonal(best, 0.0)
    return best


def _loads_by_size(tb: Tables) -> dict[float, np.ndarray]:
    """For every tensor size B, the K x K largest arc load B / bw on the route p -> q.

    A path's time is linear in B, so if the fastest routes (Floyd-Warshall's next hops) are the
    same at two sizes, they are the same at every size in between (the difference to any other
    path is linear and not negative at both ends): routes are computed at the ends of an
    interval of sizes, which is split only where they differ."""
    sizes = sorted({t.size_bytes for t in tb.tensors})
    out: dict[float, np.ndarray] = {}

    def nxt(i: int) -> np.ndarray:
        return tb.shortest_paths(sizes[i])[1]

    def scale(size: float, m: np.ndarray) -> np.ndarray:  # size x m, inf stays inf (0 x inf)
        finite = np.isfinite(m)
        return np.where(finite, size * np.where(finite, m, 0.0), np.inf)

    def fill(i: int, j: int) -> None:
        if np.array_equal(nxt(i), nxt(j)):
            m = _route_max_inv(tb, sizes[i])
            for size in sizes[i : j + 1]:
                out[size] = scale(size, m)
        elif j - i <= 1:
            for size in (sizes[i], sizes[j]):
                out[size] = scale(size, _route_max_inv(tb, size))
        else:
            mid = (i + j) // 2
            fill(i, mid)
            fill(mid, j)

    fill(0, len(sizes) - 1)
    return out


@dataclass
class _Stages:
    """What the stage DPs need, with layers in the instance's topological order.

    `cut[i, p, q]`: the period load of handing over cut i (layers < i done) from p to q, the sum
    of the route loads of the tensors that cross it (for a chain, tensor i alone: exact);
    `out[p]`: the load of sending the output from p to the sink; `pre[k]`: prefix sums of compute
    times on node k; `fit_end[k, i]`: the largest j such that layers i..j-1 fit node k's memory
    and may all run on k.
    """

    tb: Tables
    V: int
    K: int
    cut: np.ndarray  # (V+1, K, K)
    out: np.ndarray  # (K,)
    pre: np.ndarray  # (K, V+1)
    fit_end: np.ndarray  # (K, V+1)
    positions: np.ndarray | None = None  # layer index of each cut, when cuts are over blocks

    def stage_ends(self, k: int, period: float) -> np.ndarray:
        """e[i]: the largest j with layers i..j-1 feasible on k within `period`, -1 if none."""
        pre = self.pre[k]
        comp = np.searchsorted(pre, pre + period * (1 + 1e-12), side="right") - 1
        e = np.minimum(comp, self.fit_end[k])
        return np.where(e >= np.arange(self.V + 1) + 1, e, -1)

    def coarse(self, positions: np.ndarray) -> _Stages:
        """The same tables with cuts allowed only at `positions` (0 and V included): a stage DP
        over blocks of layers. Its bounds index `positions`; `assignment` maps them back."""
        fit = np.searchsorted(positions, self.fit_end[:, positions], side="right") - 1
        return _Stages(
            self.tb,
            len(positions) - 1,
            self.K,
            self.cut[positions],
            self.out,
            self.pre[:, positions],
            fit.astype(np.int64),
            positions,
        )

    def value(self, bounds: Sequence[int], nodes: Sequence[int]) -> float:
        """The DP's own period of stages [bounds[s], bounds[s+1]) on nodes[s]."""
        loads = [self.out[nodes[-1]], self.cut[0, self.tb.source, nodes[0]]]
        for s, k in enumerate(nodes):
            loads.append(self.pre[k][bounds[s + 1]] - self.pre[k][bounds[s]])
            if s:
                loads.append(self.cut[bounds[s], nodes[s - 1], k])
        return float(max(loads))

    def assignment(self, bounds: Sequence[int], nodes: Sequence[int]) -> dict[str, str]:
        tb = self.tb
        if self.positions is not None:
            bounds = [int(self.positions[b]) for b in bounds]
        out = {}
        for s, k in enumerate(nodes):
            for v in range(bounds[s], bounds[s + 1]):
                out[tb.layers[v]] = tb.nodes[k]
        return out


def _stages(inst: Instance) -> _Stages:
    cached = inst.__dict__.get("_pipeline_stages")
    if cached is not None:
        return cached
    tb = tables(inst)
    V, K = len(tb.layers), len(tb.nodes)
    if tb.output != V - 1:
        raise _not_applicable("the output is not the last layer in topological order")
    cut = np.zeros((V + 2, K, K))
    blocked = np.zeros((V + 2, K, K), dtype=np.int64)  # crossing tensors with no route p -> q
    loads = _loads_by_size(tb)
    for t in tb.tensors:
        if not t.consumers:
            continue
        # t crosses cuts producer+1 .. last consumer (layers < i done): a difference array
        load = loads[t.size_bytes]
        finite = np.isfinite(load)
        cut[t.producer + 1] += np.where(finite, load, 0.0)
        cut[max(t.consumers) + 1] -= np.where(finite, load, 0.0)
        blocked[t.producer + 1] += ~finite
        blocked[max(t.consumers) + 1] -= ~finite
    cut = np.cumsum(cut, axis=0)[: V + 1]
    cut[np.cumsum(blocked, axis=0)[: V + 1] > 0] = np.inf
    for k in range(K):
        cut[:, k, k] = 0.0
    last = tb.tensors[V]
    out = np.zeros(K) if tb.sink is None else loads[last.size_bytes][:, tb.sink]
    pre = np.zeros((K, V + 1))
    pre[:, 1:] = np.cumsum(tb.compute_s.T, axis=1)
    fit_end = np.zeros((K, V + 1), dtype=np.int64)
    allowed = np.zeros((V, K), dtype=bool)
    for v, ks in enumerate(tb.allowed):
        allowed[v, ks] = True
    for k in range(K):
        cap = tb.memory_bytes[k]
        j = 0
        params = 0.0
        for i in range(V + 1):  # two pointers: the window [i, j) grows with i
            if j < i:
                j, params = i, 0.0
            while j < V and allowed[j, k]:
                work = tb.work_bytes[i : j + 1].max()
                if cap is not None and params + tb.param_bytes[j] + work > cap * (1 + 1e-9):
                    break
                params += tb.param_bytes[j]
                j += 1
            fit_end[k, i] = j
            if j > i:
                params -= tb.param_bytes[i]
    st = _Stages(tb, V, K, cut, out, pre, fit_end)
    object.__setattr__(inst, "_pipeline_stages", st)
    return st


# --------------------------------------------------------------------------- class DP (PipeEdge)


def node_classes(tb: Tables) -> list[list[int]]:
    """Groups of interchangeable-looking nodes: same compute times, memory, allowed layers and
    role (the source and the sink are always alone). Hosts keep the instance's order."""
    groups: dict[tuple, list[int]] = {}
    for k in range(len(tb.nodes)):
        if k in (tb.source, tb.sink):
            key: tuple = ("role", k)
        else:
            allowed = tuple(k in ks for ks in tb.allowed)
            key = (tb.compute_s[:, k].tobytes(), tb.memory_bytes[k], allowed)
        groups.setdefault(key, []).append(k)
    return list(groups.values())


def interchangeable(tb: Tables, classes: list[list[int]]) -> bool:
    """Whether swapping any two hosts of a class maps the network onto itself (same arcs, with
    the same bandwidth and latency): then every stage plan has a twin with the same cost, the
    evaluator's too, that takes each class's hosts in order, so the class DP loses nothing
    against EdgeShard's DP over subsets (the hosts' compute, memory and pins are equal by
    `node_classes`)."""
    arcs = {(a.tail, a.head, a.bandwidth_bytes_per_s, a.latency_s) for a in tb.arcs}
    for c in classes:
        for b in c[1:]:
            swap = {c[0]: b, b: c[0]}
            moved = {(swap.get(t, t), swap.get(h, h), bw, lat) for t, h, bw, lat in arcs}
            if moved != arcs:
                return False
    return True


def class_dp(
    inst: Instance,
    classes: list[list[int]],
    deadline: float = math.inf,
    upper: float = math.inf,
    first_only: bool = False,
) -> tuple[list[int], list[int]] | None:
    """The least-period plan of contiguous stages, each on a distinct node, where the s-th host
    used of a class is `classes[c][s]` (PipeEdge's DP over devices used per class).

    Returns (bounds, nodes): stage s runs layers bounds[s]..bounds[s+1]-1 on nodes[s]; None when
    no such plan fits the memory limits and pins. Anytime: at `deadline` (perf_counter seconds)
    the pass in progress is abandoned and the best plan found so far returned (None if none).
    `upper` (a known period, s) only speeds it up; `first_only` stops at the first plan found
    (at an unbounded period: a feasibility test).

    Long chains are first solved on blocks of layers (cuts only every ceil(V / 100) layers, to a
    relative 1e-3): a plan the full DP then starts from, which only makes it faster (the full DP
    still decides). The bisection starts from the least period of the first-fit plans when it
    is lower than `upper`.
    """
    st = _stages(inst)
    if first_only:
        return _class_dp(st, classes, deadline, math.inf, True)
    upper = min(upper, _fill_upper(inst))
    plan = None
    if st.V > 200:
        block = math.ceil(st.V / 100)
        positions = np.r_[np.arange(0, st.V, block), st.V]
        coarse = st.coarse(positions)
        found = _class_dp(coarse, classes, deadline, upper, False, rtol=1e-3)
        if found is not None:
            plan = [int(positions[b]) for b in found[0]], found[1]
    return _class_dp(st, classes, deadline, upper, False, plan=plan)


def _class_dp(
    st: _Stages,
    classes: list[list[int]],
    deadline: float,
    upper: float,
    first_only: bool,
    plan: tuple[list[int], list[int]] | None = None,
    rtol: float = _RTOL,
) -> tuple[list[int], list[int]] | None:
    """`class_dp` on the tables `st`; `plan` is a known stage plan (hosts of a class in order)
    to start the bisection from, `rtol` its stopping tolerance."""
    V, K = st.V, st.K
    T = len(classes)
    sizes = [len(c) for c in classes]
    N = int(np.prod([n + 1 for n in sizes]))
    if (T + 1) * N * (V + 1) > _MAX_DP_CELLS:
        raise _not_applicable(
            f"the DP would need {(T + 1) * N * (V + 1):.3g} cells ({N} subsets/counts of "
            f"{len(st.tb.nodes)} nodes in {T} classes x {V + 1} prefixes)"
        )
    stride = np.cumprod([1] + [n + 1 for n in sizes[:-1]])
    counts = (np.arange(N)[:, None] // stride[None, :]) % (np.array(sizes) + 1)[None, :]
    level = counts.sum(axis=1)
    by_level = [np.flatnonzero(level == n) for n in range(sum(sizes) + 1)]
    hosts = np.full((T, max(sizes) + 1), -1, dtype=np.int64)  # -1: no further host
    for t, c in enumerate(classes):
        hosts[t, : len(c)] = c
    START = T
    source = st.tb.source
    # last[a, state]: the host of the last stage when it is of class a (-1: class a unused)
    last = np.where(counts.T >= 1, hosts[np.arange(T)[:, None], counts.T - 1], -1)
    last = np.vstack([last, np.full((1, N), source)])  # START: the input is at the source
    cut_pq = np.ascontiguousarray(st.cut.transpose(1, 2, 0))  # [p, q, i]: rows by node pair
    used = [k for c in classes for k in c]

    def run(period: float) -> tuple[list[int], list[int]] | None:
        ends = np.full((K, V + 1), -1, dtype=np.int64)
        for k in used:
            ends[k] = st.stage_ends(k, period)
        ok = cut_pq <= period  # hand-over i from p to q within the period
        # reach[a, state, i]: layers < i can be placed with the hosts counted in `state`, the
        # last stage on a host of class a, within the period
        reach = np.zeros((T + 1, N, V + 1), dtype=bool)
        reach[START, 0, 0] = True
        for n, rows_n in enumerate(by_level):
            if time.perf_counter() > deadline:
                raise _OutOfTime
            if n:  # a plan ends here: stop at the first (any plan within the period will do)
                for a in range(T):
                    done = rows_n[reach[a, rows_n, V]]
                    done = done[st.out[last[a, done]] <= period]
                    if len(done):
                        return backtrack(reach, ends, ok, a, int(done[0]))
            # every transition out of this level at once: (last class a, state, next class b)
            parts = []
            for a in range(T + 1):
                if a == START:
                    if n:
                        continue
                    rows = rows_n
                else:
                    rows = rows_n[last[a, rows_n] >= 0]
                    rows = rows[reach[a, rows, :V].any(axis=1)]
                for b in range(T):
                    sel = rows[counts[rows, b] < sizes[b]]
                    if len(sel):
                        parts.append((np.full(len(sel), a), sel, np.full(len(sel), b)))
            if not parts:
                break  # no state of this level is reached: nothing further is
            a_s, sub, b_s = (np.concatenate(x) for x in zip(*parts, strict=True))
            ps, qs = last[a_s, sub], hosts[b_s, counts[sub, b_s]]
            # only the reached prefixes can start a stage: starts in [i0, i1], ends up to j_hi
            src = reach[a_s, sub, :V]
            any_col = np.asarray(src.any(axis=0))
            i0 = int(np.argmax(any_col))
            i1 = V - 1 - int(np.argmax(any_col[::-1]))
            valid = src[:, i0 : i1 + 1] & ok[ps, qs, i0 : i1 + 1]
            e = np.where(valid, ends[qs, i0 : i1 + 1], -1)
            # layers i..j-1 fit q for every j <= e[i] (stage time and memory grow with j), and
            # e is not decreasing in i: j is reached iff the last valid start before j reaches it
            best = np.maximum.accumulate(e, axis=1)
            j_hi = int(best[:, -1].max())
            if j_hi <= i0:
                continue
            jcols = np.arange(i0 + 1, j_hi + 1)
            new = best[:, np.minimum(jcols - 1, i1) - i0] >= jcols[None, :]
            # the transitions into one state (from different last classes) merged
            key = b_s * N + sub + stride[b_s]
            order = np.argsort(key, kind="stable")
            key = key[order]
            first = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
            merged = np.logical_or.reduceat(new[order], first, axis=0)
            key = key[first]
            reach[key // N, key % N, i0 + 1 : j_hi + 1] = merged
        return None

    def backtrack(
        reach: np.ndarray, ends: np.ndarray, ok: np.ndarray, a: int, state: int
    ) -> tuple[list[int], list[int]]:
        """The stages of a reached final state, last to first: a predecessor (a', i) of
        (a, state, j) is any reached (a', state minus a's host, i) whose hand-over to q is
        within the period and whose stage i..j-1 fits q."""
        j, bounds, nodes = V, [V], []
        while a != START:
            q = int(last[a, state])
            nodes.append(q)
            state -= int(stride[a])
            for prev in range(T + 1):
                p = last[prev, state]
                if p < 0 or (prev == START and state):
                    continue
                cand = reach[prev, state, :j] & ok[p, q, :j] & (ends[q, :j] >= j)
                if cand.any():
                    break
            else:  # pragma: no cover - reach was set by such a transition
                raise AssertionError("class DP: no predecessor")
            a, j = prev, int(np.argmax(cand))
            bounds.append(j)
        return bounds[::-1], nodes[::-1]

    if first_only:
        try:
            return run(math.inf)
        except _OutOfTime:
            return None
    return _bisect(st, run, deadline, upper, plan, rtol)


class _OutOfTime(Exception):
    """A DP pass reached its deadline."""


def period_lower_bound(tb: Tables) -> float:
    """A lower bound on the period of every plan (stage plans included), s: the largest of the
    layers' fastest allowed times, and the total work over the nodes' capacity. Node k is at
    least rho_k times slower than the fastest node on each layer it may run (rho_k >= 1), so the
    layers on k take at least rho_k times their fastest times; with every load at most P,
    sum_v min_k c[v, k] <= P sum_k 1 / rho_k (exact when compute times are work / speed)."""
    V, K = len(tb.layers), len(tb.nodes)
    allowed = np.zeros((V, K), dtype=bool)
    for v, ks in enumerate(tb.allowed):
        allowed[v, ks] = True
    times = np.where(allowed, tb.compute_s, np.inf)
    fastest = times.min(axis=1, initial=np.inf)
    fastest = np.where(np.isfinite(fastest), fastest, 0.0)  # a layer with no node: no bound
    pos = fastest > 0
    with np.errstate(divide="ignore", invalid="ignore"):
        rho = np.min(np.where(allowed[pos], times[pos] / fastest[pos, None], np.inf), axis=0)
    # 1 / inf = 0: a node that may run only layers of no time adds no capacity (nor needs any)
    capacity = float(np.sum(1.0 / rho))
    work = float(fastest.sum()) / capacity if capacity > 0 else 0.0
    return max(float(fastest.max(initial=0.0)), work)


def _bisect(
    st: _Stages,
    run: Callable[[float], tuple[list[int], list[int]] | None],
    deadline: float,
    upper: float = math.inf,
    plan: tuple[list[int], list[int]] | None = None,
    rtol: float = _RTOL,
) -> tuple[list[int], list[int]] | None:
    """min period such that run(period) finds a plan, by geometric bisection to a relative
    `rtol`, from `plan` (a known plan) or else a first pass at `upper`; anytime."""
    best = plan
    try:
        if best is None and math.isfinite(upper):
            best = run(upper)
        if best is None:
            best = run(math.inf)
    except _OutOfTime:
        return best
    if best is None:
        return None
    hi = st.value(*best)
    lo = min(period_lower_bound(st.tb), hi) * (1 - 1e-12)
    if lo <= 0:
        lo = hi * 1e-9
    # first look just below the best plan (often near the optimum), doubling the step
    step: float | None = 0.005
    while hi > lo * (1 + 2 * rtol) and time.perf_counter() < deadline:
        # bisect to 0.1 %, then ask for anything strictly better than the best plan: its period
        # is one of finitely many loads, so that proves it optimal in one or a few passes
        if hi <= lo * 1.001:
            mid = hi * (1 - rtol)
        else:
            mid = math.sqrt(lo * hi) if step is None else max(math.sqrt(lo * hi), hi * (1 - step))
        try:
            found = run(mid)
        except _OutOfTime:
            break
        if found is None:
            lo, step = mid, None
        else:
            if st.value(*found) > mid * (1 + 1e-9):  # the bisection would never end
                raise AssertionError(f"stage DP: a plan above the period {mid!r} it was run at")
            best, hi = found, min(st.value(*found), mid)
            step = None if step is None else 2 * step
    return best


# --------------------------------------------------------------------------- linear DP (stages)


def linear_dp(
    inst: Instance, order: Sequence[int], last: int | None = None, deadline: float = math.inf
) -> tuple[list[int], list[int]] | None:
    """The textbook bottleneck DP over (layer, stages used): stage m runs on order[m], at most
    len(order) stages (+ a final stage on `last` when given), each a contiguous run of layers.

    f_m[j] = min_i max(f_{m-1}[i], cut(i, order[m-1] -> order[m]), stage(i..j-1 on order[m])),
    in O(K V^2) with V x V matrices. Returns (bounds, nodes) or None; raises _OutOfTime past
    `deadline` (perf_counter seconds).
    """
    st = _stages(inst)
    V, src = st.V, st.tb.source
    rows, cols = np.arange(V + 1)[:, None], np.arange(V + 1)[None, :]

    def stage(k: int) -> np.ndarray:  # (V+1) x (V+1): time of layers i..j-1 on k, inf if not
        pre = st.pre[k]
        fits = (cols > rows) & (cols <= st.fit_end[k][:, None])
        return np.where(fits, pre[None, :] - pre[:, None], np.inf)

    fs: list[np.ndarray] = []
    args: list[np.ndarray] = []
    prev_f = np.zeros(V + 1)  # f_{m-1}; unused for m = 0
    for m, k in enumerate(order):
        if time.perf_counter() > deadline:
            raise _OutOfTime
        if m == 0:
            f = np.maximum(st.cut[0, src, k], stage(k)[0])
            arg = np.zeros(V + 1, dtype=np.int64)
        else:
            cand = np.maximum(np.maximum(prev_f, st.cut[:, order[m - 1], k])[:, None], stage(k))
            arg = np.argmin(cand, axis=0)
            f = cand[arg, np.arange(V + 1)]
        fs.append(f)
        args.append(arg)
        prev_f = f
    # (value, stages used from order, start of the final stage on `last`)
    options: list[tuple[float, int, int | None]] = []
    if last is None:
        for m, k in enumerate(order):
            options.append((max(fs[m][V], st.out[k]), m + 1, None))
    else:
        s_last = stage(last)[:, V]
        options.append((max(st.cut[0, src, last], s_last[0], st.out[last]), 0, 0))
        for m, k in enumerate(order):
            cand = np.maximum(np.maximum(fs[m], st.cut[:, k, last]), s_last)
            i = int(np.argmin(cand))
            options.append((max(float(cand[i]), st.out[last]), m + 1, i))
    value, used, i_last = min(options, key=lambda o: o[0])
    if not math.isfinite(value):
        return None
    bounds, nodes = [V], []
    if last is not None and i_last is not None:
        bounds.append(i_last)
        nodes.append(last)
    j = bounds[-1]
    for m in range(used - 1, -1, -1):
        i = int(args[m][j]) if m else 0
        bounds.append(i)
        nodes.append(order[m])
        j = i
    if bounds[-1] != 0:
        return None
    return bounds[::-1], nodes[::-1]


def _identical_workers(tb: Tables) -> bool:
    col = tb.compute_s[:, 0]
    return all(
        np.array_equal(tb.compute_s[:, k], col) and tb.memory_bytes[k] == tb.memory_bytes[0]
        for k in range(len(tb.nodes))
    )


def _stage_orders(tb: Tables, by_speed: bool = False) -> list[tuple[list[int], int | None]]:
    """The node orders the linear DP tries: the source first, the source last (when it is the
    sink, that saves the output transfer), and without the source; the other nodes in index
    order, or `by_speed` fastest first (least total compute time)."""
    others = [k for k in range(len(tb.nodes)) if k != tb.source]
    if by_speed:
        total = tb.compute_s.sum(axis=0)
        others.sort(key=lambda k: total[k])
    return [([tb.source, *others], None), (others, tb.source), (others, None)]


def _best_linear(
    inst: Instance, deadline: float = math.inf, by_speed: bool = False
) -> tuple[list[int], list[int]] | None:
    """The best of the linear DP over `_stage_orders` done by `deadline` (perf_counter s).
    `by_speed` orders the nodes fastest first: a cheap stage plan on any nodes, exact only for
    identical workers."""
    st = _stages(inst)
    best = None
    for order, last in _stage_orders(st.tb, by_speed):
        if not order and last is None:
            continue
        try:
            found = linear_dp(inst, order, last, deadline)
        except _OutOfTime:
            break
        if found is not None and (best is None or st.value(*found) < st.value(*best)):
            best = found
    return best


# --------------------------------------------------------------------------- public methods


def _throughput_only(inst: Instance, method: str) -> None:
    if inst.objective.kind != "throughput":
        raise _not_applicable(f"{method} minimises the period (throughput objective only)")
    if inst.constraints.max_latency_s is not None:
        raise _not_applicable("a latency limit couples the stages, which the DP does not model")


def _result(
    inst: Instance, method: str, found: tuple[list[int], list[int]] | None, start: float
) -> Plan:
    from .baselines import method_plan

    st = _stages(inst)
    return method_plan(inst, method, st.assignment(*found) if found else None, start)


def pipeedge(inst: Instance, deadline: float = math.inf) -> Plan:
    """PipeEdge's DP on a chain (see the module docstring); a `Plan` costed by the evaluator."""
    start = time.perf_counter()
    _throughput_only(inst, "PipeEdge's DP")
    if not is_chain(inst):
        raise _not_applicable("PipeEdge's DP is for chains (some layer has a skip input)")
    found = class_dp(inst, node_classes(tables(inst)), deadline)
    return _result(inst, "pipeedge", found, start)


def edgeshard(inst: Instance, deadline: float = math.inf) -> Plan:
    """EdgeShard's throughput DP on a chain: the class DP with every node its own class."""
    start = time.perf_counter()
    _throughput_only(inst, "EdgeShard's throughput DP")
    if not is_chain(inst):
        raise _not_applicable("EdgeShard's DP is for chains (some layer has a skip input)")
    found = class_dp(inst, [[k] for k in range(len(tables(inst).nodes))], deadline)
    return _result(inst, "edgeshard", found, start)


def stages_dp(inst: Instance) -> Plan:
    """The textbook contiguous-stage bottleneck DP on a chain over identical workers."""
    start = time.perf_counter()
    _throughput_only(inst, "the stage DP")
    if not is_chain(inst):
        raise _not_applicable("the stage DP is for chains (some layer has a skip input)")
    if not _identical_workers(tables(inst)):
        raise _not_applicable("the stage DP assumes identical workers (compute and memory)")
    return _result(inst, "stages-dp", _best_linear(inst), start)


def pipedream(inst: Instance) -> Plan:
    """PipeDream's optimizer without replication, over the topological order of a DAG."""
    start = time.perf_counter()
    _throughput_only(inst, "PipeDream's optimizer")
    if not _identical_workers(tables(inst)):
        raise _not_applicable("PipeDream's optimizer assumes identical workers")
    return _result(inst, "pipedream", _best_linear(inst), start)


def edgeshard_latency(inst: Instance) -> Plan:
    """EdgeShard's latency DP on a chain: best[v][k] = least latency (or the objective's sum) of
    layers 0..v with v on k, from the best state of v-1 on any node whose path still leaves
    room on k; each state carries the memory its path uses on every node (EdgeShard's check),
    so with binding memory it is a heuristic, and exact (= `dp`) when memory cannot bind."""
    from .baselines import additive_weights, compute_costs, method_plan, pair_costs

    start = time.perf_counter()
    if not is_chain(inst):
        raise _not_applicable("EdgeShard's latency DP is for chains")
    if inst.constraints.max_latency_s is not None and inst.objective.kind != "latency":
        raise _not_applicable("a latency limit with another objective couples the layers")
    wl, we = additive_weights(inst)
    tb = tables(inst)
    V, K = len(tb.layers), len(tb.nodes)
    compute = compute_costs(tb, wl, we)
    pair = pair_costs(tb, wl, we)
    cap = np.array([math.inf if m is None else m for m in tb.memory_bytes])
    send0 = pair(tb.tensors[0].size_bytes)[tb.source]
    best = send0 + compute[0]
    params = np.zeros((K, K))  # params[k]: parameter bytes per node on the path ending at k
    work = np.zeros((K, K))
    for k in range(K):
        params[k, k] = tb.param_bytes[0]
        work[k, k] = tb.work_bytes[0]
    paths = [[k] for k in range(K)]
    for v in range(1, V):
        step = best[:, None] + pair(tb.tensors[v].size_bytes)  # p -> q
        new_best = np.full(K, np.inf)
        new_params, new_work, new_paths = params.copy(), work.copy(), list(paths)
        for q in range(K):
            if not np.isfinite(compute[v, q]):
                continue
            fits = params[:, q] + tb.param_bytes[v] + np.maximum(
                work[:, q], tb.work_bytes[v]
            ) <= cap[q] * (1 + 1e-9)
            cost = np.where(fits, step[:, q], np.inf)
            p = int(np.argmin(cost))
            if not np.isfinite(cost[p]):
                continue
            new_best[q] = cost[p] + compute[v, q]
            new_params[q] = params[p]
            new_work[q] = work[p]
            new_params[q, q] += tb.param_bytes[v]
            new_work[q, q] = max(work[p, q], tb.work_bytes[v])
            new_paths[q] = paths[p] + [q]
        best, params, work, paths = new_best, new_params, new_work, new_paths
    if tb.sink is not None:
        best = best + pair(tb.tensors[V].size_bytes)[:, tb.sink]
    k = int(np.argmin(best))
    if not np.isfinite(best[k]):
        return method_plan(inst, "edgeshard-latency", None, start)
    assignment = {tb.layers[v]: tb.nodes[paths[k][v]] for v in range(V)}
    return method_plan(inst, "edgeshard-latency", assignment, start)


# --------------------------------------------------------------------------- first fit


def first_fit(inst: Instance) -> dict[str, str] | None:
    """A memory-aware first fit: layers in topological order fill nodes one after the other,
    moving on when the next layer does not fit (memory, pins). Several node orders and fill
    targets are tried (by memory; by speed; the source first; a fill target of the node's share
    of the work, for the period), and everything on one of the fastest nodes; the best plan the
    evaluator finds feasible is returned, None if none is. O(orders x (V + evaluate))."""
    tb = tables(inst)
    best = None
    for place in _fill_plans(tb):
        a = {tb.layers[v]: tb.nodes[k] for v, k in enumerate(place)}
        key = _key(inst, a)
        if key[0] == 0 and (best is None or key < best[0]):
            best = (key, a)
    return best[1] if best else None


def _fill_plans(tb: Tables) -> list[tuple[int, ...]]:
    """The distinct placements (node per layer) first fit tries; each is a stage plan."""
    V, K = len(tb.layers), len(tb.nodes)
    allowed = np.zeros((V, K), dtype=bool)
    for v, ks in enumerate(tb.allowed):
        allowed[v, ks] = True
    if not len(allowed) or not allowed.any(axis=1).all():
        return []
    cap = [math.inf if m is None else m * (1 + 1e-9) for m in tb.memory_bytes]
    total = tb.compute_s.sum(axis=0)  # everything on k
    share = 1.0 / np.sum(1.0 / np.maximum(total, 1e-300))  # the period if work divided freely
    mem = np.array([c if math.isfinite(c) else 1e300 for c in cap])
    others = [k for k in range(K) if k != tb.source]
    orders = [
        sorted(range(K), key=lambda k: -mem[k]),  # largest memory first
        sorted(range(K), key=lambda k: total[k]),  # fastest first
        [tb.source, *sorted(others, key=lambda k: total[k])],
        [tb.source, *sorted(others, key=lambda k: -mem[k])],
    ]
    targets = [math.inf, share, share * 1.2]
    fits_all = [k for k in np.argsort(total) if allowed[:, k].all()]
    plans = [[int(k)] * V for k in fits_all[:3]]  # everything on one of the fastest nodes
    for order in orders:
        for target in targets:
            place = _fill(tb, allowed, cap, order, target)
            if place is not None:
                plans.append(place)
    return list({tuple(p): None for p in plans})  # distinct, in order


def _fill_upper(inst: Instance) -> float:
    """The least stage-DP period (`_Stages.value`, no evaluator) of the first-fit plans: a
    cheap upper bound to start the class DP's bisection from."""
    st = _stages(inst)
    best = math.inf
    for place in _fill_plans(st.tb):
        segs = _segments(list(place))
        best = min(best, st.value([g[0] for g in segs] + [len(place)], [g[2] for g in segs]))
    return best


def _fill(tb: Tables, allowed, cap, order: list[int], target: float) -> list[int] | None:
    """Layers in order onto order[0], then order[1], ...: move on when a layer is not allowed,
    does not fit the memory left, or would take the node's compute past `target` seconds (not
    on the last node: every layer must land somewhere)."""
    place = []
    pos, params, work, busy = 0, 0.0, 0.0, 0.0
    for v in range(len(tb.layers)):
        while pos < len(order):
            k = order[pos]
            w = max(work, tb.work_bytes[v])
            t = busy + tb.compute_s[v, k]
            over = t > target and busy > 0 and pos < len(order) - 1
            if allowed[v, k] and params + tb.param_bytes[v] + w <= cap[k] and not over:
                params, work, busy = params + tb.param_bytes[v], w, t
                place.append(k)
                break
            pos, params, work, busy = pos + 1, 0.0, 0.0, 0.0
        else:
            return None
    return place


# --------------------------------------------------------------------------- priced beam

_BEAM_WIDTH = 2  # partial plans kept per node of the last layer (more: slower, rarely better)
_PRICE_ROUNDS = 100  # at most this many price updates (the deadline usually ends them first)
_PRICE_DECAY = 0.98  # the step shrinks by this factor each round
_PRICE_STEP = 0.25  # the first step, in units of `scale` (below)
_PRICE_STALL = 30  # rounds without a better plan that end them


@dataclass(frozen=True)
class _SumCosts:
    """What the beam needs of a sum objective: weighted compute (V x K, inf where a layer may
    not run), each tensor's K x K transfer cost, and the tensors each layer reads."""

    compute: np.ndarray
    send: list[np.ndarray]
    reads: list[list[int]]

    @classmethod
    def of(cls, inst: Instance) -> _SumCosts:
        from .baselines import additive_weights, compute_costs, pair_costs

        wl, we = additive_weights(inst)
        tb = tables(inst)
        pair = pair_costs(tb, wl, we)
        reads: list[list[int]] = [[] for _ in tb.layers]
        for ti, t in enumerate(tb.tensors):
            for c in dict.fromkeys(t.consumers):  # a layer reading a tensor twice gets one copy
                reads[c].append(ti)
        return cls(compute_costs(tb, wl, we), [pair(t.size_bytes) for t in tb.tensors], reads)


def _beam(
    tb: Tables,
    sc: _SumCosts,
    prices: np.ndarray,
    width: int,
    fit: bool,
    deadline: float = math.inf,
) -> tuple[np.ndarray, float, np.ndarray] | None:
    """Partial plans of the layers in topological order, the `width` cheapest kept per node of
    the last layer placed. A plan's cost is exact for a sum objective without encodings: a
    layer pays its compute, plus each input tensor's route from its producer's node the first
    time the tensor reaches that node (§3: one copy per node), plus `prices[k]` per parameter
    byte on node k. With `fit` a layer goes only where the node's memory, as the partial plan
    uses it, still holds it (§6); without, only where it fits alone. Returns (node per layer,
    cost without the prices, memory used per node) of the cheapest full plan, None when no
    plan survives or `deadline` (perf_counter) passes."""
    V, K = len(tb.layers), len(tb.nodes)
    T = len(tb.tensors)
    cap = np.array([math.inf if m is None else m * (1 + 1e-9) for m in tb.memory_bytes])
    ks = np.arange(K)
    place = np.zeros((1, V), dtype=np.int64)
    holder = np.zeros((1, T), dtype=np.int64)  # the node that produced tensor ti
    holder[0, 0] = tb.source
    reached = np.zeros((1, T), dtype=np.int64)  # bit k: tensor ti is on node k
    reached[0, 0] = 1 << tb.source
    params = np.zeros((1, K))
    work = np.zeros((1, K))
    cost = np.zeros(1)  # without the prices
    value = np.zeros(1)  # with them: what the beam ranks by
    for v in range(V):
        if v % 64 == 63 and time.perf_counter() > deadline:
            return None
        add = np.broadcast_to(sc.compute[v], (len(cost), K)).copy()
        for ti in sc.reads[v]:
            there = (reached[:, ti][:, None] >> ks[None, :]) & 1
            add += np.where(there == 1, 0.0, sc.send[ti][holder[:, ti]])
        pv, wv = tb.param_bytes[v], tb.work_bytes[v]
        need = params + pv + np.maximum(work, wv) if fit else np.full_like(params, pv + wv)
        ok = (need <= cap[None, :]) & np.isfinite(add)
        priced = np.where(ok, value[:, None] + add + prices[None, :] * pv, np.inf)
        order = np.argsort(priced, axis=0, kind="stable")[:width]  # parents, per node q
        ps, qs = order.T.ravel(), np.repeat(ks, order.shape[0])
        keep = np.isfinite(priced[ps, qs])
        if not keep.any():
            return None
        ps, qs = ps[keep], qs[keep]
        rows = np.arange(len(ps))
        cost = cost[ps] + add[ps, qs]
        value = priced[ps, qs]
        place = place[ps]
        place[:, v] = qs
        holder = holder[ps]
        holder[:, v + 1] = qs
        reached = reached[ps]
        for ti in sc.reads[v]:
            reached[:, ti] |= 1 << qs
        reached[:, v + 1] = 1 << qs
        params = params[ps]
        params[rows, qs] += pv
        work = work[ps]
        work[rows, qs] = np.maximum(work[rows, qs], wv)
    if tb.sink is not None:  # the output to the sink, unless a consumer took it there
        out = tb.output + 1
        there = (reached[:, out] >> tb.sink) & 1
        last = np.where(there == 1, 0.0, sc.send[out][holder[:, out], tb.sink])
        cost, value = cost + last, value + last
    s = int(np.argmin(value))
    if not np.isfinite(cost[s]):
        return None
    return place[s], float(cost[s]), params[s] + work[s]


def priced_beam(inst: Instance, deadline: float, width: int = _BEAM_WIDTH) -> dict[str, str] | None:
    """A plan for a sum objective (latency, energy, weighted) under memory limits: the beam
    (`_beam`) over the topological order, first as is (EdgeShard's latency DP, generalised to
    DAGs and to `width` paths per node), then with a price per parameter byte on each node
    that memory binds, raised by subgradient steps where the beam run without memory checks
    overfills a node and lowered where it leaves room (Lagrangian relaxation of the memory
    rows, §6). A greedy pass in topological order fills the fast nodes with the first layers;
    the prices steer the layers whose parameters buy the least time elsewhere. Each priced
    round's beam with memory checks gives a plan; the cheapest is returned (None if no round
    found one; the first round runs whatever `deadline`, later ones stop at it, at
    `_PRICE_ROUNDS`, after `_PRICE_STALL` rounds without a better plan, or when the unchecked
    plan fits and no price sits on a node with room)."""
    tb = tables(inst)
    if tb.reasons or not inst.objective.additive:
        return None
    sc = _SumCosts.of(inst)
    K = len(tb.nodes)
    cap = np.array([math.inf if m is None else m for m in tb.memory_bytes])
    binds = np.array([tb.memory_may_bind(k) for k in range(K)])
    prices = np.zeros(K)
    found = _beam(tb, sc, prices, width, fit=True)
    best = None if found is None else (found[1], found[0])
    finite = sc.compute[np.isfinite(sc.compute)]
    positive = tb.param_bytes[tb.param_bytes > 0]
    # a price step moves a node's price by about one layer's cost per parameter byte when the
    # node is overfilled by its own memory (no rounds where no memory binds or none is priced)
    rounds = _PRICE_ROUNDS if binds.any() and len(finite) and len(positive) else 0
    scale = float(np.median(finite) / np.median(positive)) if rounds else 0.0
    step = _PRICE_STEP
    since = 0  # rounds since the best plan last improved
    for _ in range(rounds):
        free = _beam(tb, sc, prices, 1, fit=False, deadline=deadline)
        if free is None:
            break
        over = np.where(binds, (free[2] - cap) / np.where(binds, cap, 1.0), 0.0)
        since += 1
        if (over <= 1e-9).all():
            if best is None or free[1] < best[0]:
                best, since = (free[1], free[0]), 0  # it fits as it is
            if not np.any((prices > 0) & (over < -1e-9)):
                break  # the prices pay only for full nodes: no step would move them
        if since > _PRICE_STALL:
            break
        prices = np.maximum(0.0, prices + step * scale * over)
        step *= _PRICE_DECAY
        found = _beam(tb, sc, prices, width, fit=True, deadline=deadline)
        if found is not None and (best is None or found[1] < best[0]):
            best, since = (found[1], found[0]), 0
    return None if best is None else _named(tb, list(best[1]))


def priced_beam_plan(inst: Instance, time_limit_s: float = 1.0) -> Plan:
    """`priced_beam` as a `compare` method (`priced-beam`), its rounds within `time_limit_s`."""
    from .baselines import method_plan

    start = time.perf_counter()
    if not inst.objective.additive:
        raise _not_applicable("the priced beam minimises a sum over layers, not the period")
    return method_plan(inst, "priced-beam", priced_beam(inst, start + time_limit_s), start)


# --------------------------------------------------------------------------- local search


def _key(inst: Instance, assignment: dict[str, str]) -> tuple:
    """What the local search minimises: violations, the objective, then (for the period) the
    next busiest resources, so that moves off a shared bottleneck count as progress."""
    from .cost import evaluate

    ev = evaluate(inst, assignment)
    value = ev.objective(inst)
    if inst.objective.kind == "throughput":
        loads = sorted([*ev.node_compute_s.values(), *ev.link_load_s.values()], reverse=True)
        return (len(ev.violations), value, *loads[1:3])
    return (len(ev.violations), value)


def _segments(place: list[int]) -> list[tuple[int, int, int]]:
    """(start, end, node) of the maximal runs of consecutive layers on one node."""
    segs = []
    start = 0
    for v in range(1, len(place) + 1):
        if v == len(place) or place[v] != place[start]:
            segs.append((start, v, place[start]))
            start = v
    return segs


def local_search(inst: Instance, assignment: dict[str, str], deadline: float) -> dict[str, str]:
    """First-improvement descent from `assignment` until a local optimum or `deadline`
    (perf_counter seconds). Moves on the runs of consecutive layers: shift a boundary between
    two runs by 1, 2, 4, ... layers; move a run to another node; swap the nodes of two runs.
    Each candidate is costed by the evaluator (`_key`)."""
    tb = tables(inst)
    place = [tb.node_index[assignment[name]] for name in tb.layers]
    K = len(tb.nodes)

    def to_dict(p: list[int]) -> dict[str, str]:
        return {tb.layers[v]: tb.nodes[k] for v, k in enumerate(p)}

    best_key = _key(inst, to_dict(place))
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for cand in _moves(place, K, tb):
            if time.perf_counter() >= deadline:
                break
            key = _key(inst, to_dict(cand))
            if key < best_key:
                place, best_key, improved = cand, key, True
                break
    return to_dict(place)


def _moves(place: list[int], K: int, tb: Tables):
    segs = _segments(place)
    allowed = tb.allowed
    # boundary shifts, largest steps first
    for s in range(len(segs) - 1):
        a0, a1, ka = segs[s]
        b0, b1, kb = segs[s + 1]
        step = 1
        steps = []
        while step < max(a1 - a0, b1 - b0):
            steps.append(step)
            step *= 2
        for d in reversed(steps):
            if d < b1 - b0 and all(ka in allowed[v] for v in range(b0, b0 + d)):
                yield place[:b0] + [ka] * d + place[b0 + d :]
            if d < a1 - a0 and all(kb in allowed[v] for v in range(a1 - d, a1)):
                yield place[: a1 - d] + [kb] * d + place[a1:]
    # move a run to another node
    for a0, a1, ka in segs:
        for k in range(K):
            if k != ka and all(k in allowed[v] for v in range(a0, a1)):
                yield place[:a0] + [k] * (a1 - a0) + place[a1:]
    # swap the nodes of two runs
    for s in range(len(segs)):
        for r in range(s + 1, len(segs)):
            (a0, a1, ka), (b0, b1, kb) = segs[s], segs[r]
            if ka == kb:
                continue
            if all(kb in allowed[v] for v in range(a0, a1)) and all(
                ka in allowed[v] for v in range(b0, b1)
            ):
                cand = list(place)
                cand[a0:a1] = [kb] * (a1 - a0)
                cand[b0:b1] = [ka] * (b1 - b0)
                yield cand


_Contrib = tuple[list[tuple[int, float]], float, float, int, tuple[int, ...]]


class _Incremental:
    """A plan (`place`: node per layer, raw tensors) with the totals the evaluator computes, kept
    up to date under moves of a few layers: node loads, arc loads, latency, energy and memory.
    `try_move` costs a move by what it changes (the tensors its layers produce or consume), so a
    candidate costs O(its layers' degree) instead of a whole evaluation; the search's result is
    evaluated by `splitplan.evaluate` again before use. Plain Python floats: the arrays are short
    and numpy's per-call overhead would dominate."""

    def __init__(self, inst: Instance, place: list[int]) -> None:
        tb = tables(inst)
        self.tb = tb
        self.K = K = len(tb.nodes)
        self.place = list(place)
        self.period = inst.objective.kind == "throughput"
        w = None if self.period else inst.objective.weights()
        self.w_lat = 1.0 if w is None else w.latency
        self.w_energy = 0.0 if w is None else w.energy
        self.limit = inst.constraints.max_latency_s
        self.target: float | None = None  # a period to get every load under (`period_search`)
        self.above = 0.0  # the committed plan's total load above the target
        self.last_above = 0.0  # the last costed plan's, unsnapped (`_key`)
        self.c = tb.compute_s.tolist()
        self.power = tb.compute_power_w.tolist()
        self.param = tb.param_bytes.tolist()
        self.work = tb.work_bytes.tolist()
        # memory that cannot bind needs no bookkeeping
        self.cap = [m if tb.memory_may_bind(k) else None for k, m in enumerate(tb.memory_bytes)]
        self.any_cap = any(m is not None for m in self.cap)
        # the node classes whose idle hosts are interchangeable (`_idle_twins`); None: none
        classes = node_classes(tb)
        self.classes = classes if self.period and interchangeable(tb, classes) else None
        self._memo: dict[tuple, _Contrib] = {}
        self.touch: list[list[int]] = [[] for _ in tb.layers]  # tensors per layer
        for ti, t in enumerate(tb.tensors):
            for v in {t.producer, *t.consumers} - {-1}:
                self.touch[v].append(ti)
        # resources: nodes 0..K-1, then arcs K..K+A-1
        self.load = [0.0] * (K + len(tb.arcs))
        self.latency = self.energy = 0.0
        for v, k in enumerate(self.place):
            self.load[k] += self.c[v][k]
            self.latency += self.c[v][k]
            self.energy += self.c[v][k] * self.power[k]
        self.contrib = [self._contrib(ti, self.place) for ti in range(len(tb.tensors))]
        self.unreachable = 0
        for arcs, secs, joules, bad, _ in self.contrib:
            for i, x in arcs:
                self.load[i] += x
            self.latency += secs
            self.energy += joules
            self.unreachable += bad
        self.params = [0.0] * K
        for v, k in enumerate(self.place):
            self.params[k] += self.param[v]
        self.used = [self._used(k, self.place, self.params) for k in range(K)]
        self.last_load = self.load

    def _contrib(self, ti: int, place: list[int]) -> _Contrib:
        """Tensor ti's (resource, load) pairs on arcs, its time, energy, unreachable dests and
        the resources of those pairs (cached per tensor, source node and destination nodes)."""
        tb = self.tb
        t = tb.tensors[ti]
        src = tb.source if t.producer < 0 else place[t.producer]
        dests = {place[c] for c in t.consumers}
        if t.to_sink and tb.sink is not None:
            dests.add(tb.sink)
        dests.discard(src)
        memo = (ti, src, frozenset(dests))
        found = self._memo.get(memo)
        if found is None:
            found = self._memo[memo] = self._route(ti, src, dests)
        return found

    def _route(self, ti: int, src: int, dests: set[int]) -> _Contrib:
        tb = self.tb
        t = tb.tensors[ti]
        arcs: list[tuple[int, float]] = []
        secs = joules = 0.0
        bad = 0
        for d in dests:
            pc = tb.path_cost(t.size_bytes, src, d)
            if pc is None:
                bad += 1
                continue
            arcs += [(self.K + a, x) for a, x in zip(pc.arcs, pc.loads_s, strict=True)]
            secs += pc.time_s
            joules += pc.energy_j
        return arcs, secs, joules, bad, tuple(i for i, _ in arcs)

    def _used(self, k: int, place: list[int], params: list[float]) -> float:
        """Memory used on node k (parameters + largest working set, §6); 0 without a limit."""
        if self.cap[k] is None:
            return 0.0
        work = max((self.work[v] for v, q in enumerate(place) if q == k), default=0.0)
        return params[k] + work if work or params[k] else 0.0

    def _key(
        self,
        load: list[float],
        latency: float,
        energy: float,
        bad: int,
        used,
        changed: set[int] | None = None,
    ) -> tuple:
        """The search's key of a plan with these totals; `changed`: the resources whose load
        differs from the committed plan's (the load above a target is then updated from them)."""
        excess = 0.0
        if self.any_cap:
            excess = sum(
                max(0.0, u - m * (1 + 1e-9)) / m for u, m in zip(used, self.cap, strict=True) if m
            )
        over = 0.0 if self.limit is None else max(0.0, latency - self.limit * (1 + 1e-9))
        infeasible = bad + excess + over
        if not self.period:
            return (infeasible, self.w_lat * latency + self.w_energy * energy)
        top = max(load)
        if self.target is not None:  # total load above the target period, then the period
            target = self.target
            if changed is None:
                above = sum(x - target for x in load if x > target)
            elif top <= target:
                above = 0.0
            else:
                above = self.above
                for r in changed:
                    x0, x1 = self.load[r], load[r]
                    if x1 > target:
                        above += x1 - target
                    if x0 > target:
                        above -= x0 - target
                above = max(above, 0.0)
            self.last_above = above  # unsnapped: what a commit keeps
            # both on a grid of 1e-9 of the target: loads kept by additions and subtractions
            # drift by rounding, and a "move" that lowers them by that drift alone would
            # improve the key without end (snapped, each commit lowers one by >= a step)
            q = 1e-9 * target
            if q > 0:
                above, top = round(above / q) * q, round(top / q) * q
            return (infeasible, above, top)
        cut = top * (1 - 1e-12)
        at_top = sum(1 for x in load if x >= cut)
        below = max((x for x in load if x < cut), default=0.0)
        return (infeasible, top, at_top, below)

    def key(self) -> tuple:
        return self._key(self.load, self.latency, self.energy, self.unreachable, self.used)

    def set_target(self, target: float | None) -> None:
        """Minimise the total load above `target` (then the period) instead of the period."""
        self.target = target
        if target is not None:
            self.above = sum(x - target for x in self.load if x > target)

    def try_move(self, layers: range, k: int, commit: bool = False) -> tuple:
        """The key of the plan with `layers` moved to node k (committed when `commit`)."""
        place, c = self.place, self.c
        old = place[layers.start : layers.stop]
        load = list(self.load)
        params = list(self.params)
        d_lat = d_energy = 0.0
        for v, q in zip(layers, old, strict=True):
            load[q] -= c[v][q]
            load[k] += c[v][k]
            d_lat += c[v][k] - c[v][q]
            d_energy += c[v][k] * self.power[k] - c[v][q] * self.power[q]
            params[q] -= self.param[v]
            params[k] += self.param[v]
        place[layers.start : layers.stop] = [k] * len(old)
        bad = self.unreachable
        new = {}
        nodes = {k, *old}
        changed = set(nodes)
        for ti in {ti for v in layers for ti in self.touch[v]}:
            a0, s0, j0, b0, r0 = self.contrib[ti]
            a1, s1, j1, b1, r1 = new[ti] = self._contrib(ti, place)
            if a0 is not a1:
                for i, x in a0:
                    load[i] -= x
                for i, x in a1:
                    load[i] += x
                changed.update(r0)
                changed.update(r1)
            d_lat += s1 - s0
            d_energy += j1 - j0
            bad += b1 - b0
        used = self.used
        if self.any_cap:
            used = list(used)
            for q in nodes:
                used[q] = self._used(q, place, params)
        key = self._key(load, self.latency + d_lat, self.energy + d_energy, bad, used, changed)
        self.last_load = load  # the candidate's loads (`_best_first` prices a move by them)
        if commit:
            self.load, self.params, self.used = load, params, used
            self.latency += d_lat
            self.energy += d_energy
            self.unreachable = bad
            for ti, cont in new.items():
                self.contrib[ti] = cont
            if self.target is not None:
                self.above = self.last_above
        else:
            place[layers.start : layers.stop] = old
        return key


_WINDOWS = (1, 2, 3, 4, 6, 8, 12, 16)


def _long_windows(tb: Tables, target: float) -> dict[int, list[int]]:
    """Windows longer than `_WINDOWS`' for a descent towards a `target` period: {first layer:
    [lengths]} of each prefix (layers 0..i-1) and suffix (layers i..V-1) of the topological
    order cut off from the rest by one tensor (one is live between layers i-1 and i) whose
    crossing takes at most `target` on the fastest link (`cuts.crossing_time_s`) and whose work
    on the fastest node is at most half the target: moving it to another node sends only that
    tensor (and the output, or the input, back) and sheds its work off a bottleneck without
    making one of the node it goes to. On a ResNet the last blocks and the classifier, whose
    spine tensors are small, become one move."""
    from .cuts import crossing_time_s

    V = len(tb.layers)
    live = np.zeros(V + 1, dtype=int)  # live[i]: tensors live between layers i-1 and i
    which = np.full(V + 1, -1)
    for ti, t in enumerate(tb.tensors):
        last = max(t.consumers, default=t.producer)
        if t.to_sink:
            last = V
        first = t.producer + 1  # the raw input (producer -1) is live before layer 0
        if last >= first:
            live[first : last + 1] += 1
            which[first : last + 1] = ti
    times = crossing_time_s(tb)
    work = np.concatenate([[0.0], np.cumsum(tb.compute_s.min(axis=1))])  # fastest node's
    out: dict[int, list[int]] = {}
    longest = max(_WINDOWS)
    for i in range(1, V):
        if live[i] != 1 or times[which[i]] > target:
            continue
        # at most half the target's work: more is not shed off a bottleneck, it moves it
        if i > longest and work[i] <= 0.5 * target:
            out.setdefault(0, []).append(i)  # the prefix 0..i-1
        if V - i > longest and work[V] - work[i] <= 0.5 * target:
            out.setdefault(i, []).append(V - i)  # the suffix i..V-1
    return out


def period_search(
    inst: Instance,
    starts: list[dict[str, str]],
    deadline: float,
    lower: float = 0.0,
    best_first: Sequence[bool | str] = (),
) -> dict[str, str] | None:
    """Bisection on a target period between `lower` (a lower bound) and the best period found,
    each round a `window_search` for a plan with every load under the target: the first round
    from each of `starts`, the others from the best plan so far. `best_first[i]`: whether the
    rounds from start i descend best move first (`_best_first`, True or its pricing of slack,
    "slack" or "linear"; default False: in topological order); a round from the best plan
    descends as the round that found it; the first round of a start whose mode is "linear" aims
    at `lower`, and the best-first starts go first. Until `deadline`, or the
    target is within 1 % of the best. The best feasible plan (None if none is)."""
    from .cost import evaluate

    def period(a: dict[str, str]) -> float:
        ev = evaluate(inst, a)
        return ev.period_s if ev.feasible else math.inf

    modes = [best_first[i] if i < len(best_first) else False for i in range(len(starts))]
    scored = sorted(((period(a), i, a) for i, a in enumerate(starts)), key=lambda p: p[:2])
    best_p, first, best = scored[0]
    best_mode = modes[first]
    lo, hi = lower, best_p
    # the best-first starts first: where they apply (one node does most of the work) they are
    # what finds the plans, and their first rounds (aimed at `lower`) take the longest
    queue = [
        (a, modes[i]) for _, i, a in sorted(scored, key=lambda p: not isinstance(modes[p[1]], str))
    ]
    while time.perf_counter() < deadline and (not math.isfinite(hi) or hi > lo * 1.01):
        target = 0.5 * (lo + hi) if math.isfinite(hi) else math.inf
        origin, mode = queue.pop(0) if queue else (best, best_mode)
        if mode == "linear" and origin is not best and lo > 0:
            # the linear-priced start's first round aims at the bound: it sheds greedily what
            # it can (it never worsens its start), where the slack-priced one aims at the
            # midpoint; neither is best everywhere (ResNet-101: the first on 16 GPUs, the
            # second on 8, where the bound known here is 17 % below the plans)
            target = min(target, lo * (1 + 1e-3))
        found = window_search(inst, origin, deadline, target=target, best_first=mode)
        p = period(found)
        if p < best_p:
            best, best_p, best_mode = found, p, mode
        if p <= target:
            hi = p
        elif not queue:
            lo = target  # not found: look higher (a heuristic bound, not a proof)
    return best if math.isfinite(best_p) else None


def _may_help(state: _Incremental, hot: set[int], window: range) -> bool:
    """Whether moving `window` may lower the load above a target, the resources above it being
    `hot`: only a move of a layer on a node above it, or of one that sends or receives a tensor
    over an arc above it, can."""
    place, contrib, touch = state.place, state.contrib, state.touch
    return any(place[v] in hot for v in window) or any(
        r in hot for v in window for ti in touch[v] for r in contrib[ti][4]
    )


def _idle_hosts(state: _Incremental) -> list[list[int]]:
    """Per class of `state.classes` (none when it is None), its idle hosts: no layer, no load
    on them or their arcs."""
    tb, K = state.tb, state.K
    if state.classes is None:
        return []
    busy = [False] * K
    for k in state.place:
        busy[k] = True
    for r, arc in enumerate(tb.arcs):
        if state.load[K + r] > 0.0:
            busy[arc.tail] = busy[arc.head] = True
    return [[k for k in c if not busy[k] and state.load[k] == 0.0] for c in state.classes]


def _idle_twins(state: _Incremental) -> np.ndarray:
    """The nodes a move need not try: idle ones (`_idle_hosts`) after the first idle node of
    their class, when the period is the objective and the hosts of every class are
    interchangeable (`interchangeable`): a swap of two idle hosts of a class maps the network
    and the plan onto themselves, so moving a window onto either gives the same loads up to
    that relabelling, the same key (up to how the routes break ties)."""
    skip = np.zeros(state.K, dtype=bool)
    for idle in _idle_hosts(state):
        skip[idle[1:]] = True
    return skip


def window_search(
    inst: Instance,
    assignment: dict[str, str],
    deadline: float,
    target: float | None = None,
    best_first: bool | str = False,
) -> dict[str, str]:
    """First-improvement descent from `assignment` until no move improves or `deadline`: move a
    window of 1-16 consecutive layers (`_WINDOWS`, in the topological order) to another node
    that may run them all. Each candidate is costed incrementally (`_Incremental`); the key is
    infeasibility (memory excess, latency limit, unreachable routes), the objective, then for the
    period how many resources sit at it and the next busiest, so that moves off one of several
    equal bottlenecks count. Unlike `local_search` it splits runs, which is what offloading part
    of a residual block on a DAG takes. With a `target` period the key is instead the total load
    above the target (then the period): a move that puts a big tensor on a link to unload the
    bottleneck node is then not a trap, it can be undone once other moves made room.
    `best_first` (with a target): `_best_first`'s order instead of the topological one (True or
    "slack": slack priced by what is left of it; "linear": by the target). For the
    period, of the idle hosts of a class only the first is tried (`_idle_twins`)."""
    tb = tables(inst)
    V, K = len(tb.layers), len(tb.nodes)
    ok = np.zeros((V, K), dtype=bool)
    for v, ks in enumerate(tb.allowed):
        ok[v, ks] = True
    state = _Incremental(inst, [tb.node_index[assignment[name]] for name in tb.layers])
    state.set_target(target)
    if target is not None and best_first:
        pricing = best_first if isinstance(best_first, str) else "slack"
        _best_first(state, ok, target, deadline, pricing)
        return _named(tb, state.place)
    best = state.key()
    hot: set[int] = set()  # with a target: the resources above it
    skip = _idle_twins(state)

    def heat() -> None:
        skip[:] = _idle_twins(state)
        hot.clear()
        if target is not None:
            hot.update(r for r, x in enumerate(state.load) if x > target)

    def may_help(window: range) -> bool:
        return target is None or _may_help(state, hot, window)

    heat()
    long = _long_windows(tb, target) if target is not None else {}
    improved = True
    while improved and time.perf_counter() < deadline:
        improved = False
        for i in range(V):
            if time.perf_counter() >= deadline:
                break
            for n in (*(n for n in _WINDOWS if i + n <= V), *long.get(i, ())):
                window = range(i, i + n)
                if not may_help(window):
                    continue
                fits = ok[i : i + n].all(axis=0) & ~skip
                for k in np.flatnonzero(fits):
                    if skip[k] or all(q == k for q in state.place[i : i + n]):
                        continue
                    key = state.try_move(window, int(k))
                    if key < best:
                        best = state.try_move(window, int(k), commit=True)
                        improved = True
                        if target is not None and best[0] == 0 and best[1] == 0:
                            return _named(tb, state.place)  # every load under the target
                        heat()
                        if not may_help(window):
                            break
    return _named(tb, state.place)


_NEAR_BEST = 0.8  # `_best_first` commits a move within this factor of the next one's efficiency
_MAX_PASSED = 100  # or the best of this many re-costed moves


def _best_first(
    state: _Incremental, ok: np.ndarray, target: float, deadline: float, pricing: str = "slack"
) -> None:
    """`window_search`'s descent towards a `target` period, best move first: a scan costs every
    window move that may help (it touches a resource above the target) and keeps those that
    lower the key; they are then committed in order of efficiency, the load taken off above
    the target per unit of the slack the move uses up below it (Σ over the resources it loads
    of the added load over the target minus their load), each re-costed when it comes up
    (lazily: a move whose efficiency fell below the next one's goes back into the heap, one
    that no longer improves is dropped). Then a new scan, until one finds nothing. So the
    offloads that use the least of the links' capacity go first (a greedy for the knapsack of
    what the bottleneck sheds), instead of the first in topological order, which can fill a
    link with one big tensor where two small ones would shed twice the work. `pricing` "linear"
    prices a unit of slack at 1 / target wherever it is (Σ Δ_r / target) instead of at what is
    left of it: a resource nearly full is then not avoided, which packs differently (neither
    order is best everywhere: `improve_start` runs both)."""
    import heapq

    V = len(ok)
    best = state.key()
    hot: set[int] = set()
    linear = pricing == "linear"

    def may_help(window: range) -> bool:
        return _may_help(state, hot, window)

    def efficiency(key: tuple) -> tuple[float, float]:
        cost = 0.0
        for x0, x1 in zip(state.load, state.last_load, strict=True):
            if x1 > x0 and x0 < target:
                cost += (x1 - x0) / (target if linear else target - x0)
        return (best[0] - key[0], (best[1] - key[1]) / (cost + 1e-12))

    cls = {k: c for c, hosts in enumerate(state.classes or []) for k in hosts}
    idle: list[list[int]] = []

    def heat() -> None:
        hot.clear()
        hot.update(r for r, x in enumerate(state.load) if x > target)
        idle[:] = _idle_hosts(state)

    heat()
    long = _long_windows(state.tb, target)
    while time.perf_counter() < deadline:
        skip = _idle_twins(state)
        heap: list[tuple[float, float, int, int, int, int]] = []
        now = time.perf_counter()
        scan_deadline = now + 0.8 * (deadline - now)  # a cut scan still leaves time to commit
        for i in range(V):  # the scan
            if time.perf_counter() >= scan_deadline:
                break
            for n in (*(n for n in _WINDOWS if i + n <= V), *long.get(i, ())):
                window = range(i, i + n)
                if not may_help(window):
                    continue
                for node in np.flatnonzero(ok[i : i + n].all(axis=0) & ~skip).tolist():
                    if all(q == node for q in state.place[i : i + n]):
                        continue
                    key = state.try_move(window, node)
                    if key < best:
                        e0, e1 = efficiency(key)
                        j = 0 if node in cls and node in idle[cls[node]] else -1
                        heap.append((-e0, -e1, i, n, node, j))
        heapq.heapify(heap)
        twins = [list(hosts) for hosts in idle]  # idle at the scan
        moved = False
        runner_up: tuple[float, float, int, int, int] | None = None  # best re-costed since
        passed = 0  # the last commit, and how many were re-costed and put back
        while heap and time.perf_counter() < deadline:
            n0, n1, i, n, k, j = heapq.heappop(heap)
            if j >= 0 and k not in idle[cls[k]] and j + 1 < len(twins[cls[k]]):
                # scanned onto the first idle host of its class (j = 0), or the j-th, which is
                # busy now: the same move onto the next one stands for what the scan skipped
                heapq.heappush(heap, (n0, n1, i, n, twins[cls[k]][j + 1], j + 1))
            window = range(i, i + n)
            if all(q == k for q in state.place[i : i + n]) or not may_help(window):
                continue
            key = state.try_move(window, k)
            if not key < best:
                continue
            e0, e1 = efficiency(key)
            if heap and (e0, e1) < (-heap[0][0], -heap[0][1] * _NEAR_BEST):
                heapq.heappush(heap, (-e0, -e1, i, n, k, j))  # no longer the best: later
                if runner_up is None or (e0, e1) > runner_up[:2]:
                    runner_up = (e0, e1, i, n, k)
                passed += 1
                if passed < _MAX_PASSED:
                    continue
                i, n, k = runner_up[2:]  # the best of those: re-costed in this very plan
                window = range(i, i + n)
            runner_up, passed = None, 0
            best = state.try_move(window, k, commit=True)
            moved = True
            if best[0] == 0 and best[1] == 0:
                return  # every load under the target
            heat()
        if not moved:
            return


def _named(tb: Tables, place: list[int]) -> dict[str, str]:
    return {tb.layers[v]: tb.nodes[k] for v, k in enumerate(place)}


# --------------------------------------------------------------------------- MIP start


def best_start(inst: Instance, time_budget_s: float = 1.0) -> dict[str, str] | None:
    """The best plan of the fast constructions that apply, improved by local search within
    `time_budget_s` seconds (wall clock; a first pass of a DP may overrun it when nothing else
    is feasible): for the period, PipeEdge's class DP (anytime; over the topological order for
    DAGs), and where it finds nothing the linear DP over nodes by speed and first fit; otherwise
    first fit, where memory may bind `priced_beam` (half the budget), greedy (unless both found a
    feasible plan), and for a chain the exact chain DP when memory cannot bind and
    EdgeShard's latency DP when it can. None when none is feasible."""
    from .baselines import NotApplicable, chain_dp, greedy

    start = time.perf_counter()
    deadline = start + time_budget_s
    tb = tables(inst)
    if tb.reasons:
        return None
    cands: list[tuple[tuple, dict[str, str]]] = []  # (local-search key, plan)

    def attempt(make: Callable[[], object]) -> None:
        try:
            found = make()
        except NotApplicable:
            return
        plan: dict[str, str] | None = None
        if isinstance(found, tuple):
            plan = _stages(inst).assignment(*found)
        elif isinstance(found, dict):
            plan = found
        elif found is not None:  # a Plan
            plan = found.assignment if found.status != "infeasible" else None  # type: ignore[attr-defined]
        if plan:
            cands.append((_key(inst, plan), plan))

    def feasible() -> list[tuple[tuple, dict[str, str]]]:
        return [c for c in cands if c[0][0] == 0]

    kind = inst.objective.kind
    if kind == "throughput" and inst.constraints.max_latency_s is None:
        # the class DP first: exact over stage plans and anytime; then what the peers' DPs can
        # find beyond it, so that the start is never worse than theirs: EdgeShard's DP where
        # hosts of a class are not interchangeable, and PipeDream's linear DP on a DAG of
        # identical workers (its plan is costed there by cut sums, not the evaluator's period)
        classes = node_classes(tb)
        attempt(lambda: class_dp(inst, classes, start + 0.7 * time_budget_s))
        if not interchangeable(tb, classes) and len(classes) < len(tb.nodes):
            singles = [[k] for k in range(len(tb.nodes))]
            attempt(lambda: class_dp(inst, singles, start + 0.8 * time_budget_s))
        if not is_chain(inst) and _identical_workers(tb):
            attempt(lambda: _best_linear(inst, start + 0.85 * time_budget_s))
        if not feasible():
            attempt(lambda: _best_linear(inst, start + 0.9 * time_budget_s, by_speed=True))
            attempt(lambda: first_fit(inst))
    else:  # greedy minimises a sum: no use for the period
        attempt(lambda: first_fit(inst))
        if tb.memory_binds:
            # (its first round is greedy's pass with two paths kept per node: greedy only
            # where first fit and the beam did not both find a feasible plan)
            attempt(lambda: priced_beam(inst, start + 0.5 * time_budget_s))
        if len(feasible()) < 2:
            attempt(lambda: greedy(inst))
        if kind != "throughput" and is_chain(inst):
            try:
                plan = chain_dp(inst)
                if plan.status == "optimal":
                    return plan.assignment  # exact (memory cannot bind): nothing to improve
            except NotApplicable:
                pass
            attempt(lambda: edgeshard_latency(inst))
    if not feasible():
        # some plan of contiguous stages, one per node (hosts of a class in order), fits iff the
        # class DP finds one at an unbounded period: its first pass, whatever the budget
        attempt(lambda: class_dp(inst, node_classes(tb), first_only=True))
        if not feasible():
            attempt(lambda: _best_linear(inst, by_speed=True))
    if not feasible():
        return None
    best = min(feasible(), key=lambda c: c[0])[1]
    return improve_start(inst, best, start + 0.9 * time_budget_s, deadline)


_ONE_NODE = 2.0  # `improve_start`: the largest period ratio of everything on one node to the plan


def improve_start(
    inst: Instance, plan: dict[str, str], search_deadline: float, deadline: float
) -> dict[str, str]:
    """A feasible `plan` improved until `deadline` (perf_counter s): for the period, windows of
    layers moved off the busiest resources by bisection on the period (`period_search`) from the
    plan and from everything on the source (on a DAG of big activations the stage plans cross
    big tensors that a plan offloading parts of blocks avoids), and, best move first, from
    everything on the fastest node where that alone is feasible and within `_ONE_NODE` times
    the plan's period (one node does most of the work); for the other objectives
    `window_search`; both until `search_deadline`, then `local_search`. Never worse than `plan`."""
    tb = tables(inst)
    best = plan
    if inst.objective.kind == "throughput":
        starts: list[dict[str, str]] = [best]
        modes: list[bool | str] = [False]
        total = tb.compute_s.sum(axis=0)
        everywhere = [k for k in range(len(tb.nodes)) if all(k in ks for ks in tb.allowed)]
        one_node = None  # the fastest node, where everything on it is a start
        if everywhere:
            # everything on the fastest node (the source on a tie), offloaded best first, where
            # that node alone is within _ONE_NODE of the plan's period (it does most of the
            # work: what to offload is a knapsack over the links' capacity)
            fastest = min(everywhere, key=lambda k: (total[k], k != tb.source))
            whole = {name: tb.nodes[fastest] for name in tb.layers}
            alone = _key(inst, whole)
            if alone[0] == 0 and alone[1] <= _ONE_NODE * _key(inst, best)[1]:
                starts += [whole, whole]  # both pricings of the best-first descent
                modes += ["slack", "linear"]
                one_node = fastest
        if tb.source in everywhere and one_node != tb.source:
            # (everything on the source, descended in topological order; not when that is
            # the fastest node's start already, descended best first)
            starts.append({name: tb.nodes[tb.source] for name in tb.layers})
            modes.append(False)
        from . import cuts

        lower = max(period_lower_bound(tb), cuts.colocation_bound(tb))
        found = period_search(inst, starts, search_deadline, lower, modes)
        if found is not None and _key(inst, found) < _key(inst, best):
            best = found
    else:
        best = window_search(inst, best, search_deadline)
    return local_search(inst, best, deadline)


# Seconds per unit of model size (tensors x (arcs + nodes), about a third of the matrix's
# nonzeros) that building the MILP takes on the 2-core VM of the benchmarks under a load average
# of 5 (300x16: 77,000 units, 1.2 s; 1000x16: 256,000 units, 4.1 s). Too high a rate only gives
# the start time it does not use; too low one leaves a slow DP less time.
_BUILD_S_PER_UNIT = 1.5e-5


def start_budget_s(inst: Instance, time_limit_s: float | None) -> float:
    """The seconds `splitplan.solve` gives `best_start` out of its time limit (None: no limit,
    taken as 50 s). For the period (without a latency limit): half the limit, or 90 % when
    building the model alone is predicted to take over 40 % of it (then the solver would have
    no time and the start is the answer). The class DP stops when it has converged and the local
    search at a local optimum, so where they are fast the rest goes to the MILP; the share
    matters where they are slow, on long chains over many nodes, whose models are large too.
    Otherwise (binding memory) 10 % of the limit, at most 5 s."""
    limit = 50.0 if time_limit_s is None else time_limit_s
    if inst.objective.kind != "throughput" or inst.constraints.max_latency_s is not None:
        return min(5.0, 0.1 * limit)
    tb = tables(inst)
    build_s = _BUILD_S_PER_UNIT * len(tb.tensors) * (len(tb.arcs) + len(tb.nodes))
    return (0.9 if build_s > 0.4 * limit else 0.5) * limit
