"""Slimmable bottleneck encoders for split computing (issue 7, first part), trained on digits.

At a split point the device runs a small encoder that compresses the intermediate tensor into a
*code* before transmission and the server runs a decoder that maps the code back to the tensor
the rest of the model expects. Both are **slimmable**: one set of weights runs at several widths
(fractions of `code_channels`, default 1/8, 1/4, 1/2, 1), so the payload and the device's compute
follow the link's capacity by a method call, `set_width`, that only stores an index: no reload,
no copy, no new tensor.

- `SlimmableEncoder`: a k x k convolution from the split tensor's channels to the leading
  ``round(code_channels * width)`` output channels of one weight tensor (a slice view), then a
  per-width batch norm (switchable BN: running statistics of one width fit no other). With
  ``quantize=True`` the code is quantised to int8 with one scale per sample (``max |code| / 127``;
  a straight-through estimator in training), which is what `payload_bytes` counts.
- `SlimmableDecoder`: a k x k convolution that reads the leading input channels of its weight for
  the current width back to the split tensor's channels, a per-width batch norm and a ReLU.
- `SplitModel(head, encoder, decoder, tail)`: the pair inserted at a split point;
  `SplitModel.from_sequential(model, index, ...)` splits an `nn.Sequential` (e.g. a zoo model or
  `digits_cnn`) before layer `index`, copying its two halves.
- `train_slimmable`: the sandwich rule (each step the largest, the smallest and `n_random` random
  widths; gradients summed, one SGD step), each width distilled from the uncut model's logits
  (KL divergence at temperature `temperature`). The head and tail stay frozen (the uncut model's
  weights and BN statistics), so the uncut model is the teacher and the widest width can only
  approach it. Data, augmentation and optimiser are `splitplan.digits`' (1,077 training,
  360 validation, 360 test images), as for the MobileNetV2-digits space. Deterministic given the
  seed on the CPU.

Requires torch and scikit-learn (`pip install splitplan[torch,nas]`).
"""

from __future__ import annotations

import copy
import math
import random
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from . import digits as D

WIDTHS = (0.125, 0.25, 0.5, 1.0)
QMAX = 127  # symmetric int8 code: values in [-127, 127]
SCALE_BYTES = 4  # one float32 scale per sample travels with an int8 code
SPLIT_INDEX = 2  # `digits_cnn` split after its second block (64 x 4 x 4 floats)
CODE_CHANNELS = 16
BASE_EPOCHS = 20
SLIM_EPOCHS = 40
SLIM_LR = 0.1  # the mbv2 supernet's rate: the sandwich rule sums several widths' gradients


def _channel_counts(code_channels: int, widths: Sequence[float]) -> tuple[int, ...]:
    if not isinstance(code_channels, int) or code_channels < 1:
        raise ValueError(f"code_channels must be a positive integer, got {code_channels!r}")
    if not widths:
        raise ValueError("widths must not be empty")
    if any(not 0 < w <= 1 for w in widths) or list(widths) != sorted(set(widths)):
        raise ValueError(f"widths must be strictly increasing values in (0, 1], got {widths!r}")
    counts = tuple(max(1, round(code_channels * w)) for w in widths)
    if len(set(counts)) != len(counts):
        raise ValueError(
            f"widths {tuple(widths)} of {code_channels} code channels give repeated channel "
            f"counts {counts}"
        )
    return counts


class _Switchable:
    """Width bookkeeping shared by the encoder and the decoder."""

    widths: tuple[float, ...]
    counts: tuple[int, ...]
    _index: int

    def set_width(self, width: float) -> None:
        """Switch to `width` (one of `widths`): stores an index, allocates nothing."""
        for i, w in enumerate(self.widths):
            if w == width:
                self._index = i
                return
        raise ValueError(f"unknown width {width!r}; expected one of {self.widths}")

    @property
    def width(self) -> float:
        return self.widths[self._index]

    @property
    def code_width(self) -> int:
        """Code channels at the current width."""
        return self.counts[self._index]


