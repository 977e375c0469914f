"""The shipped instances: valid against the JSON Schema, up to date, solved alike by both
solvers."""

import json
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
from helpers import close

import splitplan

INSTANCES = Path(__file__).resolve().parents[1] / "instances"
FILES = sorted(p for p in INSTANCES.glob("*.json") if p.name != "reference.json")
SCHEMA = json.loads(
    resources.files("splitplan").joinpath("schema/instance.schema.json").read_text()
)


def test_the_four_hand_made_instances_ship():
    names = {f.name for f in FILES}
    assert {
        "three-tier-chain.json",
        "edge-star.json",
        "skip-dag.json",
        "memory-multisplit.json",
    } <= names


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
def test_schema_accepts_and_solvers_agree(path):
    data = json.loads(path.read_text())
    jsonschema.validate(data, SCHEMA)
    inst = splitplan.load_instance(path)
    plans = {s: splitplan.solve(inst, solver=s) for s in ("highs", "ortools")}
    for solver, plan in plans.items():
        assert plan.status == "optimal", solver
        assert plan.evaluation.feasible
        assert close(plan.milp_objective, plan.objective)
    assert close(plans["highs"].objective, plans["ortools"].objective)


def test_schema_rejects_what_validation_rejects():
    data = json.loads((INSTANCES / "three-tier-chain.json").read_text())
    data["dnn"]["layers"][0]["flops"] = -1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, SCHEMA)


def test_hand_made_instances_are_up_to_date():
    import runpy

    module = runpy.run_path(str(INSTANCES / "make_handmade.py"))
    for file, make in module["INSTANCES"].items():
        assert json.loads((INSTANCES / file).read_text()) == json.loads(json.dumps(make())), file


def test_memory_limits_force_a_multi_split():
    inst = splitplan.load_instance(INSTANCES / "memory-multisplit.json")
    plan = splitplan.solve(inst)
    assert len(plan.split_points()) >= 2
    assert len(set(plan.assignment.values())) >= 3
    # Without the memory limits one device runs everything.
    from dataclasses import replace

    free = splitplan.Instance(
        inst.dnn,
        replace(
            inst.network, nodes=tuple(replace(n, memory_bytes=None) for n in inst.network.nodes)
        ),
        inst.objective,
        inst.constraints,
        inst.name,
    )
    assert splitplan.solve(free).objective < plan.objective


def test_privacy_pin_holds_and_the_chain_is_split():
    inst = splitplan.load_instance(INSTANCES / "three-tier-chain.json")
    plan = splitplan.solve(inst)
    assert plan.assignment["conv1"] == "phone"
    assert plan.split_points()
    # The plan beats running everything on the phone.
    local = splitplan.evaluate(inst, {name: "phone" for name in inst.layer_names})
    assert plan.objective < local.latency_s


def _profile_commands() -> list[list[str]]:
    """The `splitplan profile` commands that instances/README.md says regenerate the files."""
    import shlex

    text = (INSTANCES / "README.md").read_text()
    return [
        shlex.split(line)[1:] for line in text.splitlines() if line.startswith("splitplan profile")
    ]


def _without_host_times(data: dict) -> dict:
    for layer in data["dnn"]["layers"]:
        layer["time_s"].pop("host-cpu", None)  # measured on the machine that ran it
    return data


def test_profiled_instances_are_regenerated_by_the_readme_commands(tmp_path):
    pytest.importorskip("torch")
    from splitplan.cli import main

    commands = _profile_commands()
    assert len(commands) >= 5
    for argv in commands:
        out = argv[argv.index("-o") + 1]
        assert (INSTANCES.parent / out).exists(), f"{out} is listed but not shipped"
        fresh = tmp_path / Path(out).name
        argv = [*argv[: argv.index("-o")], "-o", str(fresh), "--repeats", "1", "--warmup", "0"]
        assert main(argv) == 0, argv
        shipped = json.loads((INSTANCES.parent / out).read_text())
        assert any("host-cpu" in la["time_s"] for la in shipped["dnn"]["layers"])
        assert _without_host_times(json.loads(fresh.read_text())) == _without_host_times(shipped)
