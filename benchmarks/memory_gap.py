"""Why the LP relaxation is weak on memory-limited DAGs (issue 13, dual side): a diagnosis.

    python benchmarks/memory_gap.py            # the two issue-13 rows (about 10 min on 2 cores)
    python benchmarks/memory_gap.py --quick    # a 30 x 4 instance (seconds)

For the `latency DAG 100x8 mesh memory` and `weighted DAG 300x8 mesh memory` families of
`benchmarks/bounds.py`, it measures where the root LP's value and the best known plan's cost go,
and what three relaxations that are tighter in one respect each give (all are lower bounds on the
optimum; models/formulation.md §9, "Tried and left out", reads the numbers):

- `split`: the objective of the root LP and of the best plan, split into compute (Σ c x, the
  weighted cost of §8) and transfers (the rest);
- `compute_only`: memory and compute alone, no transfers (a generalised assignment problem): its
  LP and its MIP optimum. Their difference is what the integrality of the memory knapsacks can
  add to the bound at most, cover cuts included;
- `no_skips`: the same instance with its skip connections removed (each layer keeps its first
  input: a chain): root LP, the best plan HiGHS finds in the time limit, and the root LP with
  the run formulation;
- `runs`: the model with the run formulation below added, root LP. Run (k, i, j) says node k
  runs the backbone layers i..j (layer i's first input is layer i-1) as one maximal run; a run
  exists only when its layers are allowed on k and fit (Σ π + the largest working set ≤ mem_k).
  x[v,k] = Σ of the runs on k that hold v; w[i,k,k'] (k ≠ k') moves the backbone from k to k'
  between layers i-1 and i, with Σ_k' w[i,k,k'] = Σ runs on k ending at i-1 and Σ_k w[i,k,k'] =
  Σ runs on k' starting at i; and the model's own cost of tensor i-1 ≥ Σ D(k,k') w[i,k,k'].
  Every plan satisfies it (its maximal runs, the transitions between them, and its transfer of
  layer i-1's output to layer i costs at least that route; tests/test_memory_gap.py checks it
  against brute force). The relaxation may still keep a fraction of every layer of a window
  heavier than node k's memory on k, but now pays for moving that fraction off k and back.

The best plan is `splitplan.pipeline.best_start` (5 s at most), improved by HiGHS from that start
and then by `pipeline.local_search`. Timings on a shared machine are noisy; the load averages are
recorded. Results: benchmarks/memory_gap.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import splitplan
from splitplan.cost import tables
from splitplan.generate import random_instance
from splitplan.instance import Instance
from splitplan.milp import Milp, StandardForm, build_milp
from splitplan.solvers import solve_standard_form

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

FAMILIES = [
    (
        "latency DAG 100x8 mesh memory",
        lambda: random_instance(100, 8, topology="mesh", skip_prob=0.3, memory_fraction=0.2),
    ),
    (
        "weighted DAG 300x8 mesh memory",
        lambda: random_instance(
            300, 8, topology="mesh", skip_prob=0.2, memory_fraction=0.2, objective="weighted"
        ),
    ),
]
QUICK = [
    (
        "latency DAG 30x4 mesh memory",
        lambda: random_instance(30, 4, topology="mesh", skip_prob=0.3, memory_fraction=0.3),
    ),
]


# --------------------------------------------------------------------------- the run formulation


def _transfer_costs(milp: Milp) -> dict[int, list[tuple[int, float]]]:
    """{tensor: [(column, objective coefficient)]} of the transfer columns priced per tensor
    (f, z, y: §9); tensors fixed in place or encoded have none and get no cost row."""
    sf, out = milp.matrix, {}
    for fam in milp.families:
        if fam.kind == "var" and fam.block == "transfer" and fam.name in ("f", "z", "y"):
            for j, key in enumerate(fam.keys, fam.start):
                if sf.c[j]:
                    out.setdefault(key[0], []).append((j, float(sf.c[j])))
    return out


def with_runs(milp: Milp) -> tuple[StandardForm, int]:
    """The model's matrix with the run formulation (module docstring) added: (matrix, number of
    runs). Needs a backbone: layer i's first input is layer i-1, for every i ≥ 1."""
    inst, tb, sf = milp.instance, milp.tables, milp.matrix
    V, K = len(tb.layers), len(tb.nodes)
    for i in range(1, V):
        if inst.dnn.layers[i].inputs[0] != tb.layers[i - 1]:
            raise ValueError(f"layer {tb.layers[i]}'s first input is not {tb.layers[i - 1]}")
    weights = inst.objective.weights() if inst.objective.additive else None
    n0 = len(sf.c)
    n_new = 0
    rows: list[tuple[float, list[tuple[int, float]], float]] = []

    def column() -> int:
        nonlocal n_new
        n_new += 1
        return n0 + n_new - 1

    runs: dict[tuple[int, int, int], int] = {}
    starting: dict[tuple[int, int], list[int]] = {}
    ending: dict[tuple[int, int], list[int]] = {}
    for k in range(K):
        cap = tb.memory_bytes[k]
        for i in range(V):
            params, work = 0.0, 0.0
            for j in range(i, V):
                if k not in tb.allowed[j]:
                    break
                params += float(tb.param_bytes[j])
                work = max(work, float(tb.work_bytes[j]))
                if cap is not None and params + work > cap:
                    break
                runs[k, i, j] = col = column()
                starting.setdefault((i, k), []).append(col)
                ending.setdefault((j, k), []).append(col)
    holding: dict[tuple[int, int], list[int]] = {}
    for (k, i, j), col in runs.items():
        for v in range(i, j + 1):
            holding.setdefault((v, k), []).append(col)
    for (v, k), xcol in milp.x.items():  # x[v,k] = the runs on k that hold v
        rows.append((0.0, [(xcol, 1.0), *((c, -1.0) for c in holding.get((v, k), []))], 0.0))
    priced = _transfer_costs(milp)
    for i in range(1, V):
        ti = tb.tensor_index[tb.layers[i - 1]]
        size = tb.tensors[ti].size_bytes
        dist, _ = tb.shortest_paths(size)
        w = {
            (k, q): column()
            for k in range(K)
            for q in range(K)
            if k != q and (i - 1, k) in ending and (i, q) in starting and np.isfinite(dist[k, q])
        }
        for k in range(K):
            if (i - 1, k) in ending:
                out = [(w[k, q], -1.0) for q in range(K) if (k, q) in w]
                rows.append((0.0, [*((c, 1.0) for c in ending[i - 1, k]), *out], 0.0))
            if (i, k) in starting:
                into = [(w[p, k], -1.0) for p in range(K) if (p, k) in w]
                rows.append((0.0, [*((c, 1.0) for c in starting[i, k]), *into], 0.0))
        if weights is None or ti not in priced:
            continue
        terms = list(priced[ti])
        for (k, q), col in w.items():
            cost = weights.latency * float(dist[k, q])
            if weights.energy:
                cost += weights.energy * tb.route_energy_j(size, k, q)
            terms.append((col, -cost))
        rows.append((0.0, terms, np.inf))
    n1 = n0 + n_new
    A = sp.csr_matrix((sf.A_value, sf.A_index, sf.A_start), shape=(len(sf.row_lb), n0))
    data = [v for _, terms, _ in rows for _, v in terms]
    index = [c for _, terms, _ in rows for c, _ in terms]
    starts = np.cumsum([0, *(len(terms) for _, terms, _ in rows)])
    B = sp.csr_matrix((data, index, starts), shape=(len(rows), n1))
    A2 = sp.vstack([sp.hstack([A, sp.csr_matrix((A.shape[0], n_new))]), B]).tocsr()
    A2.sort_indices()
    extended = dataclasses.replace(
        sf,
        c=np.concatenate([sf.c, np.zeros(n_new)]),
        col_lb=np.concatenate([sf.col_lb, np.zeros(n_new)]),
        col_ub=np.concatenate([sf.col_ub, np.ones(n_new)]),
        integer=np.concatenate([sf.integer, np.zeros(n_new, dtype=bool)]),
        row_lb=np.concatenate([sf.row_lb, [r[0] for r in rows]]),
        row_ub=np.concatenate([sf.row_ub, [r[2] for r in rows]]),
        A_start=A2.indptr.astype(np.int64),
        A_index=A2.indices.astype(np.int64),
        A_value=A2.data.astype(float),
    )
    return extended, len(runs)


