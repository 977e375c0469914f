"""Symmetry among interchangeable nodes (`splitplan.symmetry`): the ordering rows never cut off
an optimum (brute force, both exact solvers, every objective), the interchangeability test says
no where a swap would change a plan's cost, and a MIP start is permuted into the rows' order
without changing its evaluation."""

import itertools
from dataclasses import replace

import numpy as np
import pytest
from helpers import assert_solvers_reach, brute_force
from test_cuts import brute_force_with_forms

import splitplan
from splitplan.cost import tables
from splitplan.generate import pipeline_instance, random_instance
from splitplan.instance import Constraints, Link, Network, Objective
from splitplan.milp import build_milp
from splitplan.symmetry import canonical, interchangeable, node_classes

OBJECTIVES = {
    "latency": Objective("latency"),
    "energy": Objective("energy"),
    "throughput": Objective("throughput"),
    "weighted": Objective("weighted", latency_weight=1.0, energy_weight=0.05, accuracy_weight=2.0),
}


def _identical_servers(inst: splitplan.Instance, name: str) -> splitplan.Instance:
    """`inst` with nodes n1.. copies of n1 and a complete network of equal links (n0 unchanged):
    the servers are interchangeable whatever the DNN (encodings included)."""
    nodes = inst.network.nodes
    copy = nodes[1]
    servers = tuple(replace(copy, name=n.name) for n in nodes[1:])
    names = [n.name for n in nodes]
    links = tuple(Link(a, b, 3e7, 1e-3) for a, b in itertools.combinations(names, 2))
    net = Network((nodes[0], *servers), links, inst.network.source, inst.network.sink)
    return replace(inst, network=net, name=name)


def _cases() -> list[tuple[str, splitplan.Instance, list[list[str]]]]:
    """(label, instance, its classes by name): chains and a DAG with memory that binds, a pin
    that splits a class, servers identical apart from the device, and encodings (§10)."""
    out = []
    inst = pipeline_instance(5, 4, seed=1, family="identical", memory_fraction=0.3)
    out.append(("identical chain 5x4, memory", inst, [["n1", "n2", "n3"]]))
    inst = pipeline_instance(6, 4, seed=2, family="identical", memory_fraction=0.4, skip_prob=0.5)
    out.append(("identical DAG 6x4, memory", inst, [["n1", "n2", "n3"]]))
    inst = pipeline_instance(6, 4, seed=3, family="hetero", n_classes=1, memory_fraction=0.35)
    out.append(("hetero chain 6x4, one server class", inst, [["n1", "n2", "n3"]]))
    inst = pipeline_instance(5, 4, seed=4, family="identical", memory_fraction=0.4)
    inst = inst.with_constraints(Constraints(pin={inst.layer_names[2]: ("n2", "n3")}))
    out.append(("identical chain 5x4, a pin", inst, [["n2", "n3"]]))
    inst = pipeline_instance(6, 3, seed=5, family="identical", memory_fraction=0.5)
    out.append(("identical chain 6x3, memory", inst, [["n1", "n2"]]))
    inst = random_instance(4, 4, seed=6, encoding_prob=0.9, memory_fraction=0.5)
    out.append(("encodings 4x4", _identical_servers(inst, "enc-4x4"), [["n1", "n2", "n3"]]))
    return out


CASES = _cases()


def _with(inst: splitplan.Instance, kind: str) -> splitplan.Instance:
    return inst.with_objective(OBJECTIVES[kind])


@pytest.mark.parametrize("i", range(len(CASES)))
def test_classes(i):
    label, inst, expected = CASES[i]
    tb = tables(inst)
    assert [[tb.nodes[k] for k in cls] for cls in node_classes(tb)] == expected, label


@pytest.mark.parametrize("kind", list(OBJECTIVES))
@pytest.mark.parametrize("i", range(len(CASES)))
def test_milp_with_symmetry_rows_reaches_brute_force(i, kind):
    _, base, _ = CASES[i]
    inst = _with(base, kind)
    milp = build_milp(inst)
    assert milp.symmetry and milp.family("symmetry", "order").keys  # the rows are there
    assert not build_milp(inst, cuts=False).symmetry
    assert "symmetry" not in build_milp(inst, cuts=False).blocks
    assert_solvers_reach(inst, brute_force_with_forms(inst))


def _all_assignments(inst: splitplan.Instance):
    tb = tables(inst)
    for combo in itertools.product(tb.nodes, repeat=len(tb.layers)):
        yield dict(zip(tb.layers, combo, strict=True))


def _is_canonical(inst: splitplan.Instance, classes: list[list[int]], assignment) -> bool:
    """The order rows hold: in each class, k_{i+1} is used only after k_i was, on an earlier
    layer (topological order)."""
    tb = tables(inst)
    first: dict[int, int] = {}
    for v, layer in enumerate(tb.layers):
        first.setdefault(tb.node_index[assignment[layer]], v)
    big = len(tb.layers)
    return all(
        first.get(b, big) == big or first.get(a, big) < first[b]
        for cls in classes
        for a, b in itertools.pairwise(cls)
    )


def _same_evaluation(inst: splitplan.Instance, a: dict, b: dict, encodings=None) -> None:
    """Same feasibility and cost on every objective (up to the order of float sums: a swap
    reorders the transfers of a tensor with several receivers)."""
    ea, eb = splitplan.evaluate(inst, a, encodings), splitplan.evaluate(inst, b, encodings)
    assert ea.feasible == eb.feasible, (a, b)
    for attr in ("latency_s", "energy_j", "period_s", "accuracy_loss"):
        assert getattr(eb, attr) == pytest.approx(getattr(ea, attr), rel=1e-12, abs=1e-300), attr
    assert sorted(eb.memory_bytes.values()) == sorted(ea.memory_bytes.values())
    assert eb.objective(inst) == pytest.approx(ea.objective(inst), rel=1e-12, abs=1e-300)


