"""Slimmable bottleneck encoder at a split point of a digits CNN vs one fixed-width pair per width.

Trains `splitplan.slimmable.digits_cnn` (the uncut model), inserts a slimmable encoder / decoder
after its second block (a 64 x 4 x 4 tensor) and trains them with the sandwich rule and
distillation from the uncut model; then trains, from the same seed and for the same epochs, a
separate fixed-width pair per width. Prints a markdown table per width (test accuracy of the
slimmable pair in float32 and with its code quantised to int8 after training, of the fixed pair;
payload bytes per image; encoder and decoder FLOPs and times per image, batch 1), the parameter
memory of both approaches, and the time to switch width: `set_width` vs loading the other
width's fixed pair (torch.load of its state_dict from an in-memory buffer, load_state_dict into a
preallocated pair). Writes the results and the machine to benchmarks/slimmable_digits.json.

    python benchmarks/slimmable_digits.py [--base-epochs 20] [--epochs 40] [--code-channels 16]
                                          [--seed 0] [--device cpu] [--threads 1]
    python benchmarks/slimmable_digits.py --quick   # two epochs each, nothing written
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import time
from pathlib import Path

import torch
from _common import machine
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from splitplan import digits
from splitplan import slimmable as S


def flops(module: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(x)
    return float(counter.get_total_flops())


def median_s(fn, repeats: int, warmup: int = 10) -> float:
    """Median seconds of one call of `fn` (synchronising CUDA around each)."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        t = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def param_bytes(*modules: nn.Module) -> int:
    """Bytes of the parameters and buffers (BN statistics) of `modules`."""
    return sum(
        t.numel() * t.element_size()
        for m in modules
        for t in [*m.parameters(), *m.buffers()]
        if t.is_floating_point()
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-epochs", type=int, default=S.BASE_EPOCHS)
    parser.add_argument("--epochs", type=int, default=S.SLIM_EPOCHS)
    parser.add_argument("--code-channels", type=int, default=S.CODE_CHANNELS)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    parser.add_argument("--repeats", type=int, default=300, help="timing repeats")
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    parser.add_argument("--quick", action="store_true", help="a smoke test; writes nothing")
    args = parser.parse_args()
    if args.quick:
        args.base_epochs, args.epochs, args.repeats = 2, 2, 20
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    in_shape = (1, 1, 8, 8)

    base = S.train_base(args.base_epochs, args.seed, device)
    uncut = S.accuracy(base, "test", device)
    print(f"uncut model: test accuracy {uncut:.2f} %", flush=True)

    torch.manual_seed(args.seed)
    slim = S.SplitModel.from_sequential(base, S.SPLIT_INDEX, args.code_channels, in_shape)
    slim_run = S.train_slimmable(slim, base, args.epochs, args.seed, device)
    print(f"slimmable pair trained in {slim_run['seconds']:.1f} s", flush=True)
    x = torch.zeros(in_shape, device=device)
    with torch.no_grad():
        split_tensor = slim.head(x)
    split_bytes = split_tensor.numel() * split_tensor.element_size()

    fixed, fixed_s = {}, {}
    for w, c in zip(slim.widths, slim.encoder.counts, strict=True):
        torch.manual_seed(args.seed)
        m = S.SplitModel.from_sequential(base, S.SPLIT_INDEX, c, in_shape, widths=(1.0,))
        fixed_s[w] = S.train_slimmable(m, base, args.epochs, args.seed, device)["seconds"]
        fixed[w] = m
        print(f"fixed pair, width {w}: trained in {fixed_s[w]:.1f} s", flush=True)

    rows = []
    for w in slim.widths:
        slim.set_width(w)
        enc, dec = slim.encoder, slim.decoder
        with torch.no_grad():
            code = enc(split_tensor)
        enc.quantize = False
        acc32, bytes32 = S.accuracy(slim, "test", device), enc.payload_bytes(split_tensor.shape)
        enc.quantize = True
        acc8, bytes8 = S.accuracy(slim, "test", device), enc.payload_bytes(split_tensor.shape)
        enc.quantize = False
        with torch.no_grad():
            enc_s = median_s(lambda e=enc: e(split_tensor), args.repeats)
            dec_s = median_s(lambda d=dec, z=code: d(z), args.repeats)
        fm = fixed[w]
        rows.append(
            {
                "width": w,
                "code_channels": enc.code_width,
                "slim_acc_fp32": acc32,
                "slim_acc_int8": acc8,
                "fixed_acc_fp32": S.accuracy(fm, "test", device),
                "payload_fp32_bytes": bytes32,
                "payload_int8_bytes": bytes8,
                "encoder_flops": flops(enc, split_tensor),
                "decoder_flops": flops(dec, code),
                "encoder_s": enc_s,
                "decoder_s": dec_s,
                "fixed_param_bytes": param_bytes(fm.encoder, fm.decoder),
            }
        )

    # switching width: set_width vs loading the other width's fixed pair from memory
    widths = slim.widths
    order = iter(range(10**9))
    switch_slim = median_s(lambda: slim.set_width(widths[next(order) % len(widths)]), 1000)
    buffers = {}
    for w, m in fixed.items():
        buf = io.BytesIO()
        torch.save(nn.ModuleList([m.encoder, m.decoder]).state_dict(), buf)
        buffers[w] = buf
    targets = {w: nn.ModuleList([m.encoder, m.decoder]) for w, m in fixed.items()}

    def load_fixed() -> None:
        w = widths[next(order) % len(widths)]
        buffers[w].seek(0)
        targets[w].load_state_dict(torch.load(buffers[w], map_location=device, weights_only=True))

    switch_fixed = median_s(load_fixed, args.repeats)
    slim_bytes = param_bytes(slim.encoder, slim.decoder)
    fixed_bytes = sum(r["fixed_param_bytes"] for r in rows)
    total_s = time.perf_counter() - start

    print()
    print(
        "| width | code ch | slim acc fp32 | slim acc int8 | fixed acc | payload fp32 B "
        "| payload int8 B | enc FLOPs | dec FLOPs | enc µs | dec µs |"
    )
    print("|---" * 11 + "|")
    for r in rows:
        print(
            f"| {r['width']:g} | {r['code_channels']} | {r['slim_acc_fp32']:.2f} "
            f"| {r['slim_acc_int8']:.2f} | {r['fixed_acc_fp32']:.2f} "
            f"| {r['payload_fp32_bytes']} | {r['payload_int8_bytes']} "
            f"| {r['encoder_flops']:,.0f} | {r['decoder_flops']:,.0f} "
            f"| {r['encoder_s'] * 1e6:.1f} | {r['decoder_s'] * 1e6:.1f} |"
        )
    print()
    print(
        f"uncut model: test accuracy {uncut:.2f} %, split tensor "
        f"{tuple(split_tensor.shape[1:])} = {split_bytes} B in float32; widest slimmable "
        f"{rows[-1]['slim_acc_fp32']:.2f} % ({rows[-1]['slim_acc_fp32'] - uncut:+.2f} points)"
    )
    print(
        f"parameter memory (with BN statistics): slimmable pair {slim_bytes:,} B, "
        f"{len(rows)} fixed pairs {fixed_bytes:,} B"
    )
    print(
        f"width switch: set_width {switch_slim * 1e6:.2f} µs, loading a fixed pair's "
        f"state_dict from memory {switch_fixed * 1e6:.1f} µs ({switch_fixed / switch_slim:,.0f}x)"
    )
    n_test = len(digits.splits()["test"][1])
    print(f"{n_test} test images (one = {100 / n_test:.2f} points); total {total_s:.1f} s")
    result = {
        "machine": machine() | {"loadavg_1min_at_start": load_start},
        "settings": {
            "base_epochs": args.base_epochs,
            "epochs": args.epochs,
            "code_channels": args.code_channels,
            "widths": list(widths),
            "split_index": S.SPLIT_INDEX,
            "seed": args.seed,
            "device": str(device),
            "repeats": args.repeats,
            "rule": "sandwich (largest, smallest, 1 random), KL to the uncut model's logits",
        },
        "uncut_acc": uncut,
        "split_tensor_bytes": split_bytes,
        "rows": rows,
        "slim_train_s": slim_run["seconds"],
        "fixed_train_s": fixed_s,
        "slim_param_bytes": slim_bytes,
        "fixed_param_bytes": fixed_bytes,
        "switch_set_width_s": switch_slim,
        "switch_load_fixed_s": switch_fixed,
        "total_s": total_s,
    }
    if not args.quick:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
