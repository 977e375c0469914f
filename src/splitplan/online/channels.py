"""Channel models of the device's uplink, seen at the layer boundaries.

Every channel gives the policies a finite-state Markov model (`MarkovModel`: K rate levels, the
distribution at boundary 0 and one transition matrix per step between boundaries), and gives the
simulator sampled rates at the boundaries. The simulator samples the *real* process: the
continuous Rayleigh fade, or the actual trace at random start times, so a policy built on the
discretised model is tested on what it did not model.

Rates are in bytes/s throughout; traces are read in Mbit/s and converted.
"""

from __future__ import annotations

import csv
import itertools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .problem import OnlineError

TRACE_DIR = Path(__file__).resolve().parents[1] / "data" / "traces"
# name -> (file in TRACE_DIR, radio_type filter)
SHIPPED_TRACES: dict[str, tuple[str, str | None]] = {
    "hsdpa-bus": ("hsdpa-bus.log", None),
    "fcc-amazon": ("fcc-amazon.txt", None),
    "oboe-12": ("oboe-12.txt", None),
    "5g-walking": ("5gophers-walking.csv", None),
    "5g-walking-4g": ("5gophers-walking.csv", "4G"),
    "5g-walking-5g": ("5gophers-walking.csv", "5G"),
}


class TraceError(OnlineError):
    """A trace that cannot be read: which file, which line, what is wrong."""


@dataclass(frozen=True)
class MarkovModel:
    """A finite-state Markov model of the channel at the layer boundaries.

    `rates[s]` is the *effective* rate of state s, 1 / E[1/r | s], so that the expected transmit
    time of d bytes in state s is exactly d / rates[s]. `P[i]` is the transition matrix from
    boundary i to i+1; `edges` quantise an observed rate into a state (state = number of edges
    <= rate).
    """

    rates: np.ndarray
    p0: np.ndarray
    P: np.ndarray
    edges: np.ndarray
    mean_rate: float

    def __post_init__(self) -> None:
        rates = np.asarray(self.rates, dtype=float)
        K = len(rates)
        P = np.asarray(self.P, dtype=float)
        if P.ndim == 2:
            P = P[None]
        p0 = np.asarray(self.p0, dtype=float)
        if K == 0 or p0.shape != (K,) or P.shape[1:] != (K, K):
            raise OnlineError(f"a Markov model needs K rates, p0 of K and K x K steps (K={K})")
        if np.any(rates <= 0) or not np.all(np.isfinite(rates)):
            raise OnlineError("state rates must be positive and finite")
        if np.any(P < -1e-12) or np.any(np.abs(P.sum(axis=2) - 1) > 1e-9):
            raise OnlineError("every transition row must be a probability distribution")
        if np.any(p0 < -1e-12) or abs(p0.sum() - 1) > 1e-9:
            raise OnlineError("p0 must be a probability distribution")
        object.__setattr__(self, "rates", rates)
        object.__setattr__(self, "p0", p0)
        object.__setattr__(self, "P", P)
        object.__setattr__(self, "edges", np.asarray(self.edges, dtype=float))

    @property
    def levels(self) -> int:
        return len(self.rates)

    def step(self, i: int) -> np.ndarray:
        """Transition matrix from boundary i to i+1 (a single matrix serves every step)."""
        return self.P[i] if len(self.P) > 1 else self.P[0]

    def state_of(self, rate: np.ndarray | float) -> np.ndarray:
        return np.searchsorted(self.edges, rate, side="right")

    def marginals(self, boundaries: int) -> np.ndarray:
        """Distribution of the state at boundaries 0..boundaries-1, shape (boundaries, K)."""
        out = np.empty((boundaries, self.levels))
        out[0] = self.p0
        for i in range(1, boundaries):
            out[i] = out[i - 1] @ self.step(i - 1)
        return out

    def is_iid(self, steps: int, tol: float = 1e-12) -> bool:
        """Whether every step's rows equal p0 (an i.i.d. channel over the boundaries)."""
        return all(np.abs(self.step(i) - self.p0[None, :]).max() <= tol for i in range(steps))


