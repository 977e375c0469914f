"""Per-frame width adaptation of the slimmable encoder on real traces (issue 7).

    python benchmarks/slimmable_adapt.py [--quick]
    python benchmarks/slimmable_adapt.py --write-widths FILE

The widths' accuracy, payload (fp32 code) and encoder/decoder times are the measured ones in
benchmarks/slimmable_digits.json (digits CNN, split after block 2), read from the widths file
instances/widths/slimmable-digits-widths.json through `splitplan.online.load_widths`, the loader
of `splitplan adapt`; `--write-widths FILE` writes that file from slimmable_digits.json and runs
nothing else. One frame every 100 ms over each shipped trace; the adaptive policy predicts the
rate from the previous frame (`last`) or a smoothed one (`ewma`). Reports deadline misses and
mean accuracy (%) against every fixed width, and whether the adaptive policy misses fewer
deadlines than every fixed width at least as accurate on average. Writes
benchmarks/slimmable_adapt.json (not with --quick).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path

from splitplan.online import (
    Width,
    WidthSet,
    adapt_on_trace,
    load_trace,
    load_widths,
    misses_fewer_than_as_accurate,
)

HERE = Path(__file__).resolve().parent
MEASURED = HERE / "slimmable_digits.json"
WIDTHS_FILE = HERE.parent / "instances" / "widths" / "slimmable-digits-widths.json"
TRACES = {"hsdpa-bus": (0.002, 0.004), "oboe-12": (0.002, 0.004), "fcc-amazon": (0.002, 0.005)}


def widths_text(measured: Path = MEASURED) -> str:
    """The widths file made from the measured benchmark: fp32 payloads, encoder_s / decoder_s,
    slim_acc_fp32 / 100."""
    data = json.loads(measured.read_text())
    m, st = data["machine"], data["settings"]
    ws = WidthSet(
        "slimmable-digits",
        "benchmarks/slimmable_digits.json (python benchmarks/slimmable_digits.py): digits CNN "
        f"split after block {st['split_index']}, one slimmable encoder/decoder pair with "
        f"{st['code_channels']} code channels at width 1. payload_bytes: the fp32 code "
        "(payload_fp32_bytes); device_s, server_s: the encoder's and decoder's time per image "
        f"(encoder_s, decoder_s: median of {st['repeats']} runs, batch 1, on {st['device']}, "
        f"torch {m['torch']}, {m['torch_threads']} thread(s), {m['cpus']} CPUs, "
        f"{m['processor']}); accuracy: slim_acc_fp32 / 100 (test set). Written by python "
        "benchmarks/slimmable_adapt.py --write-widths "
        "instances/widths/slimmable-digits-widths.json",
        tuple(
            Width(
                f"{r['width']:g}",
                r["payload_fp32_bytes"],
                r["encoder_s"],
                r["decoder_s"],
                r["slim_acc_fp32"] / 100,
            )
            for r in data["rows"]
        ),
    )
    return json.dumps(ws.to_dict(), indent=2) + "\n"


def write_widths(path: str | Path) -> None:
    Path(path).write_text(widths_text())


def widths() -> list[Width]:
    """The shipped widths file, accuracy in % (as benchmarks/slimmable_adapt.json reports it)."""
    return [
        dataclasses.replace(w, accuracy=100 * w.accuracy) for w in load_widths(WIDTHS_FILE).widths
    ]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one trace, one deadline; no file")
    ap.add_argument(
        "--write-widths",
        metavar="FILE",
        help="write the widths file made from slimmable_digits.json to FILE and stop",
    )
    args = ap.parse_args(argv)
    if args.write_widths:
        write_widths(args.write_widths)
        print(f"wrote {args.write_widths}", file=sys.stderr)
        return 0
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
            wins, _ = misses_fewer_than_as_accurate(rows[0], rows[2:])
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
