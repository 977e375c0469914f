"""The ``mbv2`` search space (`Mbv2Space`) and the retraining of its finalists (`retrain`).

Candidates are scored by their weights inherited from the trained supernet (`Supernet.evaluate`,
validation split); finalists are retrained from scratch with the digits recipe (`retrain`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from ...digits import DATA_SEED, INPUT_SHAPE, Progress, accuracy, splits, train_net, training_device
from ...instance import DNN
from .arch import CHOICES, SPACE_SIZE, STAGES, Arch, all_archs, canonical, parse_arch
from .net import build_net, model_stats
from .supernet import SUPERNET_EPOCHS, Supernet, train_supernet

RETRAIN_EPOCHS = 20


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
    device = training_device(epochs, device)
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        net = build_net(a)
    net = train_net(net, epochs, seed, device, data_seed, progress)
    seconds = time.perf_counter() - start
    data = splits(device, data_seed)
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
        from ... import devices
        from ...profile import profile

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
