"""Encodings (§10): a tensor may cross the network in a compressed form, chosen with the placement.

The evaluator is checked by hand on a small instance; the MILP against brute force over every
assignment and every combination of encodings; the chain DP against the MILP.
"""

import itertools
import json
from dataclasses import replace

import pytest
from helpers import assert_solvers_reach, close
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import splitplan
from splitplan.baselines import NotApplicable, chain_dp
from splitplan.cli import main
from splitplan.cost import tables
from splitplan.generate import TOPOLOGIES, random_instance
from splitplan.instance import RAW, InstanceError


def demo(**constraints) -> splitplan.Instance:
    """Phone -> edge over 1 MB/s; the output of b has three codes (width 1/8, 1/2, 1)."""
    E = splitplan.Encoding
    L = splitplan.Layer
    codes = (
        E("w1/8", 2000.0, encode_flops=1e6, decode_flops=1e6, accuracy_loss=0.05),
        E("w1/2", 8000.0, encode_flops=4e6, decode_time_s={"gpu": 1e-4}, accuracy_loss=0.01),
        E("w1", 16000.0, encode_time_s={"phone-cpu": 2e-3}, decode_flops=8e6, accuracy_loss=0.005),
    )
    dnn = splitplan.DNN(
        "demo",
        600_000.0,
        (
            L("a", ("input",), flops=2e8, out_bytes=400_000.0),
            L("b", ("a",), flops=4e8, out_bytes=200_000.0, encodings=codes),
            L("c", ("b",), flops=8e9, out_bytes=40.0),
        ),
    )
    net = splitplan.Network(
        (
            splitplan.Node("phone", 1e10, "phone-cpu", compute_power_w=3.0, tx_power_w=1.5),
            splitplan.Node("edge", 1e12, "gpu", compute_power_w=200.0),
        ),
        (splitplan.Link("phone", "edge", 1e6, 0.005),),
        "phone",
        "phone",
    )
    return splitplan.Instance(dnn, net, constraints=splitplan.Constraints(**constraints))


CUT = {"a": "phone", "b": "phone", "c": "edge"}


def test_evaluator_costs_an_encoded_transfer_by_hand():
    inst = demo()
    ev = splitplan.evaluate(inst, CUT, {"b": "w1/2"})
    encode, decode = 4e6 / 1e10, 1e-4  # flops on the phone; the gpu's measured time
    send_b, send_c = 0.005 + 8000 / 1e6, 0.005 + 40 / 1e6
    assert close(ev.compute_s, 0.02 + 0.04 + 0.008)
    assert close(ev.codec_s, encode + decode)
    assert close(ev.transfer_s, send_b + send_c)
    assert close(ev.latency_s, 0.068 + encode + decode + send_b + send_c)
    assert close(ev.codec_energy_j, encode * 3.0 + decode * 200.0)
    assert close(ev.energy_j, 0.06 * 3 + 0.008 * 200 + encode * 3 + decode * 200 + send_b * 1.5)
    assert ev.accuracy_loss == 0.01 and ev.encodings == {"b": "w1/2"}
    assert [t.encoding for t in ev.transfers] == ["w1/2", RAW]
    assert ev.transfers[0].size_bytes == 8000
    # the encoder runs on the phone and the decoder on the edge: both count in the period
    assert close(ev.node_compute_s["phone"], 0.06 + encode)
    assert close(ev.node_compute_s["edge"], 0.008 + decode)
    # measured encoder time of the phone's class beats its flops
    assert close(splitplan.evaluate(inst, CUT, {"b": "w1"}).codec_s, 2e-3 + 8e6 / 1e12)


def test_an_encoding_of_a_tensor_that_stays_put_costs_nothing():
    inst = demo()
    local = {layer: "phone" for layer in "abc"}
    raw = splitplan.evaluate(inst, local)
    coded = splitplan.evaluate(inst, local, {"b": "w1/8", "input": RAW})
    assert coded.latency_s == raw.latency_s and coded.accuracy_loss == 0 and not coded.encodings


