"""Planning NB201 cells on a network, and the exact accuracy / latency front of all 15,625.

`plan_latency` plans one cell and `exact_front` every cell (or a sample), both through
`splitplan.nas.planner.plan_candidate`, the planner the Optuna loop uses too (``auto``: the
exact chain DP, each cell network being a chain of 19 layers; ``milp``: HiGHS). Nodes whose
device class has no NB201 measurement cost flops / flops_per_s (``unmeasured_nodes``).
`nasc_comparison` is NASC's comparison on the exact front.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from ...instance import Network, Objective
from .. import planner
from ..pareto import hypervolume_2d, pareto_front
from .cell import Nb201Error
from .space import Nb201Space
from .table import CHANCE_ACCURACY

# --------------------------------------------------------------------------- planning


def _checked(
    network: str | Network, objective: str | Objective, method: str
) -> tuple[Network, Objective]:
    """The network and objective, or Nb201Error naming what is wrong with the arguments."""
    try:
        planner.check_method(method)
        return planner.network_of(network), planner.objective_of(objective)
    except Nb201Error:
        raise
    except ValueError as exc:
        raise Nb201Error(str(exc)) from None


def plan_latency(
    space: Nb201Space,
    arch: str,
    network: str | Network,
    objective: str | Objective = "latency",
    *,
    method: str = "auto",
    solver: str = "highs",
    time_limit_s: float | None = None,
) -> dict[str, Any]:
    """The optimal placement of `arch` on `network` (a preset name or a `Network`).

    `method`: ``milp`` (`splitplan.solve`), ``dp`` (the exact chain DP, `baselines.chain_dp`),
    ``auto`` (the DP where it applies, else the MILP) or ``single-split`` (see
    `splitplan.nas.planner`). Nodes whose class has no NB201 measurement cost
    flops / flops_per_s (listed in ``unmeasured_nodes``). Returns latency_s, objective, bound
    (bound_s for the latency objective), gap, status, solver, assignment, segments,
    split_points, local_latency_s (everything on the source) and seconds.
    """
    net, obj = _checked(network, objective, method)
    return _plan(space, arch, net, obj, method, solver, time_limit_s)


def _plan(
    space: Nb201Space,
    arch: str,
    net: Network,
    objective: Objective,
    method: str,
    solver: str,
    time_limit_s: float | None,
) -> dict[str, Any]:
    p = planner.plan_candidate(
        space,
        arch,
        net,
        objective=objective,
        method=method,
        solver=solver,
        time_limit_s=time_limit_s,
    )
    plan = p.plan
    assert plan is not None  # only an SLO prunes a candidate unsolved, and none is given here
    if plan.assignment is None or plan.evaluation is None:
        raise Nb201Error(f"no plan for {arch} on this network: {plan.status} {plan.reasons}")
    result = {
        "arch": arch,
        "index": space.index(arch),
        "accuracy": space.accuracy(arch),
        "objective_kind": objective.kind,
        "latency_s": plan.evaluation.latency_s,
        "objective": plan.objective,
        "bound": plan.bound,
        "gap": plan.gap,
        "status": plan.status,
        "solver": p.planner,
        "assignment": plan.assignment,
        "segments": [(node, [layers[0], layers[-1]]) for node, layers in plan.segments()],
        "split_points": plan.split_points(),
        "local_latency_s": p.local_latency_s,
        "unmeasured_nodes": p.unmeasured_nodes,
        "seconds": p.seconds,
    }
    if objective.kind == "latency":
        result["bound_s"] = plan.bound
    return result


def placement(segments: Iterable[tuple[str, Sequence[str]]]) -> str:
    """A short text of a plan's segments, e.g. ``device[stem..cells.4] > edge[cells.5..head]``."""
    parts = []
    for node, layers in segments:
        span = layers[0] if layers[0] == layers[-1] else f"{layers[0]}..{layers[-1]}"
        parts.append(f"{node}[{span}]")
    return " > ".join(parts)


# --------------------------------------------------------------------------- exact front


