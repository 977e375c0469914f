"""scikit-learn's digits as a small, offline training set, and the recipe that trains on it.

Shared by the MobileNetV2-digits search space (`splitplan.nas.mbv2`) and the slimmable encoders
(`splitplan.slimmable`), so both train alike.

Data. The 1,797 digits (sklearn's bundled copy, no download) are split by a fixed permutation of
`DATA_SEED` into 1,077 training, 360 validation and 360 test images (1 x 8 x 8, `INPUT_SHAPE`;
10 classes), standardised with the training split's mean and standard deviation (`splits`).

Recipe. Minibatches of `BATCH_SIZE` in a fresh random order each epoch (`minibatches`); each
image shifted at random by at most one pixel (`random_shift`); SGD with Nesterov momentum
`MOMENTUM`, weight decay `WEIGHT_DECAY` on weights (not on biases or BN parameters) and a cosine
learning rate to 0 (`sgd`). `train_net` trains a network on the labels with it. Training is
deterministic given its seed on the CPU (same machine, same thread count); on CUDA it is up to
cuDNN's nondeterminism.

Requires torch and scikit-learn (`pip install splitplan[torch,nas]`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
INPUT_SHAPE = (1, 8, 8)  # channels, height, width of one image
DATA_SEED = 0
N_VAL = 360
N_TEST = 360
SPLITS = ("train", "val", "test")
BATCH_SIZE = 64
LR = 0.2  # peak learning rate for one network on the labels (`train_net`)
MOMENTUM = 0.9
WEIGHT_DECAY = 5e-5

_Net = TypeVar("_Net", bound=nn.Module)

Progress = Callable[[int, int, float], None]  # (epochs done, epochs, mean training loss)


@functools.cache
def _digits_cpu(data_seed: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise ImportError(
            "the digits data needs scikit-learn: pip install scikit-learn (part of splitplan[nas])"
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


def splits(
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


def random_shift(x: torch.Tensor, g: torch.Generator, fill: float) -> torch.Tensor:
    """Each image of `x` (N x C x H x W) shifted by -1, 0 or +1 pixel in each direction, drawn
    from `g`; the uncovered border is `fill` (a blank pixel: the standardised background)."""
    padded = F.pad(x, (1, 1, 1, 1), value=fill)
    offsets = torch.randint(0, 3, (x.shape[0], 2), generator=g).to(x.device)
    out = torch.empty_like(x)
    for dy in range(3):
        for dx in range(3):
            m = (offsets[:, 0] == dy) & (offsets[:, 1] == dx)
            out[m] = padded[m, :, dy : dy + x.shape[2], dx : dx + x.shape[3]]
    return out


def chunks(x: torch.Tensor, size: int = 256) -> tuple[torch.Tensor, ...]:
    """`x` in nearly equal chunks of at most `size` (small batches run faster on the CPU)."""
    return torch.tensor_split(x, max(1, math.ceil(len(x) / size)))


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Top-1 accuracy in percent (model in eval mode)."""
    model.eval()
    with torch.no_grad():
        pairs = zip(chunks(x), chunks(y), strict=True)
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
        for chunk in chunks(x):
            model(chunk)
    for m, momentum in zip(bns, saved, strict=True):
        m.momentum = momentum
    model.eval()


def sgd(model: nn.Module, steps: int, lr: float) -> tuple[torch.optim.Optimizer, Any]:
    """The recipe's optimiser for `model`'s parameters and its scheduler (call `step` on both
    after every batch): SGD with Nesterov momentum `MOMENTUM`, weight decay `WEIGHT_DECAY` on
    tensors of 2 or more dimensions only, learning rate `lr` decaying to 0 over `steps` along a
    cosine."""
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


def minibatches(n: int, g: torch.Generator) -> list[torch.Tensor]:
    """Indices 0..n-1 in a random order drawn from `g`, in batches of `BATCH_SIZE` (the last
    may be smaller)."""
    perm = torch.randperm(n, generator=g)
    return [perm[i : i + BATCH_SIZE] for i in range(0, n, BATCH_SIZE)]


def training_device(epochs: int, device: str | torch.device) -> torch.device:
    """`device` as a `torch.device`, after checking the arguments of a training run:
    ValueError when `epochs` is not a positive integer or CUDA is asked for but absent."""
    if not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"epochs must be a positive integer, got {epochs!r}")
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' asked for, but torch sees no CUDA device")
    return device


def train_net(
    net: _Net,
    epochs: int,
    seed: int,
    device: torch.device,
    data_seed: int = DATA_SEED,
    progress: Progress | None = None,
    lr: float = LR,
) -> _Net:
    """Train `net` on the training split with the recipe: `epochs` epochs on the labels (cross
    entropy), peak learning rate `lr`, batch order and shifts from `seed`;
    `progress(epoch, epochs, mean_loss)` after each epoch. Returns `net` in eval mode."""
    x, y = splits(device, data_seed)["train"]
    background = float(x.min())
    net = net.to(device)
    g = torch.Generator().manual_seed(seed)
    opt, sched = sgd(net, epochs * math.ceil(len(y) / BATCH_SIZE), lr)
    for epoch in range(epochs):
        net.train()
        total = 0.0
        for idx in minibatches(len(y), g):
            xb, yb = random_shift(x[idx.to(device)], g, background), y[idx.to(device)]
            opt.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(xb), yb)
            loss.backward()
            opt.step()
            sched.step()
            total += float(loss.detach()) * len(yb)
        if progress is not None:
            progress(epoch + 1, epochs, total / len(y))
    return net.eval()
