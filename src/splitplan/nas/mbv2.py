"""A trainable MobileNetV2-like search space on scikit-learn's digits (issue 5), run offline.

Architecture. Input 1 x 8 x 8 (a digit); a fixed stem (3x3 conv to `STEM` channels, BN, ReLU6);
three stages of inverted-residual blocks at 8x8, 4x4 and 2x2 (strides `STRIDES`); a head (1x1
conv to `HEAD` channels, BN, ReLU6) and a classifier (global average pool, linear to 10). Each
stage chooses its depth (`DEPTHS`), width multiplier of its `CHANNELS` (`WIDTHS`), depthwise
kernel size (`KERNELS`; 3 only on the 2x2 maps, see `CHOICES`) and expansion ratio
(`EXPANSIONS`; hidden width = the block's input width x ratio). The first block of a stage has the
stride and changes the width; the others are residual. A key names an architecture canonically,
stage by stage: ``d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-6``. `SPACE_SIZE` = 36 x 36 x 18 = 23,328
architectures, from 0.29 to 3.5 MFLOPs per image.

Weight sharing (one-shot, OFA-style). The `Supernet` holds one block per (stage, depth index) at
the largest width, kernel and expansion. A subnet uses the first `depth` blocks of a stage, the
leading output / hidden channels and the central k x k window of the depthwise kernel: its
forward pass reads *views* of the supernet's parameters (no copy), so its gradients land in
them. `Supernet.subnet(arch)` extracts a standalone `Mbv2Net` holding copies of those slices
(for profiling and deployment); `build_net(arch)` is the same network freshly initialised.

Batch norm. Sliced widths share the supernet's BN affine parameters (sliced like the convs), but
running statistics mixed over many subnets fit none of them, so an extracted subnet's running
statistics are recalibrated (OFA's approach) by one forward pass over the whole training split in
train mode before it is scored or returned (``calibrate=True``, the default); the supernet's own
buffers are not touched.

Training. `train_supernet` trains once, with the sandwich rule (each step: the largest subnet on
the labels, the smallest and `n_random` random subnets distilled in place from the largest's
soft predictions; gradients summed, one SGD step) or the uniform single-path rule (one random
subnet per step on the labels). Candidates are scored by their inherited weights
(`Supernet.evaluate`, validation split); finalists are retrained from scratch (`retrain`).

Data. The 1,797 digits (sklearn's bundled copy, no download) are split by a fixed permutation of
`DATA_SEED` into 1,077 training, 360 validation and 360 test images, standardised with the
training split's mean and standard deviation. Training augments with random shifts of at most one
pixel. Training is deterministic given its seed on the CPU (same machine, same thread count);
on CUDA it is up to cuDNN's nondeterminism.

Requires torch and scikit-learn (`pip install splitplan[torch,nas]`).
"""

from __future__ import annotations

import functools
import itertools
import math
import os
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..instance import DNN

# --------------------------------------------------------------------------- the space

STAGES = 3
DEPTHS = (1, 2, 3)
WIDTHS = (0.5, 0.75, 1.0)
KERNELS = (3, 5)
EXPANSIONS = (3, 6)
STEM = 16
CHANNELS = (16, 24, 32)  # output channels of each stage at width 1.0
STRIDES = (1, 2, 2)  # stages at 8x8, 4x4, 2x2
HEAD = 64
NUM_CLASSES = 10
INPUT_SHAPE = (1, 8, 8)
# Per stage, the choices of depth, width, kernel and expansion. On the last stage's 2x2 maps a
# 5x5 depthwise kernel (padding 2) only ever multiplies its central 3x3 window with data: it
# would be the same function as k = 3 at a higher FLOP count, so that stage has k = 3 only.
CHOICES: dict[str, tuple[tuple, ...]] = {
    "d": (DEPTHS,) * STAGES,
    "w": (WIDTHS,) * STAGES,
    "k": (KERNELS, KERNELS, (3,)),
    "e": (EXPANSIONS,) * STAGES,
}
SPACE_SIZE = math.prod(len(c) for choices in CHOICES.values() for c in choices)  # 23,328
FORMAT = "splitplan-mbv2-supernet/1"