def quantize_code(z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`z` (N x ...) as int8 values and one float32 scale per sample: ``z ~ q * scale``, with
    ``|z - q * scale| <= scale / 2``."""
    amax = z.detach().abs().flatten(1).amax(1).clamp_min(1e-8)
    scale = (amax / QMAX).to(torch.float32)
    shape = (-1,) + (1,) * (z.ndim - 1)
    q = torch.round(z.detach() / scale.view(shape)).clamp(-QMAX, QMAX).to(torch.int8)
    return q, scale


def dequantize_code(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """The float code from `quantize_code`'s int8 values and scales."""
    return q.to(torch.float32) * scale.view((-1,) + (1,) * (q.ndim - 1))


class SlimmableEncoder(_Switchable, nn.Module):
    """Device side: `channels` -> ``round(code_channels * width)`` channels (same H x W)."""

    def __init__(
        self,
        channels: int,
        code_channels: int,
        widths: Sequence[float] = WIDTHS,
        quantize: bool = False,
        kernel_size: int = 3,
    ) -> None:
        nn.Module.__init__(self)
        self.widths = tuple(float(w) for w in widths)
        self.counts = _channel_counts(code_channels, self.widths)
        self.channels, self.code_channels, self.quantize = channels, code_channels, quantize
        self.conv = nn.Conv2d(channels, code_channels, kernel_size, 1, kernel_size // 2, bias=False)
        self.bns = nn.ModuleList(nn.BatchNorm2d(c) for c in self.counts)
        self._index = len(self.widths) - 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = self.counts[self._index]
        z = F.conv2d(x, self.conv.weight[:c], None, 1, self.conv.padding)
        z = self.bns[self._index](z)
        if self.quantize:  # fake quantisation, straight-through gradient
            z = z + (dequantize_code(*quantize_code(z)) - z).detach()
        return z

    def encode(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """What is transmitted: the float code, or (int8 code, scales) when quantising."""
        z = self(x)
        return quantize_code(z) if self.quantize else z

    def payload_bytes(self, input_shape: Sequence[int]) -> int:
        """Bytes transmitted for an input of `input_shape` (N x C x H x W, or C x H x W for one
        sample) at the current width: code elements x 4 (float32), or x 1 (int8) plus
        `SCALE_BYTES` per sample when quantising."""
        shape = tuple(input_shape)
        if len(shape) == 3:
            shape = (1, *shape)
        if len(shape) != 4 or shape[1] != self.channels:
            raise ValueError(f"expected an input shape (N, {self.channels}, H, W), got {shape}")
        n, _, h, w = shape
        elements = n * self.counts[self._index] * h * w
        return elements + n * SCALE_BYTES if self.quantize else 4 * elements


class SlimmableDecoder(_Switchable, nn.Module):
    """Server side: the current width's code channels -> `channels` (BN, ReLU)."""

    def __init__(
        self,
        code_channels: int,
        channels: int,
        widths: Sequence[float] = WIDTHS,
        kernel_size: int = 3,
        relu: bool = True,
    ) -> None:
        nn.Module.__init__(self)
        self.widths = tuple(float(w) for w in widths)
        self.counts = _channel_counts(code_channels, self.widths)
        self.channels, self.code_channels, self.relu = channels, code_channels, relu
        self.conv = nn.Conv2d(code_channels, channels, kernel_size, 1, kernel_size // 2, bias=False)
        self.bns = nn.ModuleList(nn.BatchNorm2d(channels) for _ in self.counts)
        self._index = len(self.widths) - 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        c = self.counts[self._index]
        if z.shape[1] != c:
            raise ValueError(f"code has {z.shape[1]} channels, width {self.width} expects {c}")
        y = self.bns[self._index](F.conv2d(z, self.conv.weight[:, :c], None, 1, self.conv.padding))
        return F.relu(y) if self.relu else y


class SplitModel(nn.Module):
    """``tail(decoder(encoder(head(x))))``. A 2-D split tensor (N x C, after a linear layer) is
    run as N x C x 1 x 1 and flattened back."""

    def __init__(
        self, head: nn.Module, encoder: SlimmableEncoder, decoder: SlimmableDecoder, tail: nn.Module
    ) -> None:
        super().__init__()
        if encoder.widths != decoder.widths or encoder.counts != decoder.counts:
            raise ValueError("encoder and decoder must have the same widths and code channels")
        self.head, self.encoder, self.decoder, self.tail = head, encoder, decoder, tail

    @property
    def widths(self) -> tuple[float, ...]:
        return self.encoder.widths

    @property
    def width(self) -> float:
        return self.encoder.width

    def set_width(self, width: float) -> None:
        """Switch encoder and decoder to `width` (allocates nothing)."""
        self.encoder.set_width(width)
        self.decoder.set_width(width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tail(self.through(self.head(x)))

    def through(self, h: torch.Tensor) -> torch.Tensor:
        """The split tensor `h` (the head's output) encoded and decoded at the current width."""
        flat = h.ndim == 2
        y = self.decoder(self.encoder(h[:, :, None, None] if flat else h))
        return y.flatten(1) if flat else y

    def payload_bytes(self, input_shape: Sequence[int]) -> int:
        """Bytes sent per forward pass of a model input of `input_shape` (with batch dim)."""
        p = next(self.encoder.parameters())
        with torch.no_grad():
            h = self.head.eval()(torch.zeros(tuple(input_shape), device=p.device, dtype=p.dtype))
        shape = (*h.shape, 1, 1) if h.ndim == 2 else tuple(h.shape)
        return self.encoder.payload_bytes(shape)

    @staticmethod
    def from_sequential(
        model: nn.Sequential,
        index: int,
        code_channels: int,
        input_shape: Sequence[int],
        widths: Sequence[float] = WIDTHS,
        quantize: bool = False,
        kernel_size: int = 3,
    ) -> SplitModel:
        """The pair inserted before ``model[index]`` (copies of the two halves; fresh encoder and
        decoder from torch's global RNG). `input_shape` (with batch dim) finds the channels. The
        decoder ends in a ReLU when the head does."""
        head, tail = split_sequential(model, index)
        p = next(model.parameters())
        was_training = head.training
        with torch.no_grad():
            h = head.eval()(torch.zeros(tuple(input_shape), device=p.device, dtype=p.dtype))
        head.train(was_training)
        if h.ndim not in (2, 4):
            raise ValueError(f"the split tensor must be N x C or N x C x H x W, got {h.shape}")
        last = list(head.modules())[-1]
        relu = isinstance(last, (nn.ReLU, nn.ReLU6))
        k = kernel_size if h.ndim == 4 else 1
        enc = SlimmableEncoder(h.shape[1], code_channels, widths, quantize, k)
        dec = SlimmableDecoder(code_channels, h.shape[1], widths, k, relu)
        return SplitModel(head, enc.to(p.device), dec.to(p.device), tail)


def split_sequential(model: nn.Sequential, index: int) -> tuple[nn.Sequential, nn.Sequential]:
    """(copy of ``model[:index]``, copy of ``model[index:]``); both non-empty."""
    if not isinstance(model, nn.Sequential):
        raise ValueError(f"expected an nn.Sequential, got {type(model).__name__}")
    if not 0 < index < len(model):
        raise ValueError(f"split index must be in 1..{len(model) - 1}, got {index}")
    head, tail = model[:index], model[index:]
    # a slice of a Sequential is a Sequential (torch types __getitem__ as Sequential | Module)
    assert isinstance(head, nn.Sequential) and isinstance(tail, nn.Sequential)
    return copy.deepcopy(head), copy.deepcopy(tail)


def _block(cin: int, cout: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), nn.ReLU()
    )


def digits_cnn() -> nn.Sequential:
    """A small CNN for 1 x 8 x 8 digits: four conv blocks (8x8 -> 4x4 -> 2x2) and a classifier;
    ``SPLIT_INDEX`` = 2 splits after the second block (a 64 x 4 x 4 tensor)."""
    return nn.Sequential(
        _block(1, 32, 1),
        _block(32, 64, 2),
        _block(64, 64, 1),
        _block(64, 128, 2),
        nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, D.NUM_CLASSES)),
    )


def train_base(
    epochs: int = BASE_EPOCHS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    data_seed: int = D.DATA_SEED,
) -> nn.Sequential:
    """`digits_cnn` trained with `splitplan.digits.train_net` (labels, random shifts, SGD,
    cosine rate)."""
    device = D.training_device(epochs, device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = digits_cnn()
    return D.train_net(net, epochs, seed, device, data_seed)


def _frozen(module: nn.Module) -> None:
    module.eval()
    for p in module.parameters():
        p.requires_grad_(False)


def train_slimmable(
    model: SplitModel,
    teacher: nn.Module,
    epochs: int = SLIM_EPOCHS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    *,
    n_random: int = 1,
    temperature: float = 1.0,
    lr: float = SLIM_LR,
    data_seed: int = D.DATA_SEED,
) -> dict:
    """Train `model`'s encoder and decoder (head and tail frozen) on digits: per step the
    largest, the smallest and `n_random` random widths (the sandwich rule; with one width, just
    it), each on the KL divergence to `teacher`'s logits at `temperature`. Returns ``seconds``
    and the mean loss of the largest width per epoch; leaves `model` in eval mode at its largest
    width, and `teacher`, `model.head` and `model.tail` in eval mode with gradients off."""
    device = D.training_device(epochs, device)
    x, y = D.splits(device, data_seed)["train"]
    background = float(x.min())
    model, teacher = model.to(device), teacher.to(device)
    _frozen(teacher)
    _frozen(model.head)
    _frozen(model.tail)
    trainable = nn.ModuleList([model.encoder, model.decoder])
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    opt, sched = D.sgd(trainable, epochs * math.ceil(len(y) / D.BATCH_SIZE), lr)
    widths = model.widths
    start = time.perf_counter()
    history = []
    t = temperature
    for _ in range(epochs):
        trainable.train()
        total = 0.0
        for idx in D.minibatches(len(y), g):
            xb = D.random_shift(x[idx.to(device)], g, background)
            with torch.no_grad():
                soft = F.log_softmax(teacher(xb) / t, 1)
                h = model.head(xb)
            opt.zero_grad(set_to_none=True)
            chosen = [widths[-1]]
            if len(widths) > 1:
                chosen += [widths[0]] + [rng.choice(widths) for _ in range(n_random)]
            for i, w in enumerate(chosen):
                model.set_width(w)
                out = model.tail(model.through(h))  # N x C split tensors too
                loss = F.kl_div(
                    F.log_softmax(out / t, 1), soft, reduction="batchmean", log_target=True
                )
                (loss * t * t).backward()
                if i == 0:
                    total += float(loss.detach()) * len(idx)
            opt.step()
            sched.step()
        history.append(total / len(y))
    model.set_width(widths[-1])
    model.eval()
    return {"seconds": time.perf_counter() - start, "loss": history}


def accuracy(model: nn.Module, split: str = "test", device: str | torch.device = "cpu") -> float:
    """Top-1 accuracy in percent on a digits split (``train``, ``val`` or ``test``)."""
    return D.accuracy(model, *D.splits(device)[split])
