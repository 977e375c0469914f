"""One way to plan a NAS candidate: its instance, its optimal placement, its local latency.

Both users of the inner loop go through `plan_candidate`: the Optuna loop
(`splitplan.nas.search.evaluate`, the MILP by default) and NB201's exact front
(`splitplan.nas.nb201.plan_latency` and `exact_front`, the chain DP where it applies). So a
candidate gets the same instance and the same optimum whichever caller asks.

- **Instance.** The space gives the architecture's layer DAG with times for the network's
  device classes that it can time (`timed_classes`); a node of any other class costs
  flops / flops_per_s (§1 of models/formulation.md) and is listed in ``unmeasured_nodes``.
  An SLO becomes the instance's latency limit (`Constraints.max_latency_s`).
- **Method.** ``milp`` (`splitplan.solve` with `solver`), ``dp`` (the exact chain DP,
  `baselines.chain_dp`; `baselines.NotApplicable` where it does not apply), ``auto`` (the DP
  where it applies, else the MILP) or ``single-split`` (the best single split between the
  source and one server, `baselines.neurosurgeon`: NASC's setting, not an optimum).
- **SLO screening.** With an SLO, a lower bound on the latency (each layer on its fastest
  allowed node, no transfers: `cost.latency_lower_bound`) is checked first; a candidate it
  already puts past the SLO is returned unsolved (``plan`` is None, ``pruned`` is True).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from ..cost import evaluate as cost_of
from ..cost import latency_lower_bound
from ..instance import Constraints, Instance, Network, Objective
from . import Space

if TYPE_CHECKING:
    from ..plan import Plan

METHODS = ("auto", "dp", "milp", "single-split")
OBJECTIVES = ("latency", "energy")  # those a string may name; any Objective is accepted


def network_of(network: str | Network) -> Network:
    """`network` itself, or the preset of that name (`splitplan.devices.network_preset`)."""
    if isinstance(network, Network):
        return network
    from ..devices import network_preset

    return network_preset(network)


def objective_of(objective: str | Objective) -> Objective:
    """`objective` itself, or ``Objective(objective)`` for ``latency`` / ``energy``."""
    if isinstance(objective, Objective):
        return objective
    if objective not in OBJECTIVES:
        raise ValueError(
            f"unknown objective {objective!r}; expected 'latency', 'energy' or an Objective"
        )
    return Objective(objective)


def check_method(method: str) -> str:
    """`method` if it is one of `METHODS`, else ValueError naming them."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")
    return method


def timed_classes(space: Space, network: Network) -> list[str]:
    """The network's device classes (in node order, once each) that `space` is asked to time:
    those in the space's `device_classes` when it lists them (NB201: the measured ones), else
    all of them."""
    known = getattr(space, "device_classes", None)
    classes = [n.device_class for n in network.nodes if n.device_class]
    if known is not None:
        known = set(known)
        classes = [c for c in classes if c in known]
    return list(dict.fromkeys(classes))


def candidate_instance(
    space: Space,
    arch: str,
    network: Network,
    objective: Objective | None = None,
    slo_s: float | None = None,
) -> Instance:
    """The instance of `arch` on `network`: the space's DNN timed for `timed_classes`, the
    objective (default latency) and the SLO (seconds) as its latency limit; named after the
    DNN."""
    dnn = space.dnn(arch, timed_classes(space, network))
    return Instance(
        dnn,
        network,
        Objective("latency") if objective is None else objective,
        Constraints({}, slo_s),
        dnn.name,
    )


@dataclass
class CandidatePlan:
    """One architecture planned on one network (see the module's doc)."""

    arch: str
    instance: Instance
    method: str  # the method asked for (METHODS)
    plan: Plan | None  # None when the SLO screen pruned the candidate
    local_latency_s: float  # everything on the source node (the device)
    unmeasured_nodes: list[str] = field(default_factory=list)  # priced by flops / flops_per_s
    seconds: float = 0.0  # building the instance, screening, solving, evaluating

    @property
    def pruned(self) -> bool:
        """The latency lower bound already exceeds the SLO: never solved."""
        return self.plan is None

    @cached_property
    def bound_s(self) -> float:
        """Each layer on its fastest allowed node, no transfers, s: no plan is faster."""
        return latency_lower_bound(self.instance)

    @property
    def planner(self) -> str:
        """What planned it: ``dp``, ``neurosurgeon``, or ``milp-<solver>``; ``pruned``."""
        if self.plan is None:
            return "pruned"
        solver = self.plan.solver
        return solver if solver in ("dp", "neurosurgeon") else f"milp-{solver}"


def plan_candidate(
    space: Space,
    arch: str,
    network: str | Network,
    *,
    objective: str | Objective = "latency",
    slo_s: float | None = None,
    method: str = "milp",
    solver: str = "highs",
    time_limit_s: float | None = None,
) -> CandidatePlan:
    """Plan `arch` of `space` on `network` (a `Network` or a preset name) with `method` (see
    the module's doc); `slo_s` is a latency limit in seconds, `time_limit_s` the MILP's."""
    from ..baselines import NotApplicable, chain_dp, neurosurgeon
    from ..plan import solve

    check_method(method)
    start = time.perf_counter()
    net = network_of(network)
    inst = candidate_instance(space, arch, net, objective_of(objective), slo_s)
    classes = set(timed_classes(space, net))
    result = CandidatePlan(
        arch,
        inst,
        method,
        None,
        cost_of(inst, {name: net.source for name in inst.layer_names}).latency_s,
        [n.name for n in net.nodes if n.device_class not in classes],
    )
    if slo_s is not None and result.bound_s > slo_s:
        result.seconds = time.perf_counter() - start
        return result
    plan = None
    if method == "single-split":
        plan = neurosurgeon(inst)
    elif method in ("auto", "dp"):
        try:
            plan = chain_dp(inst)
        except NotApplicable:
            if method == "dp":
                raise
    if plan is None:
        plan = solve(inst, solver, time_limit_s=time_limit_s)
    result.plan = plan
    result.seconds = time.perf_counter() - start
    return result
