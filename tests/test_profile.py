"""Profiling torch models: FLOPs and bytes against hand counts, the DAG, and a round trip."""

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

import splitplan  # noqa: E402
from splitplan.cli import main  # noqa: E402
from splitplan.profile import ProfileError, profile  # noqa: E402
from splitplan.zoo import Attention, BasicBlock, build  # noqa: E402


def one_layer(module, x, **kw):
    dnn, _ = profile(nn.Sequential(module), x, granularity="op", repeats=1, warmup=0, **kw)
    assert len(dnn.layers) == 1
    return dnn.layers[0]


def test_conv_linear_depthwise_counts():
    conv = one_layer(nn.Conv2d(3, 8, 3, padding=1, bias=False), torch.randn(1, 3, 8, 8))
    assert conv.flops == 2 * 3 * 8 * 9 * 64  # 2 x MACs: cin x cout x k^2 x H x W
    assert conv.param_bytes == 3 * 8 * 9 * 4
    assert conv.out_bytes == 8 * 8 * 8 * 4
    lin = one_layer(nn.Linear(100, 10), torch.randn(2, 100))
    assert lin.flops == 2 * 2 * 100 * 10  # bias adds are not counted by torch's counter
    assert lin.param_bytes == (100 * 10 + 10) * 4 and lin.out_bytes == 2 * 10 * 4
    dw = one_layer(
        nn.Conv2d(16, 16, 3, padding=1, groups=16, bias=False), torch.randn(1, 16, 10, 10)
    )
    assert dw.flops == 2 * 16 * 9 * 100
    half = one_layer(nn.Linear(100, 10), torch.randn(2, 100), activation_dtype="fp16")
    assert half.out_bytes == 2 * 10 * 2


