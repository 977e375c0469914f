"""Split export: chaining the exported segments gives the unsplit model's output, for every zoo
architecture (at small sizes), a branching toy model, revisits and fan-out; files and errors."""

import json
import random
import subprocess
import sys

import pytest

torch = pytest.importorskip("torch")
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from torch import nn  # noqa: E402

from splitplan import (  # noqa: E402
    Instance,
    Link,
    Network,
    Node,
    evaluate,
    zoo,
)
from splitplan.cli import main  # noqa: E402
from splitplan.export import (  # noqa: E402
    LAYER_KEY,
    ExportError,
    export,
    load_segment,
    read_manifest,
    run_chain,
    split,
)
from splitplan.profile import profile  # noqa: E402

NODES = ("a", "b", "c")
TOY = '''
import torch
from torch import nn


class Branchy(nn.Module):
    """A stem feeding two branches, concatenated, with a residual add around them."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Linear(8, 16)
        self.left = nn.Linear(16, 16)
        self.right = nn.Linear(16, 16)
        self.mix = nn.Linear(32, 16)
        self.head = nn.Linear(16, 4)

    def forward(self, x):
        a = torch.relu(self.stem(x))
        b, c = self.left(a), torch.tanh(self.right(a))
        d = self.mix(torch.cat([b, c], dim=1)) + a
        return self.head(d)
'''


def network() -> Network:
    nodes = tuple(Node(n, 1e9, "host-cpu") for n in NODES)
    links = (Link("a", "b", 1e7, 0.001), Link("b", "c", 1e7, 0.001), Link("a", "c", 1e6, 0.002))
    return Network(nodes, links, "a", "a")


def instance_of(model: nn.Module, x, granularity: str = "module") -> Instance:
    dnn, _ = profile(model, x, granularity=granularity, repeats=1, warmup=0)
    return Instance(dnn, network(), name="t")


def toy(tmp_path):
    (tmp_path / "toy.py").write_text(TOY)
    return zoo.load_model(f"{tmp_path / 'toy.py'}:Branchy", (2, 8))


SMALL_ZOO = {
    # every zoo architecture at a small size (the 224 x 224 ones take too long for a test)
    "resnet18": (lambda: zoo.ResNet(zoo.BasicBlock, [1, 1, 1, 1], num_classes=10), (1, 3, 32, 32)),
    "resnet50": (lambda: zoo.ResNet(zoo.Bottleneck, [1, 1, 1, 1], num_classes=10), (1, 3, 32, 32)),
    "resnet101": (lambda: zoo.ResNet(zoo.Bottleneck, [1, 1, 2, 1], num_classes=10), (1, 3, 32, 32)),
    "mobilenetv2": (lambda: zoo.MobileNetV2(num_classes=10), (1, 3, 32, 32)),
    "vgg16": (lambda: zoo.vgg16(num_classes=10, image=32), (1, 3, 32, 32)),
    "vit-tiny": (
        lambda: zoo.ViT(dim=32, depth=2, heads=2, patch=8, image=32, num_classes=10),
        (1, 3, 32, 32),
    ),
    "mlp": (zoo.mlp, (1, 784)),
}


def test_small_zoo_covers_the_zoo():
    assert set(SMALL_ZOO) == set(zoo.ZOO)