# --------------------------------------------------------------------------- the other measures


def compute_only(milp: Milp) -> StandardForm:
    """The model's placement and memory rows with the compute cost alone (no transfers): a
    lower bound on the compute part of every plan's cost."""
    sf = milp.matrix
    keep_cols = np.zeros(len(sf.c), dtype=bool)
    keep_rows = np.zeros(len(sf.row_lb), dtype=bool)
    for fam in milp.families:
        if fam.block in ("", "memory") and fam.kind == "var":
            keep_cols[fam.start : fam.stop] = True
        if fam.block in ("assign", "memory") and fam.kind == "con":
            keep_rows[fam.start : fam.stop] = True
    A = sp.csr_matrix((sf.A_value, sf.A_index, sf.A_start), shape=(len(sf.row_lb), len(sf.c)))
    A = A[keep_rows][:, keep_cols].tocsr()
    c = np.zeros(len(sf.c))
    cost = _compute_cost(milp.instance)
    for (v, k), col in milp.x.items():
        c[col] = cost[v, k]
    return dataclasses.replace(
        sf,
        c=c[keep_cols],
        offset=0.0,
        A_start=A.indptr.astype(np.int64),
        A_index=A.indices.astype(np.int64),
        A_value=A.data.astype(float),
        row_lb=sf.row_lb[keep_rows],
        row_ub=sf.row_ub[keep_rows],
        col_lb=sf.col_lb[keep_cols],
        col_ub=sf.col_ub[keep_cols],
        integer=sf.integer[keep_cols],
    )


