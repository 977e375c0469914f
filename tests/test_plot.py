"""The placement plot: its timeline adds up to the plan's latency."""

from pathlib import Path

import pytest
from helpers import close

import splitplan
from splitplan.cli import main

INSTANCES = Path(__file__).resolve().parents[1] / "instances"


@pytest.mark.parametrize("name", ["three-tier-chain.json", "skip-dag.json", "edge-star.json"])
def test_timeline_adds_up_to_the_latency(name):
    from splitplan.plot import timeline

    inst = splitplan.load_instance(INSTANCES / name)
    plan = splitplan.solve(inst)
    bars = timeline(plan)
    layers = [b for b in bars if b[0] in {n.name for n in inst.network.nodes}]
    assert [b[1] for b in layers] == list(inst.layer_names)
    assert all(plan.assignment[label] == row for row, label, _, _ in layers)
    end = max(start + duration for _, _, start, duration in bars)
    assert close(end, plan.evaluation.latency_s)
    assert close(sum(d for *_, d in bars), plan.evaluation.latency_s)  # end to end, no overlap


def test_solve_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib")
    out = tmp_path / "plan.png"
    assert main(["solve", str(INSTANCES / "three-tier-chain.json"), "--plot", str(out)]) == 0
    assert out.read_bytes()[:4] == b"\x89PNG"