@dataclass(frozen=True)
class CellPlan:
    """One architecture's accuracy and its optimal plan's latency on a network."""

    arch: str
    index: int
    accuracy: float
    latency_s: float
    local_latency_s: float
    placement: str


@dataclass
class ExactFront:
    """Every architecture planned on one network, and their accuracy / latency Pareto front."""

    network: str
    dataset: str
    method: str
    cells: list[CellPlan]
    front: list[CellPlan]
    seconds: float
    reference: tuple[float, float]  # (accuracy %, latency s) for the hypervolume

    @property
    def rate(self) -> float:
        """Evaluations (planned architectures) per second."""
        return len(self.cells) / self.seconds if self.seconds > 0 else math.inf

    @property
    def hypervolume(self) -> float:
        """Of the front against `reference`, in accuracy points x seconds."""
        return hypervolume_2d([(c.accuracy, c.latency_s) for c in self.front], self.reference)


def front_reference(space: Nb201Space, cells: Sequence[CellPlan]) -> tuple[float, float]:
    """The hypervolume reference point: chance accuracy of the dataset (10 % on CIFAR-10) and
    the largest planned latency over `cells` (for the exact front: over all 15,625)."""
    return CHANCE_ACCURACY[space.dataset], max(c.latency_s for c in cells)


def exact_front(
    space: Nb201Space,
    network: str | Network,
    objective: str | Objective = "latency",
    *,
    method: str = "auto",
    solver: str = "highs",
    archs: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExactFront:
    """Plan every architecture (default: all 15,625) and return the exact Pareto front.

    `progress(done, total)` is called every 250 architectures and at the end. `method`: an
    exact one (``auto``, ``dp``, ``milp``).
    """
    net, obj = _checked(network, objective, method)
    if method == "single-split":
        raise Nb201Error("the exact front needs an exact method: auto, dp or milp")
    archs = list(space.all_archs() if archs is None else archs)
    if not archs:
        raise Nb201Error("no architectures to evaluate")
    start = time.perf_counter()
    cells: list[CellPlan] = []
    methods: set[str] = set()
    for done, arch in enumerate(archs, start=1):
        r = _plan(space, arch, net, obj, method, solver, None)
        methods.add(r["solver"])
        cells.append(
            CellPlan(
                arch,
                r["index"],
                r["accuracy"],
                r["latency_s"],
                r["local_latency_s"],
                placement(r["segments"]),
            )
        )
        if progress is not None and (done % 250 == 0 or done == len(archs)):
            progress(done, len(archs))
    seconds = time.perf_counter() - start
    front = [cells[i] for i in pareto_front([(c.accuracy, c.latency_s) for c in cells])]
    name = network if isinstance(network, str) else "custom"
    return ExactFront(
        name,
        space.dataset,
        "+".join(sorted(methods)),
        cells,
        front,
        seconds,
        front_reference(space, cells),
    )


def nasc_comparison(result: ExactFront, tolerance: float = 0.5) -> dict[str, Any]:
    """NASC's comparison: (a) the most accurate architecture with its optimal split against the
    fastest architecture within `tolerance` accuracy points of it (on the front by construction);
    latencies of both planned and all on the device, and the % latency reductions."""
    best = max(result.cells, key=lambda c: (c.accuracy, -c.latency_s, -c.index))
    near = [c for c in result.cells if c.accuracy >= best.accuracy - tolerance]
    fast = min(near, key=lambda c: (c.latency_s, -c.accuracy, c.index))

    def row(c: CellPlan) -> dict[str, Any]:
        return {
            "arch": c.arch,
            "index": c.index,
            "accuracy": c.accuracy,
            "latency_s": c.latency_s,
            "local_latency_s": c.local_latency_s,
            "placement": c.placement,
        }

    return {
        "tolerance_points": tolerance,
        "most_accurate": row(best),
        "fastest_within_tolerance": row(fast),
        "reduction_vs_most_accurate_split_pct": 100 * (1 - fast.latency_s / best.latency_s),
        "reduction_vs_most_accurate_local_pct": 100 * (1 - fast.latency_s / best.local_latency_s),
        "split_gain_most_accurate_pct": 100 * (1 - best.latency_s / best.local_latency_s),
    }