def test_evaluator_reports_the_accuracy_limit_and_rejects_unknown_names():
    inst = demo(max_accuracy_loss=0.01)
    assert splitplan.evaluate(inst, CUT, {"b": "w1/2"}).feasible
    ev = splitplan.evaluate(inst, CUT, {"b": "w1/8"})
    assert ev.violations == ["accuracy loss 0.05 > max_accuracy_loss 0.01 (encodings: b w1/8)"]
    with pytest.raises(ValueError, match="no encoding 'w1/4'; it has raw, w1/8, w1/2, w1"):
        splitplan.evaluate(inst, CUT, {"b": "w1/4"})
    with pytest.raises(ValueError, match="unknown tensor 'z'"):
        splitplan.evaluate(inst, CUT, {"z": "w1"})


def test_solve_picks_the_encoding_with_the_placement():
    # no limit: the smallest code; a 1-point limit: the half width; accuracy weighted: the trade
    assert splitplan.solve(demo()).encodings == {"b": "w1/8"}
    plan = splitplan.solve(demo(max_accuracy_loss=0.01))
    assert plan.encodings == {"b": "w1/2"} and plan.evaluation.feasible
    assert plan.assignment == CUT
    assert "w1/2" in plan.summary() and "accuracy   loss 0.01 (1 points)" in plan.summary()
    assert plan.to_dict()["encodings"] == {"b": "w1/2"}
    assert plan.to_dict()["accuracy_loss"] == 0.01
    weighted = demo().with_objective(splitplan.Objective("weighted", 1.0, 0.0, 0.5))
    plan = splitplan.solve(weighted)
    costs = {
        form: splitplan.evaluate(weighted, CUT, {"b": form}).objective(weighted)
        for form in ("w1/8", "w1/2", "w1", RAW)
    }
    assert plan.encodings == {"b": min(costs, key=costs.get)} and plan.status == "optimal"
    assert close(plan.objective, min(costs.values()))


def test_the_input_may_be_encoded_too():
    inst = demo()
    jpeg = splitplan.Encoding("jpeg", 30_000.0, encode_flops=5e7, accuracy_loss=0.002)
    inst = replace(inst, dnn=replace(inst.dnn, input_encodings=(jpeg,)))
    on_edge = {layer: "edge" for layer in "abc"}
    ev = splitplan.evaluate(inst, on_edge, {"input": "jpeg"})
    assert ev.transfers[0].encoding == "jpeg" and ev.transfers[0].size_bytes == 30_000
    plan = splitplan.solve(inst)
    assert close(plan.objective, brute_force_with_encodings(inst)[0])


# --------------------------------------------------------------------------- brute force


def brute_force_with_encodings(inst: splitplan.Instance):
    """The optimum over every assignment and every combination of the tensors' forms."""
    tb = tables(inst)
    coded = [t for t in tb.tensors if t.encodings]
    choices = [[RAW, *(f.name for f in t.encodings)] for t in coded]
    best = None
    for combo in itertools.product(tb.nodes, repeat=len(tb.layers)):
        assignment = dict(zip(tb.layers, combo, strict=True))
        for forms in itertools.product(*choices):
            encodings = {t.name: f for t, f in zip(coded, forms, strict=True)}
            ev = splitplan.evaluate(inst, assignment, encodings)
            if ev.feasible and (best is None or ev.objective(inst) < best[0]):
                best = (ev.objective(inst), assignment, encodings)
    return best


CASES = [  # (layers, nodes, seed, topology, skip, max_accuracy_loss, max_latency_factor)
    (4, 2, 0, "chain", 0.0, None, None),
    (4, 3, 1, "star", 0.5, 0.01, None),
    (5, 2, 2, "chain", 0.4, 0.02, 0.8),
    (3, 3, 3, "complete", 0.0, 0.005, None),
    (4, 3, 4, "mesh", 0.6, None, 1.0),
    (5, 2, 5, "chain", 0.0, 0.0, None),
]


