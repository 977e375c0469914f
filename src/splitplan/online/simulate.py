"""Monte Carlo comparison of the policies, and the cost-vs-SNR sweep with its plot.

The simulator is vectorised over inferences: it samples the channel at every boundary of n
inferences at once (a loop over the layers, not over the inferences), builds the (n, N+1) matrix
of realised stopping costs, and reads each policy's cost off it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .channels import Channel, MarkovModel, RayleighChannel
from .problem import OnlineError, StopProblem
from .stopping import Rule, StaticRule, backward_induction, look_ahead, static_costs

POLICIES = ("optimal", "look-ahead", "best-static", "planner", "local", "offload", "oracle")


@dataclass
class PolicyResult:
    """One policy's simulated mean cost with its 95 % confidence half-width, and its exact
    expectation under the channel's Markov model (None for the oracle)."""

    policy: str
    mean: float
    ci95: float
    mean_stop: float
    analytic: float | None
    stage: int | None = None
    wall_s: float = 0.0
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "mean": self.mean,
            "ci95": self.ci95,
            "mean_stop": self.mean_stop,
            "analytic": self.analytic,
            "stage": self.stage,
            "wall_s": self.wall_s,
            "note": self.note,
        }


def realised_costs(problem: StopProblem, rates: np.ndarray, N: int) -> np.ndarray:
    """cost[n, i] = cum_c[i] + a[i] + b[i] / rate[n, i]: stopping at stage i in inference n."""
    p = problem
    return p.cum_c[None, : N + 1] + p.a[None, : N + 1] + p.b[None, : N + 1] / rates[:, : N + 1]


def _summary(
    name: str,
    costs: np.ndarray,
    stops: np.ndarray,
    analytic: float | None,
    wall_s: float,
    stage: int | None = None,
    note: str = "",
) -> PolicyResult:
    n = len(costs)
    std = float(costs.std(ddof=1)) if n > 1 else 0.0
    if std <= 1e-12 * abs(float(costs.mean())):
        std = 0.0  # a fixed cut on a deterministic part: rounding noise only
    return PolicyResult(
        name,
        float(costs.mean()),
        1.96 * std / np.sqrt(n),
        float(stops.mean()),
        analytic,
        stage,
        wall_s,
        note,
    )


def simulate(
    problem: StopProblem,
    channel: Channel,
    rules: Sequence[Any],
    n: int = 100_000,
    seed: int = 0,
    horizon: int | None = None,
    oracle: bool = True,
) -> list[PolicyResult]:
    """Simulate n inferences and cost every rule on the same channel samples (common random
    numbers); the oracle stops where the realised cost is least. Each result's wall_s is the
    channel sampling time plus that rule's own time."""
    if int(n) != n or n < 2:
        raise OnlineError(f"the number of inferences must be an integer >= 2, got {n}")
    N = problem.last_stage(horizon)
    rng = np.random.default_rng(seed)
    t0 = time.perf_counter()
    rates, states = channel.sample(problem.step_s[:N], int(n), rng)
    cost = realised_costs(problem, rates, N)
    sample_s = time.perf_counter() - t0
    rows = np.arange(int(n))
    out = []
    for rule in rules:
        t0 = time.perf_counter()
        stops = rule.stops(rates, states)
        got = cost[rows, stops]
        wall = sample_s + time.perf_counter() - t0
        stage = rule.stage if isinstance(rule, StaticRule) else None
        value, note = getattr(rule, "value", None), getattr(rule, "note", "")
        out.append(_summary(rule.name, got, stops, value, wall, stage, note))
    if oracle:
        t0 = time.perf_counter()
        allowed = cost[:, problem.min_stop :]
        stops = problem.min_stop + np.argmin(allowed, axis=1)
        got = cost[rows, stops]
        wall = sample_s + time.perf_counter() - t0
        out.append(
            _summary(
                "oracle",
                got,
                stops,
                None,
                wall,
                note="knows the whole channel realisation: a lower bound",
            )
        )
    return out


@dataclass
class Comparison:
    """Every policy on one problem and channel: simulated and analytic costs."""

    horizon: int
    model: MarkovModel
    rules: dict[str, Any]
    results: list[PolicyResult]
    channel: dict[str, Any] = field(default_factory=dict)

    def result(self, policy: str) -> PolicyResult:
        return next(r for r in self.results if r.policy == policy)

    @property
    def look_ahead_gap(self) -> float:
        """(look-ahead - optimal) / optimal, simulated means."""
        opt = self.result("optimal").mean
        return (self.result("look-ahead").mean - opt) / opt

    @property
    def online_gain(self) -> float:
        """(best static - optimal) / best static, simulated means."""
        static = self.result("best-static").mean
        return (static - self.result("optimal").mean) / static

    def table(self) -> str:
        lines = [
            f"{'policy':<12} {'stage':>5} {'mean cost':>12} {'95% CI':>12} {'mean stop':>9} "
            f"{'analytic':>12}"
        ]
        for r in self.results:
            stage = "" if r.stage is None else str(r.stage)
            analytic = "" if r.analytic is None else f"{r.analytic:.6g}"
            lines.append(
                f"{r.policy:<12} {stage:>5} {r.mean:>12.6g} {'± ' + format(r.ci95, '.3g'):>12} "
                f"{r.mean_stop:>9.2f} {analytic:>12}"
            )
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {
            "horizon": self.horizon,
            "levels": self.model.levels,
            "channel": self.channel,
            "policies": [r.to_dict() for r in self.results],
            "look_ahead_gap": self.look_ahead_gap,
            "online_gain_over_best_static": self.online_gain,
        }


