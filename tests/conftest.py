"""Fixtures. The shared helpers live in helpers.py; they are re-exported here for older imports."""

import pytest
from helpers import assert_solvers_reach, brute_force, close

import splitplan

__all__ = ["assert_solvers_reach", "brute_force", "close"]


@pytest.fixture
def tiny_instance() -> splitplan.Instance:
    """Two layers, device and server, one link: small enough to cost by hand."""
    L, N = splitplan.Layer, splitplan.Node
    dnn = splitplan.DNN(
        "tiny",
        input_bytes=1000.0,
        layers=(
            L("a", ("input",), flops=2e9, param_bytes=100.0, out_bytes=500.0),
            L("b", ("a",), flops=4e9, param_bytes=200.0, out_bytes=10.0, time_s={"gpu": 0.001}),
        ),
    )
    net = splitplan.Network(
        nodes=(
            N("dev", 1e9, memory_bytes=1e6, compute_power_w=2.0, tx_power_w=1.0),
            N("srv", 1e11, device_class="gpu", compute_power_w=100.0, tx_power_w=5.0),
        ),
        links=(splitplan.Link("dev", "srv", 1e4, 0.01),),
        source="dev",
        sink="dev",
    )
    return splitplan.Instance(dnn, net, name="tiny")