# data: fixed split of sklearn's digits
DATA_SEED = 0
N_VAL = 360
N_TEST = 360
SPLITS = ("train", "val", "test")

# training recipe (supernet and retraining)
BATCH_SIZE = 64
SUPERNET_LR = 0.1  # the sandwich rule sums the gradients of four subnets into shared weights
RETRAIN_LR = 0.2
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-5
SUPERNET_EPOCHS = 20
RETRAIN_EPOCHS = 20

_EXAMPLE = "d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-6"


@dataclass(frozen=True)
class Arch:
    """One architecture: per stage depth, width multiplier, kernel size and expansion ratio."""

    depths: tuple[int, ...]
    widths: tuple[float, ...]
    kernels: tuple[int, ...]
    expansions: tuple[int, ...]

    def __post_init__(self) -> None:
        for letter, field, values in (
            ("d", "depths", self.depths),
            ("w", "widths", self.widths),
            ("k", "kernels", self.kernels),
            ("e", "expansions", self.expansions),
        ):
            if len(values) != STAGES:
                raise ValueError(f"{field}: expected {STAGES} stages, got {len(values)}")
            for i, v in enumerate(values):
                if v not in CHOICES[letter][i]:
                    allowed = ", ".join(map(str, CHOICES[letter][i]))
                    raise ValueError(f"{field}[{i}] = {v!r} is not one of {allowed}")

    @property
    def key(self) -> str:
        """The canonical string, e.g. ``d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-6``."""
        parts = (self.depths, tuple(float(w) for w in self.widths), self.kernels, self.expansions)
        return "_".join(
            letter + "-".join(str(v) for v in values)
            for letter, values in zip("dwke", parts, strict=True)
        )

    def __str__(self) -> str:
        return self.key

    def channels(self) -> tuple[int, ...]:
        """Output channels of each stage."""
        return tuple(round(c * w) for c, w in zip(CHANNELS, self.widths, strict=True))

    def blocks(self) -> list[tuple[int, int, int, int, int, int]]:
        """Per block: (stage, index in stage, input channels, output channels, kernel, hidden)."""
        out, cin = [], STEM
        for s, cout in enumerate(self.channels()):
            for i in range(self.depths[s]):
                out.append((s, i, cin, cout, self.kernels[s], cin * self.expansions[s]))
                cin = cout
        return out

    @staticmethod
    def largest() -> Arch:
        return Arch(*(tuple(max(c) for c in CHOICES[letter]) for letter in "dwke"))

    @staticmethod
    def smallest() -> Arch:
        return Arch(*(tuple(min(c) for c in CHOICES[letter]) for letter in "dwke"))

    @staticmethod
    def sample(rng: random.Random) -> Arch:
        """A uniformly random architecture (each choice independent and uniform)."""
        return Arch(*(tuple(rng.choice(c) for c in CHOICES[letter]) for letter in "dwke"))


def parse_arch(text: str | Arch) -> Arch:
    """Parse a key like ``d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-6`` (widths may be written ``1``);
    raise ValueError saying what is wrong."""
    if isinstance(text, Arch):
        return text
    if not isinstance(text, str):
        raise ValueError(f"an architecture key must be a string, got {type(text).__name__}")
    groups = text.strip().split("_")
    if len(groups) != 4 or [g[:1] for g in groups] != list("dwke"):
        raise ValueError(
            f"bad architecture {text!r}: expected 'd<depths>_w<widths>_k<kernels>_e<expansions>' "
            f"with {STAGES} values each, e.g. {_EXAMPLE!r}"
        )
    values: list[tuple] = []
    for g in groups:
        items = g[1:].split("-")
        if len(items) != STAGES:
            raise ValueError(
                f"bad architecture {text!r}: {g!r} has {len(items)} values, expected {STAGES} "
                f"(one per stage)"
            )
        try:
            if g[0] == "w":
                values.append(tuple(float(v) for v in items))
            else:
                values.append(tuple(int(v) for v in items))
        except ValueError:
            raise ValueError(f"bad architecture {text!r}: {g!r} is not numeric") from None
    try:
        return Arch(*values)
    except ValueError as exc:
        raise ValueError(f"bad architecture {text!r}: {exc}") from None


