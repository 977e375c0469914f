"""The result of planning: `solve(instance) -> Plan`, and how a plan summarises itself."""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from .cost import Evaluation, evaluate, tables
from .instance import RAW, Instance

if TYPE_CHECKING:
    from .solvers import SolverResult

STATUSES = ("optimal", "feasible", "infeasible", "time_limit", "error")  # see _verdict


@dataclass
class Plan:
    """A placement of every layer on a node, with its cost and the solver's proof.

    `objective` is the evaluator's cost of `assignment` (models/formulation.md); `bound` is a
    proven lower bound on the optimum, the solver's or the model's objective floor from the cost
    tables where that is higher (§9's period bounds), and `gap` = (objective - bound) /
    objective.
    `status` is our verdict (`solve` checks the solver's claims); `termination` is what the
    solver itself said (optimal, infeasible, time_limit, other).
    """

    instance: Instance
    status: str
    solver: str
    assignment: dict[str, str] | None = None
    objective: float | None = None
    bound: float | None = None
    milp_objective: float | None = None
    solve_time_s: float = 0.0
    build_time_s: float = 0.0
    bb_nodes: int | None = None  # branch-and-bound nodes the solver explored
    evaluation: Evaluation | None = None
    reasons: list[str] = field(default_factory=list)
    encodings: dict[str, str] = field(default_factory=dict)  # tensors sent encoded (§10)
    termination: str | None = None
    polish_time_s: float = 0.0  # seconds of `polish` after the solver (§11 "Polishing")
    polish_improvements: int = 0  # better plans polishing found

    @property
    def gap(self) -> float | None:
        if self.objective is None or self.bound is None:
            return None
        if self.status == "optimal" and self.objective - self.bound <= 1e-9 * max(
            1.0, abs(self.objective)
        ):
            return 0.0
        return max(0.0, self.objective - self.bound) / max(abs(self.objective), 1e-12)

    @property
    def solved(self) -> bool:
        return self.assignment is not None

    def segments(self) -> list[tuple[str, list[str]]]:
        """Maximal runs of consecutive layers (topological order) on the same node."""
        if self.assignment is None:
            return []
        runs: list[tuple[str, list[str]]] = []
        for layer in self.instance.layer_names:
            node = self.assignment[layer]
            if runs and runs[-1][0] == node:
                runs[-1][1].append(layer)
            else:
                runs.append((node, [layer]))
        return runs

    def split_points(self) -> list[str]:
        """The layers after which the next layer runs elsewhere."""
        return [layers[-1] for _, layers in self.segments()[:-1]]

    def to_dict(self) -> dict[str, Any]:
        ev = self.evaluation
        return {
            "instance": self.instance.name,
            "status": self.status,
            "solver": self.solver,
            "termination": self.termination,
            "objective_kind": self.instance.objective.kind,
            "objective": self.objective,
            "bound": self.bound,
            "gap": self.gap,
            "assignment": self.assignment,
            "split_points": self.split_points(),
            "latency_s": ev.latency_s if ev else None,
            "compute_s": ev.compute_s if ev else None,
            "transfer_s": ev.transfer_s if ev else None,
            "codec_s": ev.codec_s if ev else None,
            "encodings": self.encodings,
            "accuracy_loss": ev.accuracy_loss if ev else None,
            "energy_j": ev.energy_j if ev else None,
            "period_s": ev.period_s if ev else None,
            "node_compute_s": ev.node_compute_s if ev else None,
            "memory_bytes": ev.memory_bytes if ev else None,
            "transfers": [
                {
                    "tensor": t.tensor,
                    "bytes": t.size_bytes,
                    "encoding": t.encoding,
                    "from": t.source,
                    "to": t.target,
                    "route": list(t.route),
                    "time_s": t.time_s,
                    "energy_j": t.energy_j,
                }
                for t in (ev.transfers if ev else [])
            ],
            "solve_time_s": self.solve_time_s,
            "build_time_s": self.build_time_s,
            "bb_nodes": self.bb_nodes,
            "polish_time_s": self.polish_time_s,
            "polish_improvements": self.polish_improvements,
            "reasons": self.reasons,
        }

    def summary(self) -> str:
        """A readable report: segments per node, split points, cost breakdown, bound and gap."""
        inst = self.instance
        lines = [
            f"instance   {inst.name}  ({len(inst.dnn.layers)} layers, "
            f"{len(inst.network.nodes)} nodes, objective {inst.objective.kind})"
        ]
        polished = (
            f", polish {self.polish_time_s:.3f} s: {self.polish_improvements} better plans"
            if self.polish_time_s > 0
            else ""
        )
        lines.append(
            f"status     {self.status}  (solver {self.solver}, "
            f"build {self.build_time_s:.3f} s, solve {self.solve_time_s:.3f} s{polished})"
        )
        for reason in self.reasons:
            lines.append(f"reason     {reason}")
        ev = self.evaluation
        if ev is None:
            return "\n".join(lines)
        lines.append("")
        width = max(len(node) for node, _ in self.segments())
        lines.append(f"{'node':<{width}}  {'layers':<40} {'compute_s':>11}")
        tb = tables(inst)
        for node, layers in self.segments():
            k = tb.node_index[node]
            t = sum(tb.compute_s[tb.layer_index[la], k] for la in layers)
            span = layers[0] if len(layers) == 1 else f"{layers[0]} .. {layers[-1]} ({len(layers)})"
            lines.append(f"{node:<{width}}  {span:<40} {t:>11.6g}")
        splits = self.split_points()
        lines.append(f"splits     {len(splits)}: {', '.join(splits) if splits else '(none)'}")
        if ev.transfers:
            lines.append("")
            coded = any(t.encoding != RAW for t in ev.transfers)
            form = f" {'encoding':<12}" if coded else ""
            lines.append(f"{'tensor':<20}{form} {'bytes':>12} {'route':<30} {'time_s':>11}")
            for t in ev.transfers:
                route = " > ".join(t.route)
                form = f" {t.encoding:<12}" if coded else ""
                lines.append(
                    f"{t.tensor:<20}{form} {t.size_bytes:>12.6g} {route:<30} {t.time_s:>11.6g}"
                )
        lines.append("")
        codec = f", encode/decode {ev.codec_s:.6g} s" if ev.encodings else ""
        lines.append(
            f"latency    {ev.latency_s:.6g} s  (compute {ev.compute_s:.6g} s{codec}, "
            f"transfer {ev.transfer_s:.6g} s)"
        )
        codec = f", encode/decode {ev.codec_energy_j:.6g} J" if ev.encodings else ""
        lines.append(
            f"energy     {ev.energy_j:.6g} J  (compute {ev.compute_energy_j:.6g} J{codec}, "
            f"transmit {ev.transfer_energy_j:.6g} J)"
        )
        if ev.encodings or tables(inst).has_encodings:
            lines.append(
                f"accuracy   loss {ev.accuracy_loss:.6g} ({100 * ev.accuracy_loss:.4g} points) "
                "from encodings"
            )
        lines.append(
            f"period     {ev.period_s:.6g} s  (throughput {1 / ev.period_s:.6g} /s)"
            if ev.period_s > 0
            else "period     0 s"
        )
        gap = self.gap
        bound = f"{self.bound:.9g}" if self.bound is not None else "-"
        gap_text = f"{100 * gap:.4f} %" if gap is not None else "-"
        lines.append(f"objective  {self.objective:.9g}  bound {bound}  gap {gap_text}")
        return "\n".join(lines)