class Channel:
    """Base class: a channel gives a Markov model and samples of the real process."""

    kind = "channel"

    def model(self, step_s: np.ndarray) -> MarkovModel:
        raise NotImplementedError

    def sample(
        self, step_s: np.ndarray, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Rates (bytes/s) and model states at boundaries 0..len(step_s), each (n, S+1)."""
        raise NotImplementedError

    @property
    def mean_rate(self) -> float:
        raise NotImplementedError

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean_rate_bytes_per_s": self.mean_rate}


# --------------------------------------------------------------------------- Markov chains


def _sample_chain(
    p0: np.ndarray, model: MarkovModel, steps: int, n: int, rng: np.random.Generator
) -> np.ndarray:
    """States (n, steps+1) of the chain, vectorised over the n samples."""
    K = model.levels
    states = np.empty((n, steps + 1), dtype=np.int64)
    u = rng.random((n, steps + 1))
    states[:, 0] = np.minimum(np.searchsorted(np.cumsum(p0), u[:, 0], side="right"), K - 1)
    for i in range(steps):
        cum = np.cumsum(model.step(i), axis=1)
        row = cum[states[:, i]]
        states[:, i + 1] = np.minimum((row <= u[:, i + 1, None]).sum(axis=1), K - 1)
    return states


class MarkovChannel(Channel):
    """A channel that *is* a finite Markov chain over rate levels (states give exact rates)."""

    kind = "markov"

    def __init__(self, rates: np.ndarray, p0: np.ndarray, P: np.ndarray) -> None:
        rates = np.asarray(rates, dtype=float)
        order = np.argsort(rates, kind="stable")
        if np.any(order != np.arange(len(rates))):
            raise OnlineError("list the states' rates in increasing order")
        edges = np.sqrt(rates[:-1] * rates[1:])
        p0 = np.asarray(p0, dtype=float)
        self._model = MarkovModel(rates, p0, P, edges, float(np.dot(p0, rates)))

    def model(self, step_s: np.ndarray) -> MarkovModel:
        return self._model

    def sample(
        self, step_s: np.ndarray, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        states = _sample_chain(self._model.p0, self._model, len(step_s), n, rng)
        return self._model.rates[states], states

    @property
    def mean_rate(self) -> float:
        return self._model.mean_rate

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "rates_bytes_per_s": self._model.rates.tolist(),
            "mean_rate_bytes_per_s": self.mean_rate,
        }


class ConstantChannel(MarkovChannel):
    """A fixed rate: the instance's static link, for checks against the static cost model."""

    kind = "constant"

    def __init__(self, rate: float) -> None:
        if not (np.isfinite(rate) and rate > 0):
            raise OnlineError(f"the rate must be positive, got {rate}")
        super().__init__(np.array([rate]), np.array([1.0]), np.array([[1.0]]))


class GilbertElliottChannel(MarkovChannel):
    """Two states, bad (rate `bad_rate`) and good (`good_rate`); per layer boundary the channel
    leaves good with probability `p_gb` and leaves bad with `p_bg`. Starts in the stationary
    distribution (uniform when both probabilities are 0)."""

    kind = "gilbert-elliott"

    def __init__(self, good_rate: float, bad_rate: float, p_gb: float, p_bg: float) -> None:
        for name, v in (("good_rate", good_rate), ("bad_rate", bad_rate)):
            if not (np.isfinite(v) and v > 0):
                raise OnlineError(f"{name} must be positive, got {v}")
        if bad_rate > good_rate:
            raise OnlineError(f"the bad rate {bad_rate} exceeds the good rate {good_rate}")
        for name, v in (("p_gb", p_gb), ("p_bg", p_bg)):
            if not 0 <= v <= 1:
                raise OnlineError(f"{name} must be a probability, got {v}")
        self.good_rate, self.bad_rate, self.p_gb, self.p_bg = good_rate, bad_rate, p_gb, p_bg
        total = p_gb + p_bg
        pi_good = 0.5 if total == 0 else p_bg / total
        P = np.array([[1 - p_bg, p_bg], [p_gb, 1 - p_gb]])
        super().__init__(np.array([bad_rate, good_rate]), np.array([1 - pi_good, pi_good]), P)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "good_rate_bytes_per_s": self.good_rate,
            "bad_rate_bytes_per_s": self.bad_rate,
            "p_gb": self.p_gb,
            "p_bg": self.p_bg,
            "mean_rate_bytes_per_s": self.mean_rate,
        }


