"""Baselines for the exact MILP: an exact chain DP and the heuristics the field uses.

Every method returns a `Plan` whose objective is the shared evaluator's cost
(models/formulation.md), so all methods are compared on one yardstick. Methods that cannot handle
an instance raise `NotApplicable` with the reason. Heuristics are seeded and respect a time budget.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .cost import Tables, Tensor, evaluate, tables
from .instance import INPUT, Instance
from .plan import Plan


class NotApplicable(ValueError):
    """The method does not apply to this instance (the message says why)."""


def method_plan(
    inst: Instance,
    method: str,
    assignment: dict[str, str] | None,
    start: float,
    exact: bool = False,
    encodings: dict[str, str] | None = None,
) -> Plan:
    """The `Plan` of a method's `assignment` (None: it found none), costed by the evaluator:
    `feasible` (`optimal` with its own bound when the method is `exact`) or `infeasible` with
    the evaluator's violations; `start` is the method's perf_counter start (s)."""
    plan = Plan(inst, "infeasible", method, solve_time_s=time.perf_counter() - start)
    if assignment is None:
        plan.reasons = ["no feasible plan found"]
        return plan
    plan.assignment = assignment
    plan.evaluation = evaluate(inst, assignment, encodings)
    plan.encodings = dict(plan.evaluation.encodings)
    plan.objective = plan.evaluation.objective(inst)
    if plan.evaluation.feasible:
        plan.status = "optimal" if exact else "feasible"
        if exact:
            plan.bound = plan.objective
    else:
        plan.status = "infeasible"
        plan.reasons = list(plan.evaluation.violations)
    return plan


def additive_weights(inst: Instance) -> tuple[float, float]:
    """(latency weight, energy weight) of an objective that is a sum over layers and transfers."""
    if not inst.objective.additive:
        raise NotApplicable("the throughput objective (a maximum) is not a sum over layers")
    w = inst.objective.weights()
    return w.latency, w.energy


def pair_costs(tb: Tables, wl: float, we: float) -> Callable[[float], np.ndarray]:
    """A function: tensor size -> K x K cost of sending it from p to q under the weights
    (latency, energy), inf if unreachable; each size's matrix is computed once."""
    cache: dict[float, np.ndarray] = {}

    def costs(size: float) -> np.ndarray:
        if size not in cache:
            dist, _ = tb.shortest_paths(size)
            cost = wl * dist
            if we != 0.0:
                cost = cost + we * tb.route_energy(size)
            cache[size] = cost
        return cache[size]

    return costs


def _transfer_costs(
    tb: Tables, t: Tensor, pair: Callable[[float], np.ndarray], wl: float, we: float, wa: float
) -> tuple[np.ndarray, np.ndarray]:
    """K x K cost of sending tensor t from p to q in its cheapest form (§10), and that form's
    index (0 raw, j for t.encodings[j - 1]); for one receiver per transfer, as in a chain."""
    costs = [pair(t.size_bytes)]
    power = tb.compute_power_w
    for form in t.encodings:
        codec = (wl + we * power) * form.encode_s
        decode = (wl + we * power) * form.decode_s
        cost = pair(form.size_bytes) + codec[:, None] + decode[None, :] + wa * form.accuracy_loss
        np.fill_diagonal(cost, np.inf)  # a tensor that stays put is not encoded
        costs.append(cost)
    stack = np.stack(costs)
    choice = np.argmin(stack, axis=0)
    return np.take_along_axis(stack, choice[None], axis=0)[0], choice


def compute_costs(tb: Tables, wl: float, we: float) -> np.ndarray:
    """V x K cost of running each layer on each node; inf where not allowed."""
    return tb.compute_cost(wl, we)


def is_chain(inst: Instance) -> bool:
    """Each layer reads only its predecessor (the first, the input) and the last is the output:
    the shape the chain DPs (Neurosurgeon, PipeEdge, EdgeShard, the stage DP) assume."""
    layers = inst.dnn.layers
    return (
        all(
            layer.inputs == ((INPUT,) if i == 0 else (layers[i - 1].name,))
            for i, layer in enumerate(layers)
        )
        and inst.dnn.output_layer == layers[-1].name
    )


# --------------------------------------------------------------------------- exact chain DP


