"""`splitplan run`: three node processes on localhost reproduce the model and send exactly the
plan's bytes, also launched one per rank as on separate machines; per-layer times and device
placement; faults end every process with one message naming the node. Few, small runs (each
starts three Python processes that import torch)."""

import contextlib
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
import splitplan  # noqa: E402
from splitplan import Instance, Link, Network, Node, evaluate  # noqa: E402
from splitplan.cli import main  # noqa: E402
from splitplan.cost import tables  # noqa: E402
from splitplan.export import DeploymentError, export  # noqa: E402
from splitplan.profile import profile  # noqa: E402
from splitplan.runtime import RunError, RunReport, free_port, run_deployment  # noqa: E402
from splitplan.zoo import load_model  # noqa: E402

TOY = """
import torch
from torch import nn


class Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 16)
        self.left = nn.Linear(16, 16)
        self.right = nn.Linear(16, 16)
        self.head = nn.Linear(32, 4)

    def forward(self, x):
        a = torch.relu(self.stem(x))
        return self.head(torch.cat([self.left(a), torch.tanh(self.right(a))], dim=1))
"""


@pytest.fixture(scope="module")
def deployment(tmp_path_factory):
    """The toy on a -- b -- c (a is source and sink), its branches on b and c: the stem's output
    goes to two nodes, c's branch reaches a through b (a two-hop route)."""
    tmp = tmp_path_factory.mktemp("run")
    (tmp / "toy.py").write_text(TOY)
    model, x = load_model(f"{tmp / 'toy.py'}:Branchy", (2, 8))
    dnn, _ = profile(model, x, repeats=1, warmup=0)
    nodes = tuple(Node(n, 1e9, "host-cpu") for n in "abc")
    links = (Link("a", "b", 1e8, 0.0005), Link("b", "c", 1e8, 0.0005))
    inst = Instance(dnn, Network(nodes, links, "a", "a"), name="toy")
    names = inst.layer_names  # stem, left, right (+tanh), head (cat folds into it or right)
    assignment = dict.fromkeys(names, "a") | {names[1]: "b", names[2]: "c"}
    export(model, x, inst, {"assignment": assignment}, tmp / "dep", model_ref="toy")
    return tmp / "dep", inst, assignment


def link_bytes(inst, assignment):
    """Bytes per directed link of one inference, from the evaluator's transfers and routes."""
    out = {}
    for t in evaluate(inst, assignment).transfers:
        for a, b in zip(t.route, t.route[1:], strict=False):
            out[(a, b)] = out.get((a, b), 0.0) + t.size_bytes
    return out


def no_process_uses(path: Path) -> bool:
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(path).encode() in cmdline.read_bytes():
                return False
        except OSError:
            pass
    return True


@pytest.fixture(scope="module")
def local_run(deployment):
    """One pipelined run of the deployment (b's segments placed on a device: the CPU, the only one
    here) with per-layer timing: its exit code and `--json` output."""
    directory, _, _ = deployment
    argv = ["run", str(directory), "--requests", "3", "--pipelined", "--json"]
    stdout = io.StringIO()
    with contextlib.redirect_stdout(stdout):
        code = main([*argv, "--per-layer", "--device", "b=cpu"])
    return code, json.loads(stdout.getvalue())


def test_three_processes_reproduce_the_model_and_send_the_plans_bytes(deployment, local_run):
    directory, inst, assignment = deployment
    code, out = local_run
    assert code == 0 and out["status"] == "ok"
    assert out["max_abs_diff"] <= 1e-5
    expected = link_bytes(inst, assignment)
    assert len(expected) >= 3 and ("b", "a") in expected  # fan-out and a two-hop route
    got = {(link["from"], link["to"]): link for link in out["links"]}
    assert set(got) == set(expected)
    for key, size in expected.items():
        assert got[key]["bytes_predicted"] == size
        assert got[key]["bytes_measured"] == size
    for key in ("predicted_latency_s", "measured_latency_s", "predicted_period_s"):
        assert out[key] > 0
    assert out["measured_period_s"] is not None and out["requests"] == 3
    ev = evaluate(inst, assignment)
    assert out["predicted_latency_s"] == pytest.approx(ev.latency_s)
    assert {n["node"] for n in out["nodes"]} == {"a", "b", "c"}
    assert no_process_uses(directory)