def solve(
    instance: Instance,
    solver: str = "highs",
    time_limit_s: float | None = None,
    mip_rel_gap: float = 1e-6,
    verbose: bool = False,
    initial: Mapping[str, str] | None = None,
    polish: str = "auto",
) -> Plan:
    """The optimal plan of an instance, solved as the MILP of models/formulation.md.

    `solver` is "highs", "ortools" (SCIP), "ortools-cpsat" or "pyomo:NAME" (the same model
    through Pyomo, solved by Pyomo's solver NAME, e.g. "pyomo:appsi_highs"). The plan's
    objective is the evaluator's cost of its assignment; status "infeasible" comes with `reasons`
    where they can be told. `verbose` shows the solver's log. `initial` ({layer: node}, e.g. a
    heuristic's plan) is handed to the solver as a MIP start; for the period, first improved by
    `pipeline.improve_start` within a fifth of the share of the limit a start gets
    (`start_budget_s`). Where the search is hard (the period, or memory that may bind) and a
    limit is given, the plan is polished (`splitplan.polish`; not for `pyomo:` solvers):
    `polish` = "beside" runs the search in a second process while the solver has the whole
    limit (the solver's better plans go to the search as it finds them); "after" keeps
    `POLISH_SHARE` of the solver's time to polish its plan, unless it proved it optimal; "off"
    does neither; "auto" is "beside" for HiGHS and SCIP with at least two cores and
    `BESIDE_MIN_S` seconds for the solver, else "after". The plan's `polish_time_s` and
    `polish_improvements` say what polishing did (0 when the solver proved optimality first).
    """
    from .milp import BuildTimeout, build_milp
    from .solvers import check_solver, solve_milp

    check_solver(solver)
    if polish not in POLISH_MODES:
        raise ValueError(f"polish must be one of {', '.join(POLISH_MODES)}, not {polish!r}")
    began = time.perf_counter()
    tb = tables(instance)
    if tb.reasons:
        return Plan(instance, "infeasible", solver, reasons=list(tb.reasons))
    hard = instance.objective.kind == "throughput" or tb.memory_binds
    if initial is None and hard:
        from .pipeline import best_start, start_budget_s

        # a fast construction as the MIP start, within a share of the user's limit (the limit
        # covers it): the period and binding memory are where the search is hard
        initial = best_start(instance, start_budget_s(instance, time_limit_s))
    elif initial is not None and instance.objective.kind == "throughput":
        from .pipeline import start_budget_s

        # the user's start, improved by the same search within a fifth of the share a start
        # gets: a given start is usually good already, and on large models the solver needs
        # the time for its root LP (the bound)
        initial = _improved(instance, initial, 0.2 * start_budget_s(instance, time_limit_s))
    fallback = None
    if initial is not None and set(initial) >= set(instance.layer_names):
        fallback = evaluate(instance, {name: initial[name] for name in instance.layer_names})
    deadline = None if time_limit_s is None else began + time_limit_s
    try:
        milp = build_milp(instance, deadline, incumbent_s=_incumbent_period(instance, fallback))
    except BuildTimeout:
        plan = Plan(
            instance,
            "time_limit",
            solver,
            build_time_s=time.perf_counter() - began,
            reasons=["the time limit ran out while the model was being built"],
        )
        if fallback is not None and fallback.feasible:  # we hold a plan: return it, unproven
            # status time_limit, as when the solver stops at the limit with a plan in hand
            plan.reasons = [
                "the time limit ran out while the model was being built: the plan is the MIP "
                "start, without a bound"
            ]
            plan.assignment, plan.evaluation = dict(fallback.assignment), fallback
            plan.objective = fallback.objective(instance)
        return plan
    build = time.perf_counter() - began
    # The limit covers building the model too; the solver gets what is left.
    solver_limit_s = None if deadline is None else max(deadline - time.perf_counter(), 1e-3)
    # Where the search is hard, a share of the limit is kept to polish the solver's plan
    # (`polish`: the model re-solved on neighbourhoods of a few nodes).
    polish_s = 0.0
    beside = None
    mode = _polish_mode(polish, hard, solver, solver_limit_s)
    if mode == "beside" and deadline is not None:
        beside = _start_beside(milp, solver, fallback, deadline, verbose)
    if mode != "off" and beside is None and solver_limit_s is not None:
        polish_s = POLISH_SHARE * solver_limit_s  # "after", or a second process failed
    start_values = None if initial is None else milp.start_vector(initial)
    t0 = time.perf_counter()
    try:
        result, _ = solve_milp(
            milp,
            solver,
            time_limit_s=None if solver_limit_s is None else solver_limit_s - polish_s,
            mip_rel_gap=mip_rel_gap,
            verbose=verbose,
            start=start_values,
            **({"on_incumbent": beside.offer} if beside is not None else {}),
        )
    except BaseException:
        if beside is not None:
            beside.kill()
        raise
    build += time.perf_counter() - t0 - result.solve_time_s  # reading the matrix back
    found = None
    if result.values is not None:
        found = milp.read_assignment(result.values), milp.read_encodings(result.values)
    polished = None
    if beside is not None and deadline is not None:
        if result.termination in ("optimal", "infeasible"):
            beside.kill()  # the solver's word is checked below; the search's plans are moot
        else:
            polished = _better(milp.instance, beside.finish(deadline), found)
    elif polish_s > 0 and result.termination != "optimal" and deadline is not None:
        polished = _polished(milp, solver, found, fallback, deadline)
    if polished is not None and polished.values is not None:
        found = polished.assignment, polished.encodings
        result = replace(result, values=polished.values, objective=polished.milp_objective)
    plan = _verdict(
        instance,
        solver,
        result,
        found,
        fallback,
        time_limit_s,
        deadline,
        floor=milp.matrix.objective_floor,
    )
    plan.build_time_s = build
    if beside is not None and polished is not None:
        plan.polish_time_s = beside.wall_s
        plan.polish_improvements = polished.improvements
    elif polished is not None:
        plan.polish_time_s = polished.wall_s
        plan.polish_improvements = polished.improvements
    return plan