def test_attention_block_counts():
    n, d, heads = 10, 32, 4
    dnn, _ = profile(Attention(d, heads), torch.randn(1, n, d), repeats=1, warmup=0)
    qkv = 2 * n * d * 3 * d
    scores = 2 * heads * n * n * (d // heads)  # q @ k^T
    mix = 2 * heads * n * n * (d // heads)  # attn @ v
    proj = 2 * n * d * d
    assert sum(la.flops for la in dnn.layers) == qkv + scores + mix + proj


def test_residual_block_keeps_the_skip_edge():
    dnn, _ = profile(
        BasicBlock(8, 8), torch.randn(1, 8, 6, 6), granularity="module", repeats=1, warmup=0
    )
    names = [la.name for la in dnn.layers]
    assert names == ["conv1", "conv2"]
    # conv2's layer ends in the residual add, which reads the block input: a skip edge
    assert set(dnn.layers[1].inputs) == {"conv1", "input"}
    op, _ = profile(
        BasicBlock(8, 8), torch.randn(1, 8, 6, 6), granularity="op", repeats=1, warmup=0
    )
    add = next(la for la in op.layers if la.name == "add")
    assert "input" in add.inputs


@pytest.mark.parametrize("granularity", ["op", "module", "block"])
def test_zoo_model_profiles_into_a_valid_instance_and_solves(tmp_path, granularity):
    model, x = build("resnet18")
    dnn, report = profile(model, x, granularity=granularity, repeats=1, warmup=0, name="resnet18")
    assert report.layers == len(dnn.layers) and report.whole_model_s > 0
    assert sum(la.flops for la in dnn.layers) == pytest.approx(3.64e9, rel=0.02)
    base = splitplan.load_instance("instances/three-tier-chain.json")
    classes = {"host-cpu"}
    net = splitplan.Network(
        tuple(
            splitplan.Node(
                n.name,
                n.flops_per_s,
                "host-cpu" if n.name == "phone" else None,
                n.memory_bytes,
                n.compute_power_w,
                n.tx_power_w,
            )
            for n in base.network.nodes
        ),
        base.network.links,
        base.network.source,
        base.network.sink,
    )
    inst = splitplan.Instance(dnn, net, name="resnet18-profiled")
    path = tmp_path / "p.json"
    splitplan.save_instance(inst, path)
    assert main(["validate", str(path)]) == 0
    plan = splitplan.solve(splitplan.load_instance(path))
    assert plan.status == "optimal"
    assert classes <= {c for la in dnn.layers for c in la.time_s}


def test_bad_arguments_are_clear():
    with pytest.raises(ValueError, match="unknown model"):
        build("resnet9000")
    model, _ = build("mlp")
    with pytest.raises(ProfileError, match="does not run on an input of shape"):
        profile(model, torch.randn(1, 3, 32, 32))
    with pytest.raises(ProfileError, match="granularity"):
        profile(model, torch.randn(1, 784), granularity="layer")


def test_profile_cli(tmp_path, capsys):
    out = tmp_path / "mlp.json"
    assert (
        main(
            [
                "profile",
                "--model",
                "mlp",
                "--network-from",
                "instances/three-tier-chain.json",
                "--repeats",
                "1",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    data = json.loads(out.read_text())
    assert data["dnn"]["name"] == "mlp" and data["network"]["source"] == "phone"
    assert main(["solve", str(out)]) == 0
    assert main(["profile", "--model", "nope", "-o", str(out)]) == 2
    assert "unknown model" in capsys.readouterr().err


class _ShapeBranch(nn.Module):
    """Python control flow on a shape: torch.fx cannot trace it, torch.export can."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.fc = nn.Linear(8, 4)

    def forward(self, x):
        y = torch.relu(self.bn(self.conv(x)))
        if y.shape[-1] > 4:
            y = nn.functional.avg_pool2d(y, 2)
        return self.fc(y.mean((2, 3)))


def test_export_fallback_where_fx_fails():
    model, x = _ShapeBranch(), torch.randn(1, 3, 16, 16)
    with pytest.raises(ProfileError, match=r"torch\.fx cannot trace"):
        profile(model, x, tracer="fx", repeats=1, warmup=0)
    dnn, report = profile(model, x, granularity="module", repeats=1, warmup=0)
    assert report.tracer == "export"
    # conv with its folded BN and ReLU, the pool, the mean, the linear layer
    conv, pool, _mean, fc = dnn.layers
    assert conv.flops == 2 * 8 * 16 * 16 * 3 * 9  # multiply-adds x 2
    assert conv.param_bytes == (8 * 3 * 9 + 8 + 4 * 8) * 4  # conv weight, bias; BN's 4 vectors
    assert pool.out_bytes == 8 * 8 * 8 * 4 and pool.inputs == (conv.name,)
    assert fc.flops == 2 * 8 * 4 and fc.param_bytes == (8 * 4 + 4) * 4
    assert dnn.output == fc.name
    op_level, _ = profile(model, x, granularity="op", repeats=1, warmup=0)
    assert len(op_level.layers) == 6  # conv, bn, relu, pool, mean, linear
    assert sum(la.flops for la in op_level.layers) == sum(la.flops for la in dnn.layers)
    with pytest.raises(ProfileError, match="unknown tracer"):
        profile(model, x, tracer="jit")


def test_roofline_and_presets():
    from splitplan.devices import DEVICES, PRESETS, network_preset, roofline_time_s

    t4 = DEVICES["t4"]
    assert roofline_time_s(8.1e12, 0, t4, efficiency=1.0) == pytest.approx(1.0)
    assert roofline_time_s(0, 320e9, t4, efficiency=0.5) == pytest.approx(2.0)  # memory-bound
    for name in PRESETS:
        net = network_preset(name)
        assert {n.device_class for n in net.nodes} <= set(DEVICES)
    assert {"3tier-lte", "3tier-ethernet", "pi4-edge-lte", "phone-edge-5g", "mesh-5"} <= set(
        PRESETS
    )
    lte = network_preset("3tier-lte").links[0]
    assert lte.bandwidth_bytes_per_s == pytest.approx(147e6 / 8)  # 5Gophers 4G median
    phone = network_preset("phone-edge-wifi")
    assert [n.device_class for n in phone.nodes] == ["pixel-3", "rtx-2080-ti"]
    mesh = network_preset("mesh-5")
    assert len(mesh.nodes) == 5 and mesh.sink == "device"
    fast = network_preset("3tier-3g", bandwidth_bytes_per_s=1e9)
    assert fast.links[0].bandwidth_bytes_per_s == 1e9
    with pytest.raises(ValueError, match="unknown network preset"):
        network_preset("6g")


def test_profile_cli_with_a_preset(tmp_path):
    out = tmp_path / "r18.json"
    assert (
        main(
            [
                "profile",
                "--model",
                "resnet18",
                "--granularity",
                "block",
                "--network",
                "3tier-5g",
                "--repeats",
                "1",
                "--warmup",
                "0",
                "-o",
                str(out),
            ]
        )
        == 0
    )
    inst = splitplan.load_instance(out)
    assert all({"jetson-nano", "t4", "a100"} <= set(la.time_s) for la in inst.dnn.layers)
    assert splitplan.solve(inst).status == "optimal"
    assert main(["profile", "--model", "mlp", "--network", "6g", "-o", str(out)]) == 2


def _shape(inst):
    """Everything of the DNN but the measured times, which differ from run to run."""
    return [(la.name, la.inputs, la.flops, la.param_bytes, la.out_bytes) for la in inst.dnn.layers]


def test_profiled_instance_is_what_the_profile_command_writes(tmp_path, capsys):
    from splitplan.profile import ProfileReport, profiled_instance

    lines, reports = [], []
    inst = profiled_instance(
        "mlp", repeats=1, warmup=0, threads=1, progress=lines.append, on_report=reports.append
    )
    assert lines == ["profiling mlp at module granularity on cpu (0 warm-up + 1 timed runs) ..."]
    [report] = reports
    assert isinstance(report, ProfileReport) and report.layers == len(inst.dnn.layers)
    assert inst.name == "mlp-profiled" and inst.dnn.name == "mlp"
    # one node of the measured class, as fast as the measured FLOPs per second
    [host] = inst.network.nodes
    assert host.device_class == "host-cpu" and inst.dnn.layers[0].time_s.keys() == {"host-cpu"}
    flops = sum(la.flops for la in inst.dnn.layers)
    assert host.flops_per_s == pytest.approx(max(flops / report.sum_of_layers_s, 1.0))
    out = tmp_path / "mlp.json"
    argv = ["profile", "--model", "mlp", "--repeats", "1", "--warmup", "0", "-o", str(out)]
    assert main(argv) == 0
    written = splitplan.load_instance(out)
    assert _shape(written) == _shape(inst) and written.dnn.output == inst.dnn.output
    assert written.network.source == inst.network.source == "host"
    assert main(["validate", str(out)]) == 0
    capsys.readouterr()
    splitplan.save_instance(inst, tmp_path / "lib.json")
    assert main(["validate", str(tmp_path / "lib.json")]) == 0


def test_profiled_instance_on_a_preset_and_from_a_network_file(tmp_path):
    from splitplan.devices import network_preset
    from splitplan.profile import profiled_instance

    model, x = build("mlp")
    on_preset = profiled_instance(model, x, repeats=1, warmup=0, network="3tier-wifi")
    classes = {n.device_class for n in network_preset("3tier-wifi").nodes}
    assert on_preset.network == network_preset("3tier-wifi")
    for la in on_preset.dnn.layers:  # measured on the host, estimated for the preset's classes
        assert classes | {"host-cpu"} <= set(la.time_s)
    assert splitplan.solve(on_preset).solved
    chain_file = Path(__file__).resolve().parents[1] / "instances" / "three-tier-chain.json"
    chain = splitplan.load_instance(chain_file)
    net_only = tmp_path / "net.json"
    data = json.loads(chain_file.read_text())
    net_only.write_text(json.dumps({k: data[k] for k in ("network", "objective", "constraints")}))
    from_file = profiled_instance(model, x, repeats=1, warmup=0, network_from=net_only)
    assert from_file.network == chain.network and from_file.objective == chain.objective
    assert from_file.constraints.pin == {}  # pins name the other model's layers
    assert from_file.constraints.max_latency_s == chain.constraints.max_latency_s
    assert _shape(from_file) == _shape(on_preset)


def test_profiled_instance_checks_its_arguments_before_profiling(monkeypatch, tmp_path):
    import splitplan.profile as prof
    from splitplan.errors import UsageError
    from splitplan.instance import InstanceError

    def never(*args, **kwargs):
        raise AssertionError("profiled although the arguments cannot work")

    monkeypatch.setattr(prof, "profile", never)
    with pytest.raises(UsageError, match="either network or network_from"):
        prof.profiled_instance("mlp", network="3tier-wifi", network_from="x.json")
    with pytest.raises(ValueError, match="unknown network preset"):
        prof.profiled_instance("mlp", network="3tier-6g")
    with pytest.raises(InstanceError, match=r"no-such\.json"):
        prof.profiled_instance("mlp", network_from=tmp_path / "no-such.json")
    with pytest.raises(ProfileError, match="example_input"):
        prof.profiled_instance(nn.Linear(2, 2))
    # a network-only file whose constraints are not an object: was a TypeError (exit 1)
    bad = tmp_path / "net.json"
    chain_file = Path(__file__).resolve().parents[1] / "instances" / "three-tier-chain.json"
    network = json.loads(chain_file.read_text())["network"]
    bad.write_text(json.dumps({"network": network, "constraints": []}))
    with pytest.raises(InstanceError, match="constraints: must be an object"):
        prof.profiled_instance("mlp", network_from=bad)