def chain_dp(inst: Instance) -> Plan:
    """Exact dynamic program for a chain DNN on any network, O(L K^2).

    Applies when every layer's only input is the previous layer, the objective is a sum (latency,
    energy, weighted), and memory limits cannot bind; a latency limit is checked on the result
    for the latency objective. Each transfer takes the tensor's cheapest encoding (§10), which is
    exact unless an accuracy limit couples the tensors' choices.
    """
    start = time.perf_counter()
    if not is_chain(inst):
        raise NotApplicable("the DNN is not a chain (some layer has a skip or branch input)")
    wl, we = additive_weights(inst)
    tb = tables(inst)
    if tb.memory_binds:
        raise NotApplicable("memory limits can bind, which the DP does not model")
    if inst.constraints.max_latency_s is not None and inst.objective.kind != "latency":
        raise NotApplicable("a latency limit with a non-latency objective couples the stages")
    if inst.constraints.max_accuracy_loss is not None and tb.has_encodings:
        raise NotApplicable("an accuracy limit couples the encodings of the tensors")
    if tb.reasons:
        return method_plan(inst, "dp", None, start)
    wa = inst.objective.weights().accuracy
    compute = compute_costs(tb, wl, we)
    pair = pair_costs(tb, wl, we)
    send = [_transfer_costs(tb, t, pair, wl, we, wa) for t in tb.tensors]  # (cost, form)
    V = len(tb.layers)
    # best[k]: cost of layers 0..v with v on node k; choice[v][k]: node of v-1
    best = send[0][0][tb.source] + compute[0]
    choice = np.zeros((V, len(tb.nodes)), dtype=np.int64)
    for v in range(1, V):
        step = best[:, None] + send[v][0]  # from p to q
        choice[v] = np.argmin(step, axis=0)
        best = step[choice[v], np.arange(len(tb.nodes))] + compute[v]
    if tb.sink is not None:
        best = best + send[V][0][:, tb.sink]
    k = int(np.argmin(best))
    if not np.isfinite(best[k]):
        return method_plan(inst, "dp", None, start)
    nodes = [k]
    for v in range(V - 1, 0, -1):
        nodes.append(int(choice[v][nodes[-1]]))
    nodes.reverse()
    hops = [(0, tb.source, nodes[0])] + [(v, nodes[v - 1], nodes[v]) for v in range(1, V)]
    if tb.sink is not None:
        hops.append((V, nodes[-1], tb.sink))
    forms = {
        tb.tensors[ti].name: tb.tensors[ti].encodings[j - 1].name
        for ti, p, q in hops
        if (j := int(send[ti][1][p, q])) > 0
    }
    assignment = {tb.layers[v]: tb.nodes[nodes[v]] for v in range(V)}
    return method_plan(inst, "dp", assignment, start, exact=True, encodings=forms)


# --------------------------------------------------------------------------- single split


def neurosurgeon(inst: Instance) -> Plan:
    """Neurosurgeon: the best single split between the source and one other node.

    Every prefix of the layers (in topological order) runs on the source and the rest on one
    server; every cut and every server is tried, all-on-source included.
    """
    start = time.perf_counter()
    tb = tables(inst)
    best = None
    V = len(tb.layers)
    for k in range(len(tb.nodes)):
        if k == tb.source:
            continue
        for cut in range(V + 1):
            a = {name: tb.nodes[tb.source if v < cut else k] for v, name in enumerate(tb.layers)}
            ev = evaluate(inst, a)
            if ev.feasible and (best is None or ev.objective(inst) < best[0]):
                best = (ev.objective(inst), a)
    if best is None and len(tb.nodes) == 1:
        a = {name: tb.nodes[0] for name in tb.layers}
        best = (0.0, a) if evaluate(inst, a).feasible else None
    return method_plan(inst, "neurosurgeon", best[1] if best else None, start)


def single_node(inst: Instance, which: str = "source") -> Plan:
    """Everything on the source ('source') or on the best single other node ('server')."""
    start = time.perf_counter()
    tb = tables(inst)
    candidates = (
        [tb.source]
        if which == "source"
        else [k for k in range(len(tb.nodes)) if k != tb.source] or [tb.source]
    )
    best = None
    for k in candidates:
        a = {name: tb.nodes[k] for name in tb.layers}
        ev = evaluate(inst, a)
        if ev.feasible and (best is None or ev.objective(inst) < best[0]):
            best = (ev.objective(inst), a)
    return method_plan(inst, f"{which}-only", best[1] if best else None, start)


# --------------------------------------------------------------------------- DADS min cut


