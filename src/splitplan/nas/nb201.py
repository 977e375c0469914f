"""NAS-Bench-201 as a search space, with measured accuracies and measured device latencies.

Each of the 15,625 NB201 cells names a CIFAR network (the NB201 macro skeleton, see
`build_model`). The table shipped in ``splitplan/data/nb201/`` (see its README) gives, per cell,
the test accuracy on CIFAR-10, CIFAR-100 and ImageNet16-120 (NATS-Bench, 200 epochs, mean over
seeds) and the measured latency of the whole network on a Raspberry Pi 4 and a Pixel 3
(HW-NAS-Bench), an RTX 2080 Ti at batch 1 and a Xeon Gold 6226 (HELP). `DEVICE_COLUMNS` maps
splitplan's device classes to those columns.

Layers. A cell network is a chain of 19 splittable layers named after its torch modules:
``stem``, ``cells.0`` .. ``cells.16`` (``cells.5`` and ``cells.11`` are the ResNet reduction
blocks between the stages) and ``head`` (BN, ReLU, global pooling, classifier): exactly what
`splitplan.profile.profile(build_model(arch), x, granularity="block")` makes of it. Finer cuts
would add little: every tensor inside a cell has the shape of the cell's output, so a cut inside
a cell sends at least as many bytes as the cut after it. FLOPs, parameter and output bytes (fp32)
are computed in closed form (the tests check them against the profiler).

Per-layer times. Only whole-network latencies are measured on the devices. Per device class,
the 19 layer times are the measured latency split in proportion to the layers' *host-CPU* times
from a table of measured primitive times (``host_cpu_op_times.json``, timed single-threaded with
torch on the machine the file names; `measure_op_times` re-measures it): the stem, the two
reduction blocks, the head, and for each stage and operation a "uniform" cell whose six edges
all are that operation. A cell's time is the mean of its six edges' uniform-cell times (so it
carries the residual adds and the cell's own overhead). The per-class layer times thus sum to the
measured latency exactly, and no model is profiled per cell: 5^6 cells x 3 stages collapse to
19 primitives. The shares are a CPU's, not each device's: a caveat for the GPU (its batch-1
latency is mostly kernel launches) and for average pooling, which this CPU finds dearer,
relative to a convolution, than a regression on the Pi 4's or the GPU's latencies does.

``none`` edges are kept as NB201's reference code has them (``x.mul(0.)``), so every cell reads
its predecessor's tensor and the DNN is a chain even for the 341 cells whose output does not
depend on their input (`is_connected` is False; such a network outputs a constant).
HW-NAS-Bench's Pi 4 and Pixel 3 latencies of most of those are near 0 (median 0.14 ms and
0.05 ms: the converted graph is constant-folded); their layer times are scaled down to that, as
measured, so on the Pi 4 and Pixel 3 presets the fastest point of the front is such a
10 %-accurate network.

The networks are the CIFAR-10 ones (32x32 input, 10 classes) whose latencies were measured; with
``dataset="cifar100"`` or ``"imagenet16-120"`` only the accuracy comes from that dataset.

Run ``python -m splitplan.nas.nb201 data --shared ../shared/data`` to rebuild the table and
``python -m splitplan.nas.nb201 op-times`` to re-measure the primitive times.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import io
import json
import math
import platform
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import SplitplanError
from ..instance import DNN, INPUT, Instance, Layer, Network, Objective
from .pareto import hypervolume_2d, pareto_front

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), string order
N_ARCHS = len(OPS) ** len(EDGES)  # 15,625
CELLS_PER_STAGE = 5
CHANNELS = (16, 32, 64)
RESOLUTION = (32, 16, 8)
NUM_CLASSES = 10
DATASETS = ("cifar10", "cifar100", "imagenet16-120")
CHANCE_ACCURACY = {"cifar10": 10.0, "cifar100": 1.0, "imagenet16-120": 100 / 120}
LATENCY_COLUMNS = ("raspi4", "pixel3", "2080ti_1", "gold_6226")
DEVICE_COLUMNS: Mapping[str, str] = {
    "raspberry-pi-4": "raspi4",
    "pixel-3": "pixel3",
    "rtx-2080-ti": "2080ti_1",
    "xeon-gold-6226": "gold_6226",
}
DATA_DIR = Path(__file__).resolve().parent.parent / "data" / "nb201"
DATA_FILE = DATA_DIR / "nb201.csv.gz"
OP_TIMES_FILE = DATA_DIR / "host_cpu_op_times.json"
OP_TIMES_FORMAT = "splitplan-nb201-op-times/1"
_HEADER = ("arch_index", "arch_str", *DATASETS, *LATENCY_COLUMNS)
_BYTES = 4  # fp32


class Nb201Error(SplitplanError, ValueError):
    """A bad architecture string, dataset, device class or data file (the message says which)."""


# --------------------------------------------------------------------------- arch strings


def parse_arch(arch: str) -> tuple[str, ...]:
    """The six operations of an NB201 cell string, in the order of `EDGES`.

    ``|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|``: node 1
    from node 0; node 2 from 0 and 1; node 3 (the output) from 0, 1 and 2.
    """
    if not isinstance(arch, str):
        raise Nb201Error(f"an NB201 architecture is a string, got {type(arch).__name__}")
    example = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    groups = arch.split("+")
    if len(groups) != 3:
        raise Nb201Error(
            f"bad NB201 architecture {arch!r}: expected 3 nodes separated by '+', e.g. {example}"
        )
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not group.startswith("|") or not group.endswith("|"):
            raise Nb201Error(f"bad NB201 architecture {arch!r}: node {node} must be '|op~k|...|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != node:
            raise Nb201Error(
                f"bad NB201 architecture {arch!r}: node {node} must have {node} input edge(s), "
                f"got {len(tokens)}"
            )
        for src, token in enumerate(tokens):
            op, sep, k = token.partition("~")
            if not sep or k != str(src):
                raise Nb201Error(
                    f"bad NB201 architecture {arch!r}: edge {token!r} of node {node} must read "
                    f"'op~{src}'"
                )
            if op not in OPS:
                raise Nb201Error(
                    f"bad NB201 architecture {arch!r}: unknown operation {op!r}; expected one "
                    f"of {', '.join(OPS)}"
                )
            ops.append(op)
    return tuple(ops)


def arch_string(ops: Sequence[str]) -> str:
    """The NB201 string of six operations given in the order of `EDGES`."""
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise Nb201Error(f"an NB201 cell has {len(EDGES)} edges, got {len(ops)} operations")
    for op in ops:
        if op not in OPS:
            raise Nb201Error(f"unknown operation {op!r}; expected one of {', '.join(OPS)}")
    nodes = [[] for _ in range(3)]
    for (dst, src), op in zip(EDGES, ops, strict=True):
        nodes[dst - 1].append(f"{op}~{src}")
    return "+".join("|" + "|".join(node) + "|" for node in nodes)


def is_connected(arch: str | Sequence[str]) -> bool:
    """Whether the cell's output depends on its input (some path of non-``none`` edges)."""
    ops = parse_arch(arch) if isinstance(arch, str) else tuple(arch)
    reached = {0}
    for (dst, src), op in zip(EDGES, ops, strict=True):  # EDGES is in topological order
        if op != "none" and src in reached:
            reached.add(dst)
    return 3 in reached


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