POLISH_MODES = ("auto", "beside", "after", "off")
POLISH_SHARE = 0.25  # of the solver's time, kept for `polish` "after" the solver
POLISH_SEED = 0  # the seed of the neighbourhoods' order (benchmarks/polish.py --seeds)
# "auto" polishes beside the solver only with this much time for it: the second process takes
# about a second to start (a fresh interpreter importing numpy, HiGHS and splitplan).
BESIDE_MIN_S = 2.0


def _cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _polish_mode(mode: str, hard: bool, solver: str, solver_limit_s: float | None) -> str:
    """How `solve` polishes: "beside", "after" or "off" (`solve`'s `polish`)."""
    from .solvers import PYOMO_PREFIX

    if mode == "off" or not hard or solver_limit_s is None or solver.startswith(PYOMO_PREFIX):
        return "off"
    if mode == "auto":
        # CP-SAT runs its own workers on every core; HiGHS and SCIP search on one
        beside = solver in ("highs", "ortools") and _cores() >= 2
        return "beside" if beside and solver_limit_s >= BESIDE_MIN_S else "after"
    return mode


def _start_beside(milp, solver: str, start: Evaluation | None, deadline: float, verbose: bool):
    """A `polish.PolishProcess` from the MIP start (from the solver's first plan when the start
    is not feasible); None where the process could not be started (then no polishing)."""
    from .polish import PolishProcess

    base = start if start is not None and start.feasible else None
    try:
        return PolishProcess(
            milp,
            None if base is None else dict(base.assignment),
            deadline,
            solver,
            None if base is None else dict(base.encodings),
            POLISH_SEED,
            verbose=verbose,
        )
    except OSError:
        return None


