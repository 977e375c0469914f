"""NAS-Bench-201 as a search space (the `splitplan.nas.Space` protocol).

Per-layer times. Only whole-network latencies are measured on the devices. Per device class,
the 19 layer times are the measured latency split in proportion to the layers' *host-CPU* times
from the table of measured primitive times (`table.load_op_times`): the stem, the two reduction
blocks, the head, and for each stage and operation a "uniform" cell whose six edges all are
that operation. A cell's time is the mean of its six edges' uniform-cell times (so it carries
the residual adds and the cell's own overhead). The per-class layer times thus sum to the
measured latency exactly, and no model is profiled per cell: 5^6 cells x 3 stages collapse to
19 primitives. The shares are a CPU's, not each device's: a caveat for the GPU (its batch-1
latency is mostly kernel launches) and for average pooling, which this CPU finds dearer,
relative to a convolution, than a regression on the Pi 4's or the GPU's latencies does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ...instance import DNN, INPUT, Layer
from .cell import EDGES, N_ARCHS, OPS, Nb201Error, arch_string, parse_arch
from .model import INPUT_BYTES, layer_specs
from .table import DATASETS, DEVICE_COLUMNS, LATENCY_COLUMNS, load_op_times, load_table


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
        return DNN(f"nb201-{i}", float(INPUT_BYTES), tuple(layers))

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