# --------------------------------------------------------------------------- torch model


@lru_cache(maxsize=1)
def _torch_classes() -> dict[str, Any]:
    """The NB201 modules (after xautodl's TinyNetwork / InferCell / ResNetBasicblock); torch is
    imported only here."""
    import torch
    from torch import nn

    class ReLUConvBN(nn.Module):
        def __init__(self, c_in: int, c_out: int, k: int, stride: int, pad: int) -> None:
            super().__init__()
            self.op = nn.Sequential(
                nn.ReLU(inplace=False),
                nn.Conv2d(c_in, c_out, k, stride, pad, bias=False),
                nn.BatchNorm2d(c_out),
            )

        def forward(self, x):
            return self.op(x)

    class Zero(nn.Module):
        def forward(self, x):
            return x.mul(0.0)

    def make_op(op: str, c: int) -> nn.Module:
        if op == "none":
            return Zero()
        if op == "skip_connect":
            return nn.Identity()
        if op == "nor_conv_1x1":
            return ReLUConvBN(c, c, 1, 1, 0)
        if op == "nor_conv_3x3":
            return ReLUConvBN(c, c, 3, 1, 1)
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    class Cell(nn.Module):
        def __init__(self, ops: Sequence[str], c: int) -> None:
            super().__init__()
            self.edges = nn.ModuleList(make_op(op, c) for op in ops)

        def forward(self, x):
            nodes = [x]
            for node in (1, 2, 3):
                total = None
                for e, (dst, src) in enumerate(EDGES):
                    if dst == node:
                        y = self.edges[e](nodes[src])
                        total = y if total is None else total + y
                nodes.append(total)
            return nodes[3]

    class Stem(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x):
            return self.bn(self.conv(x))

    class Reduction(nn.Module):
        """ResNet basic block, stride 2: two ReLU-Conv3x3-BN and an avg-pool + 1x1 shortcut."""

        def __init__(self, c_in: int, c_out: int) -> None:
            super().__init__()
            self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
            self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
            self.downsample = nn.Sequential(
                nn.AvgPool2d(kernel_size=2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
            )

        def forward(self, x):
            return self.downsample(x) + self.conv_b(self.conv_a(x))

    class Head(nn.Module):
        def __init__(self, c: int, classes: int) -> None:
            super().__init__()
            self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c, classes)

        def forward(self, x):
            return self.classifier(torch.flatten(self.global_pooling(self.lastact(x)), 1))

    class Nb201Network(nn.Module):
        def __init__(self, ops: Sequence[str], classes: int) -> None:
            super().__init__()
            self.stem = Stem(CHANNELS[0])
            cells: list[nn.Module] = []
            for stage, c in enumerate(CHANNELS):
                if stage:
                    cells.append(Reduction(CHANNELS[stage - 1], c))
                cells.extend(Cell(ops, c) for _ in range(CELLS_PER_STAGE))
            self.cells = nn.ModuleList(cells)
            self.head = Head(CHANNELS[-1], classes)

        def forward(self, x):
            x = self.stem(x)
            for cell in self.cells:
                x = cell(x)
            return self.head(x)

    return {
        "ReLUConvBN": ReLUConvBN,
        "make_op": make_op,
        "Cell": Cell,
        "Stem": Stem,
        "Reduction": Reduction,
        "Head": Head,
        "Nb201Network": Nb201Network,
    }