# --------------------------------------------------------------------------- Rayleigh fading

_GL_X, _GL_W = np.polynomial.legendre.leggauss(16)


def _exp_integral(f: Any, lo: float, hi: float, panels: int = 48) -> float:
    """The integral of f(t) e^-t over [lo, hi] (composite Gauss-Legendre; geometric panels when
    lo > 0, where 1/rate varies like 1/t)."""
    if hi <= lo:
        return 0.0
    knots = np.geomspace(lo, hi, panels + 1) if lo > 0 else np.linspace(lo, hi, panels + 1)
    half = (knots[1:] - knots[:-1]) / 2
    mid = (knots[1:] + knots[:-1]) / 2
    t = mid[:, None] + half[:, None] * _GL_X[None, :]
    return float(np.sum(half[:, None] * _GL_W[None, :] * f(t) * np.exp(-t)))


class RayleighChannel(Channel):
    """Rayleigh block fading: SNR ~ Exponential(mean `snr_db`), rate = B log2(1 + SNR) / 8 bytes/s
    (Shannon, bandwidth B = `bandwidth_hz`), floored at `rate_floor` x the ergodic mean rate so
    that a deep fade costs a long but finite transmission.

    At each layer boundary the fade is kept with probability `coherence` and redrawn otherwise
    (0: i.i.d. per boundary). The model has K = `levels` equal-probability SNR bins, each with the
    effective rate 1 / E[1/rate | bin] (exact by quadrature), so that a policy's expected cost on
    the bins is its expected cost on the continuous channel.
    """

    kind = "rayleigh"

    def __init__(
        self,
        snr_db: float,
        bandwidth_hz: float,
        levels: int = 16,
        coherence: float = 0.0,
        rate_floor: float = 0.01,
    ) -> None:
        if not np.isfinite(snr_db):
            raise OnlineError(f"the mean SNR must be finite, got {snr_db} dB")
        if not (np.isfinite(bandwidth_hz) and bandwidth_hz > 0):
            raise OnlineError(f"the bandwidth must be positive, got {bandwidth_hz} Hz")
        if int(levels) != levels or levels < 1:
            raise OnlineError(f"levels must be a positive integer, got {levels}")
        if not 0 <= coherence <= 1:
            raise OnlineError(f"coherence must be in [0, 1], got {coherence}")
        if not 0 < rate_floor < 1:
            raise OnlineError(f"rate_floor must be in (0, 1), got {rate_floor}")
        self.snr_db, self.bandwidth_hz = float(snr_db), float(bandwidth_hz)
        self.levels, self.coherence, self.rate_floor = int(levels), float(coherence), rate_floor
        self.snr = 10 ** (snr_db / 10)
        scale = bandwidth_hz / 8  # bytes/s per bit/s/Hz

        def raw(t: np.ndarray) -> np.ndarray:
            return scale * np.log2(1 + self.snr * t)

        ergodic = _exp_integral(raw, 0.0, 1.0) + _exp_integral(raw, 1.0, 80.0)
        self.floor = rate_floor * ergodic
        t_floor = (2 ** (self.floor / scale) - 1) / self.snr  # raw(t_floor) == floor

        def rate(t: np.ndarray) -> np.ndarray:
            return np.maximum(raw(t), self.floor)

        def inv(t: np.ndarray) -> np.ndarray:
            return 1 / rate(t)

        K = self.levels
        bounds = np.empty(K + 1)  # t = SNR / mean SNR at the bin edges
        bounds[:K] = -np.log1p(-np.arange(K) / K)
        bounds[K] = bounds[K - 1] + 80.0  # e^-80: the tail beyond is negligible
        eff, mean = np.empty(K), 0.0
        for k in range(K):
            lo, hi = bounds[k], bounds[k + 1]
            cuts = [lo, *([t_floor] if lo < t_floor < hi else []), hi]
            inv_part = sum(_exp_integral(inv, x, y) for x, y in itertools.pairwise(cuts))
            mean += sum(_exp_integral(rate, x, y) for x, y in itertools.pairwise(cuts))
            eff[k] = (1 / K) / inv_part
        self._mean = mean
        self._edges = np.maximum(raw(bounds[1:K]), self.floor)
        P = self.coherence * np.eye(K) + (1 - self.coherence) / K
        self._model = MarkovModel(eff, np.full(K, 1 / K), P, self._edges, mean)

    def rate_of_snr(self, snr: np.ndarray | float) -> np.ndarray:
        """Shannon rate of a linear SNR, bytes/s, with the floor."""
        return np.maximum(self.bandwidth_hz / 8 * np.log2(1 + np.asarray(snr)), self.floor)

    def snr_of_rate(self, rate: np.ndarray | float) -> np.ndarray:
        """The linear SNR at which the Shannon rate equals `rate` (bytes/s)."""
        with np.errstate(over="ignore"):  # a threshold beyond any rate is an infinite SNR
            return np.exp2(8 * np.asarray(rate, dtype=float) / self.bandwidth_hz) - 1

    def model(self, step_s: np.ndarray) -> MarkovModel:
        return self._model

    def sample(
        self, step_s: np.ndarray, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        steps = len(step_s)
        u = rng.random((n, steps + 1))
        if self.coherence > 0:
            keep = rng.random((n, steps)) < self.coherence
            for i in range(steps):
                u[:, i + 1] = np.where(keep[:, i], u[:, i], u[:, i + 1])
        states = np.minimum((u * self.levels).astype(np.int64), self.levels - 1)
        snr = -self.snr * np.log1p(-u)
        return self.rate_of_snr(snr), states

    @property
    def mean_rate(self) -> float:
        return self._mean

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "snr_db": self.snr_db,
            "bandwidth_hz": self.bandwidth_hz,
            "levels": self.levels,
            "coherence": self.coherence,
            "rate_floor_bytes_per_s": self.floor,
            "mean_rate_bytes_per_s": self.mean_rate,
        }


