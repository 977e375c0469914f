"""The NAS outer loop (issue 5) on the NAS-Bench-201 space: trial records hold the solver's
optimum, SLO pruning never solves what the bound rules out, studies resume from storage, and the
command line reports and fails clearly."""

import json
import math

import pytest
from helpers import close

pytest.importorskip("optuna")

import splitplan
from splitplan.cli import main
from splitplan.cost import latency_lower_bound
from splitplan.devices import network_preset
from splitplan.instance import Constraints, Instance, Objective
from splitplan.nas import search
from splitplan.nas.nb201 import Nb201Space
from splitplan.nas.pareto import pareto_front
from splitplan.nas.search import StudySpec, baselines, open_study, records, run

NETWORK = "phone-edge-wifi"  # both plans (all on the phone, all on the edge) occur on it


@pytest.fixture(scope="module")
def space():
    return Nb201Space()


@pytest.fixture(scope="module")
def network():
    return network_preset(NETWORK)


def _spec(**kw) -> StudySpec:
    return StudySpec("nb201", NETWORK, space_options={"dataset": "cifar10"}, **kw)


def _optimum(space, network, arch: str) -> float:
    classes = sorted({n.device_class for n in network.nodes})
    inst = Instance(space.dnn(arch, classes), network, Objective(), Constraints(), arch)
    plan = splitplan.solve(inst)
    assert plan.status == "optimal"
    return plan.objective


def test_trial_records_hold_the_solvers_optimum(space, network, tmp_path):
    spec = _spec()
    study, _ = open_study(spec, study_name="t", storage=f"sqlite:///{tmp_path}/s.db", seed=3)
    run(study, space, network, spec, 6)
    recs = records(study)
    assert len(recs) == 6
    for r in recs:
        assert r["status"] == "optimal"
        assert close(r["latency_s"], _optimum(space, network, r["arch"]))
        assert r["bound_s"] <= r["latency_s"] * (1 + 1e-9)
        assert r["accuracy"] == space.accuracy(r["arch"])
        assert set(r["assignment"].values()) == set(r["nodes_used"])
        # the all-on-the-device latency is the table's measured one for the phone
        assert close(r["local_latency_s"], space.device_latency_s(r["arch"], "pixel-3"))
    values = {t.number: t.values for t in study.trials}
    for r in recs:
        assert values[r["trial"]] == [r["accuracy"], r["latency_s"]]


