"""Symmetry among identical nodes: does HiGHS detect it without presolve, and do the ordering
rows of `splitplan.symmetry` help the throughput MILP?

    python benchmarks/symmetry.py            # about 7 minutes on 2 cores
    python benchmarks/symmetry.py --quick    # one small family, short limits

Part 1: HiGHS' log on generate.pipeline_instance(100, 8, family="identical") (throughput) with
presolve off (as `splitplan.solve` runs MIPs) and on: its symmetry-detection lines and the bound.
Part 2: per family, `splitplan.solve` from `pipeline.best_start` (1 s) with the ordering rows
(the model's default, `build_milp(cuts=True)`) and without them (`add_symmetry` replaced by a
no-op): period, bound, gap and branch-and-bound nodes after the same limit. Results go to
benchmarks/symmetry.json.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import re
import tempfile
import time
from contextlib import contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import numpy as np
from _common import machine

import splitplan
from splitplan import pipeline, solvers
from splitplan.cost import tables
from splitplan.generate import pipeline_instance
from splitplan.milp import build_milp

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = [
    ("chain 30x6 identical", dict(n_layers=30, n_nodes=6, family="identical")),
    (
        "chain 50x5 identical, memory",
        dict(n_layers=50, n_nodes=5, family="identical", memory_fraction=0.3),
    ),
    ("chain 100x8 identical", dict(n_layers=100, n_nodes=8, family="identical")),
    (
        "chain 100x8 identical, memory",
        dict(n_layers=100, n_nodes=8, family="identical", memory_fraction=0.2),
    ),
]
QUICK = FAMILIES[:1]


@contextmanager
def captured_stdout():
    """What C code writes to file descriptor 1 (HiGHS' log) inside the block: yields a list
    that holds the text afterwards."""
    out: list[str] = []
    with tempfile.TemporaryFile(mode="w+") as tmp:
        saved = os.dup(1)
        os.dup2(tmp.fileno(), 1)
        try:
            yield out
        finally:
            ctypes.CDLL(None).fflush(None)  # C's stdio buffer, before fd 1 is restored
            os.dup2(saved, 1)
            os.close(saved)
            tmp.seek(0)
            out.append(tmp.read())


def highs_log(limit_s: float) -> list[dict]:
    inst = pipeline_instance(100, 8, family="identical")
    sf, _ = solvers.scale(build_milp(inst, cuts=False).matrix)
    rows = []
    for presolve in (False, True):
        with captured_stdout() as log:
            raw = solvers._highs_run(
                sf, limit_s, False, (1e-9, 1e-6), None, True, {}, presolve=presolve
            )
        text = log[0]
        rows.append(
            {
                "presolve": presolve,
                "symmetry_lines": [
                    line.strip()
                    for line in text.splitlines()
                    if re.search(r"[Ss]ymmetr|generator|orbitope", line)
                ],
                "presolve_lines": [line.strip() for line in text.splitlines() if "resolve" in line],
                "nodes": raw.nodes,
                "termination": raw.termination,
            }
        )
    return rows


def run(inst: splitplan.Instance, start: dict, limit_s: float, rows: bool) -> dict:
    patch = nullcontext() if rows else mock.patch("splitplan.milp.add_symmetry", lambda ctx: [])
    with patch:
        milp = build_milp(inst)
        began = time.perf_counter()
        plan = splitplan.solve(inst, time_limit_s=limit_s, initial=start)
    return {
        "rows": rows,
        "model_rows": len(milp.matrix.row_lb),
        "model_columns": len(milp.matrix.c),
        "classes": [len(c) for c in milp.symmetry],
        "status": plan.status,
        "period_s": plan.objective,
        "bound_s": plan.bound,
        "gap": plan.gap,
        "bb_nodes": plan.bb_nodes,
        "wall_s": time.perf_counter() - began,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--limit", type=float, default=None, help="MILP limit per run, s (40)")
    args = ap.parse_args()
    limit = args.limit or (5.0 if args.quick else 40.0)
    out: dict = {"machine": machine(), "limit_s": limit}
    out["highs_log"] = highs_log(5.0 if args.quick else 20.0)
    for row in out["highs_log"]:
        print(f"presolve {'on' if row['presolve'] else 'off'}: {row['symmetry_lines']}")
    results = []
    for label, kw in QUICK if args.quick else FAMILIES:
        inst = pipeline_instance(**kw)
        tb = tables(inst)
        start = pipeline.best_start(inst, 1.0)
        cols = tb.compute_s
        work = float(cols[:, 0].sum() / cols.shape[1]) if np.all(cols == cols[:, :1]) else None
        row = {
            "family": label,
            "instance": inst.name,
            "start_period_s": splitplan.evaluate(inst, start).period_s,
            "total_work_over_nodes_s": work,  # every node alike: the LP's balance bound
            "with_rows": run(inst, start, limit, True),
            "without_rows": run(inst, start, limit, False),
        }
        results.append(row)
        w, wo = row["with_rows"], row["without_rows"]
        print(
            f"{label}: with rows {w['period_s']:.6g} bound {w['bound_s']:.6g} gap "
            f"{100 * w['gap']:.3f} % nodes {w['bb_nodes']}; without {wo['period_s']:.6g} bound "
            f"{wo['bound_s']:.6g} gap {100 * wo['gap']:.3f} % nodes {wo['bb_nodes']}; "
            f"total work / |K| {work}",
            flush=True,
        )
    out["rows"] = results
    out["machine_after"] = machine()
    if not args.quick:
        (ROOT / "benchmarks" / "symmetry.json").write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
