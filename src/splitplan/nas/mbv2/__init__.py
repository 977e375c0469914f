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
the largest width, kernel and expansion; a subnet's forward pass reads views of its parameters.
`Supernet.subnet(arch)` extracts a standalone `Mbv2Net` (BN statistics recalibrated);
`build_net(arch)` is the same network freshly initialised. `train_supernet` trains once (the
sandwich or the uniform rule); candidates are scored by their inherited weights
(`Supernet.evaluate`, validation split); finalists are retrained from scratch (`retrain`).

Data and recipe: `splitplan.digits` (1,077 training, 360 validation and 360 test images; random
one-pixel shifts; SGD with Nesterov momentum and a cosine rate), shared with
`splitplan.slimmable`.

The package, by concern:

- `arch`: the choices, `Arch`, `parse_arch` / `canonical` keys, `all_archs` (no torch);
- `net`: the standalone network (`Mbv2Net`, `build_net`) and `model_stats`;
- `supernet`: the weight-sharing `Supernet`, its file format and `train_supernet`;
- `space`: `Mbv2Space` (the `splitplan.nas.Space` protocol) and `retrain`.

Requires torch and scikit-learn (`pip install splitplan[torch,nas]`).
"""

from __future__ import annotations

from .arch import (
    CHANNELS,
    CHOICES,
    DEPTHS,
    EXPANSIONS,
    HEAD,
    KERNELS,
    SPACE_SIZE,
    STAGES,
    STEM,
    STRIDES,
    WIDTHS,
    Arch,
    all_archs,
    canonical,
    parse_arch,
)
from .net import Classifier, ConvBNAct, InvertedResidual, Mbv2Net, build_net, model_stats
from .space import RETRAIN_EPOCHS, Mbv2Space, retrain
from .supernet import FORMAT, SUPERNET_EPOCHS, SUPERNET_LR, Supernet, train_supernet

__all__ = [
    "CHANNELS",
    "CHOICES",
    "DEPTHS",
    "EXPANSIONS",
    "FORMAT",
    "HEAD",
    "KERNELS",
    "RETRAIN_EPOCHS",
    "SPACE_SIZE",
    "STAGES",
    "STEM",
    "STRIDES",
    "SUPERNET_EPOCHS",
    "SUPERNET_LR",
    "WIDTHS",
    "Arch",
    "Classifier",
    "ConvBNAct",
    "InvertedResidual",
    "Mbv2Net",
    "Mbv2Space",
    "Supernet",
    "all_archs",
    "build_net",
    "canonical",
    "model_stats",
    "parse_arch",
    "retrain",
    "train_supernet",
]