def test_per_layer_times_and_device_placement(deployment, local_run):
    _, inst, assignment = deployment
    _, out = local_run
    tb = tables(inst)
    layers = out["layers"]
    assert [la["name"] for la in layers] == inst.layer_names  # every layer, in order
    for la in layers:
        assert la["node"] == assignment[la["name"]]
        layer, node = tb.layer_index[la["name"]], tb.node_index[la["node"]]
        assert la["predicted_s"] == pytest.approx(float(tb.compute_s[layer, node]))
        assert la["measured_s"] > 0
    assert {n["node"]: n["device"] for n in out["nodes"]} == {"a": "cpu", "b": "cpu", "c": "cpu"}
    # the text report: the layers' sums and the layers furthest off, first the furthest
    report = RunReport(**{k: v for k, v in out.items() if k != "status"})
    text = report.summary()
    assert f"{len(layers)} layers, sum" in text
    worst = max(layers, key=lambda la: abs(la["measured_s"] - la["predicted_s"]))
    listed = [ln.split()[0] for ln in text.splitlines() if ln.startswith("  ") and " @" in ln]
    assert listed[0] == worst["name"] and len(listed) == min(len(layers), 5)


def test_device_errors_name_the_node_before_anything_starts(deployment, capsys):
    directory, _, _ = deployment
    if not torch.cuda.is_available():
        assert main(["run", str(directory), "--device", "b=cuda:0", "--json"]) == 2
        captured = capsys.readouterr()
        assert "node b: --device cuda:0: torch" in captured.err
        assert "sees no CUDA device" in captured.err and "Traceback" not in captured.err
        assert json.loads(captured.out)["status"] == "bad_input"
        # across machines each rank checks its own node's device only
        argv = ["run", str(directory), "--master-port", "1", "--device", "b=cuda"]
        assert main([*argv, "--rank", "1"]) == 2
        assert "node b: --device cuda" in capsys.readouterr().err
    for device, says in [
        ("z=cpu", "no node 'z' in the deployment (nodes: a, b, c)"),
        ("b=tpu", "node b: --device tpu: not a torch device"),
        ("b=meta", "node b: --device meta: the meta device computes no values"),
    ]:
        assert main(["run", str(directory), "--device", device]) == 2
        assert says in capsys.readouterr().err
    argv = ["run", str(directory), "--device", "b=cpu", "--device", "b=cuda"]
    assert main(argv) == 2
    assert "node b given twice" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["run", str(directory), "--device", "cuda"])
    assert exit_.value.code == 2 and "expected NODE=DEVICE" in capsys.readouterr().err
    for extra, says in [
        (["--rank", "3"], "--rank 3: expected 0 .. 2"),
        (["--rank", "0", "--world-size", "2"], "--world-size 2: the deployment has 3 nodes"),
    ]:
        assert main(["run", str(directory), "--master-port", "1", *extra]) == 2
        assert says in capsys.readouterr().err
    assert no_process_uses(directory)


def test_one_process_per_rank_as_on_separate_machines(deployment):
    """`run DIR --rank R --master-addr --master-port` per node, each its own command as it would
    be on its own machine: rank 0 prints the whole run (gathered from the others)."""
    directory, inst, assignment = deployment
    port = free_port()
    env = dict(os.environ)
    src = str(Path(splitplan.__file__).resolve().parents[1])  # this splitplan, e.g. under src/
    env["PYTHONPATH"] = os.pathsep.join([src, *filter(None, [env.get("PYTHONPATH")])])
    base = [sys.executable, "-m", "splitplan.cli", "run", str(directory), "--json"]
    base += ["--master-addr", "127.0.0.1", "--master-port", str(port), "--requests", "2"]
    base += ["--threads", "1", "--timeout", "120"]
    procs = [
        subprocess.Popen(
            [*base, "--rank", str(r)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
        )
        for r in range(3)
    ]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-2000:] for _, err in outs]
    whole, *others = (json.loads(out) for out, _ in outs)
    assert [o["node"] for o in others] == ["b", "c"]
    assert whole["status"] == "ok" and whole["requests"] == 2
    assert whole["max_abs_diff"] <= 1e-5
    expected = link_bytes(inst, assignment)
    got = {(link["from"], link["to"]): link for link in whole["links"]}
    assert set(got) == set(expected)
    for key, size in expected.items():
        assert got[key]["bytes_predicted"] == got[key]["bytes_measured"] == size
    assert whole["predicted_latency_s"] == pytest.approx(evaluate(inst, assignment).latency_s)
    assert whole["measured_latency_s"] > 0
    assert {n["node"] for n in whole["nodes"]} == {"a", "b", "c"}
    assert set(whole["clock_offsets_s"]) == {"a", "b", "c"}
    assert whole["clock_offsets_s"]["a"] == 0.0  # rank 0's clock is the reference
    assert no_process_uses(directory)


