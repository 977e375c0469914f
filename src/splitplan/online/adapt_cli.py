"""`splitplan adapt WIDTHS --trace T --deadline-s S ...`: run-time width adaptation on a trace.

`splitplan.cli` registers the command (`add_arguments`) and calls `run`. WIDTHS is a widths file
(format ``splitplan-widths/1``, read by `splitplan.online.load_widths`; see
`splitplan.online.widths`). Bad input (a missing field, an unreadable trace, a negative
deadline, ...) is one line on stderr and exit code 2, with `{"status": "bad_input", ...}` on
stdout under --json.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from typing import Any

from ..errors import ExitCode, UsageError, error_json

EXIT_OK, EXIT_BAD_INPUT = ExitCode.OK, ExitCode.BAD_INPUT
PREDICTOR_CHOICES = ("last", "ewma", "oracle", "all")
MAX_FRAMES = 10_000_000


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Declare the arguments of `adapt` on its subparser (the registry is `splitplan.cli`)."""
    p.description = (
        "Every frame, pick the most accurate encoder width whose predicted latency "
        "meets the deadline, send at the rate the trace gives, and compare the deadline misses "
        "and accuracy with every fixed width (see the README, 'Slimmable bottleneck encoders')."
    )
    p.add_argument(
        "file",
        metavar="WIDTHS",
        help="widths file (splitplan-widths/1 JSON: name, payload_bytes, device_s, server_s, "
        "accuracy per width)",
    )
    p.add_argument(
        "--trace",
        required=True,
        metavar="NAME_OR_FILE",
        help="a shipped trace (hsdpa-bus, fcc-amazon, oboe-12, 5g-walking, 5g-walking-4g, "
        "5g-walking-5g) or a trace file",
    )
    p.add_argument("--deadline-s", type=float, required=True, metavar="S", help="per frame, s")
    p.add_argument(
        "--frame-interval-s",
        type=float,
        default=0.1,
        metavar="S",
        help="one frame every S seconds of the trace (default 0.1)",
    )
    p.add_argument(
        "--predictor",
        choices=PREDICTOR_CHOICES,
        default="last",
        help="rate the device plans with: the last observed (default), a smoothed one (ewma), "
        "the true one (oracle, a bound), or all three",
    )
    p.add_argument(
        "--ewma-alpha",
        type=float,
        default=0.3,
        metavar="A",
        help="weight of the newest observation in ewma, in (0, 1] (default 0.3)",
    )
    p.add_argument(
        "--base-s",
        type=float,
        default=0.0,
        metavar="S",
        help="latency that does not depend on the width: the layers before and after the split "
        "(default 0)",
    )
    p.add_argument(
        "--link-latency-s", type=float, default=0.0, metavar="S", help="link latency (default 0)"
    )
    p.add_argument("--json", action="store_true", help="print one JSON object")


class _Bad(UsageError):
    """A bad command-line argument (the message names the option)."""


def _check_args(args: argparse.Namespace) -> None:
    for flag, value in (
        ("--deadline-s", args.deadline_s),
        ("--frame-interval-s", args.frame_interval_s),
    ):
        if not (math.isfinite(value) and value > 0):
            raise _Bad(f"{flag} must be a positive number of seconds, got {value:g}")
    for flag, value in (("--base-s", args.base_s), ("--link-latency-s", args.link_latency_s)):
        if not (math.isfinite(value) and value >= 0):
            raise _Bad(f"{flag} must be a number of seconds >= 0, got {value:g}")
    if not 0 < args.ewma_alpha <= 1:
        raise _Bad(f"--ewma-alpha must be in (0, 1], got {args.ewma_alpha:g}")


def run(args: argparse.Namespace) -> int:
    """Run `splitplan adapt`; returns the exit code."""
    from .problem import OnlineError

    try:
        return _run(args)
    except (_Bad, OnlineError) as exc:
        print(f"splitplan: error: {exc}", file=sys.stderr)
        if args.json:
            print(json.dumps(error_json(exc)))
        return EXIT_BAD_INPUT
    except BrokenPipeError:
        return EXIT_OK


