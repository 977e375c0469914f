"""One online-splitting study end to end: what `splitplan online` runs, as a library call.

    from splitplan import load_instance
    from splitplan.online import study

    result = study(load_instance("instances/three-tier-chain.json"), inferences=20_000)
    print(result.comparison.table())
    result.to_dict()  # what `splitplan online --json` prints, less its "status"

The steps: the per-stage data of the instance for a device and its server
(`stages_from_instance`), the stopping problem for the cost weights, the channel, the static
planner's cut at the channel's mean rate (`planner_cut`), every policy simulated on the same
channel draws (`compare`), and optionally the placement of the device's layers (`place`,
`mlp_closed_form`) and a sweep of the cost over mean SNRs (`cost_vs_snr`) with its plot.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..instance import Instance
from .channels import Channel, RayleighChannel, bandwidth_for_rate
from .placement import mlp_closed_form, place
from .problem import OnlineError, Stages, objective_weights, planner_cut, stages_from_instance
from .simulate import Comparison, compare, cost_vs_snr, plot_cost_vs_snr

DEFAULT_SNR_DB = 10.0  # the default channel: Rayleigh fading at this mean SNR


@dataclass
class OnlineStudy:
    """The result of `study`: the stages it ran on, the cost weights, every policy's simulated
    and analytic cost (`comparison`), and, when asked, the placement and the SNR sweep.

    `placement` is None unless asked; else the download rate (bytes/s), kappa (cost per
    downloaded byte) and the placements of the optimal and look-ahead rules and of the MLP
    closed form (None, with `mlp_closed_form_note` saying why, where it does not apply).
    `sweep` is `cost_vs_snr`'s {policy: {"snr_db", "mean", "ci95", "analytic"}} (None unless
    asked); `plot` the image written from it."""

    instance: str
    stages: Stages
    w_time: float  # weight of one second of latency
    lam: float  # weight of one joule of the device's energy
    inferences: int
    seed: int
    comparison: Comparison
    placement: dict[str, Any] | None = None
    sweep: dict[str, dict[str, list[float | None]]] | None = None
    plot: str | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """The members `splitplan online --json` prints after ``"status": "ok"`` (the sweep's
        data is not among them: see `sweep`)."""
        return {
            "instance": self.instance,
            "device": self.stages.device,
            "server": self.stages.server,
            "layers": self.stages.layers,
            "horizon": self.comparison.horizon,
            "min_stop": self.stages.min_stop,
            "weights": {"time": self.w_time, "lambda": self.lam},
            "inferences": self.inferences,
            "seed": self.seed,
            **self.comparison.to_dict(),
            "placement": self.placement,
            "plot": self.plot,
            "notes": list(self.notes),
        }


def default_channel(link_bytes_per_s: float) -> Channel:
    """Rayleigh fading at `DEFAULT_SNR_DB` whose Shannon rate at that SNR is the link's rate."""
    return RayleighChannel(DEFAULT_SNR_DB, bandwidth_for_rate(link_bytes_per_s, DEFAULT_SNR_DB))