def build_model(arch: str, num_classes: int = NUM_CLASSES):
    """The torch network of an NB201 cell (imports torch), in eval mode, random weights.

    NB201's skeleton: stem (3x3 conv 3->16, BN); three stages of 5 cells with 16, 32, 64
    channels at 32x32, 16x16, 8x8, a ResNet basic block of stride 2 between stages; BN, ReLU,
    global average pooling and a linear classifier. Cell edges: ``none`` (x * 0),
    ``skip_connect`` (identity), ``nor_conv_1x1`` / ``nor_conv_3x3`` (ReLU-Conv-BN),
    ``avg_pool_3x3``; each node sums its incoming edges.
    """
    ops = parse_arch(arch)
    if num_classes < 1:
        raise Nb201Error(f"num_classes must be positive, got {num_classes}")
    return _torch_classes()["Nb201Network"](ops, num_classes).eval()


# --------------------------------------------------------------------------- layer data


def _bn_bytes(c: int) -> int:
    return 4 * c * _BYTES + 8  # weight, bias, running mean and var (fp32), num_batches_tracked


def _op_flops_params(op: str, c: int, h: int) -> tuple[int, int]:
    if op == "nor_conv_1x1":
        return 2 * c * c * h * h, c * c * _BYTES + _bn_bytes(c)
    if op == "nor_conv_3x3":
        return 18 * c * c * h * h, 9 * c * c * _BYTES + _bn_bytes(c)
    return 0, 0


