"""Joint architecture and split search (issue 5).

A search space proposes architectures (named by a string key), says how accurate each is, and
gives each its layer DAG with per-layer times for the device classes of a network; the loop in
`splitplan.nas.search` plans every candidate with the exact solver (through
`splitplan.nas.planner`, the one planner of every NAS caller) and keeps the accuracy / latency
Pareto front. Two spaces: `nb201` (NAS-Bench-201, accuracies and device latencies from real
measurements) and `mbv2` (a MobileNetV2-like space trained on scikit-learn's digits).

A space may also list `device_classes`, the classes it has times for: the planner then asks it
for those only, and nodes of other classes cost flops / flops_per_s (formulation §1). A space
without the attribute is asked for every class of the network.

Nothing here imports torch or optuna at import time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from ..instance import DNN


class Space(Protocol):
    """What the search loop needs from a search space."""

    name: str

    def suggest(self, trial: Any) -> str:
        """Sample an architecture with an `optuna.Trial`'s suggest_* calls; return its key."""
        ...

    def accuracy(self, arch: str) -> float:
        """Top-1 accuracy in percent (a table look-up, or a supernet estimate)."""
        ...

    def dnn(self, arch: str, classes: Sequence[str]) -> DNN:
        """The layer DAG of `arch` with `time_s` for every device class in `classes`."""
        ...

    def all_archs(self) -> Sequence[str] | None:
        """Every architecture when the space is small enough to enumerate, else None."""
        ...
