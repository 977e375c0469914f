"""Stopping rules: backward induction (optimal), one-stage look-ahead, static cuts; their exact
expected costs under a Markov model; the look-ahead's closed-form rate thresholds; and the
monotonicity test under which the look-ahead is optimal (Chow, Robbins and Siegmund, 1971).

Symbols are those of ``models/online.md``: stage i = 0..N, state s, S_i(s) = a[i] + b[i] / r_s,
c[i] the cost of running layer i+1, P_i the transition matrix from boundary i to i+1.
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass, field

import numpy as np

from .channels import MarkovModel
from .problem import OnlineError, StopProblem


@dataclass
class Rule:
    """A stopping rule as a table: stop[i, s] says whether to stop at stage i in state s.

    `decide(i, rate)` is the on-device decision: quantise the observed rate with the model's edges
    (a bisection) and read the table. `value` is the rule's exact expected cost under the model.
    """

    name: str
    stop: np.ndarray
    edges: np.ndarray
    value: float
    _rows: list[list[bool]] = field(init=False, repr=False)
    _edges: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._rows = self.stop.tolist()
        self._edges = self.edges.tolist()

    @property
    def horizon(self) -> int:
        return len(self.stop) - 1

    def decide(self, i: int, rate: float) -> bool:
        """Stop (True) or run the next layer (False) at stage i on an observed rate (bytes/s)."""
        return self._rows[i][bisect_right(self._edges, rate)]

    def stops(self, rates: np.ndarray, states: np.ndarray) -> np.ndarray:
        """The stage each sampled path stops at: the first i with stop[i, state_i]."""
        N = self.horizon
        table = self.stop[np.arange(N + 1)[None, :], states[:, : N + 1]]
        return np.argmax(table, axis=1)


@dataclass
class ThresholdRule:
    """The look-ahead rule in closed form: stop at stage i iff lo[i] <= rate <= hi[i]."""

    name: str
    lo: np.ndarray
    hi: np.ndarray
    _lo: list[float] = field(init=False, repr=False)
    _hi: list[float] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._lo, self._hi = self.lo.tolist(), self.hi.tolist()

    @property
    def horizon(self) -> int:
        return len(self.lo) - 1

    def decide(self, i: int, rate: float) -> bool:
        return self._lo[i] <= rate <= self._hi[i]

    def stops(self, rates: np.ndarray, states: np.ndarray) -> np.ndarray:
        N = self.horizon
        r = rates[:, : N + 1]
        table = (r >= self.lo[None, :]) & (r <= self.hi[None, :])
        table[:, N] = True
        return np.argmax(table, axis=1)


@dataclass
class StaticRule:
    """Always stop at the same stage (a fixed split)."""

    name: str
    stage: int
    value: float

    def decide(self, i: int, rate: float) -> bool:
        return i >= self.stage

    def stops(self, rates: np.ndarray, states: np.ndarray) -> np.ndarray:
        return np.full(len(rates), self.stage, dtype=np.int64)


def _check(problem: StopProblem, model: MarkovModel, horizon: int | None) -> int:
    N = problem.last_stage(horizon)
    if N > 0 and len(model.P) > 1 and len(model.P) < N:
        raise OnlineError(f"the model has {len(model.P)} steps, the horizon needs {N}")
    return N


def stop_costs(problem: StopProblem, model: MarkovModel, N: int) -> np.ndarray:
    """S[i, s] = a[i] + b[i] / r_s for i = 0..N, shape (N+1, K)."""
    return problem.a[: N + 1, None] + problem.b[: N + 1, None] / model.rates[None, :]


def backward_induction(
    problem: StopProblem, model: MarkovModel, horizon: int | None = None
) -> Rule:
    """The optimal rule: V_N = S_N; V_i = min(S_i, c[i] + P_i V_(i+1)); stop where S_i <= the
    continuation (ties stop). O(N K^2)."""
    N = _check(problem, model, horizon)
    S = stop_costs(problem, model, N)
    stop = np.zeros((N + 1, model.levels), dtype=bool)
    stop[N] = True
    V = S[N]
    for i in range(N - 1, -1, -1):
        cont = problem.c[i] + model.step(i) @ V
        here = S[i] <= cont if i >= problem.min_stop else np.zeros(model.levels, dtype=bool)
        stop[i] = here
        V = np.where(here, S[i], cont)
    return Rule("optimal", stop, model.edges, float(model.p0 @ V))


def look_ahead(problem: StopProblem, model: MarkovModel, horizon: int | None = None) -> Rule:
    """The one-stage look-ahead rule: stop at i iff S_i(s) <= c[i] + E[S_(i+1) | s]."""
    N = _check(problem, model, horizon)
    S = stop_costs(problem, model, N)
    stop = np.zeros((N + 1, model.levels), dtype=bool)
    stop[N] = True
    for i in range(problem.min_stop, N):
        stop[i] = S[i] <= problem.c[i] + model.step(i) @ S[i + 1]
    rule = Rule("look-ahead", stop, model.edges, 0.0)
    rule.value = evaluate(problem, model, stop)[0]
    return rule


def evaluate(problem: StopProblem, model: MarkovModel, stop: np.ndarray) -> tuple[float, float]:
    """Exact (expected cost, expected stop stage) of a stop table under the model."""
    N = len(stop) - 1
    S = stop_costs(problem, model, N)
    W = S[N].copy()
    stage = np.full(model.levels, float(N))
    for i in range(N - 1, -1, -1):
        P = model.step(i)
        W = np.where(stop[i], S[i], problem.c[i] + P @ W)
        stage = np.where(stop[i], float(i), P @ stage)
    return float(model.p0 @ W), float(model.p0 @ stage)


def static_costs(
    problem: StopProblem, model: MarkovModel, horizon: int | None = None
) -> np.ndarray:
    """Expected cost of always cutting at stage i, for i = 0..N (inf where the pins forbid it):
    cum_c[i] + a[i] + b[i] E[1/r at boundary i]."""
    N = _check(problem, model, horizon)
    inv = model.marginals(N + 1) @ (1 / model.rates)
    out = problem.cum_c[: N + 1] + problem.a[: N + 1] + problem.b[: N + 1] * inv
    out[: problem.min_stop] = np.inf
    return out


def best_static(problem: StopProblem, model: MarkovModel, horizon: int | None = None) -> StaticRule:
    """The fixed cut with the least expected cost."""
    costs = static_costs(problem, model, horizon)
    i = int(np.argmin(costs))
    return StaticRule("best-static", i, float(costs[i]))


def persistence(model: MarkovModel, steps: int, tol: float = 1e-9) -> np.ndarray | None:
    """rho_i when every step is P_i = rho_i I + (1 - rho_i) 1 p0^T (i.i.d. redraws with
    persistence: Rayleigh block fading, i.i.d. or static channels); None otherwise."""
    K = model.levels
    rho = np.zeros(steps)
    for i in range(steps):
        P = model.step(i)
        if K == 1:
            rho[i] = 1.0
            continue
        # off-diagonal entries are (1 - rho) p0[s']; diagonal ones rho + (1 - rho) p0[s].
        j = int(np.argmax(model.p0))
        col = P[:, j]
        others = [s for s in range(K) if s != j]
        r = 1 - col[others[0]] / model.p0[j]
        target = r * np.eye(K) + (1 - r) * model.p0[None, :]
        if np.abs(P - target).max() > tol:
            return None
        rho[i] = r
    return rho


def look_ahead_thresholds(
    problem: StopProblem, model: MarkovModel, horizon: int | None = None
) -> ThresholdRule:
    """The look-ahead rule's closed form for channels with persistence (see `persistence`).

    With mu = E[1/r] and E[1/r' | r] = rho_i / r + (1 - rho_i) mu, the rule stops at stage i iff

        beta_i / r <= G_i,   beta_i = b[i] - rho_i b[i+1],
                             G_i = c[i] + a[i+1] - a[i] + (1 - rho_i) b[i+1] mu,

    i.e. r >= beta_i / G_i when beta_i > 0 (never if G_i <= 0); any r when beta_i <= 0 <= G_i;
    r <= beta_i / G_i when beta_i < 0 and G_i < 0. Stage N always stops.
    """
    N = _check(problem, model, horizon)
    rho = persistence(model, N)
    if rho is None:
        raise OnlineError(
            "closed-form thresholds need a channel whose steps redraw from one distribution with "
            "a persistence probability (Rayleigh, i.i.d., static); use the table rule"
        )
    mu = float(model.p0 @ (1 / model.rates))
    a, b, c = problem.a, problem.b, problem.c
    lo, hi = np.full(N + 1, np.inf), np.full(N + 1, -np.inf)
    lo[N], hi[N] = -np.inf, np.inf
    for i in range(problem.min_stop, N):
        beta = b[i] - rho[i] * b[i + 1]
        G = c[i] + a[i + 1] - a[i] + (1 - rho[i]) * b[i + 1] * mu
        if beta > 0:
            if G > 0:
                lo[i], hi[i] = beta / G, np.inf
        elif G >= 0:
            lo[i], hi[i] = -np.inf, np.inf
        elif beta < 0:
            lo[i], hi[i] = 0.0, beta / G
    return ThresholdRule("look-ahead", lo, hi)


def is_monotone(problem: StopProblem, model: MarkovModel, horizon: int | None = None) -> bool:
    """Whether the problem is monotone in the sense of Chow, Robbins and Siegmund: from a state
    where the look-ahead rule stops at stage i, every state reachable at stage i+1 is one where it
    stops too. Then the look-ahead rule is optimal (its table equals backward induction's)."""
    N = _check(problem, model, horizon)
    B = look_ahead(problem, model, N).stop
    for i in range(N - 1):
        if not B[i].any():
            continue
        reach = (model.step(i)[B[i]] > 0).any(axis=0)
        if np.any(reach & ~B[i + 1]):
            return False
    return True