def _better(instance: Instance, polished, found: tuple[dict[str, str], dict[str, str]] | None):
    """`polished` where its plan costs strictly less than the solver's `found` (or the solver
    has none), else None."""
    from .polish import _IMPROVE_REL

    if polished is None or polished.values is None or found is None:
        return polished
    ev = evaluate(instance, found[0], found[1])
    cost = ev.objective(instance)
    if ev.feasible and polished.cost >= cost - _IMPROVE_REL * abs(cost):
        return None
    return polished


def _polished(
    milp,
    solver: str,
    found: tuple[dict[str, str], dict[str, str]] | None,
    start: Evaluation | None,
    deadline: float,
):
    """`polish.polish` until `deadline` from the MIP start, or from the solver's plan (`found`)
    where that is feasible and strictly better; None when neither is feasible.

    On a tie the start is kept: an equally good plan from a stopped solver can be any vertex
    it reached (on ResNet-101 x 8 GPUs one with every GPU's links near the period, which no
    neighbourhood of a few nodes improves), where the start comes from a search that leaves the
    resources it did not need idle."""
    from .polish import _IMPROVE_REL, polish

    base: tuple[float, dict[str, str], dict[str, str]] | None = None
    if start is not None and start.feasible:
        base = (start.objective(milp.instance), dict(start.assignment), dict(start.encodings))
    if found is not None:
        ev = evaluate(milp.instance, found[0], found[1])
        cost = ev.objective(milp.instance)
        if ev.feasible and (base is None or cost < base[0] - _IMPROVE_REL * abs(base[0])):
            base = (cost, found[0], found[1])
    if base is None:
        return None
    return polish(milp, base[1], deadline, solver, base[2], POLISH_SEED)


def _improved(instance: Instance, initial: Mapping[str, str], budget_s: float) -> dict[str, str]:
    """The user's start for the period, improved by `pipeline.improve_start` within `budget_s`
    when it places every layer (names of no layer dropped, as the fallback's evaluation does)
    and is feasible; otherwise the start as it is."""
    from .pipeline import improve_start

    if not set(initial) >= set(instance.layer_names):
        return dict(initial)  # not a plan: handed on as it is, as before
    plan = {name: initial[name] for name in instance.layer_names}
    if not evaluate(instance, plan).feasible:
        return plan
    now = time.perf_counter()
    return improve_start(instance, plan, now + 0.9 * budget_s, now + budget_s)