def min_cut(inst: Instance) -> Plan:
    """DADS-style optimal two-node partition of a DAG by an s-t minimum cut (networkx).

    For each server k, the layers are split between the source node (the S side) and k (the T
    side); a tensor pays its upload or download once however many consumers cross, through an
    auxiliary node per tensor and direction. Exact for a sum objective on those two nodes; memory
    and latency limits are checked on the result.
    """
    import networkx as nx

    start = time.perf_counter()
    wl, we = additive_weights(inst)
    tb = tables(inst)
    s = tb.source
    if tb.sink is not None and tb.sink != s:
        raise NotApplicable("the sink is not the source node")
    compute = compute_costs(tb, wl, we)
    pair = pair_costs(tb, wl, we)
    best = None
    for k in range(len(tb.nodes)):
        if k == s:
            continue
        g = nx.DiGraph()
        S, T = "S", "T"

        def edge(u, w, capacity=math.inf, g=g):
            # networkx reads a missing capacity as infinite
            g.add_edge(u, w, **({"capacity": capacity} if math.isfinite(capacity) else {}))

        for v, name in enumerate(tb.layers):
            edge(name, T, float(compute[v, s]))  # cut when v stays on S
            edge(S, name, float(compute[v, k]))  # cut when v goes to T
        for t in tb.tensors:
            cost = pair(t.size_bytes)
            producer = S if t.producer < 0 else tb.layers[t.producer]
            if t.consumers:  # upload once if any consumer is on T
                edge(producer, ("up", t.name), float(cost[s, k]))
                for c in t.consumers:
                    edge(("up", t.name), tb.layers[c])
            if t.producer >= 0 and (t.consumers or t.to_sink):  # download once if needed on S
                edge(("down", t.name), producer, float(cost[k, s]))
                for c in t.consumers:
                    edge(tb.layers[c], ("down", t.name))
                if t.to_sink:
                    edge(S, ("down", t.name))
        try:
            _, (side_s, _) = nx.minimum_cut(g, S, T)
        except nx.NetworkXUnbounded:
            continue  # no finite cut: some layer can run on neither node
        a = {name: tb.nodes[s if name in side_s else k] for name in tb.layers}
        ev = evaluate(inst, a)
        if ev.feasible and (best is None or ev.objective(inst) < best[0]):
            best = (ev.objective(inst), a)
    exact = len(tb.nodes) == 2 and inst.constraints.max_latency_s is None and not tb.memory_binds
    return method_plan(inst, "min-cut", best[1] if best else None, start, exact=exact)


# --------------------------------------------------------------------------- greedy


def greedy(inst: Instance) -> Plan:
    """Each layer, in topological order, to the allowed node that minimises its own compute plus
    the transfers of its inputs from where they already are (objective-weighted; latency for
    throughput), skipping nodes whose memory it would overflow."""
    start = time.perf_counter()
    tb = tables(inst)
    try:
        wl, we = additive_weights(inst)
    except NotApplicable:
        wl, we = 1.0, 0.0
    compute = compute_costs(tb, wl, we)
    pair = pair_costs(tb, wl, we)
    where: dict[int, int] = {-1: tb.source}
    params = np.zeros(len(tb.nodes))
    work = np.zeros(len(tb.nodes))
    for v, layer in enumerate(inst.dnn.layers):
        choices = []
        for k in tb.allowed[v]:
            cap = tb.memory_bytes[k]
            need = params[k] + tb.param_bytes[v] + max(work[k], tb.work_bytes[v])
            if cap is not None and need > cap:
                continue
            cost = compute[v, k]
            for src in layer.inputs:
                u = -1 if src == INPUT else tb.layer_index[src]
                cost += pair(tb.tensors[u + 1].size_bytes)[where[u], k]
            choices.append((cost, k))
        if not choices:
            return method_plan(inst, "greedy", None, start)
        _, k = min(choices)
        where[v] = k
        params[k] += tb.param_bytes[v]
        work[k] = max(work[k], tb.work_bytes[v])
    return method_plan(
        inst, "greedy", {name: tb.nodes[where[v]] for v, name in enumerate(tb.layers)}, start
    )


# --------------------------------------------------------------------------- metaheuristics


def _penalised(inst: Instance) -> Callable[[np.ndarray], float]:
    """Objective plus a large penalty per violation, for search over node-index vectors."""
    tb = tables(inst)

    def cost(genome: np.ndarray) -> float:
        ev = evaluate(inst, {name: tb.nodes[k] for name, k in zip(tb.layers, genome, strict=True)})
        value = ev.objective(inst)
        return value if ev.feasible else value + 1e6 * (1 + len(ev.violations))

    return cost


