"""How well `splitplan.solve` keeps its time limit: wall time against the limit, by phase.

    nice -n 5 python benchmarks/deadline.py          # the README's figures (about 2 minutes)
    python benchmarks/deadline.py --quick            # one small instance, 1 s (the tests run it)

Per instance (splitplan.generate.pipeline_instance, throughput) and solver: the wall time of
`splitplan.solve(inst, solver, time_limit_s=LIMIT)` in a warm process, its overshoot (wall -
limit), the plan's `build_time_s` (the MIP start, the model and reading it back) and
`solve_time_s` (the solver's own call), and what is left (the verdict). Each solve runs `--repeats`
times; the table shows the largest overshoot. Results go to benchmarks/deadline.json.

`--callbacks` (about 1 minute) asks instead whether HiGHS' interrupt callbacks could stop it
sooner than its own `time_limit`: HiGHS 1.12 alone on the 1000 x 16 model with its MIP start
and a limit of 3 s, with feasibility jump on and off, once with only the `time_limit` and once
with callbacks (simplex, IPM and MIP interrupt) that interrupt at the same deadline. Per run:
its wall time, how often each callback was called, when the MIP one was called and the
longest time between two of its calls (the first counted from the start of the run), and when
the simplex one was called last.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from _common import machine

import splitplan
from splitplan.generate import pipeline_instance

FAMILIES = [
    ("chain 100x8 hetero", dict(n_layers=100, n_nodes=8), ("highs", "ortools", "ortools-cpsat")),
    ("chain 1000x16 hetero", dict(n_layers=1000, n_nodes=16), ("highs", "ortools")),
]
QUICK = [("chain 30x4 hetero", dict(n_layers=30, n_nodes=4), ("highs",))]


def run(families, limit_s: float, repeats: int) -> list[dict]:
    splitplan.solve(pipeline_instance(20, 3), time_limit_s=5.0)  # imports and solver start-up
    rows = []
    for label, kw, solvers in families:
        inst = pipeline_instance(**kw)
        for solver in solvers:
            runs = []
            for _ in range(repeats):
                began = time.perf_counter()
                plan = splitplan.solve(inst, solver, time_limit_s=limit_s)
                wall = time.perf_counter() - began
                runs.append(
                    {
                        "wall_s": wall,
                        "overshoot_s": wall - limit_s,
                        "build_s": plan.build_time_s,
                        "solve_s": plan.solve_time_s,
                        "rest_s": wall - plan.build_time_s - plan.solve_time_s,
                        "status": plan.status,
                        "termination": plan.termination,
                        "gap": plan.gap,
                    }
                )
                print(f"  {label:<22} {solver:<14} wall {wall:.2f} s", flush=True)
            worst = max(runs, key=lambda r: r["overshoot_s"])
            row = {"family": label, "solver": solver, "limit_s": limit_s, "runs": runs}
            rows.append(row | worst)
    return rows


def callback_runs(limit_s: float = 3.0) -> list[dict]:
    import numpy as np

    from splitplan.milp import build_milp
    from splitplan.pipeline import best_start
    from splitplan.solvers import scale

    inst = pipeline_instance(1000, 16)
    milp = build_milp(inst)
    sf, units = scale(milp.matrix)
    start = milp.start_vector(best_start(inst, 5.0))
    cols = np.array(list(start), dtype=np.int32)
    values = np.array([start[j] / units.col_unit[j] for j in cols])
    rows = []
    for jump in (True, False):
        for with_callbacks in (False, True):
            row = _callback_run(sf, cols, values, jump, with_callbacks, limit_s)
            rows.append(row)
            print(
                f"  jump {jump!s:<5} callbacks {with_callbacks!s:<5} wall {row['wall_s']:.2f} s "
                f"{row['status']}, calls {row['calls']}, longest MIP gap "
                f"{row['longest_mip_gap_s']}, MIP calls at {row['mip_calls_at_s']}, last simplex "
                f"call at {row['last_simplex_call_at_s']}",
                flush=True,
            )
    return rows


def _callback_run(sf, cols, values, jump: bool, with_callbacks: bool, limit_s: float) -> dict:
    import highspy
    import numpy as np

    kinds = {
        "simplex": highspy.cb.HighsCallbackType.kCallbackSimplexInterrupt,
        "ipm": highspy.cb.HighsCallbackType.kCallbackIpmInterrupt,
        "mip": highspy.cb.HighsCallbackType.kCallbackMipInterrupt,
    }
    h = highspy.Highs()
    h.setOptionValue("output_flag", False)
    h.setOptionValue("presolve", "off")
    h.setOptionValue("mip_heuristic_run_feasibility_jump", jump)
    h.passModel(
        len(sf.c), len(sf.row_lb), len(sf.A_value), 2, 1, float(sf.offset),
        sf.c, sf.col_lb, sf.col_ub, sf.row_lb, sf.row_ub,
        sf.A_start.astype(np.int32), sf.A_index.astype(np.int32), sf.A_value,
        sf.integer.astype(np.int32),
    )  # fmt: skip
    h.setSolution(len(cols), cols, values)
    h.setOptionValue("time_limit", limit_s)
    calls: dict[str, list[float]] = {k: [] for k in kinds}
    began = time.perf_counter()

    def interrupt(event, kind: str) -> None:
        now = time.perf_counter() - began
        calls[kind].append(now)
        if now > limit_s:
            event.interrupt()

    if with_callbacks:
        for kind, kind_id in kinds.items():
            h.callbacks[int(kind_id)].subscribe(lambda e, kind=kind: interrupt(e, kind))
    h.run()
    wall = time.perf_counter() - began
    mip = [0.0, *calls["mip"]]
    return {
        "feasibility_jump": jump,
        "callbacks": with_callbacks,
        "limit_s": limit_s,
        "wall_s": wall,
        "status": h.modelStatusToString(h.getModelStatus()),
        "calls": {k: len(v) for k, v in calls.items()},
        "longest_mip_gap_s": float(max(np.diff(mip))) if with_callbacks else None,
        "mip_calls_at_s": calls["mip"],
        "last_simplex_call_at_s": calls["simplex"][-1] if calls["simplex"] else None,
    }


def markdown(rows: list[dict]) -> str:
    out = [
        "| instance | solver | limit s | wall s | overshoot s | build s | solve s | rest s "
        "| status |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        out.append(
            f"| {r['family']} | {r['solver']} | {r['limit_s']:g} | {r['wall_s']:.2f} | "
            f"**{r['overshoot_s']:+.2f}** | {r['build_s']:.2f} | {r['solve_s']:.2f} | "
            f"{r['rest_s']:.2f} | {r['status']} |"
        )
    return "\n".join(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="one small instance, a 1 s limit")
    ap.add_argument("--limit", type=float, default=None, help="time limit, s (10; quick: 1)")
    ap.add_argument("--repeats", type=int, default=None, help="solves per row (2; quick: 1)")
    ap.add_argument("--callbacks", action="store_true", help="HiGHS' interrupt callbacks")
    ap.add_argument("-o", "--output", default=str(Path(__file__).with_name("deadline.json")))
    args = ap.parse_args()
    if args.callbacks:
        before = machine()
        runs = callback_runs()
        out = Path(args.output).with_name("deadline_callbacks.json")
        result = {"machine": before, "loadavg_1min_after": machine()["loadavg_1min"], "runs": runs}
        out.write_text(json.dumps(result, indent=1) + "\n")
        after = result["loadavg_1min_after"]
        print(f"load average {before['loadavg_1min']:.2f} before, {after:.2f} after")
        return
    limit = args.limit if args.limit is not None else (1.0 if args.quick else 10.0)
    repeats = args.repeats if args.repeats is not None else (1 if args.quick else 2)
    before = machine()
    rows = run(QUICK if args.quick else FAMILIES, limit, repeats)
    result = {"machine": before, "loadavg_1min_after": machine()["loadavg_1min"], "rows": rows}
    if not args.quick:
        Path(args.output).write_text(json.dumps(result, indent=1) + "\n")
    print()
    print(
        f"load average {before['loadavg_1min']:.2f} before, {result['loadavg_1min_after']:.2f} "
        f"after; {before['cpus']} CPUs"
    )
    print(markdown(rows))


if __name__ == "__main__":
    main()