def _incumbent_period(instance: Instance, start: Evaluation | None) -> float | None:
    """The period of a feasible start when the objective is the period: the model may then drop
    the plans worse than it (`milp.build_milp`'s `incumbent_s`)."""
    if start is None or not start.feasible or instance.objective.kind != "throughput":
        return None
    return start.period_s


def _verdict(
    instance: Instance,
    solver: str,
    result: SolverResult,
    found: tuple[dict[str, str], dict[str, str]] | None,
    start: Evaluation | None,
    time_limit_s: float | None,
    deadline: float | None,
    floor: float = 0.0,
) -> Plan:
    """The plan and its status from what the solver returned, its claims checked.

    - The plan's cost is the evaluator's; a plan the evaluator rejects is not returned (status
      `error`: a solver tolerance or a model bug, said in `reasons`).
    - `optimal` only when cost - bound <= max(abs_gap, rel_gap * |cost|) for a bound the solver
      proved (`SolverResult.bound`, valid for the float model); otherwise `feasible`, or
      `time_limit` when the solver stopped at the limit, with the honest gap.
    - The MILP's objective of the returned point must equal the evaluator's cost (rel 1e-6 +
      abs gap): if not, that is a bug, said in `reasons`, and no bound is claimed.
    - A feasible MIP start (`start`, its evaluation) is kept when the solver returns nothing
      better, and refutes a claim of infeasibility.
    - `floor` (> 0: `StandardForm.objective_floor`, a lower bound computed from the cost tables
      before solving, e.g. the period bounds of `splitplan.cuts`) is the bound when the solver
      proved less or nothing (it stopped before its root LP, or was not started); it is
      checked against the plan's cost like the solver's.
    - "infeasible" from HiGHS is reported as such; from SCIP or CP-SAT it is confirmed with
      HiGHS first (both have claimed it wrongly: SCIP's presolve, CP-SAT's presolve on large
      coefficients), and reported as `error` when HiGHS finds a plan or cannot decide.
    """
    from .solvers import gap_closed

    plan = Plan(
        instance,
        "error",
        solver,
        milp_objective=result.objective,
        solve_time_s=result.solve_time_s,
        bb_nodes=result.nodes,
        termination=result.termination,
    )
    abs_gap, rel_gap = result.abs_gap, result.rel_gap
    reasons: list[str] = []
    best: tuple[float, dict[str, str], Evaluation, bool] | None = None
    if found is not None:
        ev = evaluate(instance, found[0], found[1])
        if ev.feasible:
            best = (ev.objective(instance), found[0], ev, True)
        else:
            reasons.append(
                f"{solver} returned a plan the evaluator rejects ({'; '.join(ev.violations)}): "
                "a solver tolerance or a model bug, please report it"
            )
    if start is not None and start.feasible:
        cost = start.objective(instance)
        if best is None or cost < best[0]:
            if best is not None:
                reasons.append("the MIP start is better than the solver's plan; it is kept")
            best = (cost, dict(start.assignment), start, False)
    if best is None:
        if reasons:
            plan.reasons = reasons
        elif result.termination == "infeasible":
            plan.status, plan.reasons = _infeasible(instance, solver, deadline)
        elif result.termination == "time_limit":
            plan.status = "time_limit"
            plan.reasons = [f"no feasible plan found within the time limit of {time_limit_s} s"]
        else:
            plan.reasons = [f"{solver} stopped without a plan ({result.message})"]
        return plan
    cost, assignment, ev, from_solver = best
    plan.assignment, plan.evaluation, plan.objective = assignment, ev, cost
    plan.encodings = dict(ev.encodings)
    tolerance = max(abs_gap, rel_gap * abs(cost))
    bound = result.bound
    if floor > 0 and (bound is None or floor > bound):
        bound = floor
    if result.termination == "infeasible":
        reasons.append(
            f"{solver} reported the instance infeasible, but this plan is feasible "
            "(the evaluator checked it): the claim is wrong"
        )
        bound = None
    if from_solver and result.objective is not None:
        if abs(result.objective - cost) > max(abs_gap, 1e-6 * abs(cost)):
            reasons.append(
                f"bug: the MILP's objective {result.objective:.12g} and the evaluator's cost "
                f"{cost:.12g} of the same plan disagree; no bound is claimed"
            )
            bound = None
    if bound is not None and bound > cost + tolerance:
        reasons.append(
            f"{solver}'s bound {bound:.12g} is above the cost {cost:.12g} of a feasible plan: "
            "it is not a bound and is dropped"
        )
        bound = None
    plan.bound = bound
    if bound is not None and gap_closed(cost, bound, abs_gap, rel_gap):
        plan.status = "optimal"
        plan.bound = min(bound, cost)
    else:
        plan.status = "time_limit" if result.termination == "time_limit" else "feasible"
        if result.termination == "optimal":
            reasons.append(
                f"{solver} reported optimal, but the plan's cost {cost:.12g} is not within the "
                f"stated gap (abs {abs_gap:.3g}, rel {rel_gap:.3g}) of a proven bound "
                f"({'none' if bound is None else f'{bound:.12g}'})"
            )
    plan.reasons = reasons
    return plan


