"""`splitplan online`: the table, --json, placement, the plot, and one-line errors with exit 2."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from splitplan.cli import main

ROOT = Path(__file__).resolve().parents[1]
CHAIN = str(ROOT / "instances" / "three-tier-chain.json")
FAST = ["--inferences", "4000", "--no-planner"]


def run_json(capsys, *args):
    code = main(["online", CHAIN, *FAST, "--json", *args])
    out = capsys.readouterr()
    assert code == 0, out.err
    return json.loads(out.out)


def test_table_lists_every_policy(capsys):
    code = main(["online", CHAIN, "--inferences", "4000"])
    out = capsys.readouterr().out
    assert code == 0
    for policy in ("optimal", "look-ahead", "best-static", "planner", "local", "offload", "oracle"):
        assert f"\n{policy} " in out
    assert "95% CI" in out and "analytic" in out and "online gain" in out
    assert "device phone -> server edge" in out


def test_json_has_means_intervals_and_expectations(capsys):
    out = run_json(capsys, "--snr-db", "15", "--coherence", "0.3", "--lambda", "0.2")
    assert out["status"] == "ok" and out["server"] == "edge" and out["horizon"] == 12
    assert out["weights"] == {"time": 1.0, "lambda": 0.2}
    policies = {p["policy"]: p for p in out["policies"]}
    assert set(policies) == {"optimal", "look-ahead", "best-static", "local", "offload", "oracle"}
    opt = policies["optimal"]
    assert opt["ci95"] > 0 and abs(opt["mean"] - opt["analytic"]) < 4 * opt["ci95"]
    assert policies["oracle"]["analytic"] is None
    assert policies["oracle"]["mean"] <= opt["mean"] <= policies["best-static"]["mean"]
    assert 1 <= opt["mean_stop"] <= 12
    assert out["channel"]["kind"] == "rayleigh" and out["placement"] is None


@pytest.mark.parametrize(
    "args, kind",
    [
        (["--channel", "trace", "--trace", "5g-walking-5g", "--levels", "8"], "trace"),
        (["--channel", "gilbert-elliott", "--ge-rates-mbps", "100,5"], "gilbert-elliott"),
    ],
)
def test_other_channels(capsys, args, kind):
    out = run_json(capsys, *args)
    assert out["channel"]["kind"] == kind
    assert out["policies"][0]["policy"] == "optimal"


def test_trace_file_path(capsys, tmp_path):
    trace = tmp_path / "my.txt"
    trace.write_text("".join(f"{t} {40 + 30 * (t % 3)}\n" for t in range(60)))
    out = run_json(capsys, "--channel", "trace", "--trace", str(trace))
    assert out["channel"]["trace"] == "my.txt"


def test_placement(capsys):
    out = run_json(capsys, "--placement", "--updates-every", "50")
    pl = out["placement"]
    total = pl["optimal"]["total"]
    assert total[0] is None  # the pinned first layer must be placed
    assert pl["optimal"]["layers"] == min(range(1, len(total)), key=lambda n: (total[n], n))
    assert pl["mlp_closed_form"] is None and "pins" in pl["mlp_closed_form_note"]
    code = main(["online", CHAIN, *FAST, "--placement"])
    text = capsys.readouterr().out
    assert code == 0 and "N* =" in text and "MLP closed form: n/a" in text


def test_plot(capsys, tmp_path):
    pytest.importorskip("matplotlib")
    png = tmp_path / "snr.png"
    code = main(["online", CHAIN, *FAST, "--plot", str(png), "--snr-range", "0:20:10"])
    assert code == 0, capsys.readouterr().err
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--server", "mars"], "unknown server 'mars'"),
        (["--server", "cloud"], "no direct link"),
        (["--channel", "trace", "--trace", "/no/such/trace.txt"], "no such file"),
        (["--lambda", "-1"], "--lambda must be a number >= 0"),
        (["--levels", "0"], "--levels must be >= 1"),
        (["--inferences", "1"], "--inferences must be >= 2"),
        (["--channel", "gilbert-elliott", "--ge-probs", "0.1"], "--ge-probs"),
        (["--channel", "gilbert-elliott", "--ge-probs", "0.1,2"], "p_bg must be a probability"),
        (["--plot", "x.png", "--snr-range", "10:0:5"], "--snr-range"),
        (["--plot", "x.png", "--channel", "trace"], "use --channel rayleigh"),
        (["--horizon", "0"], "first allowed cut"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, args, message):
    code = main(["online", CHAIN, *FAST, *args])
    err = capsys.readouterr().err
    assert code == 2
    assert message in err and err.count("\n") == 1 and "Traceback" not in err
    code = main(["online", CHAIN, *FAST, "--json", *args])
    out = capsys.readouterr().out
    assert code == 2 and json.loads(out)["status"] == "bad_input"


def test_bad_trace_contents(capsys, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("0 1\n1 2\nnot numbers\n")
    code = main(["online", CHAIN, *FAST, "--channel", "trace", "--trace", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "line 3" in err and err.count("\n") == 1


def test_missing_instance_exits_2(capsys):
    assert main(["online", "/no/such/instance.json"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_console_entry_point():
    proc = subprocess.run(
        [sys.executable, "-m", "splitplan.cli", "online", CHAIN, *FAST, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["status"] == "ok"