def _run(args: argparse.Namespace) -> int:
    from .channels import load_trace
    from .widths import adapt_on_trace, load_widths, misses_fewer_than_as_accurate

    _check_args(args)
    ws = load_widths(args.file)
    trace = load_trace(args.trace)
    frames = trace.duration_s / args.frame_interval_s
    if frames > MAX_FRAMES:
        raise _Bad(
            f"--frame-interval-s {args.frame_interval_s:g} gives {frames:.3g} frames over the "
            f"trace's {trace.duration_s:.0f} s; at most {MAX_FRAMES:.0e}"
        )
    predictors = ("last", "ewma", "oracle") if args.predictor == "all" else (args.predictor,)
    adaptive, fixed = [], []
    for predictor in predictors:
        rows = adapt_on_trace(
            ws.widths,
            trace,
            args.deadline_s,
            args.frame_interval_s,
            base_s=args.base_s,
            link_latency_s=args.link_latency_s,
            predictor=predictor,
            ewma_alpha=args.ewma_alpha,
        )
        adaptive.append(rows[0])
        fixed = rows[1:]  # the fixed widths do not depend on the predictor
    results = adaptive + fixed
    verdicts: list[dict[str, Any]] = []
    for row in adaptive:
        wins, as_accurate = misses_fewer_than_as_accurate(row, fixed)
        verdicts.append(
            {
                "policy": row.policy,
                "misses_fewer_than_every_as_accurate_fixed_width": wins,
                "as_accurate_fixed_widths": [r.policy.removeprefix("fixed ") for r in as_accurate],
            }
        )
    if args.json:
        out = {
            "status": "ok",
            "widths_file": args.file,
            "name": ws.name,
            "source": ws.source,
            "widths": [dict(w.__dict__) for w in ws.widths],
            "trace": {
                "name": trace.name,
                "samples": len(trace.times_s),
                "duration_s": trace.duration_s,
                "mean_rate_bytes_per_s": trace.mean_rate,
            },
            "deadline_s": args.deadline_s,
            "frame_interval_s": args.frame_interval_s,
            "frames": results[0].frames,
            "base_s": args.base_s,
            "link_latency_s": args.link_latency_s,
            "predictors": list(predictors),
            "ewma_alpha": args.ewma_alpha,
            "results": [r.to_dict() for r in results],
            "verdicts": verdicts,
        }
        print(json.dumps(out))
        return EXIT_OK
    print(f"width adaptation of {ws.name}: {len(ws.widths)} widths from {args.file}")
    print(
        f"trace {trace.name}: {trace.duration_s:.0f} s, mean "
        f"{trace.mean_rate * 8 / 1e6:.4g} Mbit/s; one frame every "
        f"{args.frame_interval_s * 1e3:g} ms: {results[0].frames} frames; deadline "
        f"{args.deadline_s * 1e3:g} ms"
    )
    print(
        f"latency = base {args.base_s * 1e3:g} ms + device + link latency "
        f"{args.link_latency_s * 1e3:g} ms + payload / rate + server"
    )
    print()
    width = max(len("policy"), *(len(r.policy) for r in results))
    print(
        f"{'policy':<{width}}  {'misses %':>9}  {'accuracy %':>10}  {'payload B':>10}  "
        f"{'latency ms':>10}"
    )
    for r in results:
        print(
            f"{r.policy:<{width}}  {100 * r.miss_rate:>9.2f}  {100 * r.mean_accuracy:>10.2f}  "
            f"{r.mean_payload_bytes:>10.1f}  {r.mean_latency_s * 1e3:>10.3f}"
        )
    print()
    for v in verdicts:
        names = ", ".join(v["as_accurate_fixed_widths"])
        what = f"({names})" if names else "(there is none)"
        answer = "yes" if v["misses_fewer_than_every_as_accurate_fixed_width"] else "no"
        print(
            f"{v['policy']} misses fewer deadlines than every fixed width at least as accurate "
            f"on average {what}: {answer}"
        )
    return EXIT_OK