@dataclass(frozen=True)
class _Spec:
    name: str
    flops: int
    param_bytes: int
    out_bytes: int
    primitives: tuple[tuple[str, float], ...]  # (primitive time key, weight)


@lru_cache(maxsize=1)
def _fixed_specs(num_classes: int) -> dict[str, _Spec]:
    c0, h0 = CHANNELS[0], RESOLUTION[0]
    specs = {
        "stem": _Spec(
            "stem",
            2 * c0 * 3 * 9 * h0 * h0,
            c0 * 3 * 9 * _BYTES + _bn_bytes(c0),
            c0 * h0 * h0 * _BYTES,
            (("stem", 1),),
        )
    }
    for stage in (1, 2):
        ci, co, h = CHANNELS[stage - 1], CHANNELS[stage], RESOLUTION[stage]
        flops = 2 * co * ci * 9 * h * h + 2 * co * co * 9 * h * h + 2 * co * ci * h * h
        params = (co * ci * 9 + co * co * 9 + co * ci) * _BYTES + 2 * _bn_bytes(co)
        key = f"reduction{stage}"
        specs[key] = _Spec(key, flops, params, co * h * h * _BYTES, ((key, 1),))
    c = CHANNELS[-1]
    specs["head"] = _Spec(
        "head",
        2 * c * num_classes,
        _bn_bytes(c) + (c * num_classes + num_classes) * _BYTES,
        num_classes * _BYTES,
        (("head", 1),),
    )
    return specs


@lru_cache(maxsize=1 << 16)
def _cell_spec(ops: tuple[str, ...], stage: int) -> tuple[int, int, int, tuple]:
    c, h = CHANNELS[stage], RESOLUTION[stage]
    flops = params = 0
    weights: dict[str, float] = {}
    for op in ops:
        f, p = _op_flops_params(op, c, h)
        flops += f
        params += p
        key = f"cell[{op}]@{stage}"
        weights[key] = weights.get(key, 0.0) + 1.0 / len(EDGES)
    return flops, params, c * h * h * _BYTES, tuple(sorted(weights.items()))


def layer_specs(arch: str, num_classes: int = NUM_CLASSES) -> list[_Spec]:
    """The 19 layers of a cell network (chain order) with closed-form FLOPs and bytes."""
    ops = parse_arch(arch)
    fixed = _fixed_specs(num_classes)
    specs = [fixed["stem"]]
    index = 0
    for stage in range(3):
        if stage:
            r = fixed[f"reduction{stage}"]
            specs.append(_Spec(f"cells.{index}", r.flops, r.param_bytes, r.out_bytes, r.primitives))
            index += 1
        flops, params, out, prims = _cell_spec(ops, stage)
        for _ in range(CELLS_PER_STAGE):
            specs.append(_Spec(f"cells.{index}", flops, params, out, prims))
            index += 1
    specs.append(fixed["head"])
    return specs


def primitive_keys() -> list[str]:
    """The keys of the primitive time table."""
    keys = ["stem", "reduction1", "reduction2", "head"]
    for stage in range(3):
        keys += [f"cell[{op}]@{stage}" for op in OPS]
    return keys


