"""Run-time width adaptation of a slimmable encoder (issue 7) on a real bandwidth trace.

Every frame, the device picks the encoder width whose *predicted* latency meets the deadline
with the best accuracy, from the rate it last observed (or a smoothed one). It then sends on
the rate it actually gets, and may miss the deadline. A width's latency is

    base_s + device_s + link_latency_s + payload_bytes / rate + server_s

where `base_s` is the part that does not depend on the width (the layers before and after the
split). Fixed widths are the baselines. numpy only; the widths' figures come from
`benchmarks/slimmable_digits.json` or any measurement.

A widths file (`load_widths`, read by `splitplan adapt`) is JSON:

    {"format": "splitplan-widths/1", "name": "...", "source": "where the figures come from",
     "widths": [{"name": "0.125", "payload_bytes": 128, "device_s": 6.5e-05,
                 "server_s": 6.4e-05, "accuracy": 0.936}, ...]}

`name` and `source` are optional; every width needs all five fields, numbers >= 0, `accuracy` a
fraction in [0, 1] and a name of its own.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .channels import Trace
from .problem import OnlineError

PREDICTORS = ("last", "ewma", "oracle")
WIDTHS_FORMAT = "splitplan-widths/1"
_FILE_FIELDS = ("format", "name", "source", "widths")
_WIDTH_FIELDS = ("name", "payload_bytes", "device_s", "server_s", "accuracy")


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
    if predictor == "ewma" and not 0 < ewma_alpha <= 1:
        raise OnlineError(f"the EWMA weight must be in (0, 1], got {ewma_alpha}")
    for what, value in (("base time", base_s), ("link latency", link_latency_s)):
        if not (math.isfinite(value) and value >= 0):
            raise OnlineError(f"the {what} must be a finite number >= 0, got {value}")
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


def misses_fewer_than_as_accurate(
    adaptive: AdaptResult, fixed: Sequence[AdaptResult]
) -> tuple[bool, list[AdaptResult]]:
    """Whether `adaptive` misses fewer deadlines than every fixed width at least as accurate on
    average, and those widths. A fixed width's mean accuracy is its accuracy up to rounding, so
    "at least as accurate" allows 1e-9 relative. True when no fixed width is as accurate."""
    floor = adaptive.mean_accuracy - 1e-9 * abs(adaptive.mean_accuracy)
    as_accurate = [r for r in fixed if r.mean_accuracy >= floor]
    return all(adaptive.miss_rate < r.miss_rate for r in as_accurate), as_accurate


# --------------------------------------------------------------------------- widths files


class WidthsError(OnlineError):
    """A widths file that cannot be used: which file, which field, what is wrong."""

    def __init__(self, file: str, field: str, reason: str) -> None:
        super().__init__(reason, field=field, file=file)


@dataclass(frozen=True)
class WidthSet:
    """The operating points of one encoder, as a widths file holds them."""

    name: str
    source: str
    widths: tuple[Width, ...]

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": WIDTHS_FORMAT,
            "name": self.name,
            "source": self.source,
            "widths": [dict(w.__dict__) for w in self.widths],
        }


def _shown(value: Any) -> str:
    text = json.dumps(value, allow_nan=True)
    return text if len(text) <= 40 else text[:37] + "..."


def widths_from_dict(data: Any, file: str = "<widths>") -> WidthSet:
    """Check a parsed widths file (see the module's docstring); raises `WidthsError`."""

    def bad(field: str, reason: str) -> WidthsError:
        return WidthsError(file, field, reason)

    if not isinstance(data, dict):
        raise bad("", f'expected a JSON object with "format": "{WIDTHS_FORMAT}"')
    if "format" not in data:
        raise bad("format", f'missing (expected "{WIDTHS_FORMAT}")')
    if data["format"] != WIDTHS_FORMAT:
        raise bad("format", f'expected "{WIDTHS_FORMAT}", got {_shown(data["format"])}')
    for key in data:
        if key not in _FILE_FIELDS:
            raise bad(str(key), f"unknown field (expected {', '.join(_FILE_FIELDS)})")
    for key in ("name", "source"):
        if not isinstance(data.get(key, ""), str):
            raise bad(key, f"must be a string, got {_shown(data[key])}")
    if "widths" not in data:
        raise bad("widths", "missing (expected a list of widths)")
    rows = data["widths"]
    if not isinstance(rows, list):
        raise bad("widths", f"must be a list of widths, got {_shown(rows)}")
    if not rows:
        raise bad("widths", "is empty: at least one width is needed")
    widths: list[Width] = []
    seen: dict[str, int] = {}
    for i, row in enumerate(rows):
        at = f"widths[{i}]"
        if not isinstance(row, dict):
            raise bad(at, f"must be an object, got {_shown(row)}")
        for key in row:
            if key not in _WIDTH_FIELDS:
                raise bad(f"{at}.{key}", f"unknown field (expected {', '.join(_WIDTH_FIELDS)})")
        for key in _WIDTH_FIELDS:
            if key not in row:
                raise bad(f"{at}.{key}", "missing")
        name = row["name"]
        if not isinstance(name, str) or not name.strip():
            raise bad(f"{at}.name", f"must be a non-empty string, got {_shown(name)}")
        if name in seen:
            raise bad(f"{at}.name", f"duplicate name {_shown(name)} (also widths[{seen[name]}])")
        seen[name] = i
        values = {}
        for key in _WIDTH_FIELDS[1:]:
            v = row[key]
            if isinstance(v, bool) or not isinstance(v, int | float):
                raise bad(f"{at}.{key}", f"must be a number, got {_shown(v)}")
            if not (isinstance(v, float) or abs(v) <= 1e308) or not math.isfinite(v):
                raise bad(f"{at}.{key}", f"must be a finite number, got {_shown(v)}")
            if v < 0:
                raise bad(f"{at}.{key}", f"must be >= 0, got {_shown(v)}")
            values[key] = v
        if values["accuracy"] > 1:
            acc = values["accuracy"]
            hint = f" (write {acc / 100:g} for {acc:g} %)" if acc <= 100 else ""
            raise bad(f"{at}.accuracy", f"must be a fraction in [0, 1], got {_shown(acc)}{hint}")
        widths.append(Width(name, **values))
    return WidthSet(data.get("name", ""), data.get("source", ""), tuple(widths))


def load_widths(path: str | Path) -> WidthSet:
    """Read a widths file (format `splitplan-widths/1`, see the module's docstring). Raises
    `WidthsError` naming the file, the field (e.g. ``widths[2].payload_bytes``) and the fault.
    A file without a `name` is named after the file."""
    file = str(path)
    p = Path(path)
    if not p.is_file():
        raise WidthsError(file, "", "is a directory" if p.is_dir() else "no such file")
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise WidthsError(file, "", f"cannot read: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise WidthsError(
            file, "", f"not valid JSON: line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except RecursionError:  # issue 15: a traceback reached the user
        raise WidthsError(file, "", "JSON nested too deeply to read") from None
    ws = widths_from_dict(data, file)
    if not ws.name:
        ws = WidthSet(p.stem, ws.source, ws.widths)
    return ws
