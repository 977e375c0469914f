"""One planner for every NAS caller (`splitplan.nas.planner`), and one evaluation cache across
`search.run` calls: both callers (NB201's exact front, the Optuna loop) agree and go through the
same function; the method switch against brute force; a second `run` never re-plans."""

import random

import pytest
from helpers import brute_force, close

import splitplan
from splitplan.baselines import NotApplicable
from splitplan.devices import network_preset
from splitplan.nas import planner, search
from splitplan.nas.nb201 import Nb201Space, plan_latency
from splitplan.nas.search import EvaluationCache, StudySpec, cache_of, open_study, records, run


@pytest.fixture(scope="module")
def space():
    return Nb201Space()


@pytest.fixture
def planner_calls(monkeypatch):
    """Every `plan_candidate` call, whoever makes it: (arch, method)."""
    calls = []
    real = planner.plan_candidate

    def counting(space, arch, network, **kw):
        calls.append((arch, kw.get("method", "milp")))
        return real(space, arch, network, **kw)

    monkeypatch.setattr(planner, "plan_candidate", counting)
    return calls


# --------------------------------------------------------------------------- one planner


@pytest.mark.parametrize("preset", ["pi4-edge-wifi", "phone-edge-lte"])
def test_front_and_search_plan_a_cell_through_one_planner_and_agree(space, preset, planner_calls):
    net = network_preset(preset)
    archs = [space.arch(0), space.arch(6111), *random.Random(preset).sample(space.all_archs(), 2)]
    for arch in archs:
        planner_calls.clear()
        front = plan_latency(space, arch, net)  # auto: the chain DP
        loop = search.evaluate(space, arch, net)  # the MILP
        assert planner_calls == [(arch, "auto"), (arch, "milp")]
        assert front["solver"] == "dp" and loop.status == "optimal"
        assert close(front["latency_s"], loop.latency_s)
        assert front["local_latency_s"] == loop.local_latency_s
        assert loop.bound_s <= front["latency_s"] * (1 + 1e-9)
        # the same method gives the same plan through either caller
        dp = search.evaluate(space, arch, net, method="dp")
        assert dp.latency_s == front["latency_s"] and dp.assignment == front["assignment"]
        milp = plan_latency(space, arch, net, method="milp")
        assert close(milp["latency_s"], loop.latency_s)


def test_unmeasured_classes_cost_flops_for_both_callers(space):
    # Jetson Nano, T4, A100: no NB201 measurement. The loop used to raise Nb201Error here while
    # plan_latency priced them by flops / flops_per_s; now both do the latter and say so.
    net = network_preset("3tier-wifi")
    arch = space.arch(77)
    front = plan_latency(space, arch, net)
    loop = search.evaluate(space, arch, net)
    assert loop.unmeasured_nodes == front["unmeasured_nodes"] == ["device", "edge", "cloud"]
    assert close(loop.latency_s, front["latency_s"])
    inst = planner.candidate_instance(space, arch, net)
    assert all(not la.time_s for la in inst.dnn.layers)
    measured = planner.plan_candidate(space, arch, network_preset("pi4-edge-wifi"))
    assert measured.unmeasured_nodes == []
    pi4 = network_preset("pi4-edge-wifi")
    assert planner.timed_classes(space, pi4) == [n.device_class for n in pi4.nodes]


class _DagSpace:
    """Two architectures of four layers: a chain and a diamond (a -> b, c -> d)."""

    name = "dag"

    def suggest(self, trial):
        return trial.suggest_categorical("arch", ["chain", "diamond"])

    def accuracy(self, arch):
        return 50.0 if arch == "chain" else 60.0

    def dnn(self, arch, classes):
        inputs = {"a": ("input",), "b": ("a",), "c": ("b",) if arch == "chain" else ("a",)}
        inputs["d"] = ("c",) if arch == "chain" else ("b", "c")
        layers = tuple(
            splitplan.Layer(
                name,
                inputs[name],
                flops=f,
                out_bytes=o,
                time_s={c: f / 4e10 for c in classes if c == "gpu"},
            )
            for name, f, o in (("a", 2e8, 1e3), ("b", 6e9, 4e3), ("c", 1e8, 2e4), ("d", 8e9, 10.0))
        )
        return splitplan.DNN(arch, 3e5, layers)

    def all_archs(self):
        return ["chain", "diamond"]


