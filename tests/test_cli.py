"""The command line: bad input exits 2 naming the file and the field; infeasible exits 3."""

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from splitplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ROOT / "instances" / "three-tier-chain.json"
BASE = json.loads(CHAIN.read_text())


def mutate(fn):
    data = copy.deepcopy(BASE)
    fn(data)
    return data


def set_in(path, value):
    def fn(d):
        *head, last = path
        for key in head:
            d = d[key]
        d[last] = value

    return fn


LAYERS = ("dnn", "layers")
BAD = {
    "wrong-format": (set_in(("format",), "splitplan-instance/9"), "format", "unsupported format"),
    "unknown-tensor": (
        set_in((*LAYERS, 3, "inputs"), ["nope"]),
        "dnn.layers[3].inputs",
        "unknown tensor 'nope'",
    ),
    "cycle": (set_in((*LAYERS, 1, "inputs"), ["layer1.0"]), "dnn.layers[1].inputs", "cycle"),
    "out-of-order": (
        lambda d: d["dnn"]["layers"].insert(3, d["dnn"]["layers"].pop(4)),
        "dnn.layers[3].inputs",
        "later layer",
    ),
    "duplicate-layer": (
        set_in((*LAYERS, 2, "name"), "conv1"),
        "dnn.layers[2].name",
        "duplicate layer name",
    ),
    "negative": (set_in((*LAYERS, 0, "flops"), -5), "dnn.layers[0].flops", "must not be negative"),
    "non-numeric": (
        set_in(("network", "nodes", 0, "flops_per_s"), "fast"),
        "network.nodes[0].flops_per_s",
        "must be a number",
    ),
    "nan-time": (
        set_in((*LAYERS, 0, "time_s"), {"jetson-nano": "0.1"}),
        "dnn.layers[0].time_s.jetson-nano",
        "must be a number",
    ),
    "unknown-pin-node": (
        set_in(("constraints", "pin", "conv1"), ["mars"]),
        "constraints.pin.conv1",
        "unknown node 'mars'",
    ),
    "unknown-pin-layer": (
        set_in(("constraints", "pin"), {"conv9": ["phone"]}),
        "constraints.pin.conv9",
        "unknown layer",
    ),
    "unknown-link-node": (
        set_in(("network", "links", 1, "to"), "moon"),
        "network.links[1].to",
        "unknown node 'moon'",
    ),
    "unreachable-sink": (
        lambda d: (
            d["network"]["links"][1].update(
                {"from": "cloud", "to": "edge", "bidirectional": False}
            ),
            d["network"].update(sink="cloud"),
        ),
        "network.sink",
        "cannot be reached",
    ),
    "pin-unreachable": (
        lambda d: (d["network"]["links"].pop(1), d["constraints"]["pin"].update(fc=["cloud"])),
        "constraints.pin.fc",
        "cannot reach",
    ),
    "unknown-field": (set_in((*LAYERS, 0, "flop"), 1), "dnn.layers[0].flop", "unknown field"),
    "missing-field": (lambda d: d["network"].pop("source"), "network.source", "is required"),
    "bad-objective": (set_in(("objective", "kind"), "speed"), "objective.kind", "unknown kind"),
    "duplicate-node": (
        set_in(("network", "nodes", 1, "name"), "phone"),
        "network.nodes[1].name",
        "duplicate node name",
    ),
}


@pytest.mark.parametrize("case", sorted(BAD))
@pytest.mark.parametrize("command", ["solve", "validate"])
def test_bad_input_exits_2_with_file_and_field(tmp_path, capsys, case, command):
    fn, field, reason = BAD[case]
    path = tmp_path / f"{case}.json"
    path.write_text(json.dumps(mutate(fn)))
    assert main([command, str(path)]) == 2
    err = capsys.readouterr().err
    assert str(path) in err and f"{field}: " in err and reason in err, err
    assert "Traceback" not in err
    assert main([command, str(path), "--json"]) == 2
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "bad_input" and out["error"]["field"] == field


def test_missing_file_and_invalid_json(tmp_path, capsys):
    assert main(["solve", str(tmp_path / "none.json")]) == 2
    assert "none.json: no such file" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "splitplan-instance/1",\n "dnn": [}')
    assert main(["validate", str(bad)]) == 2
    assert "bad.json: invalid JSON at line 2" in capsys.readouterr().err


def test_bad_arguments_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["solve", str(CHAIN), "--time-limit", "-1"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["solve", str(CHAIN), "--solver", "gurobi"])
    assert exc.value.code == 2


def test_infeasible_exits_3_and_says_why(tmp_path, capsys):
    data = mutate(set_in(("network", "nodes", 0, "memory_bytes"), 1e5))  # phone: 100 kB
    path = tmp_path / "tight.json"
    path.write_text(json.dumps(data))
    assert main(["solve", str(path)]) == 3
    out = capsys.readouterr().out
    assert "infeasible" in out and "conv1" in out and "memory_bytes" in out
    assert main(["validate", str(path)]) == 3  # valid input, infeasible problem (issue 15)
    assert "infeasible: layer 'conv1'" in capsys.readouterr().out
    data = mutate(set_in(("constraints", "max_latency_s"), 0.01))
    path.write_text(json.dumps(data))
    assert main(["solve", str(path), "--json"]) == 3
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "infeasible" and "max_latency_s" in out["reasons"][0]


def test_solve_json_is_one_object_with_the_promised_fields(capsys):
    assert main(["solve", str(CHAIN), "--json", "--solver", "ortools"]) == 0
    out = json.loads(capsys.readouterr().out)
    for key in (
        "status",
        "objective",
        "bound",
        "gap",
        "solver",
        "assignment",
        "latency_s",
        "energy_j",
        "period_s",
        "solve_time_s",
    ):
        assert key in out
    assert out["status"] == "optimal" and out["solver"] == "ortools"
    assert set(out["assignment"]) == {layer["name"] for layer in BASE["dnn"]["layers"]}


def test_console_script_prints_the_table():
    proc = subprocess.run(
        [sys.executable, "-m", "splitplan.cli", "solve", str(CHAIN)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "splits" in proc.stdout and "gap" in proc.stdout and "latency" in proc.stdout