def _random_genome(tb: Tables, rng: np.random.Generator) -> np.ndarray:
    return np.array([rng.choice(ks) if ks else 0 for ks in tb.allowed], dtype=np.int64)


def _to_plan(inst: Instance, method: str, genome: np.ndarray | None, start: float) -> Plan:
    tb = tables(inst)
    if genome is None:
        return method_plan(inst, method, None, start)
    return method_plan(
        inst, method, {n: tb.nodes[k] for n, k in zip(tb.layers, genome, strict=True)}, start
    )


def random_search(inst: Instance, time_limit_s: float = 1.0, seed: int = 0) -> Plan:
    """The best of random assignments (within the allowed nodes) found in the time budget."""
    start = time.perf_counter()
    tb, rng, cost = tables(inst), np.random.default_rng(seed), _penalised(inst)
    best, best_cost = None, math.inf
    while time.perf_counter() - start < time_limit_s or best is None:
        g = _random_genome(tb, rng)
        c = cost(g)
        if c < best_cost:
            best, best_cost = g, c
    return _to_plan(inst, "random", best, start)


def simulated_annealing(
    inst: Instance, time_limit_s: float = 1.0, seed: int = 0, initial: Plan | None = None
) -> Plan:
    """Simulated annealing over assignments: move one layer, or a run of layers, to another
    allowed node; geometric cooling over the time budget; starts from `initial` or greedy."""
    start = time.perf_counter()
    tb, rng, cost = tables(inst), np.random.default_rng(seed), _penalised(inst)
    init = initial if initial is not None else greedy(inst)
    if init.assignment is not None:
        cur = np.array([tb.node_index[init.assignment[n]] for n in tb.layers], dtype=np.int64)
    else:
        cur = _random_genome(tb, rng)
    cur_cost = cost(cur)
    best, best_cost = cur.copy(), cur_cost
    t0 = max(abs(cur_cost) * 0.05, 1e-9) if cur_cost < 1e5 else 1.0
    V = len(tb.layers)
    while time.perf_counter() - start < time_limit_s:
        frac = (time.perf_counter() - start) / time_limit_s
        temp = t0 * (1e-4**frac)
        cand = cur.copy()
        v = int(rng.integers(V))
        ks = tb.allowed[v] or [0]
        k = int(rng.choice(ks))
        if rng.random() < 0.5:  # move a run of consecutive layers, keeping segments contiguous
            w = int(rng.integers(v, min(V, v + 1 + int(rng.integers(1, 16)))))
            for u in range(v, w + 1):
                if k in tb.allowed[u]:
                    cand[u] = k
        else:
            cand[v] = k
        c = cost(cand)
        if c <= cur_cost or rng.random() < math.exp(-(c - cur_cost) / temp):
            cur, cur_cost = cand, c
            if c < best_cost:
                best, best_cost = cand.copy(), c
    return _to_plan(inst, "annealing", best, start)