def _check(
    weight_time: float | None,
    lam: float | None,
    horizon: int | None,
    inferences: int,
    updates_every: float,
    downlink_bytes_per_s: float | None,
) -> None:
    for what, value in (("weight_time", weight_time), ("lam", lam)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise OnlineError(f"{what} must be a number >= 0, got {value}")
    if horizon is not None and horizon < 0:
        raise OnlineError(f"horizon must be >= 0, got {horizon}")
    if inferences < 2:
        raise OnlineError(f"inferences must be >= 2, got {inferences}")
    if not (math.isfinite(updates_every) and updates_every > 0):
        raise OnlineError(f"updates_every must be > 0, got {updates_every}")
    if downlink_bytes_per_s is not None and not (
        math.isfinite(downlink_bytes_per_s) and downlink_bytes_per_s > 0
    ):
        raise OnlineError(f"downlink_bytes_per_s must be > 0, got {downlink_bytes_per_s}")


def study(
    inst: Instance,
    channel: Channel | Callable[[float], Channel] | None = None,
    *,
    server: str | None = None,
    weight_time: float | None = None,
    lam: float | None = None,
    horizon: int | None = None,
    inferences: int = 100_000,
    seed: int = 0,
    planner: bool = True,
    placement: bool = False,
    updates_every: float = 1000.0,
    downlink_bytes_per_s: float | None = None,
    snr_sweep_db: Sequence[float] = (),
    plot: str | Path | None = None,
    progress: Callable[[str], None] | None = None,
) -> OnlineStudy:
    """Simulate online split decisions on `inst` and compare them with static splits.

    `channel` is a `Channel`, or a function of the device link's rate (bytes/s) that makes one
    (default `default_channel`). `server` is the node to offload to (default: the device's first
    link). The cost is `weight_time` x time (s) + `lam` x the device's energy (J); each defaults
    to the instance's objective (`objective_weights`). `horizon` caps the layers placed on the
    device (default: all the pins allow). `inferences` draws of the channel, seeded by `seed`.

    `planner`: also simulate the static planner's cut (a MILP solve of the instance at the
    channel's mean rate). `placement`: also optimise how many layers the device holds, with a
    model update every `updates_every` inferences downloaded at `downlink_bytes_per_s` (default:
    the channel's mean rate). `snr_sweep_db`: also sweep the mean SNR of a Rayleigh `channel`
    (its bandwidth, levels, coherence and floor kept), drawn to the image `plot` when given.
    `progress` gets one line before the simulation starts.

    Raises `OnlineError` (a `SplitplanError`) for anything the instance or the arguments make
    impossible, naming it.
    """
    _check(weight_time, lam, horizon, inferences, updates_every, downlink_bytes_per_s)
    if plot is not None and not snr_sweep_db:
        raise OnlineError("plot draws the SNR sweep: give snr_sweep_db")
    stages = stages_from_instance(inst, server)
    w0, lam0 = objective_weights(inst)
    w = w0 if weight_time is None else weight_time
    lam_ = lam0 if lam is None else lam
    problem = stages.problem(w, lam_)
    top = min(stages.max_placed, stages.max_stop)
    last = top if horizon is None else min(horizon, top)
    if last < stages.min_stop:
        raise OnlineError(
            f"a horizon of {last} layers ends before the first allowed cut {stages.min_stop}"
        )
    if channel is None:
        channel = default_channel
    if not isinstance(channel, Channel):
        channel = channel(stages.link_bytes_per_s)
    if snr_sweep_db and not isinstance(channel, RayleighChannel):
        raise OnlineError("the SNR sweep varies the mean SNR of a Rayleigh channel")
    notes = list(stages.notes)

    def planner_stage(mean_rate: float) -> int | None:
        stage, note = planner_cut(inst, stages, mean_rate, w, lam_)
        if note and f"planner: {note}" not in notes:
            notes.append(f"planner: {note}")
        return stage

    stage = planner_stage(channel.mean_rate) if planner else None
    if progress is not None:
        progress(f"simulating {inferences} inferences on {inst.name} ...")
    comp = compare(problem, channel, last, inferences, seed, stage)

    placed = None
    if placement:
        rate = channel.mean_rate if downlink_bytes_per_s is None else downlink_bytes_per_s
        kappa = stages.download_cost_per_byte(w, lam_, rate)
        args = (problem, comp.model, stages.param_bytes, updates_every, kappa)
        best = place(*args, "optimal", top)
        ola = place(*args, "look-ahead", top)
        try:
            closed: dict[str, Any] | None = mlp_closed_form(*args).to_dict()
            closed_note = ""
        except OnlineError as exc:
            closed, closed_note = None, str(exc)
        placed = {
            "updates_every": updates_every,
            "downlink_bytes_per_s": rate,
            "kappa": kappa,
            "optimal": best.to_dict(),
            "look_ahead": ola.to_dict(),
            "mlp_closed_form": closed,
            "mlp_closed_form_note": closed_note,
        }

    sweep = None
    if snr_sweep_db:
        assert isinstance(channel, RayleighChannel)  # checked above
        sweep = cost_vs_snr(
            problem,
            snr_sweep_db,
            channel.bandwidth_hz,
            channel.levels,
            channel.coherence,
            channel.rate_floor,
            inferences,
            seed,
            last,
            planner_stage if planner else None,
        )
        if plot is not None:
            title = (
                f"{inst.name}: {stages.device} -> {stages.server}, bandwidth "
                f"{channel.bandwidth_hz / 1e6:.3g} MHz"
            )
            plot_cost_vs_snr(sweep, str(plot), title)
    return OnlineStudy(
        inst.name,
        stages,
        w,
        lam_,
        inferences,
        seed,
        comp,
        placed,
        sweep,
        None if plot is None else str(plot),
        notes,
    )