def canonical(text: str | Arch) -> str:
    """The canonical key of an architecture (validating it)."""
    return parse_arch(text).key


def all_archs() -> list[str]:
    """Every key of the space (`SPACE_SIZE` of them), in a fixed order."""
    stages = [
        list(itertools.product(*(CHOICES[letter][i] for letter in "dwke"))) for i in range(STAGES)
    ]
    out = []
    for combo in itertools.product(*stages):
        d, w, k, e = zip(*combo, strict=True)
        out.append(Arch(d, w, k, e).key)
    return out


# --------------------------------------------------------------------------- standalone network


class ConvBNAct(nn.Module):
    """Convolution (no bias), batch norm, ReLU6 (or none)."""

    def __init__(
        self, cin: int, cout: int, k: int, stride: int = 1, groups: int = 1, act: bool = True
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout)
        self.act = nn.ReLU6() if act else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


class InvertedResidual(nn.Module):
    """1x1 expansion, k x k depthwise, 1x1 projection; residual when `residual`."""

    def __init__(
        self, cin: int, cout: int, k: int, hidden: int, stride: int, residual: bool
    ) -> None:
        super().__init__()
        self.expand = ConvBNAct(cin, hidden, 1)
        self.depthwise = ConvBNAct(hidden, hidden, k, stride, groups=hidden)
        self.project = ConvBNAct(hidden, cout, 1, act=False)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x)))
        return x + y if self.residual else y


