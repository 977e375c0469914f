"""The MobileNetV2-digits space's architectures: choices per stage, `Arch`, its key.

Three stages of inverted-residual blocks follow a fixed stem of `STEM` channels; each stage
chooses its depth (`DEPTHS`), width multiplier of its `CHANNELS` (`WIDTHS`), depthwise kernel
size (`KERNELS`; 3 only on the last stage's 2x2 maps, see `CHOICES`) and expansion ratio
(`EXPANSIONS`; hidden width = the block's input width x ratio). A key names an architecture
canonically, stage by stage: ``d2-3-2_w0.5-1.0-1.0_k3-5-3_e3-6-6``; there are `SPACE_SIZE` =
36 x 36 x 18 = 23,328 of them. No torch.
"""

from __future__ import annotations

import itertools
import math
import random
from dataclasses import dataclass

STAGES = 3
DEPTHS = (1, 2, 3)
WIDTHS = (0.5, 0.75, 1.0)
KERNELS = (3, 5)
EXPANSIONS = (3, 6)
STEM = 16
CHANNELS = (16, 24, 32)  # output channels of each stage at width 1.0
STRIDES = (1, 2, 2)  # stages at 8x8, 4x4, 2x2
HEAD = 64
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