def measure_op_times(
    repeats: int = 30, warmup: int = 10, threads: int = 1, target_s: float = 0.005
) -> dict[str, Any]:
    """Time every primitive with torch on this machine's CPU, in `threads` torch threads: the
    fastest of `repeats` batches of calls (each batch about `target_s` long; batches of all
    primitives in turn; the minimum, as `timeit` advises, is the least disturbed by other
    processes); returns the table
    (save it with `json.dump` and pass the path as ``Nb201Space(op_times=...)``)."""
    import torch

    tc = _torch_classes()
    prims: dict[str, tuple[Callable[..., Any], tuple]] = {}
    c0, h0 = CHANNELS[0], RESOLUTION[0]
    prims["stem"] = (tc["Stem"](c0), (torch.randn(1, 3, h0, h0),))
    for stage in (1, 2):
        ci, h = CHANNELS[stage - 1], RESOLUTION[stage - 1]
        x = torch.randn(1, ci, h, h)
        prims[f"reduction{stage}"] = (tc["Reduction"](ci, CHANNELS[stage]), (x,))
    c, h = CHANNELS[-1], RESOLUTION[-1]
    prims["head"] = (tc["Head"](c, NUM_CLASSES), (torch.randn(1, c, h, h),))
    for stage in range(3):
        c, h = CHANNELS[stage], RESOLUTION[stage]
        x = torch.randn(1, c, h, h)
        for op in OPS:
            prims[f"cell[{op}]@{stage}"] = (tc["Cell"]([op] * len(EDGES), c), (x,))
    old_threads = torch.get_num_threads()
    torch.set_num_threads(threads)
    times: dict[str, float] = {}
    try:
        with torch.no_grad():
            numbers: dict[str, int] = {}
            for key, (fn, args) in prims.items():
                if isinstance(fn, torch.nn.Module):
                    fn.eval()
                for _ in range(warmup):
                    fn(*args)
                start = time.perf_counter()
                fn(*args)
                numbers[key] = max(1, int(target_s / max(time.perf_counter() - start, 1e-7)))
            # Round robin over the primitives, so that a busy spell of the machine slows all alike.
            for _ in range(repeats):
                for key, (fn, args) in prims.items():
                    start = time.perf_counter()
                    for _ in range(numbers[key]):
                        fn(*args)
                    t = (time.perf_counter() - start) / numbers[key]
                    times[key] = min(times.get(key, math.inf), t)
    finally:
        torch.set_num_threads(old_threads)
    return {
        "format": OP_TIMES_FORMAT,
        "unit": "s",
        "what": "time of one call (fastest batch), batch 1, fp32, eval mode, torch.no_grad",
        "threads": threads,
        "torch": torch.__version__,
        "machine": _machine(),
        "times": times,
    }


def _machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import os

    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


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


# --------------------------------------------------------------------------- the space