def _infeasible(instance: Instance, solver: str, deadline: float | None) -> tuple[str, list[str]]:
    """The status and reasons for a solver's claim that no plan exists (see `_verdict`)."""
    if solver in ("ortools", "ortools-cpsat"):
        left = None if deadline is None else max(deadline - time.perf_counter(), 1e-3)
        check = solve(instance, "highs", time_limit_s=left)
        if check.solved:
            return "error", [
                f"{solver} reported the instance infeasible, but HiGHS found a plan costing "
                f"{check.objective:.12g}: the claim is wrong (a solver bug, please report it)"
            ]
        if check.status != "infeasible":
            return "error", [
                f"{solver} reported the instance infeasible and HiGHS could not confirm it "
                f"({check.status})"
            ]
    return "infeasible", _why_infeasible(instance, solver, deadline)


# True while `_why_infeasible` solves relaxed instances: those solves must not explain their own
# infeasibility (issue 15: each relaxed solve explained itself again, until RecursionError).
_EXPLAINING: ContextVar[bool] = ContextVar("splitplan_explaining", default=False)


def _why_infeasible(instance: Instance, solver: str, deadline: float | None = None) -> list[str]:
    """Explain an infeasible MILP by relaxing the latency limit and, failing that, memory.

    The relaxed solves share what is left of the caller's time limit (`deadline`, a
    `time.perf_counter()` instant) and never explain themselves.
    """
    if _EXPLAINING.get():
        return []
    token = _EXPLAINING.set(True)
    try:
        return _relaxed_reasons(instance, solver, deadline)
    finally:
        _EXPLAINING.reset(token)


class _OutOfTime(Exception):
    pass


def _relaxed_reasons(instance: Instance, solver: str, deadline: float | None) -> list[str]:
    from .instance import Constraints, Objective

    def feasible(relaxed: Instance) -> Plan | None:
        left = None if deadline is None else deadline - time.perf_counter()
        if left is not None and left <= 0:
            raise _OutOfTime
        plan = solve(relaxed, solver, time_limit_s=left)
        if plan.status == "time_limit":
            raise _OutOfTime
        return plan if plan.solved else None

    try:
        limit = instance.constraints.max_latency_s
        if limit is not None:
            relaxed = instance.with_constraints(replace(instance.constraints, max_latency_s=None))
            relaxed = relaxed.with_objective(Objective("latency"))
            plan = feasible(relaxed)
            if plan is not None:
                within = (
                    ", pins and max_accuracy_loss"
                    if instance.constraints.max_accuracy_loss is not None
                    else " and pins"
                )
                return [
                    f"max_latency_s is {limit:g} s but the fastest plan that satisfies the "
                    f"memory limits{within} takes {plan.objective:.6g} s"
                ]
        unlimited = Instance(
            instance.dnn,
            replace(
                instance.network,
                nodes=tuple(replace(n, memory_bytes=None) for n in instance.network.nodes),
            ),
            Objective("latency"),
            Constraints(instance.constraints.pin, None),
            instance.name,
        )
        if feasible(unlimited) is not None:
            params = sum(layer.param_bytes for layer in instance.dnn.layers)
            capacity = sum(n.memory_bytes or 0 for n in instance.network.nodes)
            return [
                "the layers do not fit into the nodes' memory_bytes together (param_bytes "
                f"{params:g} in all against memory_bytes {capacity:g}; each node also holds its "
                "largest working set)"
            ]
    except _OutOfTime:
        return ["infeasible; the time limit passed before the reason could be found"]
    return ["no placement respects the pins and the direction of the links together"]
