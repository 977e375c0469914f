"""Online splitting: decision and simulation time, look-ahead gap, and the gain of online splitting
over the best static split, on Rayleigh fading and on the shipped real throughput traces.

    python benchmarks/online.py            # the table in the README (about a minute on 2 cores)
    python benchmarks/online.py --quick    # a smoke run: fewer inferences, nothing written

Instance: instances/three-tier-chain.json (ResNet-18, 12 layers; the phone offloads to the Wi-Fi
edge box; conv1 is pinned to the phone, so the cuts are 1..12). Costs: latency (w_time = 1,
lambda = 0) and an energy-aware cost (w_time = 1, lambda = 0.5 s per J of the phone's energy).
Rayleigh: i.i.d. per layer boundary, bandwidth calibrated so that the Shannon rate at 10 dB is the
instance's 100 Mbit/s link; 16 levels. Traces: 16 quantile levels, simulated on the trace itself
at random start times. Every policy is simulated on the same 1e5 inferences (common random
numbers). "static" is the best *fixed* cut in hindsight on those same samples (the strictest
static baseline); gains are (static - optimal) / static, gaps (look-ahead - optimal) / optimal,
both on simulated means. Results go to benchmarks/online.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
import timeit
from pathlib import Path

import numpy as np

import splitplan
from splitplan import Instance, Link, Network, Node
from splitplan.online import (
    SHIPPED_TRACES,
    RayleighChannel,
    TraceChannel,
    backward_induction,
    bandwidth_for_rate,
    compare,
    load_trace,
    look_ahead_thresholds,
    mlp_closed_form,
    mlp_dnn,
    place,
    planner_cut,
    realised_costs,
    simulate,
    stages_from_instance,
)

ROOT = Path(__file__).resolve().parents[1]
INSTANCE = ROOT / "instances" / "three-tier-chain.json"
SNRS = (0.0, 5.0, 10.0, 15.0, 20.0, 25.0)
WEIGHTS = (("latency", 1.0, 0.0), ("energy-aware", 1.0, 0.5))


def pct(x: float, sign: str = "") -> str:
    """A percentage with one decimal, without '-0.0'."""
    return f"{round(100 * x, 1) + 0.0:{sign}.1f} %"


def hindsight_static(problem, channel, n, seed, N):
    """(cut, mean) of the best fixed cut on the very samples `compare` simulates."""
    rng = np.random.default_rng(seed)
    rates, _ = channel.sample(problem.step_s[:N], n, rng)
    means = realised_costs(problem, rates, N).mean(axis=0)
    means[: problem.min_stop] = np.inf
    i = int(np.argmin(means))
    return i, float(means[i])


def decision_timing(problem, channel, calls):
    """Per-call time of the on-device decision: backward induction's table (bisect the observed
    rate into a level, read the table) and the look-ahead's closed-form thresholds."""
    model = channel.model(problem.step_s)
    t0 = time.perf_counter()
    bi = backward_induction(problem, model)
    build_s = time.perf_counter() - t0
    ola = look_ahead_thresholds(problem, model)
    rng = np.random.default_rng(0)
    stages = rng.integers(0, bi.horizon, calls).tolist()
    rates = channel.sample(problem.step_s, calls, rng)[0][:, 0].tolist()
    pairs = list(zip(stages, rates, strict=True))

    def per_call(rule):
        decide = rule.decide

        def loop():
            for i, r in pairs:
                decide(i, r)

        return min(timeit.repeat(loop, number=1, repeat=5)) / calls

    return {
        "backward_induction_build_s": build_s,
        "optimal_decide_us": 1e6 * per_call(bi),
        "look_ahead_decide_us": 1e6 * per_call(ola),
    }


