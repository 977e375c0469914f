"""Valid inequalities that raise the MILP's bound without changing its optimum (formulation §9).

For the period (throughput) objective only: the row P >= a lower bound on the period computed
from the cost tables before solving (`period_lower_bound`: the busiest layer, the crossing,
co-location and work bounds, raised by the knapsack bound), and, below a known plan's period,
the co-location rows x[a,k] = x[b,k] (`colocation_rows`). `add_cuts` is the one call the model
builder makes. Every bound is at most the period of every feasible plan, and the co-location
rows keep every plan at least as good as the known one, so the optimum is unchanged: the
docstrings give the argument, and tests/test_cuts.py and tests/test_colocation.py check the
bounds and the MILP with them against brute force.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .cost import Tables, Tensor

# A combinatorial bound is computed in floating point from the same times the node rows sum; it is
# shrunk by this relative margin so that rounding can never make it exceed the optimum's P.
_MARGIN = 1e-9


@dataclass
class _Graph:
    """What the crossing bound reads of the DNN, computed once per instance."""

    anc: np.ndarray  # anc[u, a]: layer a is a strict ancestor of u
    desc: np.ndarray  # desc[w, d]: layer d is a strict descendant of w
    allowed: np.ndarray  # allowed[v, k]: layer v may run on node k
    in_bytes: np.ndarray  # per layer: its largest input tensor, in that tensor's smallest form
    out_bytes: np.ndarray  # per layer: its output's smallest form, 0 if it goes nowhere
    # §10: per layer, for each input tensor with encodings, its forms as (bytes, encoder time
    # per node), raw first with no encoder; and the forms of its output as (bytes, decoder time)
    coded_in: dict[int, list[list[tuple[float, np.ndarray]]]]
    coded_out: dict[int, list[tuple[float, np.ndarray]]]


def _smallest_bytes(t: Tensor) -> float:
    """The fewest bytes tensor t can cross the network in (raw or any of its encodings, §10)."""
    return min([t.size_bytes, *(f.size_bytes for f in t.encodings)])


def _graph(tb: Tables) -> _Graph:
    V = len(tb.layers)
    anc = np.zeros((V, V), dtype=bool)
    in_bytes, out_bytes = np.zeros(V), np.zeros(V)
    for t in tb.tensors:  # in topological order of their producers
        size = _smallest_bytes(t)
        for c in t.consumers:
            in_bytes[c] = max(in_bytes[c], size)
            if t.producer >= 0:
                anc[c] |= anc[t.producer]
                anc[c, t.producer] = True
        if t.producer >= 0 and (t.consumers or t.to_sink):
            out_bytes[t.producer] = size
    allowed = np.zeros((V, len(tb.nodes)), dtype=bool)
    for v, ks in enumerate(tb.allowed):
        allowed[v, ks] = True
    coded_in: dict[int, list[list[tuple[float, np.ndarray]]]] = {}
    coded_out: dict[int, list[tuple[float, np.ndarray]]] = {}
    none = np.zeros(len(tb.nodes))
    for t in tb.tensors:
        if not t.encodings:
            continue
        forms = [(f.size_bytes, f.encode_s) for f in t.encodings]
        for c in t.consumers:
            coded_in.setdefault(c, []).append([(t.size_bytes, none), *forms])
        if t.producer >= 0 and out_bytes[t.producer] > 0:
            coded_out[t.producer] = [
                (t.size_bytes, none),
                *((f.size_bytes, f.decode_s) for f in t.encodings),
            ]
    return _Graph(anc, anc.T.copy(), allowed, in_bytes, out_bytes, coded_in, coded_out)


def _work_weights(tb: Tables, S: list[int]) -> np.ndarray:
    """lambda_k >= 0 over the nodes of S, summing to 1, roughly proportional to their speed
    (1 / their total compute time over all layers): any such weights give a valid bound below."""
    speed = 1.0 / np.maximum(tb.compute_s[:, S].sum(axis=0), 1e-300)
    return speed / speed.sum()


def crossing_bound(
    tb: Tables,
    S: list[int],
    graph: _Graph | None = None,
    beat: float | None = None,
) -> float:
    """A lower bound on the period (s) from a set S of nodes that holds the source and/or the
    sink (§7).

    Work weights: for any lambda_k >= 0 over S with sum 1, P >= max_{k in S} load_k >=
    sum_{k in S} lambda_k load_k >= sum over the layers a run in S of min_{k in S} lambda_k
    c[a,k] =: W(layers). With S = {k0} this is the plain sum of c[a,k0].
    Let U be the layers run outside S. If U is empty, P >= W(all layers). Otherwise:
    - S holds the source: take u minimal in U (no ancestor of u in U). Every ancestor of u runs
      in S, and every input tensor of u (the raw input, held at the source, or an ancestor's
      output) is sent from S to the node of u: its route leaves S over an arc a out of S, which
      it loads by B_t / bw_a, B_t its smallest form (§10). So P >= B_t / max_{a out of S} bw_a
      and P >= W(anc(u)).
    - S holds the sink: take w maximal in U. Every descendant of w runs in S, and w's output,
      if it goes anywhere (to a consumer, all in S, or to the sink), enters S over an arc into
      S: P >= B_w / max_{a into S} bw_a and P >= W(desc(w)).
    - both: u and w of the same U satisfy "w is not a strict ancestor of u", so anc(u) and
      desc(w) are disjoint (a layer in both would put w before u): P >= W(anc(u)) + W(desc(w)).
    An option is skipped when it is impossible: u or w may not run outside S, a layer placed in
    S may run on no node of S, or the parameters placed in S exceed the memory of S (§6). The
    bound is the smallest value over the remaining options, so it is at most the period of every
    feasible plan.

    With `beat`, returns 0.0 as soon as one option shows that the bound cannot exceed `beat`
    (the O(|V|²) part is skipped; a caller keeping the largest bound loses nothing).
    """
    V = len(tb.layers)
    inside = np.zeros(len(tb.nodes), dtype=bool)
    inside[S] = True
    is_src, is_snk = bool(inside[tb.source]), tb.sink is not None and bool(inside[tb.sink])
    if not (is_src or is_snk):
        return 0.0
    g = graph if graph is not None else _graph(tb)
    anc, desc = g.anc, g.desc
    on_ok = np.any(g.allowed[:, inside], axis=1)
    off_ok = np.any(g.allowed[:, ~inside], axis=1)
    lam = _work_weights(tb, S)
    c0 = np.where(on_ok, (tb.compute_s[:, S] * lam[None, :]).min(axis=1), 0.0)
    mems = [tb.memory_bytes[k] for k in S]
    # The layers placed in S need their parameters plus, on the node holding the layer with the
    # largest working set, that working set: at most the memory of S in all.
    mem = None if any(m is None for m in mems) else float(sum(m for m in mems if m is not None))
    params, work = tb.param_bytes.astype(float), tb.work_bytes.astype(float)
    options = []
    if on_ok.all() and (mem is None or params.sum() + work.max() <= mem):
        options.append(float(c0.sum()))

    def side(closure: np.ndarray) -> tuple[np.ndarray, ...]:
        Cf = closure.astype(float)
        # every layer placed in S may run there
        ok = ~np.any(closure & ~on_ok[None, :], axis=1)
        wmax = np.where(closure, work[None, :], 0.0).max(axis=1, initial=0.0)
        return Cf @ c0, ok, Cf @ params, wmax

    bw_out = max(
        (a.bandwidth_bytes_per_s for a in tb.arcs if inside[a.tail] and not inside[a.head]),
        default=0.0,
    )
    bw_in = max(
        (a.bandwidth_bytes_per_s for a in tb.arcs if inside[a.head] and not inside[a.tail]),
        default=0.0,
    )
    out = _per_bandwidth(g.in_bytes, bw_out) if is_src else np.zeros(V)
    inn = _per_bandwidth(g.out_bytes, bw_in) if is_snk else np.zeros(V)
    if beat is not None:
        # The option "nothing in S": u without ancestors, w without descendants.
        roots = (~anc.any(axis=1)) & off_ok
        leaves = (~desc.any(axis=1)) & off_ok
        if (roots.any() or not is_src) and (leaves.any() or not is_snk):
            cheap = max(
                float(out[roots].min()) if is_src else 0.0,
                float(inn[leaves].min()) if is_snk else 0.0,
            )
            if cheap <= beat:
                return 0.0
    if is_src:
        lA, okA, pA, wA = side(anc)
        okA &= off_ok
        out = out.copy()
        for u, tensors in g.coded_in.items():  # §10: an encoded crossing costs S its encoder
            for forms in tensors:
                out[u] = max(out[u], _coded(forms, bw_out, lA[u], S, lam))
    if is_snk:
        lD, okD, pD, wD = side(desc)
        okD &= off_ok
        inn = inn.copy()
        for w, forms in g.coded_out.items():  # and a decoder on the receiving node in S
            inn[w] = max(inn[w], _coded(forms, bw_in, lD[w], S, lam))
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
    else:
        ok = okD & ((pD + wD <= mem) if mem is not None else True)
        if ok.any():
            options.append(float(np.maximum(inn, lD)[ok].min()))
    # inf only when every option needs an arc S lacks: no plan crosses S, nothing to bound
    bound = min(options, default=0.0)
    return bound if np.isfinite(bound) else 0.0


def _coded(
    forms: list[tuple[float, np.ndarray]], bw: float, load: float, S: list[int], lam: np.ndarray
) -> float:
    """min over a tensor's forms j of max(B_j / bw, load + min_{k in S} lambda_k codec_j[k]):
    what crossing S in the best form costs at least, the codec running on a node of S."""
    best = np.inf
    for size, codec in forms:
        link = size / bw if bw > 0 else (np.inf if size > 0 else 0.0)
        best = min(best, max(link, load + float((codec[S] * lam).min())))
    return best


def _per_bandwidth(size_bytes: np.ndarray, bw: float) -> np.ndarray:
    """size / bw in s; inf for a positive size when no arc has bandwidth (it cannot cross)."""
    if bw > 0:
        return size_bytes / bw
    return np.where(size_bytes > 0, np.inf, 0.0)


def crossing_sets(tb: Tables) -> list[list[int]]:
    """The node sets `period_lower_bound` tries: the nodes within d hops of the source, and of
    the sink, for each d short of covering every node (d = 0 is the source or sink alone)."""
    sets: list[list[int]] = []
    for root in sorted(k for k in (tb.source, tb.sink) if k is not None):
        hops = {root: 0}
        frontier = [root]
        while frontier:
            nxt = []
            for a in tb.arcs:
                for here, there in ((a.tail, a.head), (a.head, a.tail)):
                    if here in frontier and there not in hops:
                        hops[there] = hops[here] + 1
                        nxt.append(there)
            frontier = nxt
        for d in range(max(hops.values())):
            S = sorted(k for k, h in hops.items() if h <= d)
            if S not in sets:
                sets.append(S)
    return sets


def busiest_layer_s(tb: Tables) -> float:
    """max_v min_k c[v,k]: the node that runs the busiest layer is busy at least that long (s)."""
    return max(
        (float(tb.compute_s[v, ks].min()) for v, ks in enumerate(tb.allowed) if ks), default=0.0
    )


def crossing_time_s(tb: Tables) -> np.ndarray:
    """Per tensor, the least load (s) its crossing puts on an arc: its smallest form's bytes over
    the largest bandwidth of any arc (inf for a positive size on a network without arcs). A tensor
    sent from one node to another loads every arc of its route by its bytes over that arc's
    bandwidth (§7), so a plan in which it crosses has a period at least this long."""
    bw = max((a.bandwidth_bytes_per_s for a in tb.arcs), default=0.0)
    return _per_bandwidth(np.array([_smallest_bytes(t) for t in tb.tensors]), bw)


class _Groups:
    """Union-find over the layers plus two anchors (the source's and the sink's node), keeping
    per group the compute time it needs on each node that can hold it whole: inf on a node where
    one of its layers may not run, or whose memory its parameters and largest working set exceed
    (§6); an anchor may sit only on its node."""

    def __init__(self, tb: Tables) -> None:
        V, K = len(tb.layers), len(tb.nodes)
        self.parent = list(range(V + 2))
        self.src, self.snk = V, V + 1
        self.mem = np.array([np.inf if m is None else m for m in tb.memory_bytes], dtype=float)
        ok = np.zeros((V + 2, K), dtype=bool)
        for v, ks in enumerate(tb.allowed):
            ok[v, ks] = True
        ok[self.src, tb.source] = True
        if tb.sink is not None:
            ok[self.snk, tb.sink] = True
        self.ok = ok
        self.time = np.vstack([tb.compute_s, np.zeros((2, K))]).astype(float)
        self.params = np.append(tb.param_bytes.astype(float), [0.0, 0.0])
        self.work = np.append(tb.work_bytes.astype(float), [0.0, 0.0])
        # per node, the time of the groups that can sit on it alone (they all must)
        self.forced = np.zeros(K)
        self.need = 0.0  # max over groups of their least time on one node
        for g in range(V + 2):
            self._account(g, 1.0)

    def find(self, a: int) -> int:
        while self.parent[a] != a:
            self.parent[a] = self.parent[self.parent[a]]
            a = self.parent[a]
        return a

    def _times(self, g: int) -> np.ndarray:
        fits = self.ok[g] & (self.params[g] + self.work[g] <= self.mem * (1 + 1e-9))
        return np.where(fits, self.time[g], np.inf)

    def _account(self, g: int, sign: float) -> None:
        times = self._times(g)
        where = np.flatnonzero(np.isfinite(times))
        if len(where) == 1:
            self.forced[where[0]] += sign * times[where[0]]
        if sign > 0:
            self.need = max(self.need, float(times.min()))

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        self._account(a, -1.0)
        self._account(b, -1.0)
        self.parent[b] = a
        self.ok[a] &= self.ok[b]
        self.time[a] += self.time[b]
        self.params[a] += self.params[b]
        self.work[a] = max(self.work[a], self.work[b])
        self._account(a, 1.0)

    def least_period(self) -> float:
        """What the groups need at least: each whole on one node, and those that fit one node
        only, together on it."""
        return max(self.need, float(self.forced.max(initial=0.0)))


def _members(tb: Tables, t: Tensor) -> list[int]:
    """The layers (and anchors) a tensor joins when it may not cross: where it is produced (the
    source's anchor, index V, for the raw input), its consumers, and the sink's anchor (V + 1)
    for the output, as `_Groups` numbers them."""
    V = len(tb.layers)
    ends = [V if t.producer < 0 else t.producer, *t.consumers]
    if t.to_sink and tb.sink is not None:
        ends.append(V + 1)
    return ends


def colocation_bound(tb: Tables) -> float:
    """A lower bound on the period (s) from the tensors too big to cross (§9, the co-location
    bound).

    Suppose a plan has period T. A tensor whose `crossing_time_s` exceeds T does not cross: its
    producer (the source for the raw input) and its consumers (the sink for the output) run on
    one node. The tensors longer than T therefore tie the layers into groups that each run whole
    on one node: a group needs T >= its least compute time on a single node that may run all its
    layers and has memory for their parameters and largest working set, and the groups that fit
    only one node (an anchor or a pin puts them there) need T >= their sum on it. Hence T is at
    least the smallest value that passes this test; the groups only merge as T falls, so the test
    is monotone, and it is computed once per distinct tensor time: between two consecutive
    times the groups are fixed and the least passing T is max(lower time, what the groups need).
    """
    if len(tb.tensors) == 0:
        return busiest_layer_s(tb)
    groups = _Groups(tb)
    times = crossing_time_s(tb)
    order = np.argsort(-times, kind="stable")
    best, upper = np.inf, np.inf  # structure valid for T in [times[i], upper)
    i = 0
    while i < len(order):
        tau = float(times[order[i]])
        need = groups.least_period()
        if max(tau, need) < upper:
            best = min(best, max(tau, need))
        j = i
        while j < len(order) and times[order[j]] == tau:  # ties merge together
            ends = _members(tb, tb.tensors[order[j]])
            for e in ends[1:]:
                groups.union(ends[0], e)
            j += 1
        upper, i = tau, j
    need = groups.least_period()  # T below every tensor's time: all are tied
    if need < upper:
        best = min(best, need)
    return float(best) if np.isfinite(best) else 0.0


def _tied(tb: Tables, times: np.ndarray, T: float) -> _Groups:
    """The groups of layers that the tensors with crossing time above T tie together."""
    groups = _Groups(tb)
    for ti in np.flatnonzero(times > T):
        ends = _members(tb, tb.tensors[ti])
        for e in ends[1:]:
            groups.union(ends[0], e)
    return groups


def _pivot_test(tb: Tables, times: np.ndarray, T: float, rounding: bool = True) -> bool:
    """False only if no plan has period <= T (the test of `knapsack_bound`)."""
    g = _tied(tb, times, T)
    if g.least_period() > T * (1 + 1e-9):
        return False
    V = len(tb.layers)
    src, snk = g.find(g.src), g.find(g.snk)
    roots = {g.find(v) for v in range(V)} | {src, snk}
    if tb.sink is None:
        roots.discard(snk)
    need = {r: g._times(r) for r in roots}
    pivot = max(roots, key=lambda r: float(need[r].min()))
    # per tensor: the group that makes it and the groups that use it
    ends = []
    for t in tb.tensors:
        e = _members(tb, t)
        ends.append((g.find(e[0]), {g.find(x) for x in e[1:]}))
    for h in np.flatnonzero(np.isfinite(need[pivot])):
        home = {pivot}
        if h == tb.source:
            home.add(src)
        if h == tb.sink:
            home.add(snk)
        if _knapsack_fails(tb, times, T, int(h), home, need, ends, rounding):
            continue
        return True
    return False


def _rounded_budgets(times: np.ndarray, T: float, most: int = 8) -> list[tuple[np.ndarray, float]]:
    """The rounded budget rows of `_knapsack_fails`, as (units per tensor, units per arc).

    If the crossings on one arc have loads l_i with Σ l_i <= T, and m_i are integers with
    0 <= m_i < α l_i (strictly, where m_i > 0), then Σ m_i < α T, so Σ m_i <= ceil(α T) - 1.
    With m_i = floor(α τ_i (1 - 1e-9)) (τ_i <= l_i; the factor makes the inequality strict and
    absorbs the rounding of the product) this holds for any α > 0. Two families: α = q/T for
    q = 2..6, where α T = q exactly by definition and each arc takes q - 1 units (q = 2: at most
    one crossing longer than T/2 per arc, the bin-packing count that sums of times miss); and
    α a hair above 1/τ for the distinct crossing times τ <= T carrying the most time, where
    ceil is taken of α T (1 + 1e-9), a hair up against rounding (a crossing of exactly j τ
    counts j units; the ResNets' activations are multiples of one size)."""
    shrink = 1.0 - 1e-9
    ok = times[(times > 0) & (times <= T) & np.isfinite(times)]
    values, counts = np.unique(ok, return_counts=True)
    heavy = values[np.argsort(-(values * counts), kind="stable")[:most]]
    scales = [(q / T, float(q - 1)) for q in range(2, 7)]
    for tau in heavy:
        alpha = (1.0 + 1e-7) / float(tau)
        scales.append((alpha, float(np.ceil(alpha * T * (1.0 + 1e-9)) - 1.0)))
    finite = times[np.isfinite(times)]
    rows = []
    for alpha, cap in scales:
        units = np.floor(alpha * finite * shrink)
        if units.any():
            rows.append((units, cap))
    return rows


def _knapsack_fails(
    tb: Tables,
    times: np.ndarray,
    T: float,
    h: int,
    home: set[int],
    need: dict[int, np.ndarray],
    ends: list[tuple[int, set[int]]],
    rounding: bool = True,
) -> bool:
    """Whether, with the groups of `home` on node h, no choice of the other groups to keep on h
    or send away keeps h's compute and its arcs' traffic at most T: the LP relaxation of that
    choice (y_G in [0, 1] away; a tensor's traffic d_t >= y_user - y_maker out of h, and
    d'_t >= y_maker - y_user into h; Σ τ_t d_t <= (arcs out of h) x T, Σ τ_t d'_t <= (arcs into
    h) x T, and with `rounding` the rows Σ m_t d_t <= (arcs out of h) x (units per arc) of
    `_rounded_budgets`, likewise into h) leaves more than T on h even at its
    best. HiGHS solves the LP, but only its duals are used: any multipliers give, by weak
    duality over the variables' box, an upper bound on the time sent away (`_dual_bound`), and
    that bound is what is compared with T; a dual ray likewise proves an infeasible LP."""
    import highspy

    if any(not np.isfinite(need[r][h]) for r in home):
        return True
    groups = sorted(need)
    col = {r: i for i, r in enumerate(groups)}
    others = np.ones(len(tb.nodes), dtype=bool)
    others[h] = False
    lower: list[float] = []
    upper: list[float] = []
    gain: list[float] = []
    total = 0.0
    for r in groups:
        on_h = float(need[r][h])
        away_ok = bool(np.isfinite(need[r][others]).any())
        if r in home or not away_ok:
            y = (0.0, 0.0)  # on h
            total += on_h  # inf when no node can hold it: then no plan at all
        elif not np.isfinite(on_h):
            y, on_h = (1.0, 1.0), 0.0  # away
        else:
            y = (0.0, 1.0)
            total += on_h
        lower.append(y[0])
        upper.append(y[1])
        gain.append(-on_h)  # minimise minus the time sent away
    if not np.isfinite(total):
        return True
    if sum(-g for g, u in zip(gain, upper, strict=True) if u == 0.0) > T * (1 + 1e-6):
        return True  # the groups that must stay on h alone need more than T
    n = len(groups)
    starts, index, value, row_lo, row_up = [0], [], [], [], []
    for ti, (made, used) in enumerate(ends):
        d_out, d_in = n + 2 * ti, n + 2 * ti + 1
        for u in used - {made}:
            # d_out >= y_u - y_made, d_in >= y_made - y_u
            for d, plus, minus in ((d_out, u, made), (d_in, made, u)):
                index += [d, col[plus], col[minus]]
                value += [1.0, -1.0, 1.0]
                starts.append(len(index))
                row_lo.append(0.0)
                row_up.append(np.inf)
    n_out = sum(1 for a in tb.arcs if a.tail == h)
    n_in = sum(1 for a in tb.arcs if a.head == h)
    finite = np.flatnonzero(np.isfinite(times))
    # (coefficient per tensor, capacity per arc) of each budget row, out of h and into h alike
    budgets = [(times[finite], T)]
    if rounding:
        budgets += _rounded_budgets(times, T)
    # each row: the columns d_out (shift 0) and/or d_in (1) it sums, and its arcs at h
    sides = [((0,), n_out), ((1,), n_in)] if rounding else [((0, 1), n_out + n_in)]
    for coef, cap in budgets:
        nz = coef > 0
        for shifts, arcs in sides:
            for shift in shifts:
                index += list(n + 2 * finite[nz] + shift)
                value += list(coef[nz])
            starts.append(len(index))
            row_lo.append(-np.inf)
            row_up.append(arcs * cap)
    c = np.array(gain + [0.0] * (2 * len(ends)))
    lo_col = np.array(lower + [0.0] * (2 * len(ends)))
    up_col = np.array(upper + [1.0] * (2 * len(ends)))
    A = (np.array(starts, dtype=np.int32), np.array(index, dtype=np.int32), np.array(value))
    r_lo, r_up = np.array(row_lo), np.array(row_up)
    solver = _run_lp(c, lo_col, up_col, r_lo, r_up, A, rowwise=True)
    status = solver.getModelStatus()
    if status == highspy.HighsModelStatus.kInfeasible:
        # the groups that must be away already carry more than the arcs can: a dual ray proves it
        _, has_ray, ray = solver.getDualRay()
        if not has_ray:
            return False
        ray = np.asarray(ray, dtype=float)
        zero = np.zeros(len(c))
        return any(
            _dual_bound(zero, A, r_lo, r_up, lo_col, up_col, sign * ray) > 0.0 for sign in (1, -1)
        )
    if status != highspy.HighsModelStatus.kOptimal:
        return False  # no verdict: assume a plan exists
    duals = np.asarray(solver.getSolution().row_dual, dtype=float)
    # the least -(time sent away) any plan can reach: >= the LP's optimum, from the duals alone
    floor = _dual_bound(c, A, r_lo, r_up, lo_col, up_col, duals)
    left = total + floor
    return left > T * (1 + 1e-6) + 1e-9 * total


def _dual_bound(
    c: np.ndarray,
    A: tuple[np.ndarray, np.ndarray, np.ndarray],
    row_lo: np.ndarray,
    row_up: np.ndarray,
    col_lo: np.ndarray,
    col_up: np.ndarray,
    pi: np.ndarray,
) -> float:
    """A lower bound on min c·x over row_lo <= A x <= row_up, col_lo <= x <= col_up (A row-wise:
    start, index, value), valid for any multipliers pi (weak duality): every such x has
    pi·(A x) >= Σ_i (pi_i row_lo_i if pi_i > 0 else pi_i row_up_i) =: beta, so c·x >=
    min over the box of (c - Aᵀpi)·x + beta. A multiplier whose side of its row is infinite
    is dropped (0). With c = 0, a positive value proves the rows infeasible (a Farkas ray).
    -inf where the box is unbounded in a direction that lowers the value."""
    start, index, value = A
    pi = np.where((pi > 0) & np.isfinite(row_lo) | (pi < 0) & np.isfinite(row_up), pi, 0.0)
    beta = float(np.where(pi > 0, pi * np.where(np.isfinite(row_lo), row_lo, 0.0), 0.0).sum())
    beta += float(np.where(pi < 0, pi * np.where(np.isfinite(row_up), row_up, 0.0), 0.0).sum())
    rows = np.repeat(np.arange(len(start) - 1), np.diff(start))
    reduced = c - np.bincount(index, weights=value * pi[rows], minlength=len(c))
    at = np.where(reduced > 0, col_lo, col_up)
    if not np.isfinite(at[reduced != 0]).all():
        return -np.inf
    return float((reduced * np.where(reduced != 0, at, 0.0)).sum() + beta)


def _run_lp(
    c: np.ndarray,
    col_lo: np.ndarray,
    col_up: np.ndarray,
    row_lo: np.ndarray,
    row_up: np.ndarray,
    A: tuple[np.ndarray, np.ndarray, np.ndarray],
    rowwise: bool,
):
    """HiGHS, quiet, run on the LP min c.x s.t. row_lo <= A x <= row_up, col_lo <= x <= col_up
    (infinite bounds as numpy infs; A as (starts, index, value), by rows or by columns). Returns
    the `highspy.Highs` object, for its status, solution, duals or dual ray: the callers draw
    only what a certificate proves (weak duality), never HiGHS' word alone."""
    import highspy

    def finite(x: np.ndarray) -> np.ndarray:
        return np.clip(np.asarray(x, dtype=float), -highspy.kHighsInf, highspy.kHighsInf)

    lp = highspy.HighsLp()
    lp.num_col_, lp.num_row_ = len(c), len(row_lo)
    lp.col_cost_ = np.asarray(c, dtype=float)
    lp.col_lower_, lp.col_upper_ = finite(col_lo), finite(col_up)
    lp.row_lower_, lp.row_upper_ = finite(row_lo), finite(row_up)
    fmt = highspy.MatrixFormat
    lp.a_matrix_.format_ = fmt.kRowwise if rowwise else fmt.kColwise
    lp.a_matrix_.start_ = np.asarray(A[0], dtype=np.int32)
    lp.a_matrix_.index_ = np.asarray(A[1], dtype=np.int32)
    lp.a_matrix_.value_ = np.asarray(A[2], dtype=float)
    solver = highspy.Highs()
    solver.setOptionValue("output_flag", False)
    solver.passModel(lp)
    solver.run()
    return solver


def knapsack_bound(
    tb: Tables, lower: float = 0.0, rtol: float = 1e-3, rounding: bool = True
) -> float:
    """A lower bound on the period (s) from the biggest group of tied layers and the arcs of the
    node that runs it (§9, the knapsack bound).

    Suppose a plan has period at most T. The tensors whose `crossing_time_s` exceeds T tie the
    layers into groups that each run whole on one node (`colocation_bound`); take the group with
    the largest least time, the pivot, and the node h that runs it (any node that can: the test
    must fail on every one). The groups tied to the source run on the source and those tied to
    the sink on the sink. Every other group runs on h or away from it. A tensor made on h and
    used by groups away from h leaves h over an arc out of h (the first arc of its route),
    loading it by at least its crossing time τ_t, once however many groups use it (counted once
    here, which only undercounts); a tensor made away from h and used on h enters over an arc
    into h. Every arc carries at most T, so the crossings out of h sum to at most (arcs out of
    h) x T, and into h likewise; with `rounding`, whole crossings per arc are counted too
    (`_rounded_budgets`); the time of the groups left on h is at most T. The LP relaxation of
    "away or not" (`_knapsack_fails`: along a path away from h it pays for the farthest group
    sent away, so a group reached through others is not sent away for free; its verdict is
    drawn from a weak-duality bound, not from the solver's objective) maximises the time sent
    away; if even its best leaves more than T on h, for every h, no plan has period <= T.
    Any T that fails the test is thus a lower bound; bisection to a relative `rtol` returns the
    largest failing T it met. `rounding=False` is the first version (all arcs at h in one
    pooled row), kept to measure the difference. `lower` is a known bound to
    start from.
    """
    times = crossing_time_s(tb)
    lo = lower
    if lo <= 0 or not (times > lo).any() or _pivot_test(tb, times, lo, rounding):
        return lower  # (no tensor too big to cross at the known bound: nothing to tie)
    hi = 2.0 * lo
    while not _pivot_test(tb, times, hi, rounding):
        lo, hi = hi, 2.0 * hi
        if hi > 1e6 * lower:  # failing everywhere: no plan at all; claim nothing new
            return lower
    while hi > lo * (1 + rtol):
        mid = 0.5 * (lo + hi)
        if _pivot_test(tb, times, mid, rounding):
            hi = mid
        else:
            lo = mid
    return lo


def work_bound(tb: Tables) -> float:
    """A lower bound on the period (s) from the work every node shares (§9, the work bound).

    For any weights lambda_k >= 0 summing to 1 and mu_k >= 0 (mu_k = 0 on a node without a
    memory limit), every plan satisfies P >= max_k load_k >= Σ_k lambda_k Σ_a c[a,k] x[a,k]
    and 0 >= Σ_k mu_k (Σ_a param_a x[a,k] - mem_k) (the parameters on a node fit its memory,
    §6), so P >= Σ_a min_{k allowed} (lambda_k c[a,k] + mu_k param_a) - Σ_k mu_k mem_k. The
    weights come from the duals of the LP "spread the layers fractionally over the nodes,
    within memory, for the least largest load" (HiGHS), whose optimum this bound then equals;
    whatever the LP returns, the bound is evaluated from the formula, so it is valid for any
    weights (the busiest layer and speed-proportional weights are the fallback).
    """
    c = np.where(tb.compute_s > 0, tb.compute_s, 0.0)
    V, K = c.shape
    allowed = np.zeros((V, K), dtype=bool)
    for v, ks in enumerate(tb.allowed):
        allowed[v, ks] = True
    if V == 0 or not allowed.any(axis=1).all():
        return 0.0
    params = tb.param_bytes.astype(float)
    mem = np.array(
        [
            m if m is not None and tb.memory_may_bind(k) else np.inf
            for k, m in enumerate(tb.memory_bytes)
        ],
        dtype=float,
    )

    def value(lam: np.ndarray, mu: np.ndarray) -> float:
        if lam.sum() <= 0 or (lam < 0).any() or (mu < 0).any():
            return 0.0
        lam, mu = lam / lam.sum(), mu / lam.sum()
        mu = np.where(np.isfinite(mem), mu, 0.0)
        per = np.where(allowed, lam[None, :] * c + mu[None, :] * params[:, None], np.inf)
        return float(per.min(axis=1).sum() - (mu * np.where(np.isfinite(mem), mem, 0.0)).sum())

    best = value(_work_weights(tb, list(range(K))), np.zeros(K))
    duals = _work_lp_duals(c, allowed, params, mem)
    if duals is not None:
        best = max(best, value(*duals))
    return best


def _work_lp_duals(
    c: np.ndarray, allowed: np.ndarray, params: np.ndarray, mem: np.ndarray
) -> tuple[np.ndarray, np.ndarray] | None:
    """(lambda, mu) from the duals of min P s.t. Σ_k x[a,k] = 1, Σ_a c[a,k] x[a,k] <= P,
    Σ_a param_a x[a,k] <= mem_k (rows scaled to units near 1), or None without an optimum."""
    import highspy

    V, K = c.shape
    unit = float(c.max()) if c.max() > 0 else 1.0
    vs, ks = np.nonzero(allowed)
    n = len(vs)  # columns: x over the allowed pairs, then P
    limited = np.flatnonzero(np.isfinite(mem))
    mem_row = np.full(K, -1)
    mem_row[limited] = V + K + np.arange(len(limited))
    # column-wise: x[v,k] is in v's assignment row, k's load row and k's memory row (if any)
    has_mem = mem_row[ks] >= 0
    per_col = 2 + has_mem.astype(int)
    start = np.append(0, np.cumsum(per_col))
    index = np.empty(start[-1] + K, dtype=np.int32)
    value = np.empty(start[-1] + K)
    index[start[:-1]], value[start[:-1]] = vs, 1.0
    index[start[:-1] + 1], value[start[:-1] + 1] = V + ks, c[vs, ks] / unit
    at = start[:-1][has_mem] + 2
    index[at] = mem_row[ks[has_mem]]
    value[at] = params[vs[has_mem]] / mem[ks[has_mem]]
    index[start[-1] :], value[start[-1] :] = V + np.arange(K), -1.0  # P in every load row
    solver = _run_lp(
        np.append(np.zeros(n), 1.0),
        np.zeros(n + 1),
        np.append(np.ones(n), np.inf),
        np.concatenate([np.ones(V), np.full(K + len(limited), -np.inf)]),
        np.concatenate([np.ones(V), np.zeros(K), np.ones(len(limited))]),
        (np.append(start, start[-1] + K).astype(np.int32), index, value),
        rowwise=False,
    )
    if solver.getModelStatus() != highspy.HighsModelStatus.kOptimal:
        return None
    dual = np.asarray(solver.getSolution().row_dual)
    lam = np.abs(dual[V : V + K])
    mu = np.zeros(K)
    # a memory row of node k in units of mem_k: its dual per byte is |dual| / mem_k, in units
    # of `unit` seconds: back to the load rows' units (s) by the same factor as lambda
    mu[limited] = np.abs(dual[V + K :]) * unit / mem[limited]
    return lam, mu


def period_lower_bound(tb: Tables) -> float:
    """The largest of the combinatorial period bounds (s): the busiest layer's best time
    max_v min_k c[v,k], `crossing_bound` over `crossing_sets` and `colocation_bound`, raised by
    `knapsack_bound` from there; shrunk by a relative 1e-9 against rounding."""
    bound = max(busiest_layer_s(tb), colocation_bound(tb), work_bound(tb))
    graph = _graph(tb)
    for S in crossing_sets(tb):
        bound = max(bound, crossing_bound(tb, S, graph, beat=bound))
    bound = max(bound, knapsack_bound(tb, bound))
    return bound * (1.0 - _MARGIN)


# A tensor is tied to its node only when crossing would cost more than the incumbent's period by
# this relative margin, so that rounding can never tie a tensor the incumbent itself sends.
_TIE_MARGIN = 1e-6


def colocation_rows(ctx, incumbent_s: float) -> dict:
    """Rows x[a,k] = x[b,k] (every node k) for the ends a, b of each tensor whose crossing time
    exceeds the period `incumbent_s` of a known feasible plan (§9, co-location below an
    incumbent): a plan that sends such a tensor has a longer period than the incumbent. An anchor
    end (the raw input's source, the output's sink) is the constant 1 on its node, 0 elsewhere.
    """
    tb, x = ctx.tb, ctx.x
    V = len(tb.layers)
    times = crossing_time_s(tb)
    anchor_node = {V: tb.source, V + 1: tb.sink}  # `_members`' anchors

    def side(e: int, k: int) -> tuple[float, list[tuple[float, int]]]:
        if e >= V:
            return (1.0 if anchor_node[e] == k else 0.0), []
        return 0.0, ([(1.0, x[e, k])] if (e, k) in x else [])

    def nodes(e: int) -> list[int]:
        return [anchor_node[e]] if e >= V else tb.allowed[e]

    rows: dict = {}
    for ti, t in enumerate(tb.tensors):
        if times[ti] <= incumbent_s * (1.0 + _TIE_MARGIN):
            continue
        ends = _members(tb, t)
        for e in ends[1:]:
            for k in sorted(set(nodes(ends[0])) | set(nodes(e))):
                c0, t0 = side(ends[0], k)
                c1, t1 = side(e, k)
                terms = t0 + [(-coef, col) for coef, col in t1]
                if terms or c0 != c1:
                    rows[ti, e, k] = (c1 - c0, terms, c1 - c0)
    return rows


def add_cuts(ctx, incumbent_s: float | None = None) -> float:
    """Add P >= `period_lower_bound` to the model of `ctx` (a `families.Context` whose objective
    is built) when the objective is the period, and with `incumbent_s` (the period of a feasible
    plan) the `colocation_rows`: the hook of `milp.build_milp`. Returns the bound (0 when none is
    added)."""
    if ctx.weights is not None:
        return 0.0
    ((_, P),) = ctx.rec.objective  # the throughput objective is P alone (families.define_period)
    tb, rec = ctx.tb, ctx.rec
    b = rec.block("period_cuts", "§9: valid inequalities for the period")
    lb = period_lower_bound(tb)
    if lb > 0 and np.isfinite(lb):
        rec.constraints(
            b, "period_bound", {0: (lb, [(1.0, P)], None)}, "P >= crossing/co-location bound"
        )
    if incumbent_s is not None and np.isfinite(incumbent_s):
        rows = colocation_rows(ctx, incumbent_s)
        rec.constraints(
            b, "colocate", rows, "x[a,k] = x[b,k]: tensor t may not cross below the incumbent"
        )
    return max(lb, 0.0)
