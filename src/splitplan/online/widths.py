"""Run-time width adaptation of a slimmable encoder (issue 7) on a real bandwidth trace.

Every frame, the device picks the encoder width whose *predicted* latency meets the deadline
with the best accuracy, from the rate it last observed (or a smoothed one). It then sends on
the rate it actually gets, and may miss the deadline. A width's latency is

    base_s + device_s + link_latency_s + payload_bytes / rate + server_s

where `base_s` is the part that does not depend on the width (the layers before and after the
split). Fixed widths are the baselines. numpy only; the widths' figures come from
`benchmarks/slimmable_digits.json` or any measurement.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .channels import Trace
from .problem import OnlineError

PREDICTORS = ("last", "ewma", "oracle")


@dataclass(frozen=True)
class Width:
    """One operating point of the encoder."""

    name: str
    payload_bytes: float
    device_s: float
    server_s: float
    accuracy: float


def _check(widths: Sequence[Width], deadline_s: float) -> None:
    if not widths:
        raise OnlineError("no widths to choose from")
    if not deadline_s > 0:
        raise OnlineError(f"the deadline must be positive, got {deadline_s}")
    for w in widths:
        if w.payload_bytes < 0 or w.device_s < 0 or w.server_s < 0:
            raise OnlineError(f"width {w.name}: payload and times must be >= 0")


def predicted_latency_s(
    widths: Sequence[Width],
    rate_bytes_per_s: np.ndarray | float,
    base_s: float = 0.0,
    link_latency_s: float = 0.0,
) -> np.ndarray:
    """Latency of every width (last axis) at every rate (leading axes)."""
    rate = np.maximum(np.asarray(rate_bytes_per_s, dtype=float)[..., None], 1e-300)
    payload = np.array([w.payload_bytes for w in widths])
    fixed = np.array([w.device_s + w.server_s for w in widths]) + base_s + link_latency_s
    return fixed + payload / rate


def pick(
    widths: Sequence[Width],
    rate_bytes_per_s: np.ndarray | float,
    deadline_s: float,
    base_s: float = 0.0,
    link_latency_s: float = 0.0,
) -> np.ndarray:
    """Index of the chosen width per rate: the most accurate one whose predicted latency meets
    the deadline (ties: the smaller payload); where none does, the fastest."""
    _check(widths, deadline_s)
    lat = predicted_latency_s(widths, rate_bytes_per_s, base_s, link_latency_s)
    acc = np.array([w.accuracy for w in widths])
    payload = np.array([w.payload_bytes for w in widths])
    # rank: accuracy first, then smaller payload; infeasible widths rank below every feasible one
    order = np.lexsort((-payload, acc))  # ascending: the last is the best
    rank = np.empty(len(widths))
    rank[order] = np.arange(len(widths))
    score = np.where(lat <= deadline_s, rank, -1.0)
    best = score.argmax(axis=-1)
    none_meets = score.max(axis=-1) < 0
    return np.where(none_meets, lat.argmin(axis=-1), best)


@dataclass(frozen=True)
class AdaptResult:
    policy: str
    frames: int
    miss_rate: float
    mean_accuracy: float
    mean_payload_bytes: float
    mean_latency_s: float

    def to_dict(self) -> dict[str, float | int | str]:
        return dict(self.__dict__)


def adapt_on_trace(
    widths: Sequence[Width],
    trace: Trace,
    deadline_s: float,
    frame_interval_s: float = 0.1,
    *,
    base_s: float = 0.0,
    link_latency_s: float = 0.0,
    predictor: str = "last",
    ewma_alpha: float = 0.3,
) -> list[AdaptResult]:
    """Run one frame every `frame_interval_s` over the whole trace with the adaptive policy and
    with each fixed width. `predictor`: ``last`` (the rate observed one frame earlier),
    ``ewma`` (smoothed observations) or ``oracle`` (the rate the frame will get, a bound)."""
    _check(widths, deadline_s)
    if predictor not in PREDICTORS:
        raise OnlineError(f"unknown predictor {predictor!r}; expected one of {PREDICTORS}")
    if not frame_interval_s > 0:
        raise OnlineError(f"the frame interval must be positive, got {frame_interval_s}")
    times = np.arange(frame_interval_s, trace.duration_s, frame_interval_s)
    if times.size == 0:
        raise OnlineError(f"trace {trace.name} is shorter than one frame interval")
    actual = trace.rate_at(times)
    observed = trace.rate_at(times - frame_interval_s)
    if predictor == "oracle":
        predicted = actual
    elif predictor == "last":
        predicted = observed
    else:
        predicted = np.empty_like(observed)
        level = observed[0]
        for f, r in enumerate(observed):
            level = ewma_alpha * r + (1 - ewma_alpha) * level
            predicted[f] = level
    true_lat = predicted_latency_s(widths, actual, base_s, link_latency_s)
    acc = np.array([w.accuracy for w in widths])
    payload = np.array([w.payload_bytes for w in widths])
    frames = np.arange(times.size)

    def result(name: str, chosen: np.ndarray) -> AdaptResult:
        lat = true_lat[frames, chosen]
        return AdaptResult(
            name,
            int(times.size),
            float(np.mean(lat > deadline_s)),
            float(acc[chosen].mean()),
            float(payload[chosen].mean()),
            float(np.mean(np.minimum(lat, 1e9))),
        )

    chosen = pick(widths, predicted, deadline_s, base_s, link_latency_s)
    out = [result(f"adaptive ({predictor})", chosen)]
    for k, w in enumerate(widths):
        out.append(result(f"fixed {w.name}", np.full(times.size, k)))
    return out