def simulation_timing(problem, channel, n):
    """Wall time of n simulated inferences for each policy alone (sampling included)."""
    model = channel.model(problem.step_s)
    comp_rules = compare(problem, channel, n=100, seed=0).rules
    out = {}
    for name, rule in comp_rules.items():
        t0 = time.perf_counter()
        simulate(problem, channel, [rule], n, seed=1, oracle=False)
        out[name] = time.perf_counter() - t0
    t0 = time.perf_counter()
    simulate(problem, channel, [], n, seed=1, oracle=True)
    out["oracle"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    backward_induction(problem, model)
    out["backward_induction_build"] = time.perf_counter() - t0
    return out


def row(label, problem, channel, n, seed, planner):
    N = problem.last_stage()
    stage, _ = planner(channel.mean_rate)
    t0 = time.perf_counter()
    comp = compare(problem, channel, n=n, seed=seed, planner_stage=stage)
    wall = time.perf_counter() - t0
    cut, static = hindsight_static(problem, channel, n, seed, N)
    opt, ola = comp.result("optimal"), comp.result("look-ahead")
    oracle = comp.result("oracle")
    return {
        "setting": label,
        "mean_rate_mbps": channel.mean_rate * 8 / 1e6,
        "optimal": opt.mean,
        "optimal_ci95": opt.ci95,
        "optimal_analytic": opt.analytic,
        "optimal_mean_stop": opt.mean_stop,
        "look_ahead": ola.mean,
        "look_ahead_analytic": ola.analytic,
        "look_ahead_gap": (ola.mean - opt.mean) / opt.mean,
        "static_cut": cut,
        "static": static,
        "model_best_static_cut": comp.result("best-static").stage,
        "planner_cut": stage,
        "online_gain": (static - opt.mean) / static,
        "oracle": oracle.mean,
        "oracle_gap": (opt.mean - oracle.mean) / oracle.mean,
        "policies": [r.to_dict() for r in comp.results],
        "wall_s": wall,
    }


def mlp_instance(L=8, width=1024, inp=3072, classes=10) -> Instance:
    """A fully-connected MLP with equal hidden widths on a 5 GFLOP/s phone and an edge box."""
    net = Network(
        (
            Node("phone", 5e9, compute_power_w=5.0, tx_power_w=1.2),
            Node("edge", 3e11, compute_power_w=40.0, tx_power_w=10.0),
        ),
        (Link("phone", "edge", 12.5e6, 0.003),),
        "phone",
        "phone",
    )
    return Instance(mlp_dnn(L, width, inp, classes), net, name="mlp-3072-1024x7-10")


def placements() -> list[dict]:
    """N* under the optimal rule and the look-ahead rule (numeric scans) and, for the MLP on an
    i.i.d. channel, the closed form, for several update periods M."""
    out = []
    mlp = mlp_instance()
    st = stages_from_instance(mlp)
    settings = [(mlp.name, st, RayleighChannel(5.0, 2e6), True)]
    chain = stages_from_instance(splitplan.load_instance(INSTANCE))
    settings.append(
        ("resnet18 on 5g-walking", chain, TraceChannel(load_trace("5g-walking")), False)
    )
    for label, stages, channel, closed in settings:
        problem = stages.problem(1.0, 0.0)
        model = channel.model(problem.step_s)
        kappa = stages.download_cost_per_byte(1.0, 0.0, channel.mean_rate)
        for M in (10.0, 100.0, 1e3, 1e4, 1e5):
            bi = place(problem, model, stages.param_bytes, M, kappa, "optimal")
            ola = place(problem, model, stages.param_bytes, M, kappa, "look-ahead")
            cf = mlp_closed_form(problem, model, stages.param_bytes, M, kappa) if closed else None
            out.append(
                {
                    "setting": label,
                    "updates_every": M,
                    "optimal_layers": bi.layers,
                    "optimal_total": float(bi.total[bi.layers]),
                    "look_ahead_layers": ola.layers,
                    "look_ahead_total": float(ola.total[ola.layers]),
                    "closed_form_layers": None if cf is None else cf.layers,
                    "closed_form_total": None if cf is None else float(cf.total[cf.layers]),
                }
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--inferences", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("-o", "--output", default=str(Path(__file__).with_name("online.json")))
    args = parser.parse_args()
    n = 5_000 if args.quick else args.inferences
    inst = splitplan.load_instance(INSTANCE)
    stages = stages_from_instance(inst)
    bandwidth = bandwidth_for_rate(stages.link_bytes_per_s, 10.0)
    traces = ["5g-walking"] if args.quick else list(SHIPPED_TRACES)
    snrs = (0.0, 20.0) if args.quick else SNRS
    started = time.perf_counter()

    latency = stages.problem(1.0, 0.0)
    timing_channel = RayleighChannel(10.0, bandwidth)
    timings = {
        "decision": decision_timing(latency, timing_channel, 20_000 if args.quick else 200_000),
        "simulation_s": {
            "rayleigh 10 dB": simulation_timing(latency, timing_channel, n),
            "trace 5g-walking": simulation_timing(
                latency, TraceChannel(load_trace("5g-walking")), n
            ),
        },
    }
    rows = []
    for wname, w, lam in WEIGHTS:
        problem = stages.problem(w, lam)
        cache: dict[float, tuple[int | None, str]] = {}

        def planner(rate, w=w, lam=lam, cache=cache):
            if rate not in cache:
                cache[rate] = planner_cut(inst, stages, rate, w, lam)
            return cache[rate]

        for snr in snrs:
            ch = RayleighChannel(snr, bandwidth)
            rows.append(
                {"cost": wname, **row(f"rayleigh {snr:g} dB", problem, ch, n, args.seed, planner)}
            )
            print(f"  {wname} rayleigh {snr:g} dB: done", flush=True)
        for name in traces:
            ch = TraceChannel(load_trace(name))
            rows.append({"cost": wname, **row(f"trace {name}", problem, ch, n, args.seed, planner)})
            print(f"  {wname} trace {name}: done", flush=True)
    placement_rows = placements()
    total = time.perf_counter() - started
    if not args.quick:
        Path(args.output).write_text(
            json.dumps(
                {
                    "instance": str(INSTANCE.relative_to(ROOT)),
                    "server": stages.server,
                    "inferences": n,
                    "seed": args.seed,
                    "rayleigh_bandwidth_hz": bandwidth,
                    "machine": {
                        "python": platform.python_version(),
                        "numpy": np.__version__,
                        "processor": platform.machine(),
                    },
                    "timings": timings,
                    "rows": rows,
                    "placement": placement_rows,
                    "total_s": total,
                },
                indent=1,
            )
            + "\n"
        )
    d = timings["decision"]
    sims = timings["simulation_s"]["rayleigh 10 dB"]
    policy_times = {k: v for k, v in sims.items() if k != "backward_induction_build"}
    print()
    print(
        f"decision: optimal {d['optimal_decide_us']:.2f} us/call (table), look-ahead "
        f"{d['look_ahead_decide_us']:.2f} us/call (thresholds); backward induction built in "
        f"{1e3 * d['backward_induction_build_s']:.2f} ms"
    )
    print(
        f"simulation of {n} inferences per policy (Rayleigh 10 dB): "
        f"{min(policy_times.values()):.3f}-{max(policy_times.values()):.3f} s; "
        f"5g-walking trace: {max(timings['simulation_s']['trace 5g-walking'].values()):.3f} s max"
    )
    print()
    print(
        "| cost | channel | mean rate Mbit/s | optimal (95% CI) | mean stop | look-ahead gap | "
        "best static cut | online gain | oracle below optimal |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['cost']} | {r['setting']} | {r['mean_rate_mbps']:.3g} | "
            f"{r['optimal']:.4g} ± {r['optimal_ci95']:.2g} | {r['optimal_mean_stop']:.2f} | "
            f"{pct(r['look_ahead_gap'], '+')} | {r['static_cut']} ({r['static']:.4g}) | "
            f"{pct(r['online_gain'])} | {pct(r['oracle_gap'])} |"
        )
    print()
    print("| placement | M | N* optimal rule | N* look-ahead (scan) | N* closed form |")
    print("|---|---|---|---|---|")
    for p in placement_rows:
        cf = p["closed_form_layers"]
        closed = "n/a" if cf is None else f"{cf} ({p['closed_form_total']:.4g})"
        print(
            f"| {p['setting']} | {p['updates_every']:g} | {p['optimal_layers']} "
            f"({p['optimal_total']:.4g}) | {p['look_ahead_layers']} ({p['look_ahead_total']:.4g}) "
            f"| {closed} |"
        )
    print(f"\ntotal {total:.1f} s")


if __name__ == "__main__":
    main()