def test_a_study_resumes_from_its_storage(space, network, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    spec = _spec()
    study, _ = open_study(spec, study_name="resume", storage=storage, seed=0)
    run(study, space, network, spec, 4)
    first = records(study)
    # a worker: no spec of its own, it takes the stored one
    again, stored = open_study(None, study_name="resume", storage=storage, seed=1)
    assert stored == spec
    run(again, space, network, stored, 7)
    after = records(again)
    assert len(after) == 7 and after[:4] == first
    with pytest.raises(ValueError, match="network 'phone-edge-wifi'"):
        open_study(
            StudySpec("nb201", "pi4-edge-lte", space_options={"dataset": "cifar10"}),
            study_name="resume",
            storage=storage,
        )
    with pytest.raises(ValueError, match="no study 'other'"):
        open_study(None, study_name="other", storage=storage)


def test_slo_pruning_never_solves_what_the_bound_rules_out(space, network, monkeypatch):
    import splitplan.plan

    arch = space.arch(0)
    calls = []
    real = splitplan.plan.solve
    monkeypatch.setattr(splitplan.plan, "solve", lambda *a, **k: calls.append(1) or real(*a, **k))
    cand = search.evaluate(space, arch, network, slo_s=1e-6)
    assert cand.status == "pruned" and cand.latency_s is None and not calls
    assert cand.bound_s > 1e-6
    optimum = _optimum(space, network, arch)
    calls.clear()
    met = search.evaluate(space, arch, network, slo_s=optimum * 1.01)
    assert met.status == "optimal" and close(met.latency_s, optimum) and calls
    # between the lower bound and the optimum: solved, and proven over the SLO
    if met.bound_s < optimum * 0.999:
        over = search.evaluate(space, arch, network, slo_s=(met.bound_s + optimum) / 2)
        assert over.status == "over-slo" and over.latency_s is None


def test_constrained_study_only_counts_plans_within_the_slo(space, network):
    slo = 0.012
    spec = _spec(slo_s=slo)
    study, _ = open_study(spec, study_name="slo", storage=None, sampler="tpe", seed=0)
    run(study, space, network, spec, 12)
    for r, t in zip(records(study), study.trials, strict=True):
        feasible = r["latency_s"] is not None and r["latency_s"] <= slo
        assert r["status"] in ("optimal", "pruned", "over-slo")
        assert (t.system_attrs.get("constraints") or [0])[0] <= 0 if feasible else True
        if r["status"] == "over-slo":
            assert _optimum(space, network, r["arch"]) > slo
    front = search.front_of(records(study), slo)
    assert all(r["latency_s"] <= slo for r in front)


def test_single_split_is_never_faster_than_the_milp(space, network):
    for index in (0, 1, 2, 6111):
        arch = space.arch(index)
        joint = search.evaluate(space, arch, network)
        single = search.evaluate(space, arch, network, single_split=True)
        assert single.latency_s >= joint.latency_s * (1 - 1e-9)


def test_baselines_most_accurate_and_nas_then_split(space, network):
    archs = [space.arch(i) for i in range(0, 15625, 97)]
    slo = 0.015
    out = baselines(space, network, slo_s=slo, archs=archs)
    best = max(archs, key=space.accuracy)
    assert out["most_accurate"]["arch"] == best
    chosen = out["nas_then_split"]
    # the most accurate whose on-device latency meets the SLO, found without the network
    fits = [a for a in archs if space.device_latency_s(a, "pixel-3") <= slo]
    assert chosen["accuracy"] == max(space.accuracy(a) for a in fits)
    assert chosen["latency_s"] <= chosen["local_latency_s"] * (1 + 1e-9)


def test_report_files(space, network, tmp_path):
    spec = _spec()
    study, _ = open_study(spec, study_name="r", storage=None, seed=0)
    run(study, space, network, spec, 8)
    recs = records(study)
    paths = search.write_report(recs, tmp_path / "out", spec=spec)
    report = json.loads(paths["json"].read_text())
    assert report["format"] == "splitplan-nas-report/1" and len(report["trials"]) == 8
    keep = pareto_front([(r["accuracy"], r["latency_s"]) for r in recs])
    assert {r["arch"] for r in report["front"]} == {recs[i]["arch"] for i in keep}
    assert len(paths["csv"].read_text().splitlines()) == 9
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_nas_cli_runs_resumes_and_fails_clearly(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path}/cli.db"
    out = tmp_path / "rep"
    args = ["nas", "--space", "nb201", "--network", NETWORK, "--storage", storage, "--quiet"]
    assert main([*args, "--trials", "3", "--out", str(out)]) == 0
    assert "front of" in capsys.readouterr().out
    assert main(["nas", "worker", "--study", f"nb201-{NETWORK}", "--storage", storage,
                 "--trials", "5", "--quiet", "--out", str(out)]) == 0  # fmt: skip
    assert len(json.loads((out / "trials.json").read_text())["trials"]) == 5
    capsys.readouterr()
    assert main(["nas", "--network", NETWORK, "--storage", storage]) == 2
    assert "--space and --network are required" in capsys.readouterr().err
    assert main([*args[:4], "6g", "--storage", storage]) == 2
    assert "unknown network preset" in capsys.readouterr().err
    assert main(["nas", "worker", "--study", "nope", "--storage", storage]) == 2
    assert "no study 'nope'" in capsys.readouterr().err
    assert main(["retrain", str(out / "trials.json")]) == 2
    assert "nothing to retrain" in capsys.readouterr().err
    assert main(["retrain", str(tmp_path / "missing.json")]) == 2
    with pytest.raises(SystemExit):
        main([*args, "--trials", "0"])
    assert "positive" in capsys.readouterr().err


def test_latency_lower_bound_is_a_bound(space, network):
    classes = sorted({n.device_class for n in network.nodes})
    for index in (5, 50, 500):
        inst = Instance(space.dnn(space.arch(index), classes), network, Objective(), Constraints())
        lb = latency_lower_bound(inst)
        assert math.isfinite(lb) and lb <= splitplan.solve(inst).objective * (1 + 1e-9)


def test_mbv2_digits_study_and_retrain_end_to_end(tmp_path, capsys):
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    out = tmp_path / "rep"
    argv = ["nas", "--space", "mbv2-digits", "--network", "pi4-edge-wifi", "--trials", "2"]
    argv += ["--epochs", "1", "--supernet", str(tmp_path / "sn.pt"), "--quiet"]
    argv += ["--storage", f"sqlite:///{tmp_path}/m.db", "--out", str(out)]
    assert main(argv) == 0
    report = json.loads((out / "trials.json").read_text())
    assert report["spec"]["space"] == "mbv2-digits" and len(report["trials"]) == 2
    assert (tmp_path / "sn.pt").exists()  # trained once, saved for the next worker
    assert main(["retrain", str(out / "trials.json"), "--top", "1", "--epochs", "1"]) == 0
    retrained = json.loads((out / "retrained.json").read_text())["retrained"]
    assert len(retrained) == 1 and 0 <= retrained[0]["retrained"]["accuracy_test"] <= 100
    assert "retrained test %" in capsys.readouterr().out