def bandwidth_for_rate(rate_bytes_per_s: float, snr_db: float) -> float:
    """The bandwidth (Hz) whose Shannon rate at `snr_db` is `rate_bytes_per_s`: how a Rayleigh
    channel is calibrated to an instance's link by default."""
    return 8 * rate_bytes_per_s / np.log2(1 + 10 ** (snr_db / 10))


# --------------------------------------------------------------------------- traces


@dataclass(frozen=True)
class Trace:
    """A throughput trace: sample j holds from times_s[j] to times_s[j+1] (the last one for the
    median interval); `mbps` is in Mbit/s. Read it with `load_trace`."""

    name: str
    times_s: np.ndarray
    mbps: np.ndarray
    source: str = ""
    holds_s: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        dt = np.diff(self.times_s)
        object.__setattr__(self, "holds_s", np.append(dt, np.median(dt)))

    @property
    def duration_s(self) -> float:
        return float(self.times_s[-1] + self.holds_s[-1])

    @property
    def rates(self) -> np.ndarray:
        """Bytes/s."""
        return self.mbps * 1e6 / 8

    @property
    def mean_rate(self) -> float:
        """Time-weighted mean, bytes/s."""
        return float(np.dot(self.rates, self.holds_s) / self.duration_s)

    def rate_at(self, t: np.ndarray) -> np.ndarray:
        """The rate in force at times t (bytes/s); the trace repeats after its duration."""
        idx = np.searchsorted(self.times_s, np.mod(t, self.duration_s), side="right") - 1
        return self.rates[np.clip(idx, 0, len(self.times_s) - 1)]