def policy_rules(
    problem: StopProblem,
    model: MarkovModel,
    horizon: int | None = None,
    planner_stage: int | None = None,
    planner_note: str = "",
) -> dict[str, Any]:
    """The rules of every policy but the oracle, by name."""
    N = problem.last_stage(horizon)
    statics = static_costs(problem, model, N)
    best = int(np.argmin(statics))
    rules: dict[str, Any] = {
        "optimal": backward_induction(problem, model, N),
        "look-ahead": look_ahead(problem, model, N),
        "best-static": StaticRule("best-static", best, float(statics[best])),
    }
    if planner_stage is not None:
        stage = min(max(planner_stage, problem.min_stop), N)
        rule = StaticRule("planner", stage, float(statics[stage]))
        rule.note = planner_note  # type: ignore[attr-defined]
        rules["planner"] = rule
    rules["local"] = StaticRule("local", N, float(statics[N]))
    rules["offload"] = StaticRule("offload", problem.min_stop, float(statics[problem.min_stop]))
    return rules


def compare(
    problem: StopProblem,
    channel: Channel,
    horizon: int | None = None,
    n: int = 100_000,
    seed: int = 0,
    planner_stage: int | None = None,
    planner_note: str = "",
) -> Comparison:
    """Simulate every policy (optimal, look-ahead, best static, the planner's cut when given,
    always local, always offload, oracle) on n inferences of the channel."""
    N = problem.last_stage(horizon)
    model = channel.model(problem.step_s[:N])
    rules = policy_rules(problem, model, N, planner_stage, planner_note)
    results = simulate(problem, channel, list(rules.values()), n, seed, N)
    return Comparison(N, model, rules, results, channel.describe())


def cost_vs_snr(
    problem: StopProblem,
    snrs_db: Sequence[float],
    bandwidth_hz: float,
    levels: int = 16,
    coherence: float = 0.0,
    rate_floor: float = 0.01,
    n: int = 20_000,
    seed: int = 0,
    horizon: int | None = None,
    planner: Callable[[float], int | None] | None = None,
) -> dict[str, dict[str, list[float | None]]]:
    """Each policy's simulated mean (with CI) and analytic cost on Rayleigh channels of the given
    mean SNRs and a fixed bandwidth: {policy: {"snr_db", "mean", "ci95", "analytic"}}."""
    out: dict[str, dict[str, list[float | None]]] = {}
    for snr in snrs_db:
        channel = RayleighChannel(snr, bandwidth_hz, levels, coherence, rate_floor)
        stage = planner(channel.mean_rate) if planner is not None else None
        comp = compare(problem, channel, horizon, n, seed, stage)
        for r in comp.results:
            row = out.setdefault(r.policy, {"snr_db": [], "mean": [], "ci95": [], "analytic": []})
            row["snr_db"].append(float(snr))
            row["mean"].append(r.mean)
            row["ci95"].append(r.ci95)
            row["analytic"].append(r.analytic)
    return out


def plot_cost_vs_snr(
    data: dict[str, dict[str, list[float | None]]], path: str, title: str = ""
) -> None:
    """Plot the sweep of `cost_vs_snr` (simulated means with 95 % CI bars) to an image file."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise OnlineError("plotting needs matplotlib: pip install 'splitplan[plot]'") from exc
    fig, ax = plt.subplots(figsize=(7, 4.5))
    styles = {"oracle": ":", "optimal": "-", "look-ahead": "--"}
    for policy, row in data.items():
        ax.errorbar(  # no None among these three (only `analytic` has them): nan if one were
            np.asarray(row["snr_db"], dtype=float),
            np.asarray(row["mean"], dtype=float),
            yerr=np.asarray(row["ci95"], dtype=float),
            label=policy,
            linestyle=styles.get(policy, "-."),
            marker="o",
            markersize=3,
            capsize=2,
        )
    ax.set_xlabel("mean SNR (dB)")
    ax.set_ylabel("mean cost per inference")
    ax.set_yscale("log")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if title:
        ax.set_title(title, fontsize=10)
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=120)
    except (OSError, ValueError) as exc:
        raise OnlineError(f"cannot write the plot {path}: {exc}") from None
    finally:
        plt.close(fig)


__all__ = [
    "POLICIES",
    "Comparison",
    "PolicyResult",
    "Rule",
    "compare",
    "cost_vs_snr",
    "plot_cost_vs_snr",
    "policy_rules",
    "realised_costs",
    "simulate",
]