@pytest.mark.parametrize("objective", ["latency", "energy", "throughput", "weighted"])
@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}x{c[1]}-{c[3]}-s{c[2]}")
def test_milp_with_encodings_equals_brute_force(case, objective):
    n_layers, n_nodes, seed, topo, skip, max_loss, lat = case
    inst = random_instance(
        n_layers,
        n_nodes,
        seed=seed,
        topology=topo,
        skip_prob=skip,
        objective=objective,
        max_latency_factor=lat,
        encoding_prob=0.7,
        max_accuracy_loss=max_loss,
    )
    assert tables(inst).has_encodings
    assert_solvers_reach(inst, brute_force_with_encodings(inst))


def test_the_cases_make_the_planner_encode():
    """Some brute-force optimum above sends a tensor encoded (else the tests prove little)."""
    used = 0
    for n_layers, n_nodes, seed, topo, skip, max_loss, lat in CASES:
        inst = random_instance(
            n_layers, n_nodes, seed, topo, skip, "latency", None, False, lat, True, 0.7, max_loss
        )
        best = brute_force_with_encodings(inst)
        used += best is not None and bool(splitplan.evaluate(inst, best[1], best[2]).encodings)
    assert used >= 3


instances = st.builds(
    random_instance,
    n_layers=st.integers(1, 10),
    n_nodes=st.integers(1, 4),
    seed=st.integers(0, 10_000),
    topology=st.sampled_from(TOPOLOGIES),
    skip_prob=st.sampled_from([0.0, 0.4]),
    objective=st.sampled_from(["latency", "energy", "throughput", "weighted"]),
    max_latency_factor=st.sampled_from([None, 1.0]),
    with_sink=st.booleans(),
    encoding_prob=st.sampled_from([0.3, 1.0]),
    max_accuracy_loss=st.sampled_from([None, 0.0, 0.01, 0.05]),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(inst=instances)
def test_milp_objective_equals_evaluator_with_encodings(inst):
    plan = splitplan.solve(inst)
    if not plan.solved:
        assert plan.status == "infeasible" and plan.reasons
        return
    ev = splitplan.evaluate(inst, plan.assignment, plan.encodings)
    assert ev.feasible, ev.violations
    assert close(ev.objective(inst), plan.milp_objective), (ev.objective(inst), plan.milp_objective)
    # never worse than sending everything raw in the same placement
    raw = splitplan.evaluate(inst, plan.assignment)
    if raw.feasible:
        assert plan.objective <= raw.objective(inst) * (1 + 1e-6) + 1e-12


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("objective", ["latency", "energy", "weighted"])
def test_chain_dp_with_encodings_equals_the_milp(seed, objective):
    inst = random_instance(
        12, 3, seed=seed, topology=TOPOLOGIES[seed % 4], objective=objective, encoding_prob=0.6
    )
    dp, milp = chain_dp(inst), splitplan.solve(inst)
    assert dp.status == "optimal" and close(dp.objective, milp.objective)
    assert close(dp.objective, dp.evaluation.objective(inst))


def test_chain_dp_declines_an_accuracy_limit():
    with pytest.raises(NotApplicable, match="accuracy limit"):
        chain_dp(demo(max_accuracy_loss=0.01))
    assert chain_dp(demo()).encodings == {"b": "w1/8"}


# --------------------------------------------------------------------------- the file format


def test_json_round_trip_and_schema_keep_encodings(tmp_path):
    jsonschema = pytest.importorskip("jsonschema")
    from importlib.resources import files

    inst = demo(max_accuracy_loss=0.02).with_objective(splitplan.Objective("weighted", 1, 0, 2.5))
    data = splitplan.instance_to_dict(inst)
    schema = json.loads(files("splitplan").joinpath("schema/instance.schema.json").read_text())
    jsonschema.validate(data, schema)
    assert data["dnn"]["layers"][1]["encodings"][1] == {
        "name": "w1/2",
        "bytes": 8000.0,
        "encode_flops": 4e6,
        "decode_time_s": {"gpu": 1e-4},
        "accuracy_loss": 0.01,
    }
    assert data["objective"]["accuracy"] == 2.5
    assert data["constraints"]["max_accuracy_loss"] == 0.02
    path = tmp_path / "demo.json"
    splitplan.save_instance(inst, path)
    again = splitplan.load_instance(path)
    assert splitplan.instance_to_dict(again) == data
    best = brute_force_with_encodings(again)
    plan = splitplan.solve(again)
    assert close(plan.objective, best[0]) and plan.encodings == best[2]


def _broken(edit) -> dict:
    data = splitplan.instance_to_dict(demo())
    edit(data)
    return data


def _codes(data):
    return data["dnn"]["layers"][1]["encodings"]


@pytest.mark.parametrize(
    ("edit", "field", "reason"),
    [
        (lambda d: _codes(d)[0].pop("bytes"), "dnn.layers[1].encodings[0].bytes", "is required"),
        (
            lambda d: _codes(d)[0].update(ratio=2),
            "dnn.layers[1].encodings[0].ratio",
            "unknown field",
        ),
        (lambda d: _codes(d)[1].update(name="w1/8"), ".encodings[1].name", "duplicate encoding"),
        (lambda d: _codes(d)[0].update(name="raw"), ".encodings[0].name", "reserved"),
        (lambda d: _codes(d)[2].update(bytes=-1), ".encodings[2].bytes", "must not be negative"),
        (lambda d: _codes(d)[0].update(accuracy_loss=5), "accuracy_loss", "is a fraction"),
        (
            lambda d: _codes(d)[1].update(decode_time_s={"gpu": "fast"}),
            "encodings[1].decode_time_s.gpu",
            "must be a number",
        ),
        (lambda d: d["dnn"]["layers"][1].update(encodings={}), ".encodings", "must be a list"),
        (
            lambda d: d["dnn"].update(input_encodings=[{"name": "j"}]),
            "input_encodings[0].bytes",
            "",
        ),
        (lambda d: d["objective"].update(accuracy=1), "objective", "only read for kind 'weighted'"),
        (
            lambda d: d["constraints"].update(max_accuracy_loss=-0.1),
            "constraints.max_accuracy_loss",
            "must not be negative",
        ),
    ],
)
def test_bad_encodings_name_the_field(edit, field, reason):
    with pytest.raises(InstanceError) as info:
        splitplan.instance_from_dict(_broken(edit))
    assert field in info.value.field and reason in info.value.reason


def test_cli_solves_and_reports_encodings(tmp_path, capsys):
    path = tmp_path / "demo.json"
    splitplan.save_instance(demo(max_accuracy_loss=0.01), path)
    assert main(["solve", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["encodings"] == {"b": "w1/2"} and out["transfers"][0]["encoding"] == "w1/2"
    bad = _broken(lambda d: _codes(d)[0].update(accuracy_loss=5))
    path.write_text(json.dumps(bad))
    assert main(["solve", str(path)]) != 0
    err = capsys.readouterr().err
    assert "dnn.layers[1].encodings[0].accuracy_loss" in err and "Traceback" not in err


def test_timeline_shows_the_encoder_and_decoder():
    from splitplan.plot import timeline

    plan = splitplan.solve(demo(max_accuracy_loss=0.01))
    bars = timeline(plan)
    labels = [(row, label) for row, label, _, _ in bars]
    at = labels.index(("phone -> edge", "b"))
    assert labels[at - 1] == ("phone", "encode b") and labels[at + 1] == ("edge", "decode b")
    assert close(sum(d for *_, d in bars), plan.evaluation.latency_s)
