"""The stopping problem of one inference, and its data taken from an instance.

Stage i = 0..L means "cut after the first i layers" (layers in the instance's topological order):
the device has run layers 1..i and sends what the server needs. Stopping at stage i when the
channel rate is r (bytes/s) costs

    S_i(r) = a[i] + b[i] / r

and going on from stage i to i+1 costs c[i] (running layer i+1 on the device). The formulas, and
how a, b and c come from an instance, are in ``models/online.md``; the symbols here are the same.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from ..errors import SplitplanError
from ..instance import Instance, Link, Network, Objective


class OnlineError(SplitplanError, ValueError):
    """A user mistake in the online-splitting inputs (server, channel, trace, weights)."""


@dataclass(frozen=True)
class StopProblem:
    """The costs of one inference as an optimal stopping problem over stages 0..L.

    `c[i]` (shape L): cost of running layer i+1 on the device, between boundaries i and i+1.
    `a[i]`, `b[i]` (shape L+1): stopping at stage i on rate r costs a[i] + b[i] / r.
    `step_s[i]` (shape L): seconds between boundaries i and i+1 (the device's time of layer i+1),
    the time axis of trace-driven channels. Stopping is allowed at stages min_stop..max_stop only
    (pins); the last stage of a horizon N is min(N, max_stop), where stopping is forced.
    """

    c: np.ndarray
    a: np.ndarray
    b: np.ndarray
    step_s: np.ndarray
    min_stop: int = 0
    max_stop: int | None = None
    names: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        c, a, b = (np.asarray(x, dtype=float) for x in (self.c, self.a, self.b))
        step = np.asarray(self.step_s, dtype=float)
        L = len(c)
        if a.shape != (L + 1,) or b.shape != (L + 1,) or step.shape != (L,):
            raise OnlineError(
                f"shapes: c has {L} stages, so a and b need {L + 1} values and step_s {L}; got "
                f"{a.shape}, {b.shape}, {step.shape}"
            )
        for name, x in (("c", c), ("a", a), ("b", b), ("step_s", step)):
            if not np.all(np.isfinite(x)):
                raise OnlineError(f"{name} must be finite")
        if np.any(b < 0) or np.any(step < 0):
            raise OnlineError("b and step_s must not be negative")
        max_stop = L if self.max_stop is None else int(self.max_stop)
        if not 0 <= self.min_stop <= max_stop <= L:
            raise OnlineError(
                f"need 0 <= min_stop <= max_stop <= {L}, got {self.min_stop}, {max_stop}"
            )
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "step_s", step)
        object.__setattr__(self, "max_stop", max_stop)

    @property
    def layers(self) -> int:
        """L, the number of layers."""
        return len(self.c)

    @property
    def last_allowed(self) -> int:
        """The last stage where stopping is allowed: `max_stop`, which construction resolves
        from None to L (typed for the checker, which cannot see that)."""
        return self.layers if self.max_stop is None else self.max_stop

    @property
    def cum_c(self) -> np.ndarray:
        """cum_c[i] = c[0] + ... + c[i-1]: local cost of reaching stage i (shape L+1)."""
        return np.concatenate(([0.0], np.cumsum(self.c)))

    def last_stage(self, horizon: int | None = None) -> int:
        """The forced stopping stage for `horizon` placed layers (default: all that are allowed)."""
        n = self.last_allowed if horizon is None else min(int(horizon), self.last_allowed)
        if horizon is not None and horizon < 0:
            raise OnlineError(f"the horizon must be >= 0, got {horizon}")
        if n < self.min_stop:
            raise OnlineError(
                f"a horizon of {horizon} layers stops before stage {self.min_stop}, the first "
                "allowed cut (a pinned layer must run on the device)"
            )
        return n

    def stop_cost(self, i: int, rate: np.ndarray | float) -> np.ndarray:
        """S_i(r) = a[i] + b[i] / r."""
        return self.a[i] + self.b[i] / np.asarray(rate, dtype=float)


@dataclass(frozen=True)
class Stages:
    """Physical per-stage data of an instance, for a device and the server it offloads to.

    Stage i = 0..L: the device runs the first i layers. `bytes[i]` (d_i) is what it sends: every
    tensor (the input included) produced at a position <= i and consumed at a position > i, plus
    the output when it was computed on the device and the sink is another node. `edge_s[i]` is the
    server's time for layers i+1..L, `tail_s[i]` the time to bring the output to the sink after
    that (0 when there is no sink or the output is already there).
    """

    instance: str
    device: str
    server: str
    layer_names: tuple[str, ...]
    local_s: np.ndarray
    compute_power_w: float
    tx_power_w: float
    edge_s: np.ndarray
    tail_s: np.ndarray
    bytes: np.ndarray
    messages: np.ndarray
    param_bytes: np.ndarray
    latency_s: float
    link_bytes_per_s: float
    min_stop: int
    max_stop: int
    max_placed: int
    notes: tuple[str, ...] = field(default=())

    @property
    def layers(self) -> int:
        return len(self.local_s)

    def problem(self, w_time: float = 1.0, lam: float = 0.0) -> StopProblem:
        """The stopping problem for cost = w_time x time + lam x device energy."""
        if not (np.isfinite(w_time) and np.isfinite(lam)) or w_time < 0 or lam < 0:
            raise OnlineError(f"weights must be finite and >= 0, got w_time={w_time}, lambda={lam}")
        if w_time == 0 and lam == 0:
            raise OnlineError("w_time and lambda are both 0: nothing to minimise")
        k = w_time + lam * self.tx_power_w  # weight of one second on the air
        c = (w_time + lam * self.compute_power_w) * self.local_s
        a = w_time * (self.edge_s + self.tail_s) + k * self.latency_s * self.messages
        b = k * self.bytes
        top = min(self.max_stop, self.max_placed)  # the device computes only what it holds
        return StopProblem(c, a, b, self.local_s, self.min_stop, top, names=self.layer_names)

    def download_cost_per_byte(
        self, w_time: float, lam: float, downlink_bytes_per_s: float, rx_power_w: float = 0.0
    ) -> float:
        """kappa: weighted cost of downloading one parameter byte to the device."""
        if not downlink_bytes_per_s > 0:
            raise OnlineError(f"the downlink rate must be positive, got {downlink_bytes_per_s}")
        if rx_power_w < 0:
            raise OnlineError(f"the receive power must be >= 0, got {rx_power_w}")
        return (w_time + lam * rx_power_w) / downlink_bytes_per_s


def objective_weights(inst: Instance) -> tuple[float, float]:
    """(w_time, lambda) read from the instance's objective: latency and throughput -> (1, 0),
    energy -> (0, 1), weighted -> (latency weight, energy weight). The online cost counts the
    device's energy only, where the instance's energy counts every node's."""
    o = inst.objective
    if not o.additive:
        return 1.0, 0.0
    w = o.weights()
    return float(w.latency), float(w.energy)


def _device_links(net: Network, device: str) -> list[tuple[str, Link]]:
    """(neighbour, link) for every link the device can send on, in file order."""
    out = []
    for link in net.links:
        if link.source == device:
            out.append((link.target, link))
        elif link.target == device and link.bidirectional:
            out.append((link.source, link))
    return out


def stages_from_instance(inst: Instance, server: str | None = None) -> Stages:
    """Per-stage data of `inst`: the device is `network.source`, the server `server` (default: the
    device's first neighbour by link), which must be linked to the device directly: that link is
    the fading one."""
    from ..cost import tables

    tb = tables(inst)
    net = inst.network
    device = net.source
    links = _device_links(net, device)
    if not links:
        raise OnlineError(f"the device '{device}' (network.source) has no link to send on")
    if server is None:
        server, link = links[0]
    else:
        if server not in tb.node_index:
            raise OnlineError(f"unknown server '{server}'; nodes are {', '.join(inst.node_names)}")
        if server == device:
            raise OnlineError(f"the server must not be the device '{device}' itself")
        found = [ln for nb, ln in links if nb == server]
        if not found:
            neighbours = ", ".join(nb for nb, _ in links)
            raise OnlineError(
                f"server '{server}' has no direct link from the device '{device}' (the fading "
                f"link); the device can send to: {neighbours}"
            )
        link = found[0]
    dev, srv = tb.node_index[device], tb.node_index[server]
    L = len(tb.layers)
    notes: list[str] = []

    # d_i: tensors produced at position <= i (input: 0, layer v: v+1) and consumed after i.
    sink = tb.sink
    out_pos = tb.output + 1
    size = np.zeros(L + 1)
    messages = np.zeros(L + 1, dtype=np.int64)
    for t in tb.tensors:
        pos = t.producer + 1
        last_use = max((cons + 1 for cons in t.consumers), default=pos)
        size[pos:last_use] += t.size_bytes  # stages pos .. last_use-1 cut this tensor
        messages[pos:last_use] += 1
        if t.to_sink and sink != dev:
            size[max(pos, last_use) :] += t.size_bytes  # computed on the device, must leave it
            messages[max(pos, last_use) :] += 1
    # Layers run on the server after the cut, and the output's trip to the sink.
    local_s = tb.compute_s[:, dev].copy()
    server_s = tb.compute_s[:, srv]
    edge_s = np.concatenate((np.cumsum(server_s[::-1])[::-1], [0.0]))
    tail_s = np.zeros(L + 1)
    if sink is not None:
        out_bytes = tb.tensors[out_pos].size_bytes
        for i in range(L + 1):
            on_device = out_pos <= i
            if on_device and sink == dev:
                continue
            if sink == srv:
                continue
            cost = tb.path_cost(out_bytes, srv, sink)
            if cost is None:
                raise OnlineError(
                    f"the output cannot reach the sink '{tb.nodes[sink]}' from the server "
                    f"'{server}'"
                )
            tail_s[i] = cost.time_s
        if sink not in (dev, srv):
            notes.append(
                f"the output goes from the server to the sink '{tb.nodes[sink]}' on the "
                "instance's (fixed) links"
            )

    # Pins: a layer pinned away from the server must run on the device, and the reverse.
    min_stop, max_stop = 0, L
    for name, allowed in inst.constraints.pin.items():
        pos = tb.layer_index[name] + 1
        on_dev, on_srv = device in allowed, server in allowed
        if not on_dev and not on_srv:
            raise OnlineError(
                f"layer '{name}' is pinned to {', '.join(allowed)}: neither the device "
                f"'{device}' nor the server '{server}'"
            )
        if not on_srv:
            min_stop = max(min_stop, pos)
        if not on_dev:
            max_stop = min(max_stop, pos - 1)
    if min_stop > max_stop:
        raise OnlineError(
            "the pins leave no cut: a layer pinned to the device comes after one pinned to the "
            "server"
        )

    # Device memory: how many leading layers it can hold (parameters + the largest working set).
    mem = tb.memory_bytes[dev]
    max_placed = L
    if mem is not None:
        need = np.cumsum(tb.param_bytes) + np.maximum.accumulate(tb.work_bytes)
        fits = np.nonzero(need <= mem * (1 + 1e-9))[0]
        max_placed = int(fits[-1] + 1) if len(fits) and fits[0] == 0 else 0
        if max_placed < L:
            notes.append(f"the device's memory holds at most {max_placed} of {L} layers")
    if max_placed < min_stop:
        raise OnlineError(
            f"the device's memory holds {max_placed} layers, but the pins need the first "
            f"{min_stop} on it"
        )
    if inst.constraints.max_latency_s is not None:
        notes.append("max_latency_s is not enforced online (the cost is a weighted sum)")
    if tb.has_encodings:
        notes.append(
            "the instance's encodings are not used online: tensors are sent raw (choosing an "
            "encoder width per frame is `splitplan adapt`)"
        )
    return Stages(
        instance=inst.name,
        device=device,
        server=server,
        layer_names=tuple(tb.layers),
        local_s=local_s,
        compute_power_w=float(tb.compute_power_w[dev]),
        tx_power_w=float(tb.tx_power_w[dev]),
        edge_s=edge_s,
        tail_s=tail_s,
        bytes=size,
        messages=messages,
        param_bytes=tb.param_bytes.copy(),
        latency_s=float(link.latency_s),
        link_bytes_per_s=float(link.bandwidth_bytes_per_s),
        min_stop=min_stop,
        max_stop=max_stop,
        max_placed=max_placed,
        notes=tuple(notes),
    )


def planner_cut(
    inst: Instance,
    stages: Stages,
    mean_rate: float,
    w_time: float,
    lam: float,
    time_limit_s: float | None = 30.0,
) -> tuple[int | None, str]:
    """The cut the static planner (`splitplan.solve`) picks when the device's link runs at the
    channel's mean rate, as (stage, note); (None, reason) when it finds no plan.

    The instance's objective is replaced by w_time x latency + lam x energy (the MILP's energy
    counts every node). The plan maps to the number of leading layers it keeps on the device; a
    plan that puts later layers back on the device or on a third node is reduced to that prefix
    (the note says so).
    """
    from ..plan import solve

    net = inst.network
    links = []
    for link in net.links:
        ends = {link.source, link.target}
        if ends == {stages.device, stages.server}:
            link = replace(link, bandwidth_bytes_per_s=float(mean_rate))
        links.append(link)
    if lam > 0 and w_time > 0:
        objective = Objective("weighted", w_time, lam)
    elif lam > 0:
        objective = Objective("energy")
    else:
        objective = Objective("latency")
    copy = Instance(
        inst.without_encodings().dnn,  # online, tensors travel raw
        replace(net, links=tuple(links)),
        objective,
        replace(inst.constraints, max_accuracy_loss=None),
        inst.name,
    )
    plan = solve(copy, time_limit_s=time_limit_s)
    if not plan.solved:
        return None, f"the planner found no plan ({plan.status})"
    assert plan.assignment is not None
    names = inst.layer_names
    cut = 0
    while cut < len(names) and plan.assignment[names[cut]] == stages.device:
        cut += 1
    rest = {plan.assignment[n] for n in names[cut:]}
    note = ""
    if stages.device in rest or rest - {stages.server}:
        note = (
            f"the plan is not one prefix cut to '{stages.server}' ({', '.join(sorted(rest))} "
            f"after the cut); its device prefix of {cut} layers is used"
        )
    cut = min(max(cut, stages.min_stop), stages.max_stop)
    return cut, note


__all__ = [
    "OnlineError",
    "Stages",
    "StopProblem",
    "objective_weights",
    "planner_cut",
    "stages_from_instance",
]
