"""The NB201 network: its torch modules, its 19 layers in closed form, and primitive timing.

`build_model` is NB201's macro skeleton (after xautodl's TinyNetwork / InferCell /
ResNetBasicblock); torch is imported only when it is called. A cell network is a chain of 19
splittable layers named after its torch modules: ``stem``, ``cells.0`` .. ``cells.16``
(``cells.5`` and ``cells.11`` are the ResNet reduction blocks between the stages) and ``head``
(BN, ReLU, global pooling, classifier): exactly what
`splitplan.profile.profile(build_model(arch), x, granularity="block")` makes of it.
`layer_specs` gives each layer's FLOPs, parameter and output bytes (fp32) in closed form (the
tests check them against the profiler) and the primitives whose measured times make up its
host-CPU time; `measure_op_times` times those primitives on this machine.
"""

from __future__ import annotations

import math
import os
import platform
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .cell import (
    CELLS_PER_STAGE,
    CHANNELS,
    EDGES,
    NUM_CLASSES,
    OPS,
    RESOLUTION,
    Nb201Error,
    parse_arch,
)

if TYPE_CHECKING:
    from torch import nn

OP_TIMES_FORMAT = "splitplan-nb201-op-times/1"  # of `measure_op_times` tables
_BYTES = 4  # fp32
INPUT_BYTES = 3 * RESOLUTION[0] * RESOLUTION[0] * _BYTES  # one 32 x 32 RGB image, fp32


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

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.op(x)

    class Zero(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
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

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            nodes = [x]
            for node in (1, 2, 3):
                total: torch.Tensor | None = None
                for e, (dst, src) in enumerate(EDGES):
                    if dst == node:
                        y = self.edges[e](nodes[src])
                        total = y if total is None else total + y
                assert total is not None  # every node 1..3 has an incoming edge in EDGES
                nodes.append(total)
            return nodes[3]

    class Stem(nn.Module):
        def __init__(self, c: int) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, c, 3, padding=1, bias=False)
            self.bn = nn.BatchNorm2d(c)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
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

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.downsample(x) + self.conv_b(self.conv_a(x))

    class Head(nn.Module):
        def __init__(self, c: int, classes: int) -> None:
            super().__init__()
            self.lastact = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
            self.global_pooling = nn.AdaptiveAvgPool2d(1)
            self.classifier = nn.Linear(c, classes)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
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

        def forward(self, x: torch.Tensor) -> torch.Tensor:
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


def build_model(arch: str, num_classes: int = NUM_CLASSES) -> nn.Module:
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
class LayerSpec:
    """One layer of a cell network: FLOPs (2 per multiply-accumulate), parameter and output
    bytes (fp32), and the primitives (key of the op-times table, weight) its host time sums."""

    name: str
    flops: int
    param_bytes: int
    out_bytes: int
    primitives: tuple[tuple[str, float], ...]  # (primitive time key, weight)


@lru_cache(maxsize=1)
def _fixed_specs(num_classes: int) -> dict[str, LayerSpec]:
    c0, h0 = CHANNELS[0], RESOLUTION[0]
    specs = {
        "stem": LayerSpec(
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
        specs[key] = LayerSpec(key, flops, params, co * h * h * _BYTES, ((key, 1),))
    c = CHANNELS[-1]
    specs["head"] = LayerSpec(
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


def layer_specs(arch: str, num_classes: int = NUM_CLASSES) -> list[LayerSpec]:
    """The 19 layers of a cell network (chain order) with closed-form FLOPs and bytes."""
    ops = parse_arch(arch)
    fixed = _fixed_specs(num_classes)
    specs = [fixed["stem"]]
    index = 0
    for stage in range(3):
        if stage:
            r = fixed[f"reduction{stage}"]
            specs.append(
                LayerSpec(f"cells.{index}", r.flops, r.param_bytes, r.out_bytes, r.primitives)
            )
            index += 1
        flops, params, out, prims = _cell_spec(ops, stage)
        for _ in range(CELLS_PER_STAGE):
            specs.append(LayerSpec(f"cells.{index}", flops, params, out, prims))
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
        "machine": machine_description(),
        "times": times,
    }


def machine_description() -> str:
    """This machine's CPU model, logical CPU count and OS (recorded with measured times)."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"
