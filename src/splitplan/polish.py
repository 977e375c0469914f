"""Neighbourhood search with the MILP itself (models/formulation.md §11, "Polishing").

`polish` improves a plan by solving the built model again with most of it fixed: the layers on a
few nodes may move among those nodes, every other layer stays where it is. Each such sub-MILP is
small enough for the solver to close or nearly close, and its answer is costed by the evaluator
before it is kept. It is the primal side of `splitplan.solve` where the full model's search
stalls: binding memory over many nodes, the period on profiled DAGs.

Neighbourhoods: for the period, the nodes of the bottleneck (the busiest node, or both ends of
the busiest arc) plus m other nodes; for the other objectives, any m + 1 nodes. m starts at 1 and
grows by one after a pass over the neighbourhoods of its size has improved nothing, up to
`_MAX_EXTRA` and never to every node (that is the full model again); each pass visits its
neighbourhoods in a seeded random order, at most `_MAX_PASS` of them. The search ends at the
deadline or after the last size's pass.
"""

from __future__ import annotations

import itertools
import math
import random
import time
from dataclasses import dataclass, replace

import numpy as np

from .cost import Evaluation, evaluate
from .milp import Milp

# A plan is better only by more than this fraction of its cost (rounding noise is no move).
_IMPROVE_REL = 1e-9
_MAX_EXTRA = 3  # nodes added to the bottleneck (or to a first node) in a neighbourhood
_MAX_PASS = 2000  # neighbourhoods tried per size before the next size
# Less time left than this and no solve is started: the solver would stop before its root (HiGHS
# is not even started, `solvers.HIGHS_ROOT_S_PER_NZ`), and polish would spin on such calls.
_MIN_SOLVE_S = 0.2


@dataclass
class Polished:
    """The best plan `polish` holds: its assignment and encodings, the evaluator's cost, the
    MILP's objective of the point it came from (None: the plan it was given), and the number of
    sub-MILPs solved and of improvements found."""

    assignment: dict[str, str]
    encodings: dict[str, str]
    cost: float
    values: np.ndarray | None
    milp_objective: float | None
    solves: int = 0
    improvements: int = 0
    wall_s: float = 0.0


def polish(
    milp: Milp,
    assignment: dict[str, str],
    deadline: float,
    solver: str = "highs",
    encodings: dict[str, str] | None = None,
    seed: int = 0,
) -> Polished:
    """The best plan found from the feasible `assignment` by re-solving the model on
    neighbourhoods of nodes until `deadline` (`time.perf_counter()` seconds). `solver` is a
    solver of `solvers.SOLVERS` (not a Pyomo one)."""
    began = time.perf_counter()
    best = _search(milp, assignment, deadline, solver, encodings or {}, random.Random(seed))
    best.wall_s = time.perf_counter() - began
    return best


def _search(
    milp: Milp,
    assignment: dict[str, str],
    deadline: float,
    solver: str,
    encodings: dict[str, str],
    rng: random.Random,
) -> Polished:
    from .solvers import solve_milp

    inst, tb = milp.instance, milp.tables
    ev = evaluate(inst, assignment, encodings)
    if not ev.feasible:
        raise ValueError(f"polish needs a feasible plan: {'; '.join(ev.violations)}")
    best = Polished(dict(ev.assignment), dict(ev.encodings), ev.objective(inst), None, None)
    K = len(tb.nodes)
    began = time.perf_counter()
    extra = 1
    while extra <= _MAX_EXTRA:
        core = _bottleneck(inst, ev) if inst.objective.kind == "throughput" else frozenset()
        others = [k for k in range(K) if tb.nodes[k] not in core]
        size = extra if core else extra + 1  # nodes drawn from `others`
        if len(core) + size >= K:
            break
        improved = False
        busy = _busy(tb, ev) if core else None
        for combo in _neighbourhoods(others, size, rng, busy):
            now = time.perf_counter()
            if deadline - now < _MIN_SOLVE_S:
                return best
            # a share of what is left, at least a second: a neighbourhood that holds most of
            # the model needs that much for the solver to find the better packing it has
            limit = min(deadline - now, max(1.0, (deadline - began) / 4))
            group = {tb.node_index[n] for n in core} | set(combo)
            result, _ = solve_milp(
                _restricted(milp, best.assignment, group),
                solver,
                time_limit_s=limit,
                start=milp.start_vector(best.assignment),
                # HiGHS' presolve drops the fixed columns; its claims are not relied on here
                **({"presolve": True} if solver == "highs" else {}),
            )
            best.solves += 1
            if result.values is None:
                continue
            plan = milp.read_assignment(result.values)
            forms = milp.read_encodings(result.values)
            cand = evaluate(inst, plan, forms)
            cost = cand.objective(inst)
            if cand.feasible and cost < best.cost - _IMPROVE_REL * abs(best.cost):
                best.assignment, best.encodings, best.cost = plan, dict(cand.encodings), cost
                best.values, best.milp_objective = result.values, result.objective
                best.improvements += 1
                ev, improved = cand, True
                break  # a new plan: new bottleneck, new neighbourhoods
        # the pass ended on a better plan, or went through every group of its size
        extra = 1 if improved else extra + 1
    return best


def _neighbourhoods(
    others: list[int], size: int, rng: random.Random, busy: dict[int, float] | None = None
):
    """Subsets of `size` nodes of `others`: all of them when there are at most `_MAX_PASS`, the
    least `busy` first where given (ties in a random order), else in a random order;
    `_MAX_PASS` drawn at random when there are more."""
    if math.comb(len(others), size) <= _MAX_PASS:
        combos = list(itertools.combinations(others, size))
        rng.shuffle(combos)
        if busy is not None:
            combos.sort(key=lambda combo: sum(busy[k] for k in combo))
        yield from combos
    else:
        for _ in range(_MAX_PASS):
            yield tuple(sorted(rng.sample(others, size)))


def _busy(tb, ev: Evaluation) -> dict[int, float]:
    """Per node, the larger of its compute and of the loads of the arcs at it (§7): what it has
    left to take a share of the bottleneck's work is the period minus that."""
    out = {tb.node_index[n]: s for n, s in ev.node_compute_s.items()}
    for (i, j), s in ev.link_load_s.items():
        for n in (i, j):
            out[tb.node_index[n]] = max(out[tb.node_index[n]], s)
    return out


def _bottleneck(inst, ev: Evaluation) -> frozenset[str]:
    """The nodes of the period's bottleneck: every node, and both ends of every arc, whose load
    is the period (§7)."""
    period = ev.period_s
    tie = period * (1 - 1e-9)
    out = {n for n, s in ev.node_compute_s.items() if s >= tie}
    for (i, j), s in ev.link_load_s.items():
        if s >= tie:
            out |= {i, j}
    return frozenset(out)


def _restricted(milp: Milp, assignment: dict[str, str], group: set[int]) -> Milp:
    """The model with every layer off `group` fixed where `assignment` puts it, and the layers
    on `group` kept within it (column bounds only: the rows are shared)."""
    tb, sf = milp.tables, milp.matrix
    lb, ub = sf.col_lb.copy(), sf.col_ub.copy()
    node_of = [tb.node_index[assignment[name]] for name in tb.layers]
    for (v, k), j in milp.x.items():
        if node_of[v] in group:
            if k not in group:
                ub[j] = 0.0
        else:
            lb[j] = ub[j] = float(k == node_of[v])
    return replace(milp, matrix=replace(sf, col_lb=lb, col_ub=ub))