class Classifier(nn.Module):
    """Global average pool and a linear layer."""

    def __init__(self, cin: int, classes: int) -> None:
        super().__init__()
        self.fc = nn.Linear(cin, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


class Mbv2Net(nn.Module):
    """One architecture of the space as a plain network: stem, blocks.0..n-1, head, classifier
    (each one layer at the profiler's ``block`` granularity)."""

    def __init__(self, arch: str | Arch) -> None:
        super().__init__()
        self.arch = parse_arch(arch)
        self.stem = ConvBNAct(INPUT_SHAPE[0], STEM, 3)
        self.blocks = nn.Sequential(
            *(
                InvertedResidual(cin, cout, k, hidden, STRIDES[s] if i == 0 else 1, i > 0)
                for s, i, cin, cout, k, hidden in self.arch.blocks()
            )
        )
        self.head = ConvBNAct(self.arch.channels()[-1], HEAD, 1)
        self.classifier = Classifier(HEAD, NUM_CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.head(self.blocks(self.stem(x))))


def build_net(arch: str | Arch) -> Mbv2Net:
    """`arch` as a freshly initialised network (uses torch's global RNG)."""
    return Mbv2Net(arch)


def model_stats(model: nn.Module) -> tuple[float, int]:
    """(FLOPs of one 8x8 image, 2 per multiply-accumulate; number of parameters)."""
    from torch.utils.flop_counter import FlopCounterMode

    p = next(model.parameters())
    x = torch.zeros(1, *INPUT_SHAPE, device=p.device, dtype=p.dtype)
    was_training = model.training
    model.eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model(x)
    model.train(was_training)
    return float(counter.get_total_flops()), sum(q.numel() for q in model.parameters())


# --------------------------------------------------------------------------- supernet


class _DynConvBN(nn.Module):
    """A conv + BN at its largest size whose forward uses a slice: the leading `cout` output
    channels, the leading input channels of `x`, the central k x k window of the kernel."""

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int,
        stride: int = 1,
        depthwise: bool = False,
        act: bool = True,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(
            cin, cout, k, stride, k // 2, groups=cout if depthwise else 1, bias=False
        )
        self.bn = nn.BatchNorm2d(cout)
        self.stride, self.depthwise, self.act, self.k_max = stride, depthwise, act, k

    def sliced(self, cin: int, cout: int, k: int) -> dict[str, torch.Tensor]:
        """Views (not copies) of the parameters and BN buffers a (cin, cout, k) slice uses."""
        lo = (self.k_max - k) // 2
        w = self.conv.weight[:cout, : (1 if self.depthwise else cin), lo : lo + k, lo : lo + k]
        bn = self.bn
        return {
            "conv.weight": w,
            "bn.weight": bn.weight[:cout],
            "bn.bias": bn.bias[:cout],
            "bn.running_mean": bn.running_mean[:cout],
            "bn.running_var": bn.running_var[:cout],
        }

    def forward(self, x: torch.Tensor, cout: int, k: int) -> torch.Tensor:
        cin = x.shape[1]
        if self.depthwise and cout != cin:
            raise ValueError(f"depthwise slice needs cout == cin, got {cout} and {cin}")
        t = self.sliced(cin, cout, k)
        y = F.conv2d(
            x, t["conv.weight"], None, self.stride, k // 2, 1, cout if self.depthwise else 1
        )
        y = F.batch_norm(
            y,
            t["bn.running_mean"],
            t["bn.running_var"],
            t["bn.weight"],
            t["bn.bias"],
            self.training,
            self.bn.momentum,
            self.bn.eps,
        )
        return F.relu6(y) if self.act else y


class _DynBlock(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, residual: bool, k_max: int) -> None:
        super().__init__()
        hidden = cin * max(EXPANSIONS)
        self.expand = _DynConvBN(cin, hidden, 1)
        self.depthwise = _DynConvBN(hidden, hidden, k_max, stride, depthwise=True)
        self.project = _DynConvBN(hidden, cout, 1, act=False)
        self.stride, self.residual = stride, residual

    def forward(self, x: torch.Tensor, cout: int, k: int, hidden: int) -> torch.Tensor:
        y = self.project(self.depthwise(self.expand(x, hidden, 1), hidden, k), cout, 1)
        return x + y if self.residual else y


class Supernet(nn.Module):
    """The weight-sharing supernet of the space: `forward(x, arch)` runs one subnet on views of
    the shared tensors. `meta` records how it was trained (epochs, seed, rule, seconds, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = ConvBNAct(INPUT_SHAPE[0], STEM, 3)
        stages, cin = [], STEM
        for s, cout in enumerate(CHANNELS):
            stages.append(
                nn.ModuleList(
                    _DynBlock(
                        cin if i == 0 else cout,
                        cout,
                        STRIDES[s] if i == 0 else 1,
                        i > 0,
                        max(CHOICES["k"][s]),
                    )
                    for i in range(max(DEPTHS))
                )
            )
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.head = _DynConvBN(CHANNELS[-1], HEAD, 1)
        self.classifier = Classifier(HEAD, NUM_CLASSES)
        self.meta: dict[str, Any] = {}

    @property
    def device(self) -> torch.device:
        return self.stem.conv.weight.device

    def forward(self, x: torch.Tensor, arch: str | Arch | None = None) -> torch.Tensor:
        a = Arch.largest() if arch is None else parse_arch(arch)
        x = self.stem(x)
        for s, i, _cin, cout, k, hidden in a.blocks():
            x = self.stages[s][i](x, cout, k, hidden)
        return self.classifier(self.head(x, HEAD, 1))

    def shared_tensors(self, arch: str | Arch) -> dict[str, torch.Tensor]:
        """The tensors `arch`'s forward reads, by the extracted subnet's state-dict names: views
        of this supernet's parameters and buffers (same storage), the fixed stem and classifier
        included."""
        a = parse_arch(arch)
        out = {
            f"stem.{n}": t
            for n, t in self.stem.state_dict(keep_vars=True).items()
            if not n.endswith("num_batches_tracked")
        }
        for j, (s, i, cin, cout, k, hidden) in enumerate(a.blocks()):
            block = self.stages[s][i]
            for part, (ci, co, kk) in (
                ("expand", (cin, hidden, 1)),
                ("depthwise", (hidden, hidden, k)),
                ("project", (hidden, cout, 1)),
            ):
                for n, t in getattr(block, part).sliced(ci, co, kk).items():
                    out[f"blocks.{j}.{part}.{n}"] = t
        for n, t in self.head.sliced(a.channels()[-1], HEAD, 1).items():
            out[f"head.{n}"] = t
        out |= {f"classifier.{n}": t for n, t in self.classifier.state_dict(keep_vars=True).items()}
        return out

    def subnet(self, arch: str | Arch, calibrate: bool = True) -> Mbv2Net:
        """`arch` as a standalone `Mbv2Net` (eval mode, on this supernet's device) holding copies
        of the shared weights; with `calibrate`, its BN running statistics are recomputed on the
        training split (see the module's doc), else copied from the supernet."""
        a = parse_arch(arch)
        with torch.random.fork_rng(devices=[]):  # its initial weights are overwritten below
            net = Mbv2Net(a).to(self.device)
        shared = self.shared_tensors(a)
        with torch.no_grad():
            own = net.state_dict(keep_vars=True)
            for name, t in own.items():
                if name.endswith("num_batches_tracked"):
                    continue
                if name not in shared or shared[name].shape != t.shape:
                    raise AssertionError(f"no shared tensor for {name}")  # a bug, not user error
                t.copy_(shared[name])
        if calibrate:
            calibrate_bn(
                net, digits(self.device, self.meta.get("data_seed", DATA_SEED))["train"][0]
            )
        return net.eval()

    def evaluate(self, arch: str | Arch, split: str = "val") -> float:
        """Top-1 accuracy in percent of `arch` with the inherited weights (BN recalibrated)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        x, y = digits(self.device, self.meta.get("data_seed", DATA_SEED))[split]
        return accuracy(self.subnet(arch), x, y)

    def save(self, path: str | Path) -> None:
        """torch.save of the state dict, the space's configuration and `meta` (written to a
        temporary file beside `path`, then renamed: readers never see a partial file)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        blob = {
            "format": FORMAT,
            "space": _space_config(),
            "meta": self.meta,
            "state": self.state_dict(),
        }
        try:
            torch.save(blob, tmp)
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)

    @classmethod
    def load(cls, path: str | Path, device: str | torch.device = "cpu") -> Supernet:
        """A supernet saved by `save`; ValueError if the file is not one or the space differs."""
        try:
            blob = torch.load(Path(path), map_location=device, weights_only=True)
        except FileNotFoundError:
            raise
        except Exception as exc:
            raise ValueError(f"{path}: not a saved supernet ({exc})") from None
        if not isinstance(blob, dict) or blob.get("format") != FORMAT:
            raise ValueError(f"{path}: not a saved supernet (format is not {FORMAT})")
        if blob.get("space") != _space_config():
            raise ValueError(
                f"{path}: saved for a different space {blob.get('space')}; retrain the supernet"
            )
        net = cls().to(device)
        net.load_state_dict(blob["state"])
        net.meta = dict(blob.get("meta") or {})
        return net.eval()


def _space_config() -> dict[str, Any]:
    return {
        "choices": {k: [list(c) for c in v] for k, v in CHOICES.items()},
        "stem": STEM,
        "channels": list(CHANNELS),
        "strides": list(STRIDES),
        "head": HEAD,
    }


# --------------------------------------------------------------------------- data


@functools.cache
def _digits_cpu(data_seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the mbv2 space needs scikit-learn for its digits data: pip install scikit-learn "
            "(part of splitplan[nas])"
        ) from None
    import numpy as np

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1)
    y = torch.tensor(data.target, dtype=torch.int64)
    order = torch.tensor(np.random.RandomState(data_seed).permutation(len(y)))
    test, val, train = order[:N_TEST], order[N_TEST : N_TEST + N_VAL], order[N_TEST + N_VAL :]
    mean, std = x[train].mean(), x[train].std()
    x = (x - mean) / std
    return {"train": (x[train], y[train]), "val": (x[val], y[val]), "test": (x[test], y[test])}


