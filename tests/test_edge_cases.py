"""Corner cases of instances: one node, no sink, a dead branch, one-way links."""

from helpers import brute_force, close

import splitplan
from splitplan import Layer, Link, Network, Node

L2 = (Layer("a", ("input",), flops=1e9, out_bytes=1e5), Layer("b", ("a",), flops=1e9, out_bytes=10))


def test_single_node_without_links():
    inst = splitplan.Instance(
        splitplan.DNN("d", 1e3, L2[:1]), Network((Node("only", 1e9),), (), "only", "only")
    )
    plan = splitplan.solve(inst)
    assert plan.status == "optimal" and plan.assignment == {"a": "only"}
    assert plan.evaluation.transfers == [] and close(plan.objective, 1.0)


def test_no_sink_and_a_dead_branch():
    layers = (*L2, Layer("dead", ("a",), flops=5e9, out_bytes=1.0))
    net = Network((Node("dev", 1e9), Node("srv", 1e11)), (Link("dev", "srv", 1e6, 0.01),), "dev")
    inst = splitplan.Instance(splitplan.DNN("d", 1e3, layers, output="b"), net)
    best = brute_force(inst)
    for solver in ("highs", "ortools"):
        plan = splitplan.solve(inst, solver)
        assert plan.status == "optimal" and close(plan.objective, best[0])
    # no sink: the output stays where it is computed
    assert all(t.tensor != "b" for t in plan.evaluation.transfers)


def test_one_way_links_are_respected():
    # dev -> srv one way, srv -> cloud one way, cloud -> dev one way: a ring of one-way links.
    nodes = (Node("dev", 1e9), Node("srv", 1e10), Node("cloud", 1e12))
    links = (
        Link("dev", "srv", 1e6, 0.01, bidirectional=False),
        Link("srv", "cloud", 1e8, 0.01, bidirectional=False),
        Link("cloud", "dev", 1e6, 0.05, bidirectional=False),
    )
    layers = tuple(
        Layer(f"l{i}", ("input",) if i == 0 else (f"l{i - 1}",), flops=1e9, out_bytes=1e4)
        for i in range(5)
    )
    for sink in ("dev", "srv"):
        inst = splitplan.Instance(
            splitplan.DNN("d", 1e5, layers), Network(nodes, links, "dev", sink)
        )
        best = brute_force(inst)
        for solver in ("highs", "ortools"):
            plan = splitplan.solve(inst, solver)
            assert plan.status == "optimal" and close(plan.objective, best[0]), (sink, solver)
            for t in plan.evaluation.transfers:
                assert (t.route[0], t.route[1]) in {
                    ("dev", "srv"),
                    ("srv", "cloud"),
                    ("cloud", "dev"),
                }


def _pinned_unreachable(objective: str, one_consumer: bool) -> splitplan.Instance:
    """`a` is pinned to n1, and n1 cannot reach n2 (one-way links out of s)."""
    nodes = (Node("s", 1e9), Node("n1", 1e10), Node("n2", 1e10))
    links = (
        Link("s", "n1", 1e6, 0.01, bidirectional=False),
        Link("s", "n2", 1e6, 0.01, bidirectional=False),
    )
    layers = [Layer("a", ("input",), flops=1e9, out_bytes=1e4), Layer("b", ("a",), flops=1e9)]
    pins = {"a": ("n1",), "b": ("n1", "n2")}
    if not one_consumer:
        layers.append(Layer("c", ("a",), flops=1e9))
        pins["c"] = ("n2",)
    return splitplan.Instance(
        splitplan.DNN("d", 1e3, tuple(layers), output="b"),
        Network(nodes, links, "s"),
        splitplan.Objective(objective),
        splitplan.Constraints(pin=pins),
    )


def test_a_pinned_producer_that_cannot_reach_a_consumer_node():
    # Regression (issue 15, defect 1): the fixed-producer transfers priced an unreachable node
    # at inf, and the solve ended in `status error`.
    for objective in ("latency", "energy", "throughput"):
        inst = _pinned_unreachable(objective, one_consumer=True)
        best = brute_force(inst)
        assert best is not None and best[1]["b"] == "n1"
        for solver in ("highs", "ortools"):
            plan = splitplan.solve(inst, solver)
            assert plan.status == "optimal" and close(plan.objective, best[0]), (objective, solver)
        inst = _pinned_unreachable(objective, one_consumer=False)
        assert brute_force(inst) is None
        for solver in ("highs", "ortools"):
            plan = splitplan.solve(inst, solver)
            assert plan.status == "infeasible" and plan.reasons, (objective, solver)