class Nb201Space:
    """NAS-Bench-201 (the `Space` protocol of `splitplan.nas`); architectures are NB201 strings.

    `dataset` picks the accuracy column (``cifar10``, ``cifar100``, ``imagenet16-120``);
    `data` a table file (default: the shipped one); `op_times` the primitive time table that
    splits the measured latencies over the layers (default: the shipped host-CPU table);
    `device_columns` maps device classes to the table's latency columns (default
    `DEVICE_COLUMNS`).
    """

    name = "nb201"

    def __init__(
        self,
        dataset: str = "cifar10",
        *,
        data: str | Path | None = None,
        op_times: str | Path | Mapping[str, Any] | None = None,
        device_columns: Mapping[str, str] | None = None,
    ) -> None:
        if dataset == "imagenet16":
            dataset = "imagenet16-120"
        if dataset not in DATASETS:
            raise Nb201Error(f"unknown dataset {dataset!r}; expected one of {', '.join(DATASETS)}")
        self.dataset = dataset
        self.table = load_table(data)
        self.op_times = load_op_times(op_times)
        self.device_columns = dict(DEVICE_COLUMNS if device_columns is None else device_columns)
        for cls, col in self.device_columns.items():
            if col not in self.table.latency_ms:
                raise Nb201Error(
                    f"device class {cls!r} maps to {col!r}, which is not a latency column; "
                    f"expected one of {', '.join(LATENCY_COLUMNS)}"
                )
        self._accuracy = self.table.accuracy[dataset]

    # -- the Space protocol

    def suggest(self, trial: Any) -> str:
        """One categorical choice per edge, named ``edge_<to>_<from>``."""
        return arch_string(
            [trial.suggest_categorical(f"edge_{dst}_{src}", list(OPS)) for dst, src in EDGES]
        )

    def accuracy(self, arch: str) -> float:
        return self._accuracy[self.index(arch)]

    def dnn(self, arch: str, classes: Sequence[str]) -> DNN:
        """The 19-layer chain of `arch`; `time_s[c]` per class sums to c's measured latency."""
        i = self.index(arch)
        classes = list(dict.fromkeys(classes))
        totals = {c: self.device_latency_s(arch, c) for c in classes}
        specs = layer_specs(arch)
        host = [sum(self.op_times[k] * n for k, n in s.primitives) for s in specs]
        scale = {c: t / sum(host) for c, t in totals.items()}
        layers = []
        previous = INPUT
        for spec, h in zip(specs, host, strict=True):
            layers.append(
                Layer(
                    name=spec.name,
                    inputs=(previous,),
                    flops=float(spec.flops),
                    param_bytes=float(spec.param_bytes),
                    out_bytes=float(spec.out_bytes),
                    time_s={c: h * s for c, s in scale.items()},
                )
            )
            previous = spec.name
        size = 3 * RESOLUTION[0] * RESOLUTION[0] * _BYTES
        return DNN(f"nb201-{i}", float(size), tuple(layers))

    def all_archs(self) -> Sequence[str]:
        return self.table.archs

    # -- extras

    @property
    def device_classes(self) -> list[str]:
        """The device classes with measured latencies."""
        return list(self.device_columns)

    def index(self, arch: str) -> int:
        """The NB201 / NATS-Bench / HW-NAS-Bench index of `arch`."""
        i = self.table.index.get(arch) if isinstance(arch, str) else None
        if i is None:
            parse_arch(arch)  # says what is wrong with it
            raise Nb201Error(f"{arch!r} is not in the NB201 table")  # pragma: no cover
        return i

    def arch(self, index: int) -> str:
        if not 0 <= index < N_ARCHS:
            raise Nb201Error(f"NB201 indices are 0..{N_ARCHS - 1}, got {index}")
        return self.table.archs[index]

    def device_latency_s(self, arch: str, device_class: str) -> float:
        """The measured whole-network latency of `arch` on `device_class`, in seconds."""
        col = self.device_columns.get(device_class)
        if col is None:
            raise Nb201Error(
                f"no NB201 latency measured for device class {device_class!r}; measured: "
                f"{', '.join(self.device_columns)}"
            )
        return self.table.latency_ms[col][self.index(arch)] / 1e3

    def flops(self, arch: str) -> float:
        """FLOPs of one inference (2 per multiply-accumulate; convolutions and the classifier)."""
        return float(sum(s.flops for s in layer_specs(arch)))

    def param_bytes(self, arch: str) -> float:
        return float(sum(s.param_bytes for s in layer_specs(arch)))


# --------------------------------------------------------------------------- planning


def _network(network: str | Network) -> Network:
    if isinstance(network, Network):
        return network
    from ..devices import network_preset

    return network_preset(network)


def _objective(objective: str | Objective) -> Objective:
    if isinstance(objective, Objective):
        return objective
    if objective not in ("latency", "energy"):
        raise Nb201Error(
            f"unknown objective {objective!r}; expected 'latency', 'energy' or an Objective"
        )
    return Objective(objective)


def plan_latency(
    space: Nb201Space,
    arch: str,
    network: str | Network,
    objective: str | Objective = "latency",
    *,
    method: str = "auto",
    solver: str = "highs",
    time_limit_s: float | None = None,
) -> dict[str, Any]:
    """The optimal placement of `arch` on `network` (a preset name or a `Network`).

    `method`: ``milp`` (`splitplan.solve`), ``dp`` (the exact chain DP, `baselines.chain_dp`)
    or ``auto`` (the DP where it applies, else the MILP). Nodes whose class has no NB201
    measurement cost flops / flops_per_s (listed in ``unmeasured_nodes``). Returns latency_s,
    objective, bound (bound_s for the latency objective), gap, status, solver, assignment,
    segments, split_points, local_latency_s (everything on the source) and seconds.
    """
    if method not in ("auto", "dp", "milp"):
        raise Nb201Error(f"unknown method {method!r}; expected auto, dp or milp")
    net = _network(network)
    return _plan(space, arch, net, _objective(objective), method, solver, time_limit_s)