def genetic(inst: Instance, time_limit_s: float = 1.0, seed: int = 0, population: int = 30) -> Plan:
    """A genetic algorithm: tournament selection, two-point crossover (keeps segments), per-layer
    mutation to an allowed node, elitism; seeded with greedy and the all-on-one-node plans."""
    start = time.perf_counter()
    tb, rng, cost = tables(inst), np.random.default_rng(seed), _penalised(inst)
    V = len(tb.layers)
    pop = [_random_genome(tb, rng) for _ in range(population)]
    for seed_plan in (greedy(inst), single_node(inst, "source")):
        if seed_plan.assignment is not None:
            pop[len(pop) // 2 if pop else 0] = np.array(
                [tb.node_index[seed_plan.assignment[n]] for n in tb.layers], dtype=np.int64
            )
            pop.append(pop.pop(len(pop) // 2))
    fit = [cost(g) for g in pop]
    while time.perf_counter() - start < time_limit_s:
        order = np.argsort(fit)
        new = [pop[order[0]].copy(), pop[order[1]].copy()]  # elitism
        while len(new) < population:
            a, b = (
                pop[min(rng.integers(population, size=3), key=lambda i: fit[i])] for _ in range(2)
            )
            i, j = sorted(rng.integers(0, V + 1, size=2))
            child = a.copy()
            child[i:j] = b[i:j]
            for v in np.flatnonzero(rng.random(V) < 1.0 / V):
                if tb.allowed[v]:
                    child[v] = rng.choice(tb.allowed[v])
            new.append(child)
        pop = new
        fit = [cost(g) for g in pop]
    return _to_plan(inst, "genetic", pop[int(np.argmin(fit))], start)


# --------------------------------------------------------------------------- registry

HEURISTICS = (
    "neurosurgeon",
    "min-cut",
    "greedy",
    "priced-beam",
    "annealing",
    "genetic",
    "random",
    "source-only",
    "server-only",
)
# the pipeline planners' DPs (splitplan.pipeline), each on its own assumptions
PIPELINE = ("pipeedge", "edgeshard", "edgeshard-latency", "stages-dp", "pipedream")
METHODS = ("milp-highs", "milp-ortools", "dp", *PIPELINE, *HEURISTICS)


def run_method(
    inst: Instance,
    method: str,
    time_limit_s: float = 1.0,
    seed: int = 0,
    initial: dict[str, str] | None = None,
    milp_time_limit_s: float = 60.0,
) -> Plan:
    """Run one method by name (see METHODS); raises NotApplicable where it does not apply.

    Heuristic searches get `time_limit_s`; the MILP gets `milp_time_limit_s` and `initial` as a
    MIP start.
    """
    from . import pipeline
    from .plan import solve

    if method in ("milp-highs", "milp-ortools"):
        return solve(
            inst, method.removeprefix("milp-"), time_limit_s=milp_time_limit_s, initial=initial
        )
    table: dict[str, Callable[[], Plan]] = {
        "dp": lambda: chain_dp(inst),
        "pipeedge": lambda: pipeline.pipeedge(inst),
        "edgeshard": lambda: pipeline.edgeshard(inst),
        "edgeshard-latency": lambda: pipeline.edgeshard_latency(inst),
        "stages-dp": lambda: pipeline.stages_dp(inst),
        "pipedream": lambda: pipeline.pipedream(inst),
        "neurosurgeon": lambda: neurosurgeon(inst),
        "min-cut": lambda: min_cut(inst),
        "greedy": lambda: greedy(inst),
        "priced-beam": lambda: pipeline.priced_beam_plan(inst, time_limit_s),
        "annealing": lambda: simulated_annealing(inst, time_limit_s, seed),
        "genetic": lambda: genetic(inst, time_limit_s, seed),
        "random": lambda: random_search(inst, time_limit_s, seed),
        "source-only": lambda: single_node(inst, "source"),
        "server-only": lambda: single_node(inst, "server"),
    }
    if method not in table:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return table[method]()


# --------------------------------------------------------------------------- compare


@dataclass
class Comparison:
    """One method's result on an instance: its plan (None if not applicable) and wall time."""

    method: str
    plan: Plan | None
    wall_s: float
    note: str = ""

    def above_optimum(self, optimum: float | None) -> float | None:
        """(objective - optimum) / optimum, for feasible plans when the optimum is known."""
        if optimum is None or self.plan is None or self.plan.status == "infeasible":
            return None
        if self.plan.objective is None:
            return None
        return (self.plan.objective - optimum) / optimum if optimum else 0.0


@dataclass
class CompareResult:
    """What `compare` found on one instance.

    `rows` holds one `Comparison` per method asked, in the order asked. Every gap is measured
    against `reference`: the proven optimum when `proven`, else the best proven lower bound of
    the MILP runs (None when they proved nothing). `milp` is the exact plan the reference comes
    from (one of the rows' plans when a ``milp-*`` method was asked, else the extra MILP solve
    `compare` ran; None only when no exact plan exists).
    """

    instance: str
    rows: list[Comparison]
    reference: float | None
    proven: bool
    milp: Plan | None = None

    @property
    def optimum(self) -> float | None:
        """The proven optimum, None when the reference is only a lower bound."""
        return self.reference if self.proven else None

    def row(self, method: str) -> Comparison:
        """The row of `method` (KeyError when it was not asked)."""
        for r in self.rows:
            if r.method == method:
                return r
        raise KeyError(method)

    def table(self) -> str:
        """One line per method: objective, % above the reference, feasibility, wall time."""
        return comparison_table(self.rows, self.reference, self.proven)

    def summary(self) -> str:
        """What `splitplan compare` prints: the reference, then the table."""
        what = "optimum" if self.proven else "no proven optimum; best lower bound"
        ref = self.reference if self.reference is not None else "unknown"
        return f"instance {self.instance}: {what} {ref}\n{self.table()}"

    def to_dict(self) -> dict[str, Any]:
        """The object `splitplan compare --json` prints (README, "Comparing with heuristics")."""
        return {
            "instance": self.instance,
            "optimum": self.optimum,
            "reference": self.reference,
            "reference_is_optimum": self.proven,
            "methods": [
                {
                    "method": r.method,
                    "status": r.plan.status if r.plan else "not_applicable",
                    "objective": r.plan.objective if r.plan else None,
                    "above_optimum": r.above_optimum(self.reference),
                    "wall_s": r.wall_s,
                    "assignment": r.plan.assignment if r.plan else None,
                    "note": r.note or "; ".join(r.plan.reasons if r.plan else []),
                }
                for r in self.rows
            ],
        }


def compare(
    inst: Instance,
    methods: Sequence[str] = METHODS,
    time_limit_s: float = 1.0,
    seed: int = 0,
    milp_time_limit_s: float = 60.0,
) -> CompareResult:
    """Run `methods` on an instance; returns the rows (in the order asked), the reference and
    whether the reference is a proven optimum (else the best proven lower bound, or None), as a
    `CompareResult`.

    Heuristics get `time_limit_s` seconds each and run first; the MILP methods then start from
    the best feasible heuristic plan (a MIP start), so they are never worse than a heuristic,
    and get `milp_time_limit_s` seconds each. When no ``milp-*`` method is asked, one MILP solve
    (HiGHS) still runs for the reference. The reference is the proven optimum, or, when no MILP
    run proved optimality, the best proven lower bound (then % above it overstates every gap). A
    feasible plan below a proven optimum would be a bug and raises AssertionError.
    """
    order = sorted(methods, key=lambda m: m.startswith("milp"))
    done: dict[str, Comparison] = {}
    best: Plan | None = None
    for method in order:
        start = time.perf_counter()
        try:
            plan = run_method(
                inst,
                method,
                time_limit_s,
                seed,
                best.assignment if best else None,
                milp_time_limit_s,
            )
            note = ""
        except NotApplicable as exc:
            plan, note = None, f"not applicable: {exc}"
        done[method] = Comparison(method, plan, time.perf_counter() - start, note)
        if (
            plan is not None
            and plan.status != "infeasible"
            and plan.objective is not None
            and (best is None or best.objective is None or plan.objective < best.objective)
        ):
            best = plan
    rows = [done[m] for m in methods]
    exact = [r.plan for r in rows if r.method.startswith("milp") and r.plan is not None]
    if not exact:
        from .plan import solve

        exact = [
            solve(inst, time_limit_s=milp_time_limit_s, initial=best.assignment if best else None)
        ]
    optimal = [(p.objective, p) for p in exact if p.status == "optimal" and p.objective is not None]
    if optimal:
        optimum, milp = min(optimal, key=lambda pair: pair[0])
        for r in rows:
            gap = r.above_optimum(optimum)
            if gap is not None and gap < -1e-6 and r.plan is not None:
                raise AssertionError(
                    f"{r.method} found {r.plan.objective} below the proven optimum {optimum}"
                )
        return CompareResult(inst.name, rows, optimum, True, milp)
    bounds = [(p.bound, p) for p in exact if p.bound is not None]
    if not bounds:
        return CompareResult(inst.name, rows, None, False, exact[0])
    bound, milp = max(bounds, key=lambda pair: pair[0])
    return CompareResult(inst.name, rows, bound, False, milp)


def comparison_table(rows: list[Comparison], optimum: float | None, proven: bool = True) -> str:
    above = "above opt." if proven else "above bound"
    lines = [f"{'method':<14} {'objective':>14} {above:>11} {'feasible':>9} {'wall_s':>9}"]
    for r in rows:
        if r.plan is None:
            lines.append(f"{r.method:<14} {'-':>14} {'-':>11} {'-':>9} {r.wall_s:>9.3f}  {r.note}")
            continue
        p = r.plan
        gap = r.above_optimum(optimum)
        obj = f"{p.objective:.6g}" if p.objective is not None else "-"
        pct = f"{100 * gap:.2f} %" if gap is not None else "-"
        feasible = "yes" if p.status != "infeasible" else "no"
        why = f"  {p.reasons[0]}" if p.status == "infeasible" and p.reasons else ""
        lines.append(f"{r.method:<14} {obj:>14} {pct:>11} {feasible:>9} {r.wall_s:>9.3f}{why}")
    return "\n".join(lines)
