"""NAS-Bench-201 space: arch strings, the torch skeleton against the profiler, measured latencies
split over layers, exact Pareto front code against brute force, DP against MILP."""

import csv
import gzip
import itertools
import math
import random
from pathlib import Path

import pytest

import splitplan
from splitplan.devices import network_preset
from splitplan.nas import nb201
from splitplan.nas.nb201 import (
    EDGES,
    N_ARCHS,
    OPS,
    Nb201Error,
    Nb201Space,
    arch_string,
    exact_front,
    is_connected,
    nasc_comparison,
    parse_arch,
    plan_latency,
)
from splitplan.nas.pareto import hypervolume_2d, pareto_front

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"
BEST = arch_string(
    ["nor_conv_3x3", "nor_conv_3x3", "nor_conv_3x3", "skip_connect", "nor_conv_3x3", "nor_conv_3x3"]
)
NONE = arch_string(["none"] * 6)
MIXED = "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|none~2|"


@pytest.fixture(scope="module")
def space() -> Nb201Space:
    return Nb201Space()


# --------------------------------------------------------------------------- arch strings


def test_arch_strings_round_trip_and_enumerate_the_space(space):
    archs = space.all_archs()
    assert len(archs) == N_ARCHS == len(set(archs))
    assert {arch_string(parse_arch(a)) for a in archs} == set(archs)
    every = {arch_string(ops) for ops in itertools.product(OPS, repeat=len(EDGES))}
    assert every == set(archs)
    assert BEST == (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
        "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
    )
    assert parse_arch(MIXED) == (
        "avg_pool_3x3",
        "nor_conv_1x1",
        "skip_connect",
        "nor_conv_1x1",
        "skip_connect",
        "none",
    )


