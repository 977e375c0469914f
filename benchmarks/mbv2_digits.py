"""The mbv2 space on digits: how well does the supernet's estimate rank retrained accuracy?

Trains the weight-sharing supernet once (sandwich rule), scores random architectures (plus the
largest and the smallest) by their inherited weights on the validation split, retrains a few of
them from scratch, spread over the supernet's ranking, and prints a markdown table and the Kendall
rank correlation between the supernet estimate and the retrained accuracy. Writes the results and
the machine it ran on to benchmarks/mbv2_digits.json.

    python benchmarks/mbv2_digits.py [--epochs 20] [--retrain-epochs 20] [--archs 20]
                                     [--retrain 5] [--seed 0] [--device cpu] [--threads 1]
    python benchmarks/mbv2_digits.py --quick   # one epoch each, 3 archs, nothing written
"""

from __future__ import annotations

import argparse
import json
import os
import random
import time
from pathlib import Path

import torch
from _common import machine

from splitplan import digits
from splitplan.nas import mbv2


def kendall_tau(a: list[float], b: list[float]) -> float:
    """Kendall's tau-b (ties in either list counted as neither concordant nor discordant)."""
    concordant = discordant = ties_a = ties_b = 0
    for i in range(len(a)):
        for j in range(i + 1, len(a)):
            da, db = a[i] - a[j], b[i] - b[j]
            if da == 0 and db == 0:
                continue
            if da == 0:
                ties_a += 1
            elif db == 0:
                ties_b += 1
            elif (da > 0) == (db > 0):
                concordant += 1
            else:
                discordant += 1
    denominator = ((concordant + discordant + ties_a) * (concordant + discordant + ties_b)) ** 0.5
    return (concordant - discordant) / denominator if denominator else float("nan")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=mbv2.SUPERNET_EPOCHS)
    parser.add_argument("--retrain-epochs", type=int, default=mbv2.RETRAIN_EPOCHS)
    parser.add_argument("--archs", type=int, default=20, help="architectures scored (>= 2)")
    parser.add_argument("--retrain", type=int, default=5, help="of which retrained (>= 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu")
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch intra-op threads (default 1: these networks are tiny, and on a loaded "
        "2-core machine two threads spin-wait for each other)",
    )
    parser.add_argument("--out", default=str(Path(__file__).with_suffix(".json")))
    parser.add_argument("--quick", action="store_true", help="a smoke test; writes nothing")
    args = parser.parse_args()
    if args.quick:
        args.epochs, args.retrain_epochs, args.archs, args.retrain = 1, 1, 3, 2
    if not 2 <= args.retrain <= args.archs:
        parser.error("need 2 <= --retrain <= --archs")
    torch.set_num_threads(args.threads)

    start = time.perf_counter()
    load_start = os.getloadavg()[0]
    net = mbv2.train_supernet(
        args.epochs,
        args.seed,
        args.device,
        "sandwich",
        progress=lambda e, n, loss: print(f"supernet epoch {e}/{n}: loss {loss:.3f}", flush=True),
    )
    train_s = net.meta["seconds"]

    rng = random.Random(args.seed)
    keys = [mbv2.Arch.largest().key, mbv2.Arch.smallest().key]
    while len(keys) < args.archs:
        key = mbv2.Arch.sample(rng).key
        if key not in keys:
            keys.append(key)
    t = time.perf_counter()
    rows = []
    for key in keys:
        flops, params = mbv2.model_stats(mbv2.build_net(key))
        rows.append(
            {
                "arch": key,
                "supernet_val": net.evaluate(key, "val"),
                "supernet_test": net.evaluate(key, "test"),
                "flops": flops,
                "params": params,
            }
        )
    score_s = (time.perf_counter() - t) / len(keys) / 2

    # retrain archs spread evenly over the supernet's ranking (best to worst)
    ranked = sorted(rows, key=lambda r: -r["supernet_val"])
    picks = sorted({round(i * (len(ranked) - 1) / (args.retrain - 1)) for i in range(args.retrain)})
    for i in picks:
        row = ranked[i]
        r = mbv2.retrain(row["arch"], args.retrain_epochs, args.seed, args.device)
        row |= {
            "retrained_val": r["accuracy_val"],
            "retrained_test": r["accuracy_test"],
            "retrain_s": r["seconds"],
        }
        print(
            f"retrained {row['arch']}: val {r['accuracy_val']:.2f} % test "
            f"{r['accuracy_test']:.2f} % ({r['seconds']:.1f} s)",
            flush=True,
        )
    retrained = [r for r in ranked if "retrained_test" in r]
    tau_val = kendall_tau(
        [r["supernet_val"] for r in retrained], [r["retrained_val"] for r in retrained]
    )
    tau_test = kendall_tau(
        [r["supernet_val"] for r in retrained], [r["retrained_test"] for r in retrained]
    )
    tau_flops = kendall_tau([r["supernet_val"] for r in rows], [r["flops"] for r in rows])
    total_s = time.perf_counter() - start
    # binomial standard error of one accuracy measured on the 360 validation images
    mean = sum(r["retrained_val"] for r in retrained) / len(retrained) / 100
    stderr = 100 * (mean * (1 - mean) / len(digits.splits()["val"][1])) ** 0.5

    print()
    print(
        "| architecture | supernet val % | supernet test % | retrained val % | retrained test % "
        "| kFLOPs | params |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in ranked:
        rv = f"{r['retrained_val']:.2f}" if "retrained_val" in r else ""
        rt = f"{r['retrained_test']:.2f}" if "retrained_test" in r else ""
        print(
            f"| `{r['arch']}` | {r['supernet_val']:.2f} | {r['supernet_test']:.2f} | {rv} | {rt} "
            f"| {r['flops'] / 1e3:.0f} | {r['params']:,} |"
        )
    print()
    print(
        f"Kendall tau, supernet val estimate vs retrained accuracy over {len(retrained)} archs: "
        f"val {tau_val:.2f}, test {tau_test:.2f}; supernet estimate vs FLOPs over {len(rows)}: "
        f"{tau_flops:.2f}"
    )
    print(
        f"one accuracy on the {len(digits.splits()['val'][1])} validation images has a standard "
        f"error of {stderr:.2f} points at {100 * mean:.1f} %"
    )
    print(
        f"supernet training {train_s:.1f} s ({args.epochs} epochs), scoring "
        f"{score_s * 1e3:.0f} ms per arch and split, total {total_s:.1f} s"
    )
    result = {
        "machine": machine() | {"loadavg_1min_at_start": load_start},
        "settings": {
            "supernet_epochs": args.epochs,
            "retrain_epochs": args.retrain_epochs,
            "rule": "sandwich",
            "seed": args.seed,
            "device": args.device,
            "space_size": mbv2.SPACE_SIZE,
            "splits": {k: len(v[1]) for k, v in digits.splits().items()},
        },
        "supernet_train_s": train_s,
        "supernet_loss": net.meta["loss"],
        "score_s_per_arch_and_split": score_s,
        "rows": ranked,
        "kendall_tau": {
            "supernet_val_vs_retrained_val": tau_val,
            "supernet_val_vs_retrained_test": tau_test,
            "supernet_val_vs_flops": tau_flops,
            "retrained": len(retrained),
        },
        "accuracy_stderr_points": stderr,
        "total_s": total_s,
    }
    if not args.quick:
        Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