def _dag_network():
    N, L = splitplan.Node, splitplan.Link
    return splitplan.Network(
        nodes=(N("dev", 2e9, device_class="cpu"), N("srv", 1e10, device_class="gpu")),
        links=(L("dev", "srv", 1e6, 0.002),),  # both ways
        source="dev",
    )


@pytest.mark.parametrize("arch", ["chain", "diamond"])
def test_the_method_switch_against_brute_force(arch):
    space, net = _DagSpace(), _dag_network()
    best = brute_force(planner.candidate_instance(space, arch, net))
    milp = planner.plan_candidate(space, arch, net, method="milp")
    auto = planner.plan_candidate(space, arch, net, method="auto")
    assert milp.plan.status == "optimal" and close(milp.plan.objective, best[0])
    assert close(auto.plan.objective, best[0])
    # auto: the DP on a chain, the MILP where the DP does not apply
    assert auto.planner == ("dp" if arch == "chain" else "milp-highs")
    if arch == "chain":
        dp = planner.plan_candidate(space, arch, net, method="dp")
        assert close(dp.plan.objective, best[0])
    else:
        with pytest.raises(NotApplicable):
            planner.plan_candidate(space, arch, net, method="dp")
    single = planner.plan_candidate(space, arch, net, method="single-split")
    assert single.planner == "neurosurgeon" and single.plan.objective >= best[0] * (1 - 1e-9)
    # the lower bound is a bound; an SLO under it prunes without solving
    assert milp.bound_s <= best[0] * (1 + 1e-9)
    pruned = planner.plan_candidate(space, arch, net, slo_s=milp.bound_s * 0.99)
    assert pruned.pruned and pruned.plan is None and pruned.planner == "pruned"
    with pytest.raises(ValueError, match="unknown method 'greedy'"):
        planner.plan_candidate(space, arch, net, method="greedy")
    with pytest.raises(ValueError, match="unknown objective"):
        planner.plan_candidate(space, arch, net, objective="throughput-ish")


# --------------------------------------------------------------------------- one cache


class _OneCell:
    """NB201 with a single architecture: every trial names it."""

    name = "nb201"

    def __init__(self, space, arch):
        self.space, self.arch = space, arch
        self.device_classes = space.device_classes

    def suggest(self, trial):
        return self.arch

    def accuracy(self, arch):
        return self.space.accuracy(arch)

    def dnn(self, arch, classes):
        return self.space.dnn(arch, classes)

    def all_archs(self):
        return [self.arch]


def test_a_second_run_does_not_replan_a_seen_architecture(space, planner_calls):
    pytest.importorskip("optuna")
    one = _OneCell(space, space.arch(6111))
    net = network_preset("phone-edge-wifi")
    spec = StudySpec("nb201", "phone-edge-wifi")
    study, _ = open_study(spec, study_name="steps", storage=None, sampler="random", seed=0)
    run(study, one, net, spec, 3)
    run(study, one, net, spec, 6)  # in steps, as benchmarks/nas_nb201.py's checkpoints
    assert len(records(study)) == 6
    assert planner_calls == [(one.arch, "milp")]  # before: once per run call
    assert len(cache_of(study)) == 1
    # an explicit cache is shared by another study with the same spec...
    cache = EvaluationCache()
    for name in ("a", "b"):
        other, _ = open_study(spec, study_name=name, storage=None, sampler="random", seed=0)
        run(other, one, net, spec, 2, cache=cache)
    assert len(planner_calls) == 2 and len(cache) == 1
    # ...but not across specs (an SLO changes the candidate) or networks
    slo = StudySpec("nb201", "phone-edge-wifi", slo_s=1.0)
    constrained, _ = open_study(slo, study_name="slo", storage=None, sampler="random", seed=0)
    run(constrained, one, net, slo, 2, cache=cache)
    lte = network_preset("phone-edge-lte")
    other, _ = open_study(spec, study_name="lte", storage=None, sampler="random", seed=0)
    run(other, one, lte, spec, 2, cache=cache)
    assert len(planner_calls) == 4 and len(cache) == 3
    wifi = cache.table(one, net, spec)[one.arch].latency_s
    assert cache.table(one, lte, spec)[one.arch].latency_s != wifi
