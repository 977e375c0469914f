"""`splitplan online INSTANCE ...`: the subcommand's arguments and what it runs.

`splitplan.cli` registers the command (`add_arguments`) and calls `run` with the loaded instance;
`splitplan.online.study` does the work, and this module prints its result. Bad input (an unknown
server, an unreadable trace, a negative weight, ...) is one line on stderr and exit code 2, with
`{"status": "bad_input", ...}` on stdout under --json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..errors import ExitCode, UsageError, error_json

EXIT_OK, EXIT_BAD_INPUT = ExitCode.OK, ExitCode.BAD_INPUT
CHANNELS = ("rayleigh", "gilbert-elliott", "trace")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of `online` on its subparser (the registry is `splitplan.cli`)."""
    p.description = (
        "Simulate per-inference online split decisions on a fading channel and "
        "compare them with static splits (see models/online.md)."
    )
    p.add_argument("file", metavar="INSTANCE", help="instance file (splitplan-instance/1 JSON)")
    p.add_argument(
        "--server", metavar="NODE", help="node to offload to (default: the device's first link)"
    )
    p.add_argument("--channel", choices=CHANNELS, default="rayleigh", help="default: rayleigh")
    p.add_argument("--snr-db", type=float, default=10.0, help="Rayleigh mean SNR (default 10)")
    p.add_argument(
        "--bandwidth-hz",
        type=float,
        metavar="B",
        help="Rayleigh bandwidth (default: the Shannon rate at --snr-db equals the link's rate)",
    )
    p.add_argument(
        "--coherence",
        type=float,
        default=0.0,
        metavar="RHO",
        help="Rayleigh: probability that the fade persists across a layer boundary (default 0)",
    )
    p.add_argument(
        "--ge-rates-mbps",
        metavar="GOOD,BAD",
        help="Gilbert-Elliott rates in Mbit/s (default: the link's rate and a tenth of it)",
    )
    p.add_argument(
        "--ge-probs",
        metavar="P_GB,P_BG",
        default="0.1,0.3",
        help="Gilbert-Elliott good->bad and bad->good probabilities per boundary (default 0.1,0.3)",
    )
    p.add_argument(
        "--trace",
        metavar="NAME_OR_PATH",
        default="5g-walking",
        help="a shipped trace (hsdpa-bus, fcc-amazon, oboe-12, 5g-walking, 5g-walking-4g, "
        "5g-walking-5g) or a trace file (default 5g-walking)",
    )
    p.add_argument("--levels", type=int, default=16, metavar="K", help="channel levels (16)")
    p.add_argument(
        "--rate-floor",
        type=float,
        default=0.01,
        metavar="F",
        help="floor of the rate as a fraction of its mean (default 0.01)",
    )
    p.add_argument(
        "--weight-time", type=float, metavar="W", help="weight of time (default: the objective)"
    )
    p.add_argument(
        "--lambda",
        dest="lam",
        type=float,
        metavar="L",
        help="weight of the device's energy, per J (default: the objective)",
    )
    p.add_argument(
        "--horizon", type=int, metavar="N", help="layers placed on the device (default: all)"
    )
    p.add_argument("--inferences", type=int, default=100_000, metavar="N", help="default 1e5")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-planner", action="store_true", help="skip the MILP planner's static cut")
    p.add_argument("--placement", action="store_true", help="optimise how many layers to place")
    p.add_argument(
        "--updates-every",
        type=float,
        default=1000.0,
        metavar="M",
        help="inferences between model updates, for --placement (default 1000)",
    )
    p.add_argument(
        "--downlink-mbps",
        type=float,
        metavar="R",
        help="rate of the parameter download (default: the channel's mean rate)",
    )
    p.add_argument("--plot", metavar="PNG", help="plot cost vs mean SNR (Rayleigh) to this file")
    p.add_argument(
        "--snr-range",
        default="-5:25:5",
        metavar="A:B:STEP",
        help="mean SNRs of the plot, dB (default -5:25:5; write --snr-range=-10:30:5 when A is "
        "negative)",
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


class _Bad(UsageError):
    """A bad command-line argument (the message names the option)."""


def _pair(text: str, what: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        a, b = (float(x) for x in parts)
    except ValueError:
        raise _Bad(f"{what}: expected two numbers 'X,Y', got {text!r}") from None
    return a, b


def _snr_range(text: str) -> list[float]:
    try:
        a, b, step = (float(x) for x in text.split(":"))
    except ValueError:
        raise _Bad(f"--snr-range: expected A:B:STEP in dB, got {text!r}") from None
    if not (math.isfinite(a) and math.isfinite(b) and step > 0 and b >= a):
        raise _Bad(f"--snr-range: need A <= B and STEP > 0, got {text!r}")
    count = math.floor((b - a) / step + 1e-9) + 1
    if count > 100:
        raise _Bad(f"--snr-range: {count} points; at most 100")
    return [a + k * step for k in range(count)]


def _check_args(args: argparse.Namespace) -> None:
    for name, value in (("--weight-time", args.weight_time), ("--lambda", args.lam)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise _Bad(f"{name} must be a number >= 0, got {value}")
    if args.levels < 1:
        raise _Bad(f"--levels must be >= 1, got {args.levels}")
    if args.inferences < 2:
        raise _Bad(f"--inferences must be >= 2, got {args.inferences}")
    if not 0 <= args.coherence <= 1:
        raise _Bad(f"--coherence must be in [0, 1], got {args.coherence}")
    if not 0 < args.rate_floor < 1:
        raise _Bad(f"--rate-floor must be in (0, 1), got {args.rate_floor}")
    if args.horizon is not None and args.horizon < 0:
        raise _Bad(f"--horizon must be >= 0, got {args.horizon}")
    if not (math.isfinite(args.updates_every) and args.updates_every > 0):
        raise _Bad(f"--updates-every must be > 0, got {args.updates_every}")
    if args.downlink_mbps is not None and not (
        math.isfinite(args.downlink_mbps) and args.downlink_mbps > 0
    ):
        raise _Bad(f"--downlink-mbps must be > 0, got {args.downlink_mbps}")
    if args.plot and args.channel != "rayleigh":
        raise _Bad("--plot sweeps the mean SNR of a Rayleigh channel: use --channel rayleigh")


def _channel(args: argparse.Namespace, link_rate: float) -> Any:
    from .channels import (
        GilbertElliottChannel,
        RayleighChannel,
        TraceChannel,
        bandwidth_for_rate,
        load_trace,
    )

    if args.channel == "rayleigh":
        bw = args.bandwidth_hz
        if bw is None:
            bw = bandwidth_for_rate(link_rate, args.snr_db)
        return RayleighChannel(args.snr_db, bw, args.levels, args.coherence, args.rate_floor)
    if args.channel == "gilbert-elliott":
        if args.ge_rates_mbps is None:
            good, bad = link_rate, link_rate / 10
        else:
            g, b = _pair(args.ge_rates_mbps, "--ge-rates-mbps")
            good, bad = g * 1e6 / 8, b * 1e6 / 8
        p_gb, p_bg = _pair(args.ge_probs, "--ge-probs")
        return GilbertElliottChannel(good, bad, p_gb, p_bg)
    return TraceChannel(load_trace(args.trace), args.levels, args.rate_floor)


def _describe_channel(d: dict[str, Any], levels: int) -> str:
    mean = d["mean_rate_bytes_per_s"] * 8 / 1e6
    if d["kind"] == "rayleigh":
        return (
            f"rayleigh: mean SNR {d['snr_db']:g} dB, bandwidth {d['bandwidth_hz'] / 1e6:.4g} MHz, "
            f"{levels} levels, coherence {d['coherence']:g}; mean rate {mean:.4g} Mbit/s"
        )
    if d["kind"] == "gilbert-elliott":
        return (
            f"gilbert-elliott: good {d['good_rate_bytes_per_s'] * 8 / 1e6:.4g} Mbit/s, bad "
            f"{d['bad_rate_bytes_per_s'] * 8 / 1e6:.4g} Mbit/s, p_gb {d['p_gb']:g}, "
            f"p_bg {d['p_bg']:g}; mean rate {mean:.4g} Mbit/s"
        )
    return (
        f"trace {d['trace']}: {d['samples']} samples over {d['duration_s']:.0f} s, "
        f"{levels} levels; mean rate {mean:.4g} Mbit/s"
    )


def run(args: argparse.Namespace, inst: Any) -> int:
    """Run `splitplan online` on a loaded instance; returns the exit code."""
    from .problem import OnlineError

    try:
        return _run(args, inst)
    except (_Bad, OnlineError) as exc:
        print(f"splitplan: error: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps(error_json(exc)))
        return EXIT_BAD_INPUT


def _run(args: argparse.Namespace, inst: Any) -> int:
    from .studies import study

    _check_args(args)
    snrs = _snr_range(args.snr_range) if args.plot else []
    result = study(
        inst,
        lambda link_rate: _channel(args, link_rate),
        server=args.server,
        weight_time=args.weight_time,
        lam=args.lam,
        horizon=args.horizon,
        inferences=args.inferences,
        seed=args.seed,
        planner=not args.no_planner,
        placement=args.placement,
        updates_every=args.updates_every,
        downlink_bytes_per_s=None if args.downlink_mbps is None else args.downlink_mbps * 1e6 / 8,
        snr_sweep_db=snrs,
        plot=args.plot,
        progress=None if args.json else lambda line: print(line, file=sys.stderr),
    )
    if args.json:
        print(json.dumps({"status": "ok", **result.to_dict()}))
        return EXIT_OK
    stages, comp, w, lam = result.stages, result.comparison, result.w_time, result.lam
    placement_out, plot_path, notes = result.placement, result.plot, result.notes
    print(
        f"online splitting of {inst.name}: device {stages.device} -> server {stages.server}, "
        f"{comp.horizon} of {stages.layers} layers placed (cuts {stages.min_stop}..{comp.horizon})"
    )
    print(f"channel  {_describe_channel(comp.channel, comp.model.levels)}")
    print(
        f"cost     {w:g} x time (s) + {lam:g} x device energy (J); {args.inferences} "
        f"inferences, seed {args.seed}"
    )
    print()
    print(comp.table())
    print()
    print(
        f"look-ahead gap to optimal {100 * comp.look_ahead_gap:+.2f} %; online gain over the "
        f"best static cut {100 * comp.online_gain:.2f} % (simulated means)"
    )
    if placement_out is not None:
        best_d, ola_d = placement_out["optimal"], placement_out["look_ahead"]
        print()
        print(
            f"placement ({args.updates_every:g} inferences per update, downlink "
            f"{placement_out['downlink_bytes_per_s'] * 8 / 1e6:.4g} Mbit/s): "
            f"N* = {best_d['layers']} (optimal rule), {ola_d['layers']} (look-ahead)"
        )
        print(f"{'N':>3} {'online':>12} {'download':>12} {'total':>12}")
        for n, (on, dl, tot) in enumerate(
            zip(best_d["online"], best_d["download"], best_d["total"], strict=True)
        ):
            if tot is None:
                continue
            mark = " *" if n == best_d["layers"] else ""
            print(f"{n:>3} {on:>12.6g} {dl:>12.6g} {tot:>12.6g}{mark}")
        closed = placement_out["mlp_closed_form"]
        if closed is not None:
            print(f"MLP closed form (look-ahead rule): N* = {closed['layers']}")
        else:
            print(f"MLP closed form: n/a ({placement_out['mlp_closed_form_note']})")
    if plot_path:
        print(f"\nwrote {plot_path}")
    for note in notes:
        print(f"note: {note}")
    return EXIT_OK
