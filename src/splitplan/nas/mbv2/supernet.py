"""The weight-sharing supernet of the space (one-shot, OFA-style) and its training.

The `Supernet` holds one block per (stage, depth index) at the largest width, kernel and
expansion. A subnet uses the first `depth` blocks of a stage, the leading output / hidden
channels and the central k x k window of the depthwise kernel: its forward pass reads *views* of
the supernet's parameters (no copy), so its gradients land in them. `Supernet.subnet(arch)`
extracts a standalone `Mbv2Net` holding copies of those slices (for profiling and deployment).

Batch norm. Sliced widths share the supernet's BN affine parameters (sliced like the convs), but
running statistics mixed over many subnets fit none of them, so an extracted subnet's running
statistics are recalibrated (OFA's approach) by one forward pass over the whole training split in
train mode before it is scored or returned (``calibrate=True``, the default); the supernet's own
buffers are not touched.

Training. `train_supernet` trains once, with the sandwich rule (each step: the largest subnet on
the labels, the smallest and `n_random` random subnets distilled in place from the largest's
soft predictions; gradients summed, one SGD step) or the uniform single-path rule (one random
subnet per step on the labels), with the digits recipe of `splitplan.digits`.
"""

from __future__ import annotations

import math
import os
import random
import time
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ... import digits as D
from ...digits import DATA_SEED, INPUT_SHAPE, NUM_CLASSES, SPLITS
from .arch import CHANNELS, CHOICES, DEPTHS, EXPANSIONS, HEAD, STEM, STRIDES, Arch, parse_arch
from .net import Classifier, ConvBNAct, Mbv2Net

FORMAT = "splitplan-mbv2-supernet/1"
SUPERNET_LR = 0.1  # the sandwich rule sums the gradients of four subnets into shared weights
SUPERNET_EPOCHS = 20


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
        # BatchNorm2d keeps running statistics by default (track_running_stats=True)
        assert bn.running_mean is not None and bn.running_var is not None
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
        # the default 0.1: a momentum of None (cumulative average) is not implemented for slices
        assert self.bn.momentum is not None
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
            x = self._block(s, i)(x, cout, k, hidden)
        return self.classifier(self.head(x, HEAD, 1))

    def _block(self, s: int, i: int) -> _DynBlock:
        """Block `i` of stage `s` (a ModuleList's items are typed as any Module)."""
        stage = self.stages[s]
        assert isinstance(stage, nn.ModuleList)
        block = stage[i]
        assert isinstance(block, _DynBlock)
        return block

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
            block = self._block(s, i)
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
            D.calibrate_bn(
                net, D.splits(self.device, self.meta.get("data_seed", DATA_SEED))["train"][0]
            )
        return net.eval()

    def evaluate(self, arch: str | Arch, split: str = "val") -> float:
        """Top-1 accuracy in percent of `arch` with the inherited weights (BN recalibrated)."""
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        x, y = D.splits(self.device, self.meta.get("data_seed", DATA_SEED))[split]
        return D.accuracy(self.subnet(arch), x, y)

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


def train_supernet(
    epochs: int = SUPERNET_EPOCHS,
    seed: int = 0,
    device: str | torch.device = "cpu",
    rule: str = "sandwich",
    progress: D.Progress | None = None,
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
    `SUPERNET_LR` (`retrain` uses `digits.LR`: one path's gradient per step), batch 64,
    random one-pixel shifts. `progress(epoch, epochs, mean_loss)` is called after each epoch
    (the loss of the largest subnet, or of the sampled one under ``uniform``); the result's
    `meta` records the settings, the seconds taken and the loss per epoch."""
    if rule not in ("sandwich", "uniform"):
        raise ValueError(f"unknown rule {rule!r}; expected 'sandwich' or 'uniform'")
    if not isinstance(n_random, int) or n_random < 0:
        raise ValueError(f"n_random must be a non-negative integer, got {n_random!r}")
    device = D.training_device(epochs, device)
    x, y = D.splits(device, data_seed)["train"]
    background = float(x.min())  # a blank pixel, standardised
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = Supernet().to(device)
    g = torch.Generator().manual_seed(seed)
    rng = random.Random(seed)
    steps = epochs * math.ceil(len(y) / D.BATCH_SIZE)
    opt, sched = D.sgd(net, steps, SUPERNET_LR)
    history = []
    for epoch in range(epochs):
        net.train()
        total, count = 0.0, 0
        for idx in D.minibatches(len(y), g):
            xb, yb = D.random_shift(x[idx.to(device)], g, background), y[idx.to(device)]
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