def test_a_nodes_log_moved_onto_rank_0s_clock():
    """--rank mode: every timestamp of a node's log (the records runtime_node writes) moves by
    the clock offset, nothing else does."""
    from splitplan.runtime import _shift

    log = {
        "node": "b",
        "rank": 1,
        "warmup": 1,
        "requests": [
            {
                "request": 0,
                "start": 10.0,
                "segments": [{"index": 1, "start": 11.0, "end": 12.0}],
                "recv": [{"tensor": "stem", "arrived": 10.5}],
                "done": 12.5,
            },
            {"request": 1, "start": 20.0, "segments": [], "recv": []},
        ],
        "sends": [
            {
                "request": 0,
                "tensor": "left",
                "to": "a",
                "bytes": 128,
                "produced": 12.0,
                "start": 12.1,
                "sent": 12.2,
            }
        ],
    }
    moved = _shift(log, -7.0)
    assert moved["requests"][0] == {
        "request": 0,
        "start": 3.0,
        "segments": [{"index": 1, "start": 4.0, "end": 5.0}],
        "recv": [{"tensor": "stem", "arrived": 3.5}],
        "done": 5.5,
    }
    assert moved["requests"][1] == {"request": 1, "start": 13.0, "segments": [], "recv": []}
    (send,) = moved["sends"]
    assert [send[k] for k in ("produced", "start", "sent")] == pytest.approx([5.0, 5.1, 5.2])
    assert {k: send[k] for k in ("request", "tensor", "to", "bytes")} == {
        "request": 0,
        "tensor": "left",
        "to": "a",
        "bytes": 128,
    }
    assert {k: moved[k] for k in ("node", "rank", "warmup")} == {
        "node": "b",
        "rank": 1,
        "warmup": 1,
    }
    assert log["requests"][0]["start"] == 10.0  # the original is left alone


def test_a_node_killed_mid_run_ends_the_run_naming_it(deployment):
    directory, _, _ = deployment
    with pytest.raises(RunError, match=r"node b \(rank 1\) was killed by signal 9"):
        # b is killed after its third request of many: a, c are blocked on it at that point
        run_deployment(directory, requests=100000, fault=(1, 3, signal.SIGKILL), timeout_s=120)
    assert no_process_uses(directory)


def test_faults_found_before_any_process_starts(deployment, tmp_path, capsys):
    directory, _, _ = deployment
    copy = tmp_path / "dep"
    shutil.copytree(directory, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    b_file = copy / manifest["nodes"][1]["segments"][0]["file"]

    b_file.write_bytes(b_file.read_bytes() + b"x")
    assert main(["run", str(copy)]) == 2
    assert "node b:" in capsys.readouterr().err
    with pytest.raises(DeploymentError, match=r"node b: .* changed since the export"):
        run_deployment(copy)

    b_file.unlink()
    assert main(["run", str(copy), "--json"]) == 2
    captured = capsys.readouterr()
    assert "node b: missing file" in captured.err and "Traceback" not in captured.err
    assert json.loads(captured.out)["status"] == "bad_input"

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        assert main(["run", str(directory), "--master-port", str(port)]) == 2
    assert f"cannot listen on 127.0.0.1:{port}" in capsys.readouterr().err
    assert no_process_uses(copy) and no_process_uses(directory)


def test_a_manifest_that_does_not_match_its_files(deployment, tmp_path):
    directory, _, _ = deployment
    copy = tmp_path / "dep"
    shutil.copytree(directory, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    wrong = manifest["nodes"][2]["segments"][0]["inputs"][0]
    manifest["tensors"][wrong]["shape"] = [3, 16]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    # both b and c read the stem's output: whichever loads first reports it
    with pytest.raises(RunError, match=rf"node [bc]: .*input '{wrong}' has shape \[2, 16\]"):
        run_deployment(copy, timeout_s=120)
    assert no_process_uses(copy)