def without_skips(inst: Instance) -> Instance:
    """The instance with every layer's inputs but the first removed (its backbone chain)."""
    layers = tuple(dataclasses.replace(la, inputs=la.inputs[:1]) for la in inst.dnn.layers)
    return dataclasses.replace(inst, dnn=dataclasses.replace(inst.dnn, layers=layers))


def _compute_cost(inst: Instance) -> np.ndarray:
    """V x K: c_{v,k} in the objective's weights (§1, §5, §8; inf where v may not run)."""
    w = inst.objective.weights()
    return tables(inst).compute_cost(w.latency, w.energy)


def compute_part(inst: Instance, assignment: dict[str, str]) -> float:
    """Σ_v c_{v,σ(v)} in the objective's weights: the compute part of a plan's cost."""
    tb, cost = tables(inst), _compute_cost(inst)
    return float(sum(cost[v, tb.node_index[assignment[name]]] for v, name in enumerate(tb.layers)))


def _lp(sf: StandardForm, time_limit_s: float) -> tuple[float | None, float]:
    began = time.perf_counter()
    res = solve_standard_form(sf, "highs", relax=True, time_limit_s=time_limit_s)
    value = res.objective if res.termination == "optimal" else None
    return value, time.perf_counter() - began


def best_plan(inst: Instance, milp: Milp, time_limit_s: float) -> dict[str, str] | None:
    """best_start (5 s at most), then HiGHS from it, then local search (a third of the limit)."""
    from splitplan.pipeline import best_start, local_search

    start = best_start(inst, min(5.0, time_limit_s))
    res = solve_standard_form(
        milp.matrix,
        "highs",
        time_limit_s=time_limit_s,
        start=None if start is None else milp.start_vector(start),
    )
    plan = start if res.values is None else milp.read_assignment(res.values)
    if plan is None:
        return None
    return local_search(inst, plan, time.perf_counter() + time_limit_s / 3)


