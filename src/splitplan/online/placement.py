"""Model placement: how many leading layers to put on the device after each model update.

Placing N layers costs, per inference, the expected online cost with horizon N plus the download
of those layers' parameters spread over the M inferences between updates:

    T(N) = J(N) + kappa * (param bytes of layers 1..N) / M

with J(N) the expected cost of the chosen stopping rule (backward induction by default) and kappa
the weighted cost of one downloaded byte. `place` scans N; `mlp_closed_form` gives the paper's
kind of closed form for a fully-connected MLP with equal-width layers under the look-ahead rule.
The derivation is in ``models/online.md``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..instance import DNN, INPUT, Layer
from .channels import MarkovModel
from .problem import OnlineError, StopProblem
from .stopping import backward_induction, look_ahead


@dataclass
class Placement:
    """T(N) = online[N] + download[N] for N = 0..max_layers (inf where N is not allowed)."""

    layers: int
    total: np.ndarray
    online: np.ndarray
    download: np.ndarray
    policy: str

    def to_dict(self) -> dict:
        def clean(x: np.ndarray) -> list[float | None]:
            return [float(v) if np.isfinite(v) else None for v in x]

        return {
            "layers": self.layers,
            "policy": self.policy,
            "total": clean(self.total),
            "online": clean(self.online),
            "download": clean(self.download),
        }


def place(
    problem: StopProblem,
    model: MarkovModel,
    param_bytes: np.ndarray,
    updates_every: float,
    kappa: float,
    policy: str = "optimal",
    max_layers: int | None = None,
) -> Placement:
    """Scan N = 0..max_layers (default: every layer the pins allow) and return the N minimising
    T(N), with the whole curve. `policy` is "optimal" (backward induction) or "look-ahead"."""
    if not updates_every > 0:
        raise OnlineError(
            f"the number of inferences between updates must be > 0, got {updates_every}"
        )
    if kappa < 0:
        raise OnlineError(f"the download cost per byte must be >= 0, got {kappa}")
    rules = {"optimal": backward_induction, "look-ahead": look_ahead}
    if policy not in rules:
        raise OnlineError(f"unknown policy {policy!r}; choose from {', '.join(rules)}")
    L = problem.layers
    top = problem.last_allowed if max_layers is None else min(max_layers, problem.last_allowed)
    params = np.concatenate(([0.0], np.cumsum(np.asarray(param_bytes, dtype=float))))
    online = np.full(L + 1, np.inf)
    for N in range(problem.min_stop, top + 1):
        online[N] = rules[policy](problem, model, N).value
    download = kappa * params / updates_every
    total = online + download
    if not np.isfinite(total).any():
        raise OnlineError("no placement is allowed (pins or device memory)")
    return Placement(int(np.argmin(total)), total, online, download, policy)


@dataclass
class MLPClosedForm:
    """The closed-form placement for an equal-width MLP on an i.i.d. channel under the look-ahead
    rule: N* and T(N) for every N, with the channel statistics at the thresholds."""

    layers: int
    total: np.ndarray
    n_dagger: int
    q0: float
    q: float
    delta: float
    G: float

    def to_dict(self) -> dict:
        return {
            "layers": self.layers,
            "n_dagger": self.n_dagger,
            "total": self.total.tolist(),
            "q0": self.q0,
            "q": self.q,
            "delta": self.delta,
            "G": self.G,
        }


def _geometric_sums(rho: float, n: int) -> tuple[float, float]:
    """(sum_{j=1..n} rho^(j-1), sum_{j=1..n} j rho^(j-1))."""
    if n <= 0:
        return 0.0, 0.0
    if rho == 1.0:
        return float(n), n * (n + 1) / 2
    s0 = (1 - rho**n) / (1 - rho)
    s1 = (1 - (n + 1) * rho**n + n * rho ** (n + 1)) / (1 - rho) ** 2
    return s0, s1


def mlp_dnn(
    n_layers: int, width: int, input_features: int, classes: int = 10, name: str = "mlp"
) -> DNN:
    """A fully-connected fp32 MLP: `input_features` -> `width` x (n_layers - 1) -> `classes`,
    the model `mlp_closed_form` is about (FLOPs 2 x in x out, parameters with biases)."""
    layers, prev = [], INPUT
    for j in range(n_layers):
        fin = input_features if j == 0 else width
        fout = classes if j == n_layers - 1 else width
        layers.append(
            Layer(
                f"fc{j}",
                (prev,),
                flops=2 * fin * fout,
                param_bytes=4 * (fin * fout + fout),
                out_bytes=4 * fout,
            )
        )
        prev = f"fc{j}"
    return DNN(name, 4 * input_features, tuple(layers))


def mlp_closed_form(
    problem: StopProblem,
    model: MarkovModel,
    param_bytes: np.ndarray,
    updates_every: float,
    kappa: float,
    rtol: float = 1e-9,
) -> MLPClosedForm:
    """Closed-form placement of an MLP with equal-width layers under the look-ahead rule.

    Requires: an i.i.d. channel (every step's rows equal p0); hidden layers 2..L-1 with equal
    local cost c, equal edge-cost steps beta = a[j] - a[j+1] (j = 1..L-2) and equal parameter
    bytes p; equal hidden features b[1] = ... = b[L-1] = b > 0; b[L] = 0 (finishing locally sends
    nothing); no pins; L >= 2. The first layer (input width) and the last (classes) may differ.
    Raises `OnlineError` otherwise.

    With mu = E[1/r], G = c - beta + b mu and, for a level x, q(x) = P(b / r <= x),
    h(x) = E[1/r ; b / r <= x], the rule stops at stages 1..N-1 iff b / r <= G (for N = L, at
    stage L-1 iff b / r <= G' = c[L-1] + a[L] - a[L-1]) and at stage 0 iff b[0] / r <= G0 =
    c[0] + a[1] - a[0] + b mu. With rho = 1 - q(G):

        J(0) = a[0] + b[0] mu
        J(N) = q0 a[0] + b[0] h0 + (1 - q0) (c[0] + K(N)),                      1 <= N <= L
        K(N) = (q (a[1] + beta) + b h + rho c) S0(n) - q beta S1(n) + rho^n E_N
        n = N - 1, E_N = a[N] + b mu                                            (N <= L-1)
        n = L - 2, E_L = q' a[L-1] + b h' + (1 - q') (c[L-1] + a[L])            (N = L)
        T(N) = J(N) + kappa (p_1 + ... + p_N) / M

    and T(N+1) - T(N) = (1 - q0) rho^(N-1) delta + kappa p / M for 1 <= N <= L-2, where
    delta = E[(G - b/r) ; b/r > G] <= 0. That difference increases with N, so on 1..L-1 the
    minimum is at N_dagger = 1 + ceil(ln(kappa p / (M (1 - q0) |delta|)) / ln rho) (clipped to
    [1, L-1]; 1 when kappa p / M >= (1 - q0) |delta|), and N* = argmin of T over {0, N_dagger, L}.
    """
    L = problem.layers
    c, a, b = problem.c, problem.a, problem.b
    p = np.asarray(param_bytes, dtype=float)

    def same(x: np.ndarray, what: str) -> float:
        if len(x) and np.abs(x - x[0]).max() > rtol * max(1.0, np.abs(x).max()):
            raise OnlineError(f"not an equal-width MLP: {what} differ")
        return float(x[0]) if len(x) else 0.0

    if L < 2:
        raise OnlineError("the MLP closed form needs at least 2 layers")
    if problem.min_stop != 0 or problem.max_stop != L:
        raise OnlineError("the MLP closed form assumes no pins")
    if not model.is_iid(L, tol=1e-12):
        raise OnlineError("the MLP closed form assumes an i.i.d. channel")
    if b[L] != 0:
        raise OnlineError("the MLP closed form assumes that finishing locally sends nothing")
    cc = same(c[1 : L - 1], "the local costs of layers 2..L-1")
    beta = same(a[1 : L - 1] - a[2:L], "the edge costs of layers 2..L-1")
    bb = same(b[1:L], "the hidden feature sizes")
    pp = same(p[1 : L - 1], "the parameter bytes of layers 2..L-1")
    if bb <= 0:
        raise OnlineError("the hidden features must have a positive size")
    pi, inv = model.p0, 1 / model.rates
    mu = float(pi @ inv)

    def stats(coef: float, x: float) -> tuple[float, float]:
        """q = P(coef / r <= x), h = E[1/r ; coef / r <= x] over the model's levels."""
        hit = coef * inv <= x
        return float(pi[hit].sum()), float(pi[hit] @ inv[hit])

    G = cc - beta + bb * mu
    q, h = stats(bb, G)
    rho = 1.0 - q
    G0 = c[0] + a[1] - a[0] + bb * mu
    q0, h0 = stats(b[0], G0)
    Gl = c[L - 1] + a[L] - a[L - 1]
    ql, hl = stats(bb, Gl)

    def K(N: int) -> float:
        n = N - 1 if N <= L - 1 else L - 2
        if N <= L - 1:
            end = a[N] + bb * mu
        else:
            end = ql * a[L - 1] + bb * hl + (1 - ql) * (c[L - 1] + a[L])
        s0, s1 = _geometric_sums(rho, n)
        return (q * (a[1] + beta) + bb * h + rho * cc) * s0 - q * beta * s1 + rho**n * end

    J = np.empty(L + 1)
    J[0] = a[0] + b[0] * mu
    for N in range(1, L + 1):
        J[N] = q0 * a[0] + b[0] * h0 + (1 - q0) * (c[0] + K(N))
    params = np.concatenate(([0.0], np.cumsum(p)))
    total = J + kappa * params / updates_every

    delta = rho * (cc - beta) - bb * (q * mu - h)
    step = kappa * pp / updates_every  # download cost of one more layer
    gain = (1 - q0) * max(-delta, 0.0)  # online saving of the second placed layer
    if L == 2 or gain <= step:
        n_dagger = 1  # T(2) - T(1) >= 0 already
    elif rho >= 1.0 or step <= 0:
        n_dagger = L - 1  # the difference stays negative up to L-1
    else:  # 0 < step < gain and 0 < rho < 1 (rho = 0 gives delta = 0)
        n_dagger = 1 + math.ceil(math.log(step / gain) / math.log(rho))
        n_dagger = min(max(n_dagger, 1), L - 1)
    candidates = sorted({0, n_dagger, L})
    best = min(candidates, key=lambda N: (total[N], N))
    return MLPClosedForm(best, total, n_dagger, q0, q, float(delta), float(G))
