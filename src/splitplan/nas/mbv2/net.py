"""One architecture of the space as a plain torch network (`Mbv2Net`), and its FLOPs.

Input 1 x 8 x 8 (a digit); the stem (3x3 conv to `STEM` channels, BN, ReLU6); the blocks of the
three stages at 8x8, 4x4 and 2x2 (strides `STRIDES`; the first block of a stage has the stride
and changes the width, the others are residual); a head (1x1 conv to `HEAD` channels, BN, ReLU6)
and a classifier (global average pool, linear to 10). At the profiler's ``block`` granularity
each of ``stem``, ``blocks.i``, ``head`` and ``classifier`` is one layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ...digits import INPUT_SHAPE, NUM_CLASSES
from .arch import HEAD, STEM, STRIDES, Arch, parse_arch

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