def digits(
    device: str | torch.device = "cpu", data_seed: int = DATA_SEED
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """The standardised digits split into ``train`` (1,077), ``val`` (360), ``test`` (360):
    (images N x 1 x 8 x 8, labels N) per split, on `device`."""
    device = torch.device(device)
    if device.type == "cpu":
        return dict(_digits_cpu(data_seed))
    return dict(_digits_on(device, data_seed))


@functools.cache
def _digits_on(
    device: torch.device, data_seed: int
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    return {k: (x.to(device), y.to(device)) for k, (x, y) in _digits_cpu(data_seed).items()}


def _shift(x: torch.Tensor, g: torch.Generator, fill: float) -> torch.Tensor:
    """Each image shifted by -1, 0 or +1 pixel in each direction (padded with `fill`)."""
    padded = F.pad(x, (1, 1, 1, 1), value=fill)
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=g).to(x.device)
    out = torch.empty_like(x)
    for dy in range(3):
        for dx in range(3):
            m = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[m] = padded[m, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    return out


def _chunks(x: torch.Tensor, size: int = 256) -> tuple[torch.Tensor, ...]:
    """`x` in nearly equal chunks of at most `size` (small batches run faster on the CPU)."""
    return torch.tensor_split(x, max(1, math.ceil(len(x) / size)))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent (model in eval mode)."""
    model.eval()
    with torch.no_grad():
        pairs = zip(_chunks(x), _chunks(y), strict=True)
        correct = sum(int((model(c).argmax(1) == t).sum()) for c, t in pairs)
    return 100.0 * correct / len(y)


def calibrate_bn(model: nn.Module, x: torch.Tensor) -> None:
    """Recompute every BN layer's running statistics on `x` (train-mode passes over nearly equal
    chunks of it, averaged with equal weights)."""
    bns = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None  # cumulative average over the chunks
    model.train()
    with torch.no_grad():
        for chunk in _chunks(x):
            model(chunk)
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
    model.eval()


def _optimizer(model: nn.Module, steps: int, lr: float) -> tuple[torch.optim.Optimizer, Any]:
    decay = [p for n, p in model.named_parameters() if p.ndim > 1]
    no_decay = [p for n, p in model.named_parameters() if p.ndim <= 1]
    opt = torch.optim.SGD(
        [{"params": decay, "weight_decay": WEIGHT_DECAY}, {"params": no_decay, "weight_decay": 0}],
        lr=lr,
        momentum=MOMENTUM,
        nesterov=True,
    )
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: 0.5 * (1 + math.cos(math.pi * min(t, steps) / steps))
    )
    return opt, sched


def _batches(n: int, g: torch.Generator) -> list[torch.Tensor]:
    perm = torch.randperm(n, generator=g)
    return [perm[i : i + BATCH_SIZE] for i in range(0, n, BATCH_SIZE)]


Progress = Callable[[int, int, float], None]  # (epochs done, epochs, mean training loss)


def _check(epochs: int, device: str | torch.device) -> torch.device:
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
    return device


def train_supernet(
    epochs: int = SUPERNET_EPOCHS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    rule: str = "sandwich",
    progress: Progress | None = None,
    *,
    n_random: int = 2,
    distill: bool = True,
    data_seed: int = DATA_SEED,
) -> Supernet:
    """Train the supernet once on the training split.

    ``sandwich``: per step the largest subnet on the labels, then the smallest and `n_random`
    uniformly random ones, on the largest's soft predictions with `distill` (in-place
    distillation) or on the labels; ``uniform``: one uniformly random subnet per step on the
    labels (single-path one-shot). SGD with Nesterov momentum, cosine learning rate from
    `SUPERNET_LR` (`retrain` uses `RETRAIN_LR`: one path's gradient per step), batch 64,
    random one-pixel shifts. `progress(epoch, epochs, mean_loss)` is called after each epoch
    (the loss of the largest subnet, or of the sampled one under ``uniform``); the result's
    `meta` records the settings, the seconds taken and the loss per epoch."""
    if rule not in ("sandwich", "uniform"):
        raise ValueError(f"unknown rule {rule!r}; expected 'sandwich' or 'uniform'")
    if not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"n_random must be a non-negative integer, got {n_random!r}")
    device = _check(epochs, device)
    x, y = digits(device, data_seed)["train"]
    background = float(x.min())  # a blank pixel, standardised
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Supernet().to(device)
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    steps = epochs * math.ceil(len(y) / BATCH_SIZE)
    opt, sched = _optimizer(net, steps, SUPERNET_LR)
    history = []
    for epoch in range(epochs):
        net.train()
        total, count = 0.0, 0
        for idx in _batches(len(y), g):
            xb, yb = _shift(x[idx.to(device)], g, background), y[idx.to(device)]
            opt.zero_grad(set_to_none=True)
            if rule == "uniform":
                loss = F.cross_entropy(net(xb, Arch.sample(rng)), yb)
                loss.backward()
            else:
                logits = net(xb, Arch.largest())
                loss = F.cross_entropy(logits, yb)
                loss.backward()
                soft = F.softmax(logits.detach(), 1)
                for a in [Arch.smallest()] + [Arch.sample(rng) for _ in range(n_random)]:
                    out = net(xb, a)
                    if distill:
                        sub = F.cross_entropy(out, soft)
                    else:
                        sub = F.cross_entropy(out, yb)
                    sub.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(yb)
            count += len(yb)
        history.append(total / count)
        if progress is not None:
            progress(epoch + 1, epochs, history[-1])
    net.eval()
    net.meta = {
        "epochs": epochs,
        "seed": seed,
        "rule": rule,
        "n_random": n_random,
        "distill": distill,
        "data_seed": data_seed,
        "device": str(device),
        "seconds": time.perf_counter() - start,
        "loss": history,
    }
    return net


def train_net(
    net: nn.Module,
    epochs: int,
    seed: int,
    device: torch.device,
    data_seed: int = DATA_SEED,
    progress: Progress | None = None,
    lr: float = RETRAIN_LR,
) -> nn.Module:
    """Train `net` on the training split with the supernet's recipe (labels only, learning rate
    `lr`)."""
    x, y = digits(device, data_seed)["train"]
    background = float(x.min())
    net = net.to(device)
    g = torch.Generator().manual_seed(seed)
    opt, sched = _optimizer(net, epochs * math.ceil(len(y) / BATCH_SIZE), lr)
    for epoch in range(epochs):
        net.train()
        total = 0.0
        for idx in _batches(len(y), g):
            xb, yb = _shift(x[idx.to(device)], g, background), y[idx.to(device)]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(yb)
        if progress is not None:
            progress(epoch + 1, epochs, total / len(y))
    return net.eval()


def retrain(
    arch: str | Arch,
    epochs: int = RETRAIN_EPOCHS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    progress: Progress | None = None,
    *,
    data_seed: int = DATA_SEED,
) -> dict[str, Any]:
    """Train `arch` from scratch (fresh weights from `seed`) on the training split; return its
    true accuracy: ``accuracy_test``, ``accuracy_val`` (percent), ``accuracy_train``,
    ``epochs``, ``seconds``, ``seed``, ``arch`` (canonical key), ``flops``, ``params``."""
    a = parse_arch(arch)
    device = _check(epochs, device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_net(a)
    net = train_net(net, epochs, seed, device, data_seed, progress)
    seconds = time.perf_counter() - start
    data = digits(device, data_seed)
    flops, params = model_stats(net)
    return {
        "arch": a.key,
        "accuracy_test": accuracy(net, *data["test"]),
        "accuracy_val": accuracy(net, *data["val"]),
        "accuracy_train": accuracy(net, *data["train"]),
        "epochs": epochs,
        "seconds": seconds,
        "seed": seed,
        "device": str(device),
        "flops": flops,
        "params": params,
    }


# --------------------------------------------------------------------------- the search space


class Mbv2Space:
    """The ``mbv2`` search space (the `splitplan.nas.Space` protocol).

    Give it a trained `supernet`, or a `path`: a supernet saved there with the same training
    settings is loaded, else one is trained (`epochs`, `seed`, `rule`, `device`, reporting to
    `progress`) on first use and saved there. Accuracies are the supernet's estimates on the
    validation split; `dnn` profiles the extracted subnet (batch of one image) at ``block``
    granularity (layers ``stem``, ``blocks.0`` ... ``blocks.n-1``, ``head``, ``classifier``) on
    `device` (measured class ``host-cpu`` on the CPU, the GPU's name on CUDA) and adds roofline
    times (`efficiency`, default `splitplan.devices.DEFAULT_EFFICIENCY`) for the requested classes
    of `splitplan.devices.DEVICES`. Both are cached per architecture.
    `all_archs` lists the `SPACE_SIZE` keys when that is at most `enumerate_max`, else None."""

    name = "mbv2"

    def __init__(
        self,
        supernet: Supernet | None = None,
        *,
        path: str | Path | None = None,
        epochs: int = SUPERNET_EPOCHS,
        seed: int = 0,
        rule: str = "sandwich",
        device: str | torch.device = "cpu",
        progress: Progress | None = None,
        profile_repeats: int = 5,
        efficiency: float | None = None,
        enumerate_max: int = SPACE_SIZE,
    ) -> None:
        self._supernet = supernet
        self.path = Path(path) if path is not None else None
        self.epochs, self.seed, self.rule = epochs, seed, rule
        self.device = torch.device(device)
        self.progress = progress
        self.profile_repeats = profile_repeats
        self.efficiency = efficiency
        self.enumerate_max = enumerate_max
        self._accuracy: dict[str, float] = {}
        self._profiled: dict[str, DNN] = {}

    @property
    def supernet(self) -> Supernet:
        """The trained supernet (loaded or trained on first use)."""
        if self._supernet is None:
            self._supernet = self._load_or_train()
        return self._supernet

    def _load_or_train(self) -> Supernet:
        wanted = {"epochs": self.epochs, "seed": self.seed, "rule": self.rule}
        if self.path is not None and self.path.exists():
            net = Supernet.load(self.path, self.device)
            if all(net.meta.get(k) == v for k, v in wanted.items()):
                return net
        net = train_supernet(self.epochs, self.seed, self.device, self.rule, self.progress)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            net.save(self.path)
        return net

    def suggest(self, trial: Any) -> str:
        d, w, k, e = (
            tuple(trial.suggest_categorical(f"{c}{i}", list(CHOICES[c][i])) for i in range(STAGES))
            for c in "dwke"
        )
        return Arch(d, w, k, e).key

    def accuracy(self, arch: str) -> float:
        key = canonical(arch)
        if key not in self._accuracy:
            self._accuracy[key] = self.supernet.evaluate(key, "val")
        return self._accuracy[key]

    def dnn(self, arch: str, classes: Sequence[str]) -> DNN:
        from .. import devices
        from ..profile import profile

        key = canonical(arch)
        if key not in self._profiled:
            net = self.supernet.subnet(key, calibrate=False)  # BN statistics: timing-neutral
            x = torch.zeros(1, *INPUT_SHAPE, device=self.device)
            self._profiled[key], _ = profile(
                net,
                x,
                granularity="block",
                repeats=self.profile_repeats,
                warmup=2,
                device=self.device,
                name=f"mbv2-digits-{key}",
            )
        dnn = self._profiled[key]
        measured = set(dnn.layers[0].time_s)
        unknown = [c for c in classes if c not in measured and c not in devices.DEVICES]
        if unknown:
            raise ValueError(
                f"no times for device class(es) {', '.join(unknown)}: measured {sorted(measured)}, "
                f"roofline for {', '.join(devices.DEVICES)}"
            )
        wanted = [c for c in classes if c not in measured]
        if self.efficiency is None:
            return devices.with_roofline_times(dnn, wanted)
        return devices.with_roofline_times(dnn, wanted, self.efficiency)

    def all_archs(self) -> Sequence[str] | None:
        return all_archs() if SPACE_SIZE <= self.enumerate_max else None
