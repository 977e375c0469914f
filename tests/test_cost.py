"""The evaluator against costs worked out by hand from models/formulation.md."""

import math

import pytest

import splitplan
from splitplan.cost import tables


def test_all_on_device(tiny_instance):
    ev = splitplan.evaluate(tiny_instance, {"a": "dev", "b": "dev"})
    assert ev.compute_s == pytest.approx(2.0 + 4.0)
    assert ev.transfer_s == 0 and ev.transfers == []
    assert ev.energy_j == pytest.approx(6.0 * 2.0)
    assert ev.period_s == pytest.approx(6.0)
    # memory: params 300 + the larger working set (b: 500 in + 10 out; a: 1000 in + 500 out)
    assert ev.memory_bytes["dev"] == pytest.approx(300 + 1500)
    assert ev.feasible


def test_split_uses_measured_time_and_both_directions(tiny_instance):
    ev = splitplan.evaluate(tiny_instance, {"a": "dev", "b": "srv"})
    # b runs on the gpu class: its measured 1 ms wins over flops / flops_per_s
    assert ev.compute_s == pytest.approx(2.0 + 0.001)
    up = 0.01 + 500 / 1e4  # a's output to the server
    down = 0.01 + 10 / 1e4  # b's output back to the sink
    assert ev.transfer_s == pytest.approx(up + down)
    assert ev.latency_s == pytest.approx(2.001 + up + down)
    assert ev.energy_j == pytest.approx(2.0 * 2.0 + 0.001 * 100 + up * 1.0 + down * 5.0)
    assert ev.link_load_s[("dev", "srv")] == pytest.approx(500 / 1e4)
    assert ev.link_load_s[("srv", "dev")] == pytest.approx(10 / 1e4)
    assert ev.period_s == pytest.approx(2.0)
    assert [(t.tensor, t.route) for t in ev.transfers] == [
        ("a", ("dev", "srv")),
        ("b", ("srv", "dev")),
    ]


def test_tensor_sent_once_per_node():
    L = splitplan.Layer
    dnn = splitplan.DNN(
        "fan",
        100.0,
        (
            L("a", ("input",), flops=1.0, out_bytes=50.0),
            L("b", ("a",), flops=1.0, out_bytes=1.0),
            L("c", ("a",), flops=1.0, out_bytes=1.0),
            L("d", ("b", "c"), flops=1.0, out_bytes=1.0),
        ),
    )
    net = splitplan.Network(
        (splitplan.Node("x", 1.0), splitplan.Node("y", 1.0)),
        (splitplan.Link("x", "y", 10.0, 1.0),),
        "x",
    )
    inst = splitplan.Instance(dnn, net)
    ev = splitplan.evaluate(inst, {"a": "x", "b": "y", "c": "y", "d": "y"})
    # a goes to y once although two consumers run there; no sink, so d's output stays
    assert [t.tensor for t in ev.transfers] == ["a"]
    assert ev.transfer_s == pytest.approx(1.0 + 50 / 10)


def test_route_minimises_latency_plus_size_over_bandwidth():
    # Two paths from s to t: one hop over a slow link, or two hops over fast links with latency.
    nodes = tuple(splitplan.Node(n, 1e9) for n in ("s", "m", "t"))
    links = (
        splitplan.Link("s", "t", 100.0, 0.0),
        splitplan.Link("s", "m", 1e6, 0.5),
        splitplan.Link("m", "t", 1e6, 0.5),
    )
    dnn = splitplan.DNN("d", 10.0, (splitplan.Layer("a", ("input",)),))
    inst = splitplan.Instance(dnn, splitplan.Network(nodes, links, "s"))
    tb = tables(inst)
    s, t = tb.node_index["s"], tb.node_index["t"]
    assert tb.route(10.0, s, t) == [s, t]  # 0.1 s direct vs 1.00002 s via m
    assert tb.route(1000.0, s, t) == [s, tb.node_index["m"], t]  # 10 s direct vs 1.002 s
    assert tb.shortest_paths(1000.0)[0][s, t] == pytest.approx(1.0 + 2 * 1000 / 1e6)


def test_violations_are_reported(tiny_instance):
    inst = tiny_instance.with_constraints(splitplan.Constraints({"a": ("srv",)}, 0.5))
    ev = splitplan.evaluate(inst, {"a": "dev", "b": "dev"})
    assert not ev.feasible
    text = " ".join(ev.violations)
    assert "pinned" in text and "max_latency_s" in text


def test_unknown_node_in_assignment_raises(tiny_instance):
    with pytest.raises(ValueError, match="unknown node"):
        splitplan.evaluate(tiny_instance, {"a": "dev", "b": "moon"})


def test_the_objective_is_interpreted_in_one_place():
    from splitplan.instance import Objective, Weights

    assert Objective("latency").weights() == Weights(1.0, 0.0, 0.0)
    assert Objective("energy").weights() == Weights(0.0, 1.0, 0.0)
    assert Objective("weighted", 2.0, 3.0, 4.0).weights() == Weights(2.0, 3.0, 4.0)
    assert not Objective("throughput").additive
    with pytest.raises(ValueError, match="not a weighted sum"):
        Objective("throughput").weights()

    class Ev:
        latency_s, energy_j, accuracy_loss, period_s = 0.5, 7.0, 0.01, 0.125

    assert Objective("latency").value(Ev) == 0.5
    assert Objective("energy").value(Ev) == 7.0
    assert Objective("throughput").value(Ev) == 0.125
    assert Objective("weighted", 2.0, 3.0, 100.0).value(Ev) == pytest.approx(1 + 21 + 1)


@pytest.mark.parametrize("topology", ["chain", "star", "mesh"])
def test_route_terms_equal_the_path_cost(topology):
    """The MILP's cached route terms (linear in the size on a fixed route) are the evaluator's
    route, energy and loads, for every size and pair, also where the route changes with the
    size (multi-hop chains and meshes)."""
    from splitplan.generate import random_instance

    inst = random_instance(6, 5, seed=3, topology=topology)
    tb = tables(inst)
    K = len(tb.nodes)
    for size in (0.0, 16.0, 1e3, 3.7e5, 1e8):
        for a in range(K):
            for b in range(K):
                cost = tb.path_cost(size, a, b)
                if cost is None:
                    with pytest.raises(ValueError):
                        tb.route_terms(size, a, b)
                    continue
                energy, arcs, loads = tb.route_terms(size, a, b)
                assert arcs == cost.arcs
                assert energy == pytest.approx(cost.energy_j, rel=1e-12, abs=1e-300)
                assert loads == pytest.approx(list(cost.loads_s), rel=1e-12)
        every = tb.route_energy(size)  # all pairs at once (the baselines' pair costs)
        for a in range(K):
            for b in range(K):
                cost = tb.path_cost(size, a, b)
                want = math.inf if cost is None else cost.energy_j
                assert every[a, b] == pytest.approx(want, rel=1e-12, abs=1e-300)
