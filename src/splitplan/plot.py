"""A placement plot: one inference of a plan laid out in time, a row per node and per route.

The latency of the cost model (models/formulation.md §4, §10) is the sum of the layers' compute
times, the transfers' times and the encoders' and decoders' times, so the plot lays them end to end
in topological order: every layer after the transfers of its inputs, an encoded transfer between
its encoder (on the sender's row) and its decoder (on the receiver's). Needs matplotlib
(`pip install splitplan[plot]`).
"""

from __future__ import annotations

from pathlib import Path

from .plan import Plan


def timeline(plan: Plan) -> list[tuple[str, str, float, float]]:
    """(row, label, start_s, duration_s) bars: layers on their node's row, transfers on their
    route's row ("a -> b"), in the order the latency adds them up."""
    if plan.assignment is None or plan.evaluation is None:
        raise ValueError(f"the plan has no assignment (status {plan.status})")
    inst, ev = plan.instance, plan.evaluation
    from .cost import tables

    tb = tables(inst)
    pending = list(ev.transfers)
    bars: list[tuple[str, str, float, float]] = []
    clock = 0.0
    encoded: set[str] = set()

    def bar(row: str, label: str, duration: float) -> None:
        nonlocal clock
        bars.append((row, label, clock, duration))
        clock += duration

    def send(tensor: str, target: str) -> None:
        for tr in [t for t in pending if t.tensor == tensor and t.target == target]:
            pending.remove(tr)
            form = tb.tensors[tb.tensor_index[tensor]].form(tr.encoding)
            if form is not None and tensor not in encoded:  # encoded once, at the sender
                encoded.add(tensor)
                bar(tr.source, f"encode {tensor}", float(form.encode_s[tb.node_index[tr.source]]))
            bar(f"{tr.source} -> {tr.target}", tensor, tr.time_s)
            if form is not None:
                bar(tr.target, f"decode {tensor}", float(form.decode_s[tb.node_index[tr.target]]))

    for v, layer in enumerate(inst.dnn.layers):
        node = plan.assignment[layer.name]
        for src in layer.inputs:
            send(src, node)
        bar(node, layer.name, float(tb.compute_s[v, tb.node_index[node]]))
    for tr in list(pending):  # e.g. the result back to the sink
        send(tr.tensor, tr.target)
    return bars


def plot_plan(plan: Plan, path: str | Path) -> Path:
    """Draw `timeline(plan)` into a PNG (or any format matplotlib writes, by extension)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the plot needs matplotlib: pip install 'splitplan[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bars = timeline(plan)  # raises when the plan has no assignment
    assert plan.evaluation is not None
    ev = plan.evaluation
    nodes = [n.name for n in plan.instance.network.nodes]
    rows = [n for n in nodes if any(b[0] == n for b in bars)]
    rows += sorted({b[0] for b in bars} - set(nodes))
    colour = {n: f"C{i % 10}" for i, n in enumerate(nodes)}
    fig, ax = plt.subplots(figsize=(9, 0.6 * len(rows) + 1.6))
    for row, label, start, duration in bars:
        y = rows.index(row)
        c = colour.get(row, "0.55")
        ax.barh(y, duration * 1e3, left=start * 1e3, color=c, edgecolor="white", linewidth=0.4)
        if duration * 1e3 > 0.06 * max(ev.latency_s * 1e3, 1e-9):
            ax.text((start + duration / 2) * 1e3, y, label, ha="center", va="center", fontsize=7)
    ax.set_yticks(range(len(rows)), rows)
    ax.invert_yaxis()
    ax.set_xlabel("time (ms)")
    splits = ", ".join(plan.split_points()) or "none"
    ax.set_title(
        f"{plan.instance.name}: latency {ev.latency_s * 1e3:.3f} ms, split after {splits}",
        fontsize=9,
    )
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