def _plan(
    space: Nb201Space,
    arch: str,
    net: Network,
    objective: Objective,
    method: str,
    solver: str,
    time_limit_s: float | None,
) -> dict[str, Any]:
    from ..baselines import NotApplicable, chain_dp
    from ..cost import evaluate
    from ..plan import solve

    start = time.perf_counter()
    classes = [n.device_class for n in net.nodes if n.device_class in space.device_columns]
    dnn = space.dnn(arch, classes)
    inst = Instance(dnn, net, objective, name=dnn.name)
    plan = None
    if method in ("auto", "dp"):
        try:
            plan = chain_dp(inst)
        except NotApplicable:
            if method == "dp":
                raise
    if plan is None:
        plan = solve(inst, solver, time_limit_s=time_limit_s)
    if plan.assignment is None or plan.evaluation is None:
        raise Nb201Error(f"no plan for {arch} on this network: {plan.status} {plan.reasons}")
    local = evaluate(inst, {name: net.source for name in inst.layer_names})
    latency = plan.evaluation.latency_s
    result = {
        "arch": arch,
        "index": space.index(arch),
        "accuracy": space.accuracy(arch),
        "objective_kind": objective.kind,
        "latency_s": latency,
        "objective": plan.objective,
        "bound": plan.bound,
        "gap": plan.gap,
        "status": plan.status,
        "solver": plan.solver if plan.solver == "dp" else f"milp-{plan.solver}",
        "assignment": plan.assignment,
        "segments": [(node, [layers[0], layers[-1]]) for node, layers in plan.segments()],
        "split_points": plan.split_points(),
        "local_latency_s": local.latency_s,
        "unmeasured_nodes": [
            n.name for n in net.nodes if n.device_class not in space.device_columns
        ],
        "seconds": time.perf_counter() - start,
    }
    if objective.kind == "latency":
        result["bound_s"] = plan.bound
    return result


def placement(segments: Iterable[tuple[str, Sequence[str]]]) -> str:
    """A short text of a plan's segments, e.g. ``device[stem..cells.4] > edge[cells.5..head]``."""
    parts = []
    for node, layers in segments:
        span = layers[0] if layers[0] == layers[-1] else f"{layers[0]}..{layers[-1]}"
        parts.append(f"{node}[{span}]")
    return " > ".join(parts)


# --------------------------------------------------------------------------- exact front


@dataclass(frozen=True)
class CellPlan:
    """One architecture's accuracy and its optimal plan's latency on a network."""

    arch: str
    index: int
    accuracy: float
    latency_s: float
    local_latency_s: float
    placement: str


@dataclass
class ExactFront:
    """Every architecture planned on one network, and their accuracy / latency Pareto front."""

    network: str
    dataset: str
    method: str
    cells: list[CellPlan]
    front: list[CellPlan]
    seconds: float
    reference: tuple[float, float]  # (accuracy %, latency s) for the hypervolume

    @property
    def rate(self) -> float:
        """Evaluations (planned architectures) per second."""
        return len(self.cells) / self.seconds if self.seconds > 0 else math.inf

    @property
    def hypervolume(self) -> float:
        """Of the front against `reference`, in accuracy points x seconds."""
        return hypervolume_2d([(c.accuracy, c.latency_s) for c in self.front], self.reference)


def front_reference(space: Nb201Space, cells: Sequence[CellPlan]) -> tuple[float, float]:
    """The hypervolume reference point: chance accuracy of the dataset (10 % on CIFAR-10) and
    the largest planned latency over `cells` (for the exact front: over all 15,625)."""
    return CHANCE_ACCURACY[space.dataset], max(c.latency_s for c in cells)