@pytest.mark.parametrize("i", range(len(CASES)))
def test_canonical_start_keeps_its_evaluation(i):
    """Every assignment's canonical form satisfies the rows, is a fixed point, has the same
    evaluation, and is what `Milp.start_vector` hands the solver."""
    _, inst, _ = CASES[i]
    inst = _with(inst, "weighted")
    milp = build_milp(inst)
    tb = tables(inst)
    rng = np.random.default_rng(i)
    assignments = list(_all_assignments(inst))
    some = [assignments[j] for j in rng.choice(len(assignments), size=150, replace=False)]
    coded = {t.name: t.encodings[0].name for t in tb.tensors if t.encodings}
    moved = 0
    for a in some:
        c = canonical(tb, milp.symmetry, a)
        assert _is_canonical(inst, milp.symmetry, c)
        assert canonical(tb, milp.symmetry, c) == c
        moved += c != a
        _same_evaluation(inst, a, c, coded)
        start = milp.start_vector(a)
        assert start == {j: float(c[tb.layers[v]] == tb.nodes[k]) for (v, k), j in milp.x.items()}
    assert moved > 0


def test_a_non_canonical_start_is_solved_from():
    """`splitplan.solve` with a start the rows forbid: it is permuted, and the plan returned is
    the evaluator's (optimal, as brute force says)."""
    _, inst, _ = CASES[0]
    best = brute_force(inst)
    assert best is not None
    milp = build_milp(inst)
    tb = tables(inst)
    # the optimum with its class's nodes in reverse order of first use
    cls = milp.symmetry[0]
    rename = {tb.nodes[k]: tb.nodes[r] for k, r in zip(cls, cls[::-1], strict=True)}
    start = {layer: rename.get(node, node) for layer, node in best[1].items()}
    if _is_canonical(inst, milp.symmetry, start):
        start = best[1]
    assert not _is_canonical(inst, milp.symmetry, start)
    for solver in ("highs", "ortools"):
        plan = splitplan.solve(inst, solver=solver, initial=start)
        assert plan.status == "optimal", (solver, plan.reasons)
        assert plan.objective == pytest.approx(best[0], rel=1e-6)
        assert plan.evaluation == splitplan.evaluate(inst, plan.assignment, plan.encodings)


def _square() -> splitplan.Instance:
    """n0 - n1 - n3 - n2 - n0, equal links, identical n1 and n2: swapping them is an
    automorphism of the network, but n0 -> n3 has two equally fast routes and the tables pick
    the one through n1 both before and after the swap."""
    base = pipeline_instance(4, 4, seed=0, family="identical")
    links = tuple(
        Link(a, b, 2e7, 1e-3) for a, b in [("n0", "n1"), ("n1", "n3"), ("n3", "n2"), ("n2", "n0")]
    )
    return replace(base, network=replace(base.network, links=links), name="square")


def test_rejected_when_the_routes_do_not_map():
    inst = _square()
    tb = tables(inst)
    n = tb.node_index
    assert tb.route(1e5, n["n0"], n["n3"]) == [n["n0"], n["n1"], n["n3"]]
    assert tb.route(1e5, n["n0"], n["n2"]) == [n["n0"], n["n2"]]
    assert not interchangeable(tb, n["n1"], n["n2"])
    assert node_classes(tb) == []
    # and rightly: some plan's period changes when n1 and n2 are swapped
    swap = {"n1": "n2", "n2": "n1"}
    changed = False
    for a in _all_assignments(inst):
        b = {layer: swap.get(node, node) for layer, node in a.items()}
        pa, pb = splitplan.evaluate(inst, a).period_s, splitplan.evaluate(inst, b).period_s
        changed |= abs(pa - pb) > 1e-9 * max(pa, pb)
    assert changed


def test_rejected_when_links_differ():
    inst = pipeline_instance(5, 4, seed=1, family="identical")
    links = tuple(
        replace(link, bandwidth_bytes_per_s=link.bandwidth_bytes_per_s / 2)
        if {link.source, link.target} == {"n1", "n3"}
        else link
        for link in inst.network.links
    )
    slower = replace(inst, network=replace(inst.network, links=links))
    tb = tables(slower)
    n = tb.node_index
    assert not interchangeable(tb, n["n1"], n["n2"])  # n1 - n3 is slower than n2 - n3
    assert not interchangeable(tb, n["n2"], n["n3"])
    assert interchangeable(tb, n["n1"], n["n3"])  # the slow link maps to itself
    assert node_classes(tb) == [[n["n1"], n["n3"]]]


def test_rejected_for_the_source_memory_and_power():
    inst = pipeline_instance(5, 4, seed=1, family="identical")
    tb = tables(inst)
    assert not interchangeable(tb, tb.source, 1)  # n0 holds the input and receives the output
    nodes = list(inst.network.nodes)
    nodes[2] = replace(nodes[2], memory_bytes=1e12)
    nodes[3] = replace(nodes[3], tx_power_w=2.0)
    other = replace(inst, network=replace(inst.network, nodes=tuple(nodes)))
    tb = tables(other)
    assert not interchangeable(tb, 1, 2) and not interchangeable(tb, 1, 3)
    assert node_classes(tb) == []
    # the instances of the other tests (random speeds) have no classes: their models are unchanged
    assert node_classes(tables(random_instance(5, 4, seed=0, topology="mesh"))) == []
