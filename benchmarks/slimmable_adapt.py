"""Per-frame width adaptation of the slimmable encoder on real traces (issue 7).

    python benchmarks/slimmable_adapt.py [--quick]

The widths' accuracy, payload (fp32 code) and encoder/decoder times are the measured ones in
benchmarks/slimmable_digits.json (digits CNN, split after block 2). One frame every 100 ms over
each shipped trace; the adaptive policy predicts the rate from the previous frame (`last`) or a
smoothed one (`ewma`). Reports deadline misses and mean accuracy against every fixed width, and
whether the adaptive policy misses fewer deadlines than every fixed width at least as accurate on
average. Writes benchmarks/slimmable_adapt.json (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from splitplan.online import Width, adapt_on_trace, load_trace

HERE = Path(__file__).resolve().parent
TRACES = {"hsdpa-bus": (0.002, 0.004), "oboe-12": (0.002, 0.004), "fcc-amazon": (0.002, 0.005)}


def widths() -> list[Width]:
    rows = json.loads((HERE / "slimmable_digits.json").read_text())["rows"]
    return [
        Width(
            f"{r['width']:g}",
            r["payload_fp32_bytes"],
            r["encoder_s"],
            r["decoder_s"],
            r["slim_acc_fp32"],
        )
        for r in rows
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one trace, one deadline; no file")
    args = ap.parse_args(argv)
    ws = widths()
    cases = list(TRACES.items())[:1] if args.quick else list(TRACES.items())
    out = []
    print("| trace | deadline ms | policy | misses | mean accuracy % | mean payload B |")
    print("|---|---|---|---|---|---|")
    for name, deadlines in cases:
        trace = load_trace(name)
        for deadline in deadlines[:1] if args.quick else deadlines:
            rows = []
            for predictor in ("last", "ewma"):
                rows += adapt_on_trace(ws, trace, deadline, predictor=predictor)[:1]
            rows += adapt_on_trace(ws, trace, deadline)[1:]
            adaptive = rows[0]
            as_accurate = [r for r in rows[2:] if r.mean_accuracy >= adaptive.mean_accuracy]
            wins = all(adaptive.miss_rate < r.miss_rate for r in as_accurate)
            for r in rows:
                print(
                    f"| {name} | {deadline * 1e3:g} | {r.policy} | {100 * r.miss_rate:.1f} % "
                    f"| {r.mean_accuracy:.2f} | {r.mean_payload_bytes:.0f} |"
                )
            out.append(
                {
                    "trace": name,
                    "mean_rate_mbit_per_s": trace.mean_rate * 8 / 1e6,
                    "deadline_s": deadline,
                    "results": [r.to_dict() for r in rows],
                    "adaptive_last_misses_fewer_than_every_as_accurate_fixed_width": wins,
                }
            )
            print(
                f"\n{name}, {deadline * 1e3:g} ms: adaptive (last) misses fewer deadlines than "
                f"every fixed width at least as accurate: {wins}\n",
                file=sys.stderr,
            )
    if not args.quick:
        (HERE / "slimmable_adapt.json").write_text(json.dumps(out, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
