"""NB201 cells: the five operations, the six edges of a cell and its architecture string.

An NB201 cell has four nodes; node 0 is the cell's input, node 3 its output, and every edge
``(to, from)`` of `EDGES` applies one operation of `OPS`. The NB201 string lists each node's
incoming edges: ``|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|``.
The constants of the NB201 macro skeleton (`CHANNELS`, `RESOLUTION`, `CELLS_PER_STAGE`) live
here too, as every other part of the package reads them. No torch, no data file.
"""

from __future__ import annotations

from collections.abc import Sequence

from ...errors import SplitplanError

OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))  # (to node, from node), string order
N_ARCHS = len(OPS) ** len(EDGES)  # 15,625
CELLS_PER_STAGE = 5
CHANNELS = (16, 32, 64)
RESOLUTION = (32, 16, 8)
NUM_CLASSES = 10


class Nb201Error(SplitplanError, ValueError):
    """A bad architecture string, dataset, device class or data file (the message says which)."""


def parse_arch(arch: str) -> tuple[str, ...]:
    """The six operations of an NB201 cell string, in the order of `EDGES`.

    ``|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|``: node 1
    from node 0; node 2 from 0 and 1; node 3 (the output) from 0, 1 and 2.
    """
    if not isinstance(arch, str):
        raise Nb201Error(f"an NB201 architecture is a string, got {type(arch).__name__}")
    example = "|nor_conv_3x3~0|+|none~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_1x1~1|none~2|"
    groups = arch.split("+")
    if len(groups) != 3:
        raise Nb201Error(
            f"bad NB201 architecture {arch!r}: expected 3 nodes separated by '+', e.g. {example}"
        )
    ops: list[str] = []
    for node, group in enumerate(groups, start=1):
        if len(group) < 2 or not group.startswith("|") or not group.endswith("|"):
            raise Nb201Error(f"bad NB201 architecture {arch!r}: node {node} must be '|op~k|...|'")
        tokens = group[1:-1].split("|")
        if len(tokens) != node:
            raise Nb201Error(
                f"bad NB201 architecture {arch!r}: node {node} must have {node} input edge(s), "
                f"got {len(tokens)}"
            )
        for src, token in enumerate(tokens):
            op, sep, k = token.partition("~")
            if not sep or k != str(src):
                raise Nb201Error(
                    f"bad NB201 architecture {arch!r}: edge {token!r} of node {node} must read "
                    f"'op~{src}'"
                )
            if op not in OPS:
                raise Nb201Error(
                    f"bad NB201 architecture {arch!r}: unknown operation {op!r}; expected one "
                    f"of {', '.join(OPS)}"
                )
            ops.append(op)
    return tuple(ops)


def arch_string(ops: Sequence[str]) -> str:
    """The NB201 string of six operations given in the order of `EDGES`."""
    ops = tuple(ops)
    if len(ops) != len(EDGES):
        raise Nb201Error(f"an NB201 cell has {len(EDGES)} edges, got {len(ops)} operations")
    for op in ops:
        if op not in OPS:
            raise Nb201Error(f"unknown operation {op!r}; expected one of {', '.join(OPS)}")
    nodes: list[list[str]] = [[] for _ in range(3)]
    for (dst, src), op in zip(EDGES, ops, strict=True):
        nodes[dst - 1].append(f"{op}~{src}")
    return "+".join("|" + "|".join(node) + "|" for node in nodes)


def is_connected(arch: str | Sequence[str]) -> bool:
    """Whether the cell's output depends on its input (some path of non-``none`` edges)."""
    ops = parse_arch(arch) if isinstance(arch, str) else tuple(arch)
    reached = {0}
    for (dst, src), op in zip(EDGES, ops, strict=True):  # EDGES is in topological order
        if op != "none" and src in reached:
            reached.add(dst)
    return 3 in reached