def exact_front(
    space: Nb201Space,
    network: str | Network,
    objective: str | Objective = "latency",
    *,
    method: str = "auto",
    solver: str = "highs",
    archs: Sequence[str] | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> ExactFront:
    """Plan every architecture (default: all 15,625) and return the exact Pareto front.

    `progress(done, total)` is called every 250 architectures and at the end.
    """
    if method not in ("auto", "dp", "milp"):
        raise Nb201Error(f"unknown method {method!r}; expected auto, dp or milp")
    net = _network(network)
    obj = _objective(objective)
    archs = list(space.all_archs() if archs is None else archs)
    if not archs:
        raise Nb201Error("no architectures to evaluate")
    start = time.perf_counter()
    cells: list[CellPlan] = []
    methods: set[str] = set()
    for done, arch in enumerate(archs, start=1):
        r = _plan(space, arch, net, obj, method, solver, None)
        methods.add(r["solver"])
        cells.append(
            CellPlan(
                arch,
                r["index"],
                r["accuracy"],
                r["latency_s"],
                r["local_latency_s"],
                placement(r["segments"]),
            )
        )
        if progress is not None and (done % 250 == 0 or done == len(archs)):
            progress(done, len(archs))
    seconds = time.perf_counter() - start
    front = [cells[i] for i in pareto_front([(c.accuracy, c.latency_s) for c in cells])]
    name = network if isinstance(network, str) else "custom"
    return ExactFront(
        name,
        space.dataset,
        "+".join(sorted(methods)),
        cells,
        front,
        seconds,
        front_reference(space, cells),
    )


def nasc_comparison(result: ExactFront, tolerance: float = 0.5) -> dict[str, Any]:
    """NASC's comparison: (a) the most accurate architecture with its optimal split against the
    fastest architecture within `tolerance` accuracy points of it (on the front by construction);
    latencies of both planned and all on the device, and the % latency reductions."""
    best = max(result.cells, key=lambda c: (c.accuracy, -c.latency_s, -c.index))
    near = [c for c in result.cells if c.accuracy >= best.accuracy - tolerance]
    fast = min(near, key=lambda c: (c.latency_s, -c.accuracy, c.index))

    def row(c: CellPlan) -> dict[str, Any]:
        return {
            "arch": c.arch,
            "index": c.index,
            "accuracy": c.accuracy,
            "latency_s": c.latency_s,
            "local_latency_s": c.local_latency_s,
            "placement": c.placement,
        }

    return {
        "tolerance_points": tolerance,
        "most_accurate": row(best),
        "fastest_within_tolerance": row(fast),
        "reduction_vs_most_accurate_split_pct": 100 * (1 - fast.latency_s / best.latency_s),
        "reduction_vs_most_accurate_local_pct": 100 * (1 - fast.latency_s / best.local_latency_s),
        "split_gain_most_accurate_pct": 100 * (1 - best.latency_s / best.local_latency_s),
    }


# --------------------------------------------------------------------------- command line


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m splitplan.nas.nb201")
    sub = parser.add_subparsers(dest="command", required=True)
    d = sub.add_parser("data", help="rebuild the shipped NB201 table from ../shared/data")
    d.add_argument("--shared", default="../shared/data")
    d.add_argument("-o", "--out", default=str(DATA_FILE))
    t = sub.add_parser("op-times", help="measure the primitive times on this CPU")
    t.add_argument("-o", "--out", default=str(OP_TIMES_FILE))
    t.add_argument("--threads", type=int, default=1)
    t.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args(argv)
    if args.command == "data":
        path = build_data(args.shared, args.out)
        print(f"wrote {path} ({path.stat().st_size} bytes)")
    else:
        table = measure_op_times(repeats=args.repeats, threads=args.threads)
        Path(args.out).write_text(json.dumps(table, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out} ({table['machine']})")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
