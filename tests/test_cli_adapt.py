"""`splitplan adapt`: the same numbers as `adapt_on_trace`, --json, the shipped widths file and
one-line errors (exit 2) for bad widths files and arguments."""

import copy
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from splitplan.cli import main
from splitplan.online import (
    WIDTHS_FORMAT,
    OnlineError,
    WidthsError,
    adapt_on_trace,
    load_trace,
    load_widths,
)

ROOT = Path(__file__).resolve().parents[1]
WIDTHS = ROOT / "instances" / "widths" / "slimmable-digits-widths.json"
SHIPPED = json.loads(WIDTHS.read_text())


def adapt(capsys, *args):
    code = main(["adapt", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return out.out


def test_json_equals_adapt_on_trace(capsys):
    out = json.loads(
        adapt(capsys, str(WIDTHS), "--trace", "hsdpa-bus", "--deadline-s", "0.002", "--json")
    )
    direct = adapt_on_trace(load_widths(WIDTHS).widths, load_trace("hsdpa-bus"), 0.002)
    assert out["status"] == "ok" and out["name"] == "slimmable-digits"
    assert out["results"] == [r.to_dict() for r in direct]
    assert out["frames"] == direct[0].frames and out["deadline_s"] == 0.002
    assert out["trace"]["name"] == "hsdpa-bus" and out["predictors"] == ["last"]
    assert out["widths"] == SHIPPED["widths"]
    (verdict,) = out["verdicts"]
    assert verdict == {
        "policy": "adaptive (last)",
        "misses_fewer_than_every_as_accurate_fixed_width": True,
        "as_accurate_fixed_widths": ["0.5", "1"],
    }


def test_all_predictors_and_options_equal_adapt_on_trace(capsys):
    args = ["--frame-interval-s", "0.5", "--base-s", "0.001", "--link-latency-s", "0.0005"]
    out = json.loads(
        adapt(
            capsys,
            str(WIDTHS),
            "--trace",
            "oboe-12",
            "--deadline-s",
            "0.004",
            "--predictor",
            "all",
            "--ewma-alpha",
            "0.5",
            "--json",
            *args,
        )
    )
    widths, trace = load_widths(WIDTHS).widths, load_trace("oboe-12")
    kw = dict(base_s=0.001, link_latency_s=0.0005, ewma_alpha=0.5)
    direct = [
        adapt_on_trace(widths, trace, 0.004, 0.5, predictor=p, **kw)
        for p in ("last", "ewma", "oracle")
    ]
    expected = [rows[0] for rows in direct] + direct[0][1:]
    assert out["results"] == [r.to_dict() for r in expected]
    assert [v["policy"] for v in out["verdicts"]] == [r.policy for r in expected[:3]]


def test_table(capsys):
    text = adapt(capsys, str(WIDTHS), "--trace", "fcc-amazon", "--deadline-s", "0.005")
    direct = adapt_on_trace(load_widths(WIDTHS).widths, load_trace("fcc-amazon"), 0.005)
    assert "policy" in text and "misses %" in text and "accuracy %" in text
    assert f"{direct[0].frames} frames; deadline 5 ms" in text
    for r in direct:
        line = next(ln for ln in text.splitlines() if ln.startswith(r.policy + " "))
        assert line.split()[-4:] == [
            f"{100 * r.miss_rate:.2f}",
            f"{100 * r.mean_accuracy:.2f}",
            f"{r.mean_payload_bytes:.1f}",
            f"{r.mean_latency_s * 1e3:.3f}",
        ]
    assert (
        "adaptive (last) misses fewer deadlines than every fixed width at least as accurate on "
        "average (0.5, 1): yes" in text
    )


def test_a_trace_file_and_a_file_without_name(capsys, tmp_path):
    trace = tmp_path / "my.txt"
    trace.write_text("".join(f"{t} {1 + (t % 3)}\n" for t in range(60)))
    data = copy.deepcopy(SHIPPED)
    del data["name"], data["source"]
    widths = tmp_path / "mine.json"
    widths.write_text(json.dumps(data))
    out = json.loads(
        adapt(capsys, str(widths), "--trace", str(trace), "--deadline-s", "0.01", "--json")
    )
    assert out["name"] == "mine" and out["source"] == "" and out["trace"]["name"] == "my.txt"


def test_shipped_widths_file_is_what_the_benchmark_writes(tmp_path):
    spec = importlib.util.spec_from_file_location(
        "slimmable_adapt", ROOT / "benchmarks" / "slimmable_adapt.py"
    )
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    written = tmp_path / "widths.json"
    assert bench.main(["--write-widths", str(written)]) == 0
    assert written.read_text() == WIDTHS.read_text()
    # the benchmark reads the shipped file through the CLI's loader (accuracy in %)
    assert bench.WIDTHS_FILE == WIDTHS
    measured = json.loads((ROOT / "benchmarks" / "slimmable_digits.json").read_text())["rows"]
    for w, r in zip(bench.widths(), measured, strict=True):
        assert w.accuracy == pytest.approx(r["slim_acc_fp32"], rel=1e-15)
        assert (w.payload_bytes, w.device_s, w.server_s) == (
            r["payload_fp32_bytes"],
            r["encoder_s"],
            r["decoder_s"],
        )
    assert load_widths(WIDTHS).to_dict() == SHIPPED
    assert SHIPPED["format"] == WIDTHS_FORMAT


def _set(path, value):
    def edit(data):
        *keys, last = path
        for k in keys:
            data = data[k]
        if value is KeyError:
            del data[last]
        else:
            data[last] = value

    return edit


BAD_FILES = [
    ("missing-file", None, "", "no such file"),
    ("bad-json", "{", "", "not valid JSON: line 1 column 2"),
    ("not-an-object", "[1, 2]", "", "expected a JSON object"),
    # json.dumps writes NaN, which Python's parser accepts
    ("nan", _set(["widths", 1, "device_s"], float("nan")), "widths[1].device_s", "finite number"),
    ("format", _set(["format"], "splitplan-instance/1"), "format", 'expected "splitplan-widths/1"'),
    ("no-format", _set(["format"], KeyError), "format", "missing"),
    ("top-unknown", _set(["comment"], "x"), "comment", "unknown field"),
    ("name-type", _set(["name"], 3), "name", "must be a string"),
    ("no-widths", _set(["widths"], KeyError), "widths", "missing"),
    ("empty", _set(["widths"], []), "widths", "is empty"),
    ("not-a-list", _set(["widths"], {"a": 1}), "widths", "must be a list"),
    ("entry", _set(["widths", 2], 5), "widths[2]", "must be an object"),
    ("negative", _set(["widths", 2, "payload_bytes"], -1), "widths[2].payload_bytes", ">= 0"),
    ("string", _set(["widths", 1, "device_s"], "fast"), "widths[1].device_s", "must be a number"),
    ("bool", _set(["widths", 0, "payload_bytes"], True), "widths[0].payload_bytes", "a number"),
    ("missing", _set(["widths", 3, "server_s"], KeyError), "widths[3].server_s", "missing"),
    ("unknown", _set(["widths", 1, "acc"], 0.9), "widths[1].acc", "unknown field"),
    ("percent", _set(["widths", 0, "accuracy"], 93.6), "widths[0].accuracy", "write 0.936"),
    ("duplicate", _set(["widths", 3, "name"], "0.5"), "widths[3].name", "duplicate name"),
    ("empty-name", _set(["widths", 0, "name"], ""), "widths[0].name", "non-empty string"),
]


@pytest.mark.parametrize("case, edit, field, reason", BAD_FILES, ids=[c[0] for c in BAD_FILES])
def test_bad_widths_file_is_one_line_naming_file_and_field(
    capsys, tmp_path, case, edit, field, reason
):
    path = tmp_path / f"{case}.json"
    if isinstance(edit, str):
        path.write_text(edit)
    elif edit is not None:
        data = copy.deepcopy(SHIPPED)
        edit(data)
        path.write_text(json.dumps(data))
    code = main(["adapt", str(path), "--trace", "hsdpa-bus", "--deadline-s", "0.002"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"splitplan: error: {path}: {field + ': ' if field else ''}")
    assert reason in err
    with pytest.raises(WidthsError) as info:
        load_widths(path)
    assert info.value.file == str(path) and info.value.field == field


@pytest.mark.parametrize(
    "args, message",
    [
        (["--deadline-s", "0"], "--deadline-s must be a positive"),
        (["--deadline-s", "-0.1"], "--deadline-s must be a positive"),
        (["--deadline-s", "0.002", "--frame-interval-s", "0"], "--frame-interval-s must be"),
        (["--deadline-s", "0.002", "--frame-interval-s", "1e-8"], "at most 1e+07"),
        (["--deadline-s", "0.002", "--frame-interval-s", "1000"], "shorter than one frame"),
        (["--deadline-s", "0.002", "--ewma-alpha", "0"], "--ewma-alpha must be in (0, 1]"),
        (["--deadline-s", "0.002", "--base-s", "-1"], "--base-s must be"),
        (["--deadline-s", "0.002", "--link-latency-s", "inf"], "--link-latency-s must be"),
        (["--deadline-s", "0.002", "--trace", "no-such-trace"], "not a shipped trace"),
    ],
)
def test_bad_arguments_are_one_line(capsys, args, message):
    code = main(["adapt", str(WIDTHS), "--trace", "hsdpa-bus", *args])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1 and message in err and "Traceback" not in err


def test_json_bad_input(capsys, tmp_path):
    data = copy.deepcopy(SHIPPED)
    data["widths"][2]["payload_bytes"] = -1
    path = tmp_path / "w.json"
    path.write_text(json.dumps(data))
    code = main(["adapt", str(path), "--trace", "hsdpa-bus", "--deadline-s", "0.002", "--json"])
    out = capsys.readouterr()
    assert code == 2
    error = json.loads(out.out)["error"]
    assert error["file"] == str(path) and error["field"] == "widths[2].payload_bytes"
    assert "must be >= 0" in error["reason"]


def test_process_prints_no_traceback(tmp_path):
    path = tmp_path / "w.json"
    path.write_text('{"format": "splitplan-widths/1", "widths": []}')
    cmd = [sys.executable, "-m", "splitplan.cli", "adapt", str(path), "--trace", "hsdpa-bus"]
    proc = subprocess.run(
        [*cmd, "--deadline-s", "0.002"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 2 and proc.stdout == ""
    assert (
        proc.stderr == f"splitplan: error: {path}: widths: is empty: at least one width is needed\n"
    )


def test_library_checks_what_the_cli_checks():
    trace = load_trace("hsdpa-bus")
    widths = load_widths(WIDTHS).widths
    with pytest.raises(OnlineError, match="EWMA"):
        adapt_on_trace(widths, trace, 0.002, predictor="ewma", ewma_alpha=1.5)
    with pytest.raises(OnlineError, match="link latency"):
        adapt_on_trace(widths, trace, 0.002, link_latency_s=-1)