def _read_columns(path: Path, text: str) -> tuple[np.ndarray, np.ndarray]:
    times, rates = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) < 2:
            raise TraceError(f"{path}: line {lineno}: expected 'time_s Mbps', got {line.strip()!r}")
        try:
            times.append(float(fields[0]))
            rates.append(float(fields[1]))
        except ValueError:
            raise TraceError(
                f"{path}: line {lineno}: not two numbers 'time_s Mbps': {line.strip()!r}"
            ) from None
    return np.array(times), np.array(rates)


def _read_csv(path: Path, text: str, radio: str | None) -> tuple[np.ndarray, np.ndarray]:
    reader = csv.DictReader(text.splitlines())
    columns = reader.fieldnames or []
    if "throughput_mbps" not in columns:
        raise TraceError(
            f"{path}: a CSV trace needs a 'throughput_mbps' column; it has {', '.join(columns)}"
        )
    if radio is not None and "radio_type" not in columns:
        raise TraceError(f"{path}: no 'radio_type' column to select {radio} rows")
    times: list[float] = []
    rates: list[float] = []
    for lineno, row in enumerate(reader, 2):
        if radio is not None and row["radio_type"] != radio:
            continue
        try:
            rates.append(float(row["throughput_mbps"]))
            seq = row.get("seq_num")
            times.append(float(seq) if seq not in (None, "") and radio is None else len(times))
        except ValueError:
            raise TraceError(f"{path}: line {lineno}: not a number in {row}") from None
    return np.array(times, dtype=float), np.array(rates, dtype=float)


def load_trace(name_or_path: str | Path, radio: str | None = None) -> Trace:
    """A shipped trace by name (see `SHIPPED_TRACES`) or any file: whitespace columns
    'time_s Mbit/s' (Pensieve, Oboe), or a CSV with a `throughput_mbps` column (5Gophers; rows one
    second apart by `seq_num`; `radio` keeps one `radio_type` and places its rows 1 s apart).

    Raises `TraceError` naming the file and line for anything it cannot read."""
    key = str(name_or_path)
    if key in SHIPPED_TRACES:
        file, shipped_radio = SHIPPED_TRACES[key]
        path, radio = TRACE_DIR / file, radio or shipped_radio
        name = key
    else:
        path = Path(key)
        name = path.name
        if not path.is_file():
            what = "is a directory" if path.is_dir() else "no such file"
            raise TraceError(
                f"{key}: {what}, and not a shipped trace ({', '.join(SHIPPED_TRACES)})"
            )
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise TraceError(f"{path}: cannot read: {exc}") from None
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if "," in first:
        times, mbps = _read_csv(path, text, radio)
    else:
        if radio is not None:
            raise TraceError(f"{path}: radio={radio!r} needs a CSV trace with 'radio_type'")
        times, mbps = _read_columns(path, text)
    if len(times) < 2:
        raise TraceError(f"{path}: needs at least 2 samples, found {len(times)}")
    if not (np.all(np.isfinite(times)) and np.all(np.isfinite(mbps))):
        raise TraceError(f"{path}: times and throughputs must be finite")
    if np.any(mbps < 0):
        raise TraceError(f"{path}: line {int(np.argmax(mbps < 0)) + 1}: negative throughput")
    if np.any(np.diff(times) <= 0):
        j = int(np.argmax(np.diff(times) <= 0)) + 2
        raise TraceError(f"{path}: sample {j}: times must increase")
    if not np.any(mbps > 0):
        raise TraceError(f"{path}: every throughput is 0")
    return Trace(name, times - times[0], mbps, str(path))


