"""A corpus of malformed files and arguments against every README command that reads a file
(issue 15): exit code 2, one line on stderr naming the file (and the field where there is one),
the shared JSON error object under --json, and never a traceback."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from splitplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
BASE = json.loads((ROOT / "instances" / "three-tier-chain.json").read_text())
WIDTHS = json.loads((ROOT / "instances" / "widths" / "slimmable-digits-widths.json").read_text())


def _set(path: tuple, value):
    def apply(d):
        for key in path[:-1]:
            d = d[key]
        d[path[-1]] = value

    return apply


def _layer(i: int, key: str, value):
    return _set(("dnn", "layers", i, key), value)


DEEP = "[" * 100_000 + "]" * 100_000  # json raises RecursionError on this

# name: (file text or a mutation of the base instance, the field the error must name or None)
INSTANCES: dict[str, tuple] = {
    "empty-file": ("", None),
    "not-json": ('{"format": "splitplan-instance/1", "dnn": [}', None),
    "deeply-nested": (DEEP, None),
    "deep-in-a-field": (
        _set(("dnn", "layers", 0, "inputs"), json.loads("[" * 500 + "]" * 500)),
        "[",
    ),
    "top-level-list": ("[]", None),
    "not-utf8": (b"\xff\xfe\x00{", None),
    "bad-format": (_set(("format",), "splitplan-instance/9"), "format"),
    "flops-string": (_layer(0, "flops", "1e9"), "dnn.layers[0].flops"),
    "flops-nan": (_layer(0, "flops", float("nan")), "dnn.layers[0].flops"),
    "flops-infinity": (_layer(0, "flops", float("inf")), "dnn.layers[0].flops"),
    "flops-1e308": (lambda d: [la.update(flops=1e308) for la in d["dnn"]["layers"]], "flops"),
    "flops-huge-int": (_layer(1, "flops", 10**400), "dnn.layers[1].flops"),
    "flops-negative": (_layer(0, "flops", -1), "dnn.layers[0].flops"),
    "flops-bool": (_layer(0, "flops", True), "dnn.layers[0].flops"),
    "inputs-a-string": (_layer(0, "inputs", "input"), "dnn.layers[0].inputs"),
    "inputs-unknown": (_layer(1, "inputs", ["nope"]), "dnn.layers[1].inputs"),
    "inputs-nested": (_layer(1, "inputs", [["input"]]), "dnn.layers[1].inputs[0]"),
    "no-layers": (_set(("dnn", "layers"), []), "dnn.layers"),
    "layers-an-object": (_set(("dnn", "layers"), {"a": 1}), "dnn.layers"),
    "layer-a-number": (_set(("dnn", "layers", 0), 7), "dnn.layers[0]"),
    "duplicate-layer": (_layer(1, "name", BASE["dnn"]["layers"][0]["name"]), "dnn.layers[1].name"),
    "empty-name": (_layer(0, "name", ""), "dnn.layers[0].name"),
    "time-s-a-list": (_layer(0, "time_s", [1]), "dnn.layers[0].time_s"),
    "time-s-negative": (_layer(0, "time_s", {"jetson-nano": -1}), "dnn.layers[0].time_s"),
    "out-bytes-1e300": (_layer(2, "out_bytes", 1e300), "dnn.layers[2].out_bytes"),
    "param-bytes-1e308": (
        lambda d: [la.update(param_bytes=1e308) for la in d["dnn"]["layers"]],
        "dnn.layers[0].param_bytes",
    ),
    "node-zero-flops": (_set(("network", "nodes", 0, "flops_per_s"), 0), "network.nodes[0]"),
    "node-tiny-flops": (_set(("network", "nodes", 1, "flops_per_s"), 1e-300), "flops"),
    "memory-a-string": (_set(("network", "nodes", 0, "memory_bytes"), "4GB"), "memory_bytes"),
    "power-1e300": (_set(("network", "nodes", 0, "compute_power_w"), 1e300), "compute_power_w"),
    "link-negative": (
        _set(("network", "links", 0, "bandwidth_bytes_per_s"), -1),
        "network.links[0].bandwidth_bytes_per_s",
    ),
    "link-unknown-node": (_set(("network", "links", 0, "to"), "mars"), "network.links[0].to"),
    "links-not-a-list": (_set(("network", "links"), "phone-edge"), "network.links"),
    "source-unknown": (_set(("network", "source"), "mars"), "network.source"),
    "pin-unknown-node": (_set(("constraints", "pin"), {"conv1": ["mars"]}), "constraints.pin"),
    "pin-a-number": (_set(("constraints", "pin"), {"conv1": 3}), "constraints.pin.conv1"),
    "pin-nan": (_set(("constraints", "pin"), float("nan")), "constraints.pin"),
    "max-latency-negative": (_set(("constraints", "max_latency_s"), -1), "max_latency_s"),
    "objective-unknown": (_set(("objective",), {"kind": "speed"}), "objective.kind"),
    "objective-weight-1e300": (
        _set(("objective",), {"kind": "weighted", "latency": 1e300, "energy": 1}),
        "objective.latency",
    ),
    "unknown-field": (_set(("colour",), "blue"), "colour"),
    "cycle": (_layer(0, "inputs", [BASE["dnn"]["layers"][2]["name"]]), "dnn.layers[0].inputs"),
    "encoding-loss-2": (
        _layer(2, "encodings", [{"name": "int8", "bytes": 10, "accuracy_loss": 2}]),
        "dnn.layers[2].encodings[0].accuracy_loss",
    ),
}


def test_integer_beyond_int64_is_a_number(tmp_path, capsys):
    """JSON integers are unbounded; 2**70 parameter bytes is a (hopeless) size, not a crash: the
    layer fits no node, exit 3 with that reason (it was an OverflowError in the cost tables)."""
    path = _write(tmp_path, "param-2-70", _layer(1, "param_bytes", 2**70), BASE)
    assert main(["validate", str(path)]) == 3
    out = capsys.readouterr()
    assert "Traceback" not in out.err and "internal error" not in out.err
    assert "fits none of its nodes" in out.out + out.err


def _write(tmp_path: Path, name: str, spec, base: dict) -> Path:
    path = tmp_path / f"{name}.json"
    if isinstance(spec, bytes):
        path.write_bytes(spec)
    elif isinstance(spec, str):
        path.write_text(spec)
    else:
        data = copy.deepcopy(base)
        spec(data)
        path.write_text(json.dumps(data))
    return path


def _one_clear_line(err: str, path: Path | str, field: str | None) -> None:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert "Traceback" not in err, err
    assert len(lines) == 1, err
    assert lines[0].startswith("splitplan: error: "), err
    assert str(path) in lines[0], err
    if field is not None:
        assert field in lines[0], err


@pytest.mark.parametrize("case", sorted(INSTANCES))
def test_instance_corpus_every_command(case, tmp_path, capsys):
    spec, field = INSTANCES[case]
    path = _write(tmp_path, case, spec, BASE)
    for argv in (
        ["validate", str(path)],
        ["solve", str(path)],
        ["compare", str(path), "--methods", "greedy"],
        ["online", str(path)],
    ):
        assert main(argv) == 2, (argv, capsys.readouterr())
        out = capsys.readouterr()
        _one_clear_line(out.err, path, field)
        assert out.out == ""
    for command in ("validate", "solve", "compare", "online"):
        assert main([command, str(path), "--json"]) == 2
        out = capsys.readouterr()
        _one_clear_line(out.err, path, field)
        error = json.loads(out.out)  # exactly one JSON object
        assert error["status"] == "bad_input"
        assert error["error"]["file"] == str(path)
        assert set(error["error"]) == {"type", "file", "field", "reason", "message"}
        if field is not None:
            assert field in error["error"]["message"]


def test_missing_file_and_directory(tmp_path, capsys):
    for path in (tmp_path / "none.json", tmp_path):
        for command in ("validate", "solve", "compare", "online"):
            assert main([command, str(path)]) == 2
            _one_clear_line(capsys.readouterr().err, path, None)
        assert main(["adapt", str(path), "--trace", "hsdpa-bus", "--deadline-s", "0.002"]) == 2
        _one_clear_line(capsys.readouterr().err, path, None)


WIDTHS_CASES: dict[str, tuple] = {
    "not-json": ("{", None),
    "deeply-nested": (DEEP, None),
    "top-level-list": ("[]", None),
    "no-widths": (_set(("widths",), []), "widths"),
    "payload-negative": (_set(("widths", 0, "payload_bytes"), -1), "widths[0].payload_bytes"),
    "payload-huge-int": (_set(("widths", 1, "payload_bytes"), 10**400), "widths[1].payload_bytes"),
    "accuracy-nan": (_set(("widths", 0, "accuracy"), float("nan")), "widths[0].accuracy"),
    "accuracy-percent": (_set(("widths", 0, "accuracy"), 93.6), "widths[0].accuracy"),
    "device-s-string": (_set(("widths", 2, "device_s"), "fast"), "widths[2].device_s"),
    "unknown-field": (_set(("colour",), "blue"), "colour"),
}


@pytest.mark.parametrize("case", sorted(WIDTHS_CASES))
def test_widths_corpus(case, tmp_path, capsys):
    spec, field = WIDTHS_CASES[case]
    path = _write(tmp_path, case, spec, WIDTHS)
    argv = ["adapt", str(path), "--trace", "hsdpa-bus", "--deadline-s", "0.002"]
    assert main(argv) == 2
    _one_clear_line(capsys.readouterr().err, path, field)
    assert main([*argv, "--json"]) == 2
    out = capsys.readouterr()
    _one_clear_line(out.err, path, field)
    assert json.loads(out.out)["error"]["file"] == str(path)


TRACES = {
    "empty": "",
    "garbage": "hello world\nthis is not a trace\n",
    "one-sample": "0 1.5\n",
    "negative": "0 1.5\n1 -2\n2 3\n",
    "binary": b"\x00\xff\xfe",
}


@pytest.mark.parametrize("case", sorted(TRACES))
def test_trace_corpus(case, tmp_path, capsys):
    path = tmp_path / f"{case}.txt"
    text = TRACES[case]
    path.write_bytes(text) if isinstance(text, bytes) else path.write_text(text)
    widths = ROOT / "instances" / "widths" / "slimmable-digits-widths.json"
    instance = ROOT / "instances" / "three-tier-chain.json"
    for argv in (
        ["adapt", str(widths), "--trace", str(path), "--deadline-s", "0.002"],
        ["online", str(instance), "--channel", "trace", "--trace", str(path), "--inferences", "10"],
    ):
        assert main(argv) == 2, argv
        _one_clear_line(capsys.readouterr().err, path, None)


REPORTS = {
    "not-json": ("{", None),
    "deeply-nested": (DEEP, None),
    "not-a-report": ('{"format": "something-else"}', "format"),
    "no-spec": ('{"format": "splitplan-nas-report/1", "front": []}', "spec.space"),
    "front-not-a-list": (
        '{"format": "splitplan-nas-report/1", "spec": {"space": "mbv2-digits"}, "front": 3}',
        "front",
    ),
    "front-without-arch": (
        '{"format": "splitplan-nas-report/1", "spec": {"space": "mbv2-digits"}, '
        '"front": [{"accuracy": 90, "latency_s": 0.1}]}',
        "front[0].arch",
    ),
}


@pytest.mark.parametrize("case", sorted(REPORTS))
def test_retrain_report_corpus(case, tmp_path, capsys):
    text, field = REPORTS[case]
    path = tmp_path / f"{case}.json"
    path.write_text(text)
    assert main(["retrain", str(path)]) == 2
    _one_clear_line(capsys.readouterr().err, path, field)


def test_profile_network_from_a_malformed_file(tmp_path, capsys, monkeypatch):
    pytest.importorskip("torch")
    import splitplan.profile

    def never(*args, **kwargs):
        raise AssertionError("profiled a model although --network-from is unreadable")

    monkeypatch.setattr(splitplan.profile, "profile", never)
    path = _write(tmp_path, "bad", _layer(0, "flops", -1), BASE)
    out = tmp_path / "out.json"
    assert main(["profile", "--model", "mlp", "--network-from", str(path), "-o", str(out)]) == 2
    _one_clear_line(capsys.readouterr().err, path, "dnn.layers[0].flops")
    assert not out.exists()


# Argument cases: argparse's own errors (usage + one error line) and the commands' checks; under
# --json the same error object as a bad file.
ARGUMENTS = [
    ["solve", "{instance}", "--time-limit", "-1"],
    ["solve", "{instance}", "--solver", "gurobi"],
    ["compare", "{instance}", "--methods", "magic"],
    ["online", "{instance}", "--snr-range=1:0:1", "--plot", "{tmp}/x.png"],
    ["online", "{instance}", "--server", "mars"],
    ["online", "{instance}", "--levels", "0"],
    ["online", "{instance}", "--trace", "no-such-trace", "--channel", "trace"],
    ["adapt", "{widths}", "--trace", "hsdpa-bus", "--deadline-s", "-1"],
    ["adapt", "{widths}", "--trace", "hsdpa-bus", "--deadline-s", "0.1", "--ewma-alpha", "2"],
    ["profile", "--model", "mlp", "-o", "{tmp}/missing-folder/x.json"],
    ["profile", "--model", "mlp", "-o", "{tmp}"],
    [
        "profile",
        "--model",
        "mlp",
        "-o",
        "{tmp}/x.json",
        "--network",
        "3tier-wifi",
        "--network-from",
        "{instance}",
    ],
    ["profile", "--model", "mlp", "-o", "{tmp}/x.json", "--threads", "-2"],
    ["nas", "--space", "nb201", "--network", "3tier-wifi", "--storage", "sqlite:///{tmp}/s.db"],
    ["nas", "--space", "nb201", "--network", "6g", "--storage", "sqlite:///{tmp}/s.db"],
    ["nas", "--network", "pi4-edge-wifi", "--storage", "sqlite:///{tmp}/s.db"],
    ["retrain", "{tmp}/missing.json"],
    ["validate"],
    ["frobnicate"],
]


@pytest.mark.parametrize("argv", ARGUMENTS, ids=lambda a: " ".join(a[:3]))
def test_argument_corpus(argv, tmp_path, capsys):
    values = {
        "instance": str(ROOT / "instances" / "three-tier-chain.json"),
        "widths": str(ROOT / "instances" / "widths" / "slimmable-digits-widths.json"),
        "tmp": str(tmp_path),
    }
    argv = [a.format(**values) for a in argv]
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse
        code = exc.code
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert sum(ln.startswith("splitplan") and "error" in ln for ln in err.splitlines()) == 1, err
    assert not list(tmp_path.glob("*.db")), "a study was created"
    if "--json" not in argv and argv[0] in ("solve", "compare", "online", "adapt"):
        try:
            code = main([*argv, "--json"])
        except SystemExit as exc:
            code = exc.code
        assert code == 2
        out = capsys.readouterr()
        assert json.loads(out.out)["status"] == "bad_input"


def test_no_traceback_from_the_console_script(tmp_path):
    """The real entry point, in a fresh interpreter (recursion limits differ from pytest's)."""
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    for command in ("validate", "solve"):
        run = subprocess.run(
            [sys.executable, "-m", "splitplan.cli", command, str(path), "--json"],
            capture_output=True,
            text=True,
            cwd=ROOT,
        )
        assert run.returncode == 2, run.stderr
        assert "Traceback" not in run.stderr
        assert json.loads(run.stdout)["status"] == "bad_input"
        assert "nested too deeply" in run.stderr
