"""The planner chooses a slimmable encoder's width with the split (issue 7, planner integration).

    python benchmarks/slimmable_plan.py [--quick] [--write-instance FILE]

Takes the profiled ResNet-50 on a Pixel 3 and an RTX 2080 Ti edge server
(`instances/resnet50-phone-edge-lte.json`) and gives each residual stage's output tensor the
encodings of a slimmable bottleneck encoder (`splitplan.slimmable`, code channels = 1/4 of the
tensor's, widths 1/8 .. 1) in float32 and int8: 8 forms per tensor, 4 tensors. What each form
costs is measured or computed here: bytes from `payload_bytes`, encoder and decoder FLOPs with
torch's FlopCounterMode, their time on this machine (class host-cpu) and, for the Pixel 3 and
the 2080 Ti, the same roofline estimate the layers have. **The accuracy losses are not measured
on ResNet-50** (no ImageNet here): they are the digits CNN's measured losses per width
(`benchmarks/slimmable_digits.json`), used as stand-ins. The planner's choices are exact for the
numbers given; the accuracy figures are only as good as that stand-in.

For each uplink (3G, LTE, 5G, Wi-Fi presets) and each accuracy limit, solves the MILP and reports
the cut, the chosen form, the latency and the accuracy loss; "raw only" is the same instance
without encodings. Writes benchmarks/slimmable_plan.json (not with --quick).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import torch
from _common import machine
from torch.utils.flop_counter import FlopCounterMode

import splitplan
from splitplan import slimmable as S
from splitplan.devices import DEVICES, network_preset, roofline_time_s

HERE = Path(__file__).resolve().parent
BASE = HERE.parent / "instances" / "resnet50-phone-edge-lte.json"
# The output tensor of each residual stage of ResNet-50 (C, H, W) and the layer producing it.
STAGES = {
    "layer1.2.conv3": (256, 56, 56),
    "layer2.3.conv3": (512, 28, 28),
    "layer3.5.conv3": (1024, 14, 14),
    "layer4.2.conv3": (2048, 7, 7),
}
LINKS = ("3g", "lte", "5g", "wifi")
LIMITS = (0.0, 0.01, 0.05, None)  # max_accuracy_loss; 0 admits only lossless forms (none here)


def _flops(module: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return float(counter.get_total_flops())


def _median_s(fn, repeats: int) -> float:
    with torch.no_grad():
        fn()
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def losses() -> dict[float, float]:
    """The digits measurement: accuracy lost at each width, a fraction (the stand-in)."""
    d = json.loads((HERE / "slimmable_digits.json").read_text())
    return {r["width"]: (d["uncut_acc"] - r["slim_acc_fp32"]) / 100 for r in d["rows"]}


def encodings(
    channels: int, h: int, w: int, classes: list[str], repeats: int
) -> tuple[splitplan.Encoding, ...]:
    """The 8 forms of a (channels, h, w) tensor: each width in float32 and int8."""
    torch.manual_seed(0)
    code = channels // 4
    enc = S.SlimmableEncoder(channels, code).eval()
    dec = S.SlimmableDecoder(code, channels).eval()
    x = torch.randn(1, channels, h, w)
    loss = losses()
    out = []
    for width in S.WIDTHS:
        enc.set_width(width)
        dec.set_width(width)
        z = enc(x)
        f_enc, f_dec = _flops(enc, x), _flops(dec, z)
        t_enc = _median_s(lambda: enc(x), repeats)
        t_dec = _median_s(lambda z=z: dec(z), repeats)
        c = enc.counts[enc._index]
        w_enc = channels * c * 9 * 4  # the active slice of the weights, float32
        for quantize in (False, True):
            enc.quantize = quantize
            payload = float(enc.payload_bytes(x.shape))
            enc.quantize = False
            moved_enc = x.numel() * 4 + w_enc + payload
            moved_dec = payload + w_enc + x.numel() * 4
            out.append(
                splitplan.Encoding(
                    name=f"w{width:g}-{'int8' if quantize else 'fp32'}",
                    size_bytes=payload,
                    encode_flops=f_enc,
                    encode_time_s={"host-cpu": t_enc}
                    | {k: roofline_time_s(f_enc, moved_enc, DEVICES[k]) for k in classes},
                    decode_flops=f_dec,
                    decode_time_s={"host-cpu": t_dec}
                    | {k: roofline_time_s(f_dec, moved_dec, DEVICES[k]) for k in classes},
                    accuracy_loss=round(loss[width], 6),
                )
            )
    return tuple(out)


def build(link: str, repeats: int) -> splitplan.Instance:
    base = splitplan.load_instance(BASE)
    network = network_preset(f"phone-edge-{link}")
    classes = sorted({n.device_class for n in network.nodes if n.device_class})
    layers = []
    for la in base.dnn.layers:
        if la.name in STAGES:
            c, h, w = STAGES[la.name]
            assert la.out_bytes == 4 * c * h * w, la.name
            la = replace(la, encodings=encodings(c, h, w, classes, repeats))
        layers.append(la)
    dnn = replace(base.dnn, layers=tuple(layers))
    return splitplan.Instance(dnn, network, name=f"resnet50-phone-edge-{link}-slimmable")


def describe(plan: splitplan.Plan) -> str:
    if not plan.solved:
        return plan.status
    nodes = set(plan.assignment.values())
    if len(nodes) == 1:
        return f"all on {nodes.pop()}"
    splits = plan.split_points()
    forms = ", ".join(f"{t} as {e}" for t, e in plan.encodings.items()) or "raw"
    return f"split after {', '.join(splits)}; {forms}"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--quick", action="store_true", help="one link, few timing runs; no file")
    ap.add_argument("--write-instance", metavar="FILE", help="write the Wi-Fi instance and stop")
    ap.add_argument("--repeats", type=int, default=20, help="timed runs per codec (median)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    if args.write_instance:
        inst = build("wifi", args.repeats)
        inst = inst.with_constraints(splitplan.Constraints(max_accuracy_loss=0.01))
        splitplan.save_instance(inst, args.write_instance)
        print(f"wrote {args.write_instance}", file=sys.stderr)
        return 0
    links = LINKS[:1] if args.quick else LINKS
    rows = []
    print("| uplink | max accuracy loss | plan | latency ms | accuracy loss (points) | solve s |")
    print("|---|---|---|---|---|---|")
    for link in links:
        inst = build(link, 2 if args.quick else args.repeats)
        cases = [("raw only", inst.without_encodings())]
        cases += [
            (
                "none" if limit is None else f"{100 * limit:g} points",
                inst.with_constraints(splitplan.Constraints(max_accuracy_loss=limit)),
            )
            for limit in LIMITS
        ]
        for label, case in cases:
            plan = splitplan.solve(case)
            ev = plan.evaluation
            row = {
                "uplink": link,
                "max_accuracy_loss": label,
                "status": plan.status,
                "plan": describe(plan),
                "encodings": plan.encodings,
                "latency_s": ev.latency_s,
                "codec_s": ev.codec_s,
                "accuracy_loss": ev.accuracy_loss,
                "solve_s": plan.solve_time_s + plan.build_time_s,
            }
            rows.append(row)
            print(
                f"| {link} | {label} | {row['plan']} | {1e3 * ev.latency_s:.1f} | "
                f"{100 * ev.accuracy_loss:.2f} | {row['solve_s']:.2f} |"
            )
    if not args.quick:
        out = {"machine": machine(), "base": BASE.name, "stand_in_losses": losses(), "rows": rows}
        (HERE / "slimmable_plan.json").write_text(json.dumps(out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