class TraceChannel(Channel):
    """A trace-driven channel. Inference n starts at a uniformly random time t0 of the (repeating)
    trace; boundary i is reached at t0 + T_i, T_i the device's compute time of layers 1..i, and
    the channel there is the trace's rate at that time (zero rates floored at `rate_floor` x the
    trace's mean).

    The policies' model is fitted on the same process: K quantile levels of the rate, p0 their
    time-weighted frequencies, P[i] the empirical transitions from T_i to T_(i+1) over `fit_points`
    evenly spaced start times. The simulation uses the trace itself, not the model.
    """

    kind = "trace"

    def __init__(
        self, trace: Trace, levels: int = 16, rate_floor: float = 0.01, fit_points: int = 20000
    ) -> None:
        if int(levels) != levels or levels < 1:
            raise OnlineError(f"levels must be a positive integer, got {levels}")
        if not 0 < rate_floor < 1:
            raise OnlineError(f"rate_floor must be in (0, 1), got {rate_floor}")
        self.trace, self.levels, self.rate_floor = trace, int(levels), rate_floor
        self.fit_points = int(fit_points)
        self.floor = rate_floor * trace.mean_rate
        self._models: dict[tuple[float, ...], MarkovModel] = {}

    def _rates(self, t: np.ndarray) -> np.ndarray:
        return np.maximum(self.trace.rate_at(t), self.floor)

    def _times(self, step_s: np.ndarray) -> np.ndarray:
        return np.concatenate(([0.0], np.cumsum(step_s)))

    def model(self, step_s: np.ndarray) -> MarkovModel:
        key = tuple(np.asarray(step_s, dtype=float).tolist())
        hit = self._models.get(key)
        if hit is not None:
            return hit
        T = self._times(np.asarray(step_s, dtype=float))
        n = self.fit_points
        t0 = (np.arange(n) + 0.5) / n * self.trace.duration_s
        R = self._rates(t0[:, None] + T[None, :])
        qs = np.arange(1, self.levels) / self.levels
        edges = np.unique(np.quantile(R[:, 0], qs, method="inverted_cdf"))
        edges = edges[edges > R.min()]
        states = np.searchsorted(edges, R, side="right")
        K = len(edges) + 1
        counts = np.bincount(states.ravel(), minlength=K)
        inv_sum = np.bincount(states.ravel(), weights=1 / R.ravel(), minlength=K)
        eff = counts / inv_sum
        p0 = np.bincount(states[:, 0], minlength=K) / n
        P = np.empty((len(T) - 1, K, K))
        for i in range(len(T) - 1):
            C = np.zeros((K, K))
            np.add.at(C, (states[:, i], states[:, i + 1]), 1.0)
            rows = C.sum(axis=1, keepdims=True)
            P[i] = np.where(rows > 0, C / np.maximum(rows, 1), p0[None, :])
        model = MarkovModel(eff, p0, P if len(P) else np.eye(K), edges, float(R.mean()))
        self._models[key] = model
        return model

    def sample(
        self, step_s: np.ndarray, n: int, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        T = self._times(np.asarray(step_s, dtype=float))
        t0 = rng.random(n) * self.trace.duration_s
        R = self._rates(t0[:, None] + T[None, :])
        return R, self.model(step_s).state_of(R)

    @property
    def mean_rate(self) -> float:
        tr = self.trace
        return float(np.dot(np.maximum(tr.rates, self.floor), tr.holds_s) / tr.duration_s)

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "trace": self.trace.name,
            "source": self.trace.source,
            "samples": len(self.trace.times_s),
            "duration_s": self.trace.duration_s,
            "levels": self.levels,
            "rate_floor_bytes_per_s": self.floor,
            "mean_rate_bytes_per_s": self.mean_rate,
        }