@pytest.mark.parametrize(
    ("arch", "message"),
    [
        ("|nor_conv_3x3~0|+|none~0|none~1|", "3 nodes"),
        ("|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|", "unknown operation 'conv'"),
        ("|none~1|+|none~0|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
        ("|none~0|+|none~0|+|none~0|none~1|none~2|", "node 2 must have 2 input edge"),
        ("none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "node 1 must be"),
        ("|none0|+|none~0|none~1|+|none~0|none~1|none~2|", "must read 'op~0'"),
    ],
)
def test_bad_arch_strings_say_what_is_wrong(space, arch, message):
    with pytest.raises(Nb201Error, match=message):
        parse_arch(arch)
    with pytest.raises(Nb201Error, match=message):
        space.accuracy(arch)
    with pytest.raises(Nb201Error, match=message):
        space.dnn(arch, ["raspberry-pi-4"])


def test_other_bad_inputs(space):
    with pytest.raises(Nb201Error, match="is a string"):
        parse_arch(7)
    with pytest.raises(Nb201Error, match="6 edges"):
        arch_string(["none"] * 5)
    with pytest.raises(Nb201Error, match="unknown dataset"):
        Nb201Space("mnist")
    with pytest.raises(Nb201Error, match=r"device class 'jetson-nano'.*measured: raspberry-pi-4"):
        space.dnn(BEST, ["raspberry-pi-4", "jetson-nano"])
    with pytest.raises(Nb201Error, match=r"'t4'"):
        space.device_latency_s(BEST, "t4")
    with pytest.raises(Nb201Error, match=r"indices are 0\.\.15624"):
        space.arch(N_ARCHS)
    with pytest.raises(Nb201Error, match="not a latency column"):
        Nb201Space(device_columns={"t4": "titanxp_1"})
    with pytest.raises(Nb201Error, match="unknown method"):
        plan_latency(space, BEST, "pi4-edge-wifi", method="greedy")
    with pytest.raises(Nb201Error, match="exact method"):
        exact_front(space, "pi4-edge-wifi", method="single-split", archs=[BEST])
    with pytest.raises(Nb201Error, match="unknown objective"):
        plan_latency(space, BEST, "pi4-edge-wifi", objective="throughput")
    with pytest.raises(Nb201Error, match="missing primitive times"):
        Nb201Space(op_times={"format": nb201.OP_TIMES_FORMAT, "times": {"stem": 1.0}})


def test_is_connected_matches_graph_reachability():
    import networkx as nx

    for ops in itertools.product(OPS, repeat=len(EDGES)):
        g = nx.DiGraph()
        g.add_nodes_from(range(4))
        g.add_edges_from(
            (src, dst) for (dst, src), op in zip(EDGES, ops, strict=True) if op != "none"
        )
        assert is_connected(ops) == nx.has_path(g, 0, 3)
    assert not is_connected(NONE)
    assert not is_connected("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|skip_connect~2|")


# --------------------------------------------------------------------------- torch model


def test_models_run_and_a_disconnected_cell_outputs_a_constant():
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    x, y = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        out = nb201.build_model(BEST)(x)
        assert out.shape == (1, 10) and torch.isfinite(out).all()
        assert nb201.build_model(MIXED, num_classes=100)(x).shape == (1, 100)
        dead = nb201.build_model(NONE)
        assert torch.equal(dead(x), dead(y))
        live = nb201.build_model(BEST)
        assert not torch.equal(live(x), live(y))


@pytest.mark.parametrize("arch", [BEST, MIXED, NONE])
def test_closed_form_layers_equal_the_profiler(space, arch):
    torch = pytest.importorskip("torch")
    from splitplan.profile import profile

    profiled, _ = profile(
        nb201.build_model(arch), torch.randn(1, 3, 32, 32), granularity="block", repeats=1, warmup=0
    )
    ours = space.dnn(arch, ["raspberry-pi-4"])
    assert [la.name for la in profiled.layers] == [la.name for la in ours.layers]
    assert len(ours.layers) == 19
    for p, o in zip(profiled.layers, ours.layers, strict=True):
        assert (p.inputs, p.flops, p.param_bytes, p.out_bytes) == (
            o.inputs,
            o.flops,
            o.param_bytes,
            o.out_bytes,
        ), p.name
    assert profiled.input_bytes == ours.input_bytes
    assert profiled.output_layer == ours.output_layer == "head"
    assert space.flops(arch) == sum(la.flops for la in profiled.layers)


# --------------------------------------------------------------------------- layer times


def test_layer_times_sum_to_the_measured_latency(space):
    rng = random.Random(3)
    classes = space.device_classes
    assert set(classes) == {"raspberry-pi-4", "pixel-3", "rtx-2080-ti", "xeon-gold-6226"}
    table = space.table
    for arch in [BEST, NONE, MIXED, *rng.sample(space.all_archs(), 20)]:
        dnn = space.dnn(arch, classes)
        i = space.index(arch)
        assert dnn.name == f"nb201-{i}"
        for cls in classes:
            total = sum(la.time_s[cls] for la in dnn.layers)
            measured = table.latency_ms[nb201.DEVICE_COLUMNS[cls]][i] / 1e3
            assert math.isclose(total, measured, rel_tol=1e-12)
            assert math.isclose(space.device_latency_s(arch, cls), measured)
            assert all(la.time_s[cls] > 0 for la in dnn.layers)
        # the shares are the same for every class, and identical cells take identical times
        ratio = [la.time_s["raspberry-pi-4"] / la.time_s["rtx-2080-ti"] for la in dnn.layers]
        assert max(ratio) == pytest.approx(min(ratio))
        t = [la.time_s["pixel-3"] for la in dnn.layers]
        assert t[1] == t[5] and t[7] == t[11] and t[13] == t[17]
    assert set(space.dnn(BEST, ["pixel-3"]).layers[0].time_s) == {"pixel-3"}


def test_shares_follow_the_op_times_table(space):
    fast = dict(space.op_times)
    fast["cell[nor_conv_3x3]@0"] *= 10  # conv cells of stage 1 ten times dearer
    other = Nb201Space(op_times={"format": nb201.OP_TIMES_FORMAT, "times": fast})
    a = space.dnn(BEST, ["pixel-3"]).layers
    b = other.dnn(BEST, ["pixel-3"]).layers
    assert (
        b[1].time_s["pixel-3"] / b[0].time_s["pixel-3"]
        > a[1].time_s["pixel-3"] / a[0].time_s["pixel-3"]
    )
    assert sum(la.time_s["pixel-3"] for la in b) == pytest.approx(
        sum(la.time_s["pixel-3"] for la in a)
    )


def test_measure_op_times_gives_a_usable_table():
    pytest.importorskip("torch")
    table = nb201.measure_op_times(repeats=1, warmup=0, target_s=1e-5)
    assert set(table["times"]) == set(nb201.primitive_keys())
    assert all(t > 0 for t in table["times"].values())
    measured = Nb201Space(op_times=table)
    assert measured.dnn(BEST, ["pixel-3"]).layers[3].time_s["pixel-3"] > 0


def test_a_none_only_cell_is_a_valid_chain_and_plans(space):
    dnn = space.dnn(NONE, space.device_classes)
    names = ["input", *[la.name for la in dnn.layers]]
    assert [la.inputs for la in dnn.layers] == [(prev,) for prev in names[:-1]]
    assert space.flops(NONE) == space.flops(arch_string(["skip_connect"] * 6))
    r = plan_latency(space, NONE, "pi4-edge-wifi")
    # HW-NAS-Bench measured the constant-folded network in about 0.01 ms on the Pi 4: stay local
    assert r["segments"] == [("device", ["stem", "head"])]
    assert r["latency_s"] == pytest.approx(space.device_latency_s(NONE, "raspberry-pi-4"))


# --------------------------------------------------------------------------- Pareto front


def brute_front(points):
    def dominates(q, p):
        return q[0] >= p[0] and q[1] <= p[1] and (q[0] > p[0] or q[1] < p[1])

    return {i for i, p in enumerate(points) if not any(dominates(q, p) for q in points)}


def brute_hypervolume(points, ref):
    """Integer coordinates: count the unit squares some point dominates."""
    area = 0
    top = max((p[0] for p in points), default=0)
    low = min((p[1] for p in points), default=0)
    for a in range(int(ref[0]), int(top)):
        for t in range(int(low), int(ref[1])):
            if any(p[0] >= a + 1 and p[1] <= t for p in points):
                area += 1
    return area


@pytest.mark.parametrize("seed", range(30))
def test_pareto_front_and_hypervolume_against_brute_force(seed):
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    spread = rng.choice([3, 6, 30])  # small spreads force ties and duplicates
    points = [(rng.randint(0, spread), rng.randint(0, spread)) for _ in range(n)]
    front = pareto_front(points)
    assert set(front) == brute_front(points)
    assert len(front) == len(set(front))
    keys = [(points[i][1], i) for i in front]
    assert keys == sorted(keys)
    ref = (rng.randint(-2, spread // 2), rng.randint(spread // 2, spread + 2))
    assert hypervolume_2d(points, ref) == brute_hypervolume(points, ref)
    assert hypervolume_2d([points[i] for i in front], ref) == hypervolume_2d(points, ref)


def test_pareto_ties_duplicates_and_bad_points():
    pts = [(90.0, 2.0), (90.0, 2.0), (90.0, 3.0), (80.0, 2.0), (95.0, 5.0), (95.0, 4.0), (70, 1)]
    assert pareto_front(pts) == [6, 0, 1, 5]
    assert pareto_front([]) == []
    assert hypervolume_2d([], (0, 1)) == 0.0
    assert hypervolume_2d([(5.0, 1.0)], (0.0, 3.0)) == 10.0
    assert hypervolume_2d([(5.0, 4.0), (-1.0, 0.0)], (0.0, 3.0)) == 0.0
    with pytest.raises(ValueError, match="NaN"):
        pareto_front([(1.0, math.nan)])
    with pytest.raises(ValueError, match="accuracy, latency"):
        pareto_front([(1.0, 2.0, 3.0)])


# --------------------------------------------------------------------------- planning


@pytest.mark.parametrize("preset", ["pi4-edge-wifi", "phone-edge-lte", "pi4-edge-3g"])
def test_dp_equals_milp(space, preset):
    rng = random.Random(preset)
    for arch in [BEST, NONE, *rng.sample(space.all_archs(), 3)]:
        dp = plan_latency(space, arch, preset, method="dp")
        milp = plan_latency(space, arch, preset, method="milp")
        assert dp["solver"] == "dp" and milp["solver"] == "milp-highs"
        assert milp["status"] == "optimal"
        assert dp["latency_s"] == pytest.approx(milp["latency_s"], rel=1e-6)
        assert milp["bound_s"] <= dp["latency_s"] * (1 + 1e-6)
        assert dp["latency_s"] <= dp["local_latency_s"] * (1 + 1e-12)
        auto = plan_latency(space, arch, network_preset(preset))
        assert auto["solver"] == "dp" and auto["latency_s"] == dp["latency_s"]


def test_energy_objective_and_an_unmeasured_node(space):
    r = plan_latency(space, BEST, "pi4-edge-wifi", objective="energy")
    assert r["objective_kind"] == "energy" and "bound_s" not in r
    net = network_preset("3tier-wifi")  # Jetson Nano, T4, A100: no NB201 measurement
    r = plan_latency(space, MIXED, net, method="milp")
    assert r["unmeasured_nodes"] == ["device", "edge", "cloud"]
    assert r["latency_s"] == pytest.approx(plan_latency(space, MIXED, net)["latency_s"], rel=1e-6)


def test_exact_front_on_a_sample_matches_brute_force(space):
    rng = random.Random(5)
    archs = [BEST, NONE, *rng.sample(space.all_archs(), 60)]
    calls = []
    res = exact_front(space, "pi4-edge-wifi", archs=archs, progress=lambda d, t: calls.append(d))
    assert calls == [len(archs)] and len(res.cells) == len(archs)
    points = [(c.accuracy, c.latency_s) for c in res.cells]
    assert {c.index for c in res.front} == {res.cells[i].index for i in brute_front(points)}
    assert res.reference == (10.0, max(p[1] for p in points))
    assert res.hypervolume == pytest.approx(hypervolume_2d(points, res.reference))
    assert res.rate > 0 and res.method == "dp"
    cmp = nasc_comparison(res, tolerance=0.5)
    best = max(res.cells, key=lambda c: c.accuracy)
    assert cmp["most_accurate"]["index"] == best.index
    fast = cmp["fastest_within_tolerance"]
    assert fast["accuracy"] >= best.accuracy - 0.5
    assert fast["index"] in {c.index for c in res.front}
    assert all(
        c.latency_s >= fast["latency_s"] for c in res.cells if c.accuracy >= best.accuracy - 0.5
    )
    assert cmp["reduction_vs_most_accurate_split_pct"] >= 0


# --------------------------------------------------------------------------- data and protocol


def test_space_protocol_with_optuna(space):
    optuna = pytest.importorskip("optuna")
    ops = parse_arch(MIXED)
    params = {f"edge_{dst}_{src}": op for (dst, src), op in zip(EDGES, ops, strict=True)}
    arch = space.suggest(optuna.trial.FixedTrial(params))
    assert arch == MIXED
    assert space.name == "nb201"
    assert space.accuracy(arch) == space.table.accuracy["cifar10"][space.index(arch)]
    c100 = Nb201Space("cifar100")
    assert c100.accuracy(arch) == space.table.accuracy["cifar100"][space.index(arch)]
    assert Nb201Space("imagenet16").dataset == "imagenet16-120"
    assert isinstance(space.dnn(arch, ["pixel-3"]), splitplan.DNN)


def test_shipped_table_matches_the_shared_data(space, tmp_path):
    table = space.table
    assert len(table.archs) == N_ARCHS
    assert all(len(table.accuracy[d]) == N_ARCHS for d in nb201.DATASETS)
    assert 94.0 < max(table.accuracy["cifar10"]) < 95.0
    assert table.archs[0] == (
        "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|"
        "skip_connect~2|"
    )
    if not (SHARED / "nb201-accuracy").is_dir():
        pytest.skip("../shared/data is not here")
    with open(SHARED / "nb201-accuracy" / "nats_bench_tss_test_accuracy.csv") as fh:
        acc = list(csv.DictReader(fh))
    with open(SHARED / "nb201-device-latency" / "help_nb201_latency_ms.csv") as fh:
        lat = list(csv.DictReader(fh))
    for i in [0, 1, 77, 6111, 15624]:
        assert table.archs[i] == acc[i]["ArchitectureString"] == lat[i]["arch_str"]
        assert space.accuracy(table.archs[i]) == float(acc[i]["CIFAR10TestAccuracy200Epochs"])
        assert table.accuracy["imagenet16-120"][i] == float(acc[i]["ImageNetTestAccuracy200Epochs"])
        assert (
            space.device_latency_s(table.archs[i], "raspberry-pi-4")
            == float(lat[i]["raspi4"]) / 1e3
        )
        assert table.latency_ms["2080ti_1"][i] == float(lat[i]["2080ti_1"])
    out = nb201.build_data(SHARED, tmp_path / "nb201.csv.gz")
    assert gzip.decompress(out.read_bytes()) == gzip.decompress(nb201.DATA_FILE.read_bytes())
