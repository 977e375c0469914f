"""The shipped NB201 table (accuracies and measured device latencies) and the primitive times.

``splitplan/data/nb201/nb201.csv.gz`` (see its README) gives, per architecture index, its
string, the test accuracy (%) on CIFAR-10, CIFAR-100 and ImageNet16-120 (NATS-Bench, 200 epochs,
mean over seeds) and the measured latency (ms) of the whole network on a Raspberry Pi 4 and a
Pixel 3 (HW-NAS-Bench), an RTX 2080 Ti at batch 1 and a Xeon Gold 6226 (HELP). `DEVICE_COLUMNS`
maps splitplan's device classes to those columns. `build_data` rebuilds the file from
``../shared/data``. ``host_cpu_op_times.json`` holds the measured primitive times that split
those latencies over the layers (`load_op_times`; `model.measure_op_times` re-measures it).
No torch.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from .cell import N_ARCHS, Nb201Error, parse_arch
from .model import OP_TIMES_FORMAT, primitive_keys

DATASETS = ("cifar10", "cifar100", "imagenet16-120")
CHANCE_ACCURACY = {"cifar10": 10.0, "cifar100": 1.0, "imagenet16-120": 100 / 120}
LATENCY_COLUMNS = ("raspi4", "pixel3", "2080ti_1", "gold_6226")
DEVICE_COLUMNS: Mapping[str, str] = {
    "raspberry-pi-4": "raspi4",
    "pixel-3": "pixel3",
    "rtx-2080-ti": "2080ti_1",
    "xeon-gold-6226": "gold_6226",
}
DATA_DIR = Path(__file__).resolve().parents[2] / "data" / "nb201"
DATA_FILE = DATA_DIR / "nb201.csv.gz"
OP_TIMES_FILE = DATA_DIR / "host_cpu_op_times.json"
_HEADER = ("arch_index", "arch_str", *DATASETS, *LATENCY_COLUMNS)


# --------------------------------------------------------------------------- the data table


@dataclass(frozen=True)
class Nb201Table:
    """The shipped table: per architecture index, its string, accuracies (%) and latencies (ms)."""

    archs: tuple[str, ...]
    accuracy: Mapping[str, tuple[float, ...]]  # dataset -> per index
    latency_ms: Mapping[str, tuple[float, ...]]  # latency column -> per index
    index: Mapping[str, int] = field(repr=False)
    path: str = ""


@lru_cache(maxsize=4)
def _load_table(path: str) -> Nb201Table:
    try:
        with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
            rows = list(csv.reader(fh))
    except FileNotFoundError:
        raise Nb201Error(
            f"NB201 data file {path} not found; rebuild it with "
            "`python -m splitplan.nas.nb201 data --shared ../shared/data`"
        ) from None
    except (OSError, EOFError, UnicodeDecodeError) as exc:
        raise Nb201Error(f"cannot read the NB201 data file {path}: {exc}") from None
    if not rows or tuple(rows[0]) != _HEADER:
        raise Nb201Error(f"{path}: the header must be {','.join(_HEADER)}")
    body = rows[1:]
    if len(body) != N_ARCHS:
        raise Nb201Error(f"{path}: expected {N_ARCHS} rows, got {len(body)}")
    archs: list[str] = []
    cols: list[list[float]] = [[] for _ in _HEADER[2:]]
    for i, row in enumerate(body):
        if len(row) != len(_HEADER) or row[0] != str(i):
            raise Nb201Error(f"{path}: row {i + 1} must have {len(_HEADER)} fields and index {i}")
        archs.append(row[1])
        for col, value in zip(cols, row[2:], strict=True):
            col.append(float(value))
    if len(set(archs)) != N_ARCHS:
        raise Nb201Error(f"{path}: architecture strings are not unique")
    values = dict(zip(_HEADER[2:], (tuple(c) for c in cols), strict=True))
    return Nb201Table(
        archs=tuple(archs),
        accuracy={d: values[d] for d in DATASETS},
        latency_ms={c: values[c] for c in LATENCY_COLUMNS},
        index={a: i for i, a in enumerate(archs)},
        path=path,
    )


def load_table(path: str | Path | None = None) -> Nb201Table:
    """Read (once per path) the NB201 table; default: the copy shipped with splitplan."""
    return _load_table(str(Path(path) if path is not None else DATA_FILE))


def build_data(shared: str | Path, out: str | Path = DATA_FILE) -> Path:
    """Rebuild the shipped table from ``../shared/data`` (nb201-accuracy, nb201-device-latency).

    Values are copied as text (unchanged); the rows are joined on the architecture index and
    their architecture strings must agree. Returns the path written.
    """
    shared = Path(shared)
    acc_file = shared / "nb201-accuracy" / "nats_bench_tss_test_accuracy.csv"
    lat_file = shared / "nb201-device-latency" / "help_nb201_latency_ms.csv"
    with open(acc_file, newline="", encoding="utf-8") as fh:
        acc = list(csv.DictReader(fh))
    with open(lat_file, newline="", encoding="utf-8") as fh:
        lat = list(csv.DictReader(fh))
    if len(acc) != N_ARCHS or len(lat) != N_ARCHS:
        raise Nb201Error(f"expected {N_ARCHS} rows in {acc_file} and {lat_file}")
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(_HEADER)
    acc_cols = (
        "CIFAR10TestAccuracy200Epochs",
        "CIFAR100TestAccuracy200Epochs",
        "ImageNetTestAccuracy200Epochs",
    )
    for i, (a, t) in enumerate(zip(acc, lat, strict=True)):
        if int(t["arch_index"]) != i or a["ArchitectureString"] != t["arch_str"]:
            raise Nb201Error(f"row {i}: the accuracy and latency files disagree on the arch")
        parse_arch(t["arch_str"])
        writer.writerow(
            [i, t["arch_str"], *(a[c] for c in acc_cols)] + [t[c] for c in LATENCY_COLUMNS]
        )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(gzip.compress(buf.getvalue().encode("utf-8"), compresslevel=9, mtime=0))
    _load_table.cache_clear()
    return out


def load_op_times(source: str | Path | Mapping[str, Any] | None = None) -> dict[str, float]:
    """The primitive time table (s): the shipped one, a JSON file, or a `measure_op_times` dict."""
    if source is None:
        source = OP_TIMES_FILE
    if isinstance(source, Mapping):
        data = dict(source)
        where = "the op-times table"
    else:
        where = str(source)
        try:
            data = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise Nb201Error(f"cannot read the op-times table {where}: {exc}") from None
    if data.get("format") != OP_TIMES_FORMAT or not isinstance(data.get("times"), Mapping):
        raise Nb201Error(f"{where}: not a {OP_TIMES_FORMAT} table")
    times = data["times"]
    missing = [k for k in primitive_keys() if k not in times]
    if missing:
        raise Nb201Error(f"{where}: missing primitive times {', '.join(missing)}")
    out = {k: float(times[k]) for k in primitive_keys()}
    bad = [k for k, v in out.items() if not (math.isfinite(v) and v >= 0)]
    if bad or sum(out.values()) <= 0:
        raise Nb201Error(f"{where}: times must be finite and non-negative ({', '.join(bad)})")
    return out