def measure(label: str, inst: Instance, time_limit_s: float) -> dict:
    """Every measure of the module docstring on one instance (objectives in the instance's own
    unit: s for latency, the weighted cost for weighted), each MIP and LP limited to
    `time_limit_s` seconds; None where a limit stopped it first."""
    load_before = os.getloadavg()
    milp = build_milp(inst)
    row: dict = {"family": label, "instance": inst.name}
    lp = solve_standard_form(milp.matrix, "highs", relax=True)
    cost = _compute_cost(inst)
    lp_compute = float(sum(cost[v, k] * lp.values[col] for (v, k), col in milp.x.items()))
    row["root_lp"] = {"value": lp.objective, "compute": lp_compute}
    plan = best_plan(inst, milp, time_limit_s)
    if plan is not None:
        value = splitplan.evaluate(inst, plan).objective(inst)
        row["best_plan"] = {"value": value, "compute": compute_part(inst, plan)}
    gap_sf = compute_only(milp)
    gap_lp, _ = _lp(gap_sf, time_limit_s)
    gap_mip = solve_standard_form(gap_sf, "highs", time_limit_s=time_limit_s)
    row["compute_only"] = {
        "lp": gap_lp,
        "mip": gap_mip.objective,
        "mip_bound": gap_mip.bound,
        "status": gap_mip.termination,
    }
    chain = without_skips(inst)
    chain_milp = build_milp(chain)
    chain_lp, _ = _lp(chain_milp.matrix, time_limit_s)
    chain_mip = solve_standard_form(chain_milp.matrix, "highs", time_limit_s=time_limit_s)
    chain_runs, _ = _lp(with_runs(chain_milp)[0], time_limit_s)
    row["no_skips"] = {
        "root_lp": chain_lp,
        "best": chain_mip.objective,
        "status": chain_mip.termination,
        "runs_root_lp": chain_runs,
    }
    extended, n_runs = with_runs(milp)
    runs_lp, runs_s = _lp(extended, time_limit_s)
    row["runs"] = {
        "n_runs": n_runs,
        "columns": len(extended.c),
        "rows": len(extended.row_lb),
        "root_lp": runs_lp,
        "root_lp_s": runs_s,
        "base_columns": len(milp.matrix.c),
        "base_rows": len(milp.matrix.row_lb),
    }
    row["load_average"] = [round(x, 2) for x in (*load_before, *os.getloadavg())]
    return row


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.4g}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a small instance (a smoke test)")
    parser.add_argument(
        "--time-limit", type=float, help="seconds per MIP or LP (default 60; 5 with --quick)"
    )
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("memory_gap.json")))
    args = parser.parse_args()
    families = QUICK if args.quick else FAMILIES
    limit = args.time_limit or (5.0 if args.quick else 60.0)
    rows = []
    for label, make in families:
        row = measure(label, make(), limit)
        rows.append(row)
        best, chain = row.get("best_plan", {}), row["no_skips"]
        print(
            f"{label}: root LP {_fmt(row['root_lp']['value'])} (compute "
            f"{_fmt(row['root_lp']['compute'])}), best plan {_fmt(best.get('value'))} (compute "
            f"{_fmt(best.get('compute'))}); compute only LP {_fmt(row['compute_only']['lp'])} "
            f"MIP {_fmt(row['compute_only']['mip'])}; without skips LP "
            f"{_fmt(chain['root_lp'])} (with runs {_fmt(chain['runs_root_lp'])}) "
            f"best {_fmt(chain['best'])}; "
            f"with runs LP {_fmt(row['runs']['root_lp'])} ({row['runs']['root_lp_s']:.1f} s)",
            flush=True,
        )
    result = {"machine": machine(), "time_limit_s": limit, "rows": rows}
    Path(args.output).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
