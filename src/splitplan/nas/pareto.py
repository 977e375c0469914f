"""Accuracy / latency Pareto fronts and their 2-D hypervolume (no solver, no torch).

A point is ``(accuracy, latency)``: accuracy is maximised, latency minimised. Point ``q``
dominates ``p`` when ``q`` is at least as accurate and at least as fast, and strictly better in
one of the two. The front is the set of points no other point dominates; exact duplicates do not
dominate each other, so every copy of a non-dominated point is on the front.
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def _checked(points: Sequence[Sequence[float]]) -> list[tuple[float, float]]:
    out = []
    for i, p in enumerate(points):
        if len(p) != 2:
            raise ValueError(f"point {i} must be (accuracy, latency), got {p!r}")
        acc, lat = float(p[0]), float(p[1])
        if math.isnan(acc) or math.isnan(lat):
            raise ValueError(f"point {i} has a NaN coordinate: {p!r}")
        out.append((acc, lat))
    return out


def pareto_front(points: Sequence[Sequence[float]]) -> list[int]:
    """Indices of the non-dominated points, by increasing latency (then index), O(n log n).

    Ties: of several points with the same latency only the most accurate can be on the front; a
    point as accurate as a strictly faster one is dominated by it; exact duplicates of a
    non-dominated point are all kept.
    """
    pts = _checked(points)
    order = sorted(range(len(pts)), key=lambda i: (pts[i][1], -pts[i][0], i))
    front: list[int] = []
    best = -math.inf  # best accuracy among strictly faster points
    g = 0
    while g < len(order):
        lat = pts[order[g]][1]
        top = pts[order[g]][0]  # most accurate at this latency (sorted first)
        h = g
        while h < len(order) and pts[order[h]][1] == lat:
            if pts[order[h]][0] == top and top > best:
                front.append(order[h])
            h += 1
        best = max(best, top)
        g = h
    return front


def hypervolume_2d(points: Sequence[Sequence[float]], ref: Sequence[float]) -> float:
    """Area dominated by `points` and bounded by the reference point ``ref = (accuracy, latency)``:
    the measure of {(a, t): ref_accuracy <= a <= acc_p and lat_p <= t <= ref_latency for some p}.

    Points no more accurate than ``ref[0]`` or no faster than ``ref[1]`` add nothing; dominated
    points may be passed (they add nothing either). Units: accuracy x latency.
    """
    (ref_acc, ref_lat) = _checked([ref])[0]
    pts = [(a, t) for a, t in _checked(points) if a > ref_acc and t < ref_lat]
    pts.sort(key=lambda p: (p[1], -p[0]))
    area, best = 0.0, ref_acc
    for i, (acc, lat) in enumerate(pts):
        best = max(best, acc)
        nxt = pts[i + 1][1] if i + 1 < len(pts) else ref_lat
        area += (best - ref_acc) * (nxt - lat)
    return area