@pytest.mark.parametrize("name", sorted(SMALL_ZOO))
def test_zoo_model_split_across_three_nodes_equals_unsplit(name):
    make, shape = SMALL_ZOO[name]
    torch.manual_seed(0)
    model, x = make().eval(), torch.randn(*shape)
    inst = instance_of(model, x)
    rng = random.Random(name)
    # runs of a few layers, each on another node than the run before: with >= 4 runs on 3
    # nodes, some node is revisited
    step = max(1, len(inst.layer_names) // 8)
    assignment, node = {}, "a"
    for i, layer in enumerate(inst.layer_names):
        if i % step == 0:
            node = rng.choice([n for n in NODES if n != node])
        assignment[layer] = node
    segments = split(model, x, inst, assignment)
    assert [la for s in segments for la in s.layers] == inst.layer_names
    visits = [s.node for s in segments]
    assert len(segments) > 3 and len(set(visits)) < len(visits)  # some node is revisited
    with torch.no_grad():
        expected = model(x)
    got = run_chain(segments, x, inst.dnn.output_layer)
    assert (got - expected).abs().max().item() <= 1e-5
    for seg in segments:  # what `run --per-layer` times by: each operation's layer
        assert layer_tags(seg.module) == set(seg.layers)


def layer_tags(module) -> set:
    """The layers that a segment module's operations are tagged with; every operation has one."""
    tags = [
        (n.meta.get("custom") or {}).get(LAYER_KEY)
        for n in module.graph.nodes
        if n.op.startswith("call") and n.target != "_guards_fn"  # torch.export's own check
    ]
    assert None not in tags
    return set(tags)


def test_segment_inputs_are_the_plans_transfers(tmp_path):
    model, x = toy(tmp_path)
    inst = instance_of(model, x)
    names = inst.layer_names
    assignment = dict.fromkeys(names, "a") | {names[1]: "b", names[2]: "c"}
    ev = evaluate(inst, assignment)
    fanned = [t.tensor for t in ev.transfers]
    assert any(fanned.count(t) == 2 for t in fanned)  # one tensor goes to two nodes
    segments = split(model, x, inst, assignment)
    crossing = {
        (t, s.node)
        for s in segments
        for t in s.inputs
        if (inst.network.source if t == "input" else assignment[t]) != s.node
    }
    to_sink = {(t.tensor, t.target) for t in ev.transfers if t.tensor == inst.dnn.output_layer}
    assert crossing == {(t.tensor, t.target) for t in ev.transfers} - to_sink


@settings(max_examples=25, deadline=None)
@given(
    st.lists(st.sampled_from(NODES), min_size=16, max_size=16), st.sampled_from(["op", "module"])
)
def test_any_assignment_of_the_branching_toy_reproduces_it(tmp_path_factory, nodes, granularity):
    tmp = tmp_path_factory.mktemp("toy")
    model, x = toy(tmp)
    inst = _toy_instance(model, x, granularity)
    assignment = {la: nodes[i] for i, la in enumerate(inst.layer_names)}
    segments = split(model, x, inst, assignment, granularity=granularity)
    with torch.no_grad():
        expected = model(x)
    assert (run_chain(segments, x, inst.dnn.output_layer) - expected).abs().max().item() <= 1e-5


_INSTANCES: dict[str, Instance] = {}


def _toy_instance(model, x, granularity):
    if granularity not in _INSTANCES:  # profiling is the slow part; the layers do not change
        _INSTANCES[granularity] = instance_of(model, x, granularity)
    return _INSTANCES[granularity]


def test_pt2_files_and_manifest(tmp_path):
    model, x = toy(tmp_path)
    inst = instance_of(model, x)
    names = inst.layer_names
    assignment = dict.fromkeys(names, "a") | {names[1]: "b", names[2]: "c"}
    manifest = export(model, x, inst, {"assignment": assignment}, tmp_path / "dep", model_ref="t")
    assert manifest["format"] == "splitplan-deployment/1"
    assert [n["name"] for n in manifest["nodes"]] == ["a", "b", "c"]
    assert len(manifest["nodes"][0]["segments"]) == 2  # a runs before and after the branches
    ev = evaluate(inst, assignment)
    assert [(t["tensor"], t["from"], t["to"]) for t in manifest["transfers"]] == [
        (t.tensor, t.source, t.target) for t in ev.transfers
    ]
    assert manifest["predicted"]["latency_s"] == pytest.approx(ev.latency_s)
    read = read_manifest(tmp_path / "dep")
    segments = []
    for node in read["nodes"]:
        for seg in node["segments"]:
            module = load_segment(tmp_path / "dep", read, node, seg)
            segments.append((seg["index"], seg["inputs"], seg["outputs"], module))
    segments.sort(key=lambda s: s[0])
    store = {"input": x}
    for _, inputs, outputs, module in segments:
        store.update(zip(outputs, module(*(store[t] for t in inputs)), strict=True))
    io = torch.load(tmp_path / "dep" / "io.pt")
    assert (store[read["output"]["tensor"]] - io["output"]).abs().max().item() <= 1e-5


def test_loaded_segments_keep_their_layers_and_move_to_a_device(tmp_path):
    """The layer tags survive torch.export, save and load (`run --per-layer` needs them); a
    segment moved to a device (here the CPU: `run --device`) computes the same; `time_layers`
    gives every layer of the segment a time."""
    from splitplan.runtime_node import time_layers

    model, x = toy(tmp_path)
    inst = instance_of(model, x)
    names = inst.layer_names
    assignment = dict.fromkeys(names, "a") | {names[1]: "b"}
    export(model, x, inst, {"assignment": assignment}, tmp_path / "dep")
    read = read_manifest(tmp_path / "dep")
    segments = split(model, x, inst, assignment)
    store = {"input": x}
    for seg in segments:
        node = next(n for n in read["nodes"] if n["name"] == seg.node)
        meta = next(s for s in node["segments"] if s["index"] == seg.index)
        plain = load_segment(tmp_path / "dep", read, node, meta)
        moved = load_segment(tmp_path / "dep", read, node, meta, torch.device("cpu"))
        assert layer_tags(plain) == layer_tags(moved) == set(seg.layers)
        args = tuple(store[t] for t in seg.inputs)
        with torch.no_grad():
            want, got = seg.module(*args), moved(*args)
        for a, b in zip(want, got, strict=True):
            assert torch.equal(a, b)
        times = time_layers([moved], [args], 2, lambda: None)
        assert set(times) == set(seg.layers) and all(t > 0 for t in times.values())
        store.update(zip(seg.outputs, want, strict=True))


def test_onnx_files_pass_the_checker(tmp_path):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxscript")
    model, x = zoo.load_model("splitplan.zoo:mlp", (1, 784))
    inst = instance_of(model, x)
    names = inst.layer_names
    assignment = dict.fromkeys(names, "a") | {names[-1]: "b"}
    manifest = export(model, x, inst, {"assignment": assignment}, tmp_path, file_format="onnx")
    files = [s["file"] for n in manifest["nodes"] for s in n["segments"]]
    assert files == ["a.0.onnx", "b.1.onnx"]
    for f in files:
        onnx.checker.check_model(onnx.load(str(tmp_path / f)))
    graph = onnx.load(str(tmp_path / "b.1.onnx")).graph
    assert [i.name for i in graph.input] == [f"t_{names[-2]}"]


def test_a_model_that_is_not_the_instances_is_refused(tmp_path):
    model, x = toy(tmp_path)
    inst = instance_of(model, x)
    other = zoo.mlp((8, 16, 4)).eval()
    with pytest.raises(ExportError, match="does not match instance 't'"):
        split(other, x, inst, dict.fromkeys(inst.layer_names, "a"))


def test_plans_that_cannot_be_exported(tmp_path):
    model, x = toy(tmp_path)
    inst = instance_of(model, x)
    good = dict.fromkeys(inst.layer_names, "a")
    with pytest.raises(ExportError, match="layer 'nope' is not in the instance"):
        export(model, x, inst, {"assignment": good | {"nope": "a"}}, tmp_path)
    with pytest.raises(ExportError, match="unknown node 'z'"):
        export(model, x, inst, {"assignment": good | {inst.layer_names[0]: "z"}}, tmp_path)
    with pytest.raises(ExportError, match="has none"):
        export(model, x, inst, {"assignment": None, "status": "infeasible"}, tmp_path)
    with pytest.raises(ExportError, match="encoded"):
        export(model, x, inst, {"assignment": good, "encodings": {"input": "q8"}}, tmp_path)


def test_your_own_model_from_a_file_profile_solve_export(tmp_path):
    """The README's worked example: a file.py:Class model through profile, solve and export."""
    (tmp_path / "toy.py").write_text(TOY)
    ref = f"{tmp_path / 'toy.py'}:Branchy"
    inst_file, plan_file, out = tmp_path / "inst.json", tmp_path / "plan.json", tmp_path / "dep"
    args = ["--model", ref, "--input-shape", "2,8"]
    assert (
        main(
            [
                "profile",
                *args,
                "--network-from",
                str(net_file(tmp_path)),
                "-o",
                str(inst_file),
                "--repeats",
                "1",
                "--warmup",
                "0",
            ]
        )
        == 0
    )
    plan = subprocess.run(
        [sys.executable, "-m", "splitplan.cli", "solve", str(inst_file), "--json"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    plan_file.write_text(plan)
    assert (
        main(
            [
                "export",
                *args,
                "--instance",
                str(inst_file),
                "--plan",
                str(plan_file),
                "-o",
                str(out),
            ]
        )
        == 0
    )
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["model"]["reference"] == ref
    assert manifest["model"]["input_shape"] == [2, 8]
    # the same model with another input shape is not the profiled one: exit 2, one line
    assert (
        main(
            [
                "export",
                "--model",
                ref,
                "--input-shape",
                "3,8",
                "--instance",
                str(inst_file),
                "--plan",
                str(plan_file),
                "-o",
                str(out),
            ]
        )
        == 2
    )


def _net_dict():
    return {
        "nodes": [{"name": n, "flops_per_s": 1e9, "class": "host-cpu"} for n in NODES],
        "links": [
            {"from": "a", "to": "b", "bandwidth_bytes_per_s": 1e7, "latency_s": 0.001},
            {"from": "b", "to": "c", "bandwidth_bytes_per_s": 1e7, "latency_s": 0.001},
        ],
        "source": "a",
        "sink": "a",
    }


def net_file(tmp_path):
    path = tmp_path / "net-only.json"
    path.write_text(json.dumps({"network": _net_dict()}))
    return path


def test_model_reference_errors(tmp_path, capsys):
    (tmp_path / "toy.py").write_text(TOY)
    for ref, shape, message in [
        (f"{tmp_path / 'missing.py'}:X", "1,8", "no such file"),
        (f"{tmp_path / 'toy.py'}:Nope", "1,8", "has no attribute 'Nope'"),
        ("no_such_module_xyz:f", "1,8", "cannot import module no_such_module_xyz"),
        (f"{tmp_path / 'toy.py'}:Branchy", None, "needs --input-shape"),
        (f"{tmp_path / 'toy.py'}:Branchy", "1,a", "expected integers"),
        (f"{tmp_path / 'toy.py'}:Branchy", "1,9", "does not run on an input of shape"),
    ]:
        shape_args = ["--input-shape", shape] if shape else []
        code = main(["profile", "--model", ref, *shape_args, "-o", str(tmp_path / "o.json")])
        err = capsys.readouterr().err
        assert code == 2 and message in err and "Traceback" not in err, (ref, err)


def test_readme_worked_example(tmp_path):
    """The README's "Your own model" files and commands run as written."""
    import os
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text[text.index("### Your own model") :]
    (tmp_path / "mynet.py").write_text(re.search(r"```py\n(.*?)```", section, re.S).group(1))
    (tmp_path / "net.json").write_text(re.search(r"```json\n(.*?)```", section, re.S).group(1))
    commands = re.search(r"```sh\n(.*?)```", section, re.S).group(1).replace("\\\n", " ")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parents[1] / "src"), env.get("PYTHONPATH", "")]
    )
    outputs = []
    for line in commands.strip().splitlines():
        assert line.startswith("splitplan ")
        cmd = f"{sys.executable} -m splitplan.cli {line[len('splitplan ') :]}"
        proc = subprocess.run(
            cmd, shell=True, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
        )
        assert proc.returncode == 0, (line, proc.stderr)
        outputs.append(proc.stdout)
    plan = json.loads((tmp_path / "plan.json").read_text())
    assert set(plan["assignment"].values()) == {"edge"}  # as the README says
    # 0 when the nodes run with the export's threads; otherwise sums in another order (1e-7)
    diff = re.search(r"output max \|diff\| vs the unsplit model (\S+)\n", outputs[-1])
    assert diff and float(diff.group(1)) < 1e-5, outputs[-1]
    assert "bytes 49152 predicted, 49152 sent" in outputs[-1]
