"""Regression tests of the user-facing defects of issue 15 (items 2-6 and 8-10 of its list).

Each test fails on the code before the fix; the malformed-input corpus is tests/test_malformed.py.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import brute_force

import splitplan
from splitplan import DNN, Constraints, Instance, InstanceError, Layer, Link, Network, Node
from splitplan.cli import main
from splitplan.errors import ExitCode, SplitplanError

ROOT = Path(__file__).resolve().parents[1]
CHAIN = ROOT / "instances" / "three-tier-chain.json"


# --------------------------------------------------------------------------- the error seam


def test_user_errors_share_one_base_with_file_field_reason(tmp_path):
    from splitplan.nas.nb201 import Nb201Error
    from splitplan.online import load_widths
    from splitplan.online.channels import TraceError
    from splitplan.online.problem import OnlineError
    from splitplan.online.widths import WidthsError

    for cls in (InstanceError, OnlineError, WidthsError, TraceError, Nb201Error):
        assert issubclass(cls, SplitplanError) and issubclass(cls, ValueError)
    bad = tmp_path / "w.json"
    bad.write_text('{"format": "splitplan-widths/1", "widths": []}')
    with pytest.raises(SplitplanError) as info:
        load_widths(bad)
    assert (info.value.file, info.value.field) == (str(bad), "widths")
    exc = InstanceError("dnn.layers[0].flops", "must be finite", "f.json")
    assert str(exc) == "f.json: dnn.layers[0].flops: must be finite"
    assert exc.in_file("g.json").file == "g.json" and exc.reason == "must be finite"
    assert [int(c) for c in ExitCode][:5] == [0, 1, 2, 3, 4]


# --------------------------------------------------------------------------- defect 2


def _crossed_pins() -> Instance:
    """Issue 15's repro: `a` on n1 or n2, `b` on n2 and `c` on n1 both read `a`, and the links
    s->n1, s->n2 are one-way: wherever `a` runs, one of its readers cannot be reached."""
    dnn = DNN(
        "crossed",
        100.0,
        (
            Layer("a", "input", flops=1e6, out_bytes=10.0),
            Layer("b", ("a",), flops=1e6, out_bytes=10.0),
            Layer("c", ("a",), flops=1e6, out_bytes=10.0),
        ),
        output="b",
    )
    net = Network(
        (Node("s", 1e9), Node("n1", 1e9), Node("n2", 1e9)),
        (Link("s", "n1", 1e6, bidirectional=False), Link("s", "n2", 1e6, bidirectional=False)),
        "s",
    )
    pins = {"a": ("n1", "n2"), "b": ("n2",), "c": ("n1",)}
    return Instance(dnn, net, constraints=Constraints(pins))


@pytest.mark.parametrize("solver", ["highs", "ortools"])
def test_why_infeasible_does_not_recurse(solver):
    inst = _crossed_pins()
    assert brute_force(inst) is None  # infeasible by enumeration, not by the solver's word
    plan = splitplan.solve(inst, solver=solver)
    assert plan.status == "infeasible"
    assert plan.reasons and "pins" in plan.reasons[0]


def test_why_infeasible_shares_the_callers_time_limit(monkeypatch):
    import splitplan.plan as plan_module

    inst = splitplan.load_instance(CHAIN)
    inst = inst.with_constraints(Constraints(inst.constraints.pin, max_latency_s=1e-6))
    limits: list[float | None] = []
    real = plan_module.solve

    def spy(instance, solver="highs", time_limit_s=None, **kwargs):
        limits.append(time_limit_s)
        return real(instance, solver, time_limit_s, **kwargs)

    monkeypatch.setattr(plan_module, "solve", spy)
    plan = plan_module.solve(inst, time_limit_s=30.0)
    assert plan.status == "infeasible" and "max_latency_s" in plan.reasons[0]
    assert len(limits) >= 2  # the caller's solve, then the relaxed one
    assert all(t is not None and 0 < t <= 30.0 for t in limits[1:]), limits


def test_why_infeasible_out_of_time_says_so(monkeypatch):
    import splitplan.plan as plan_module

    inst = splitplan.load_instance(CHAIN)
    inst = inst.with_constraints(Constraints(inst.constraints.pin, max_latency_s=1e-6))
    assert plan_module._why_infeasible(inst, "highs", deadline=0.0) == [
        "infeasible; the time limit passed before the reason could be found"
    ]


# --------------------------------------------------------------------------- defect 3


def _chain_with(flops: float) -> dict:
    data = json.loads(CHAIN.read_text())
    for layer in data["dnn"]["layers"]:
        layer["flops"] = flops
        layer.pop("time_s", None)
    return data


def test_flops_1e308_rejected_with_the_field(tmp_path, capsys):
    path = tmp_path / "big.json"
    path.write_text(json.dumps(_chain_with(1e308)))
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    assert "dnn.layers[0].flops" in err and "Traceback" not in err
    assert main(["solve", str(path), "--json"]) == 2
    assert json.loads(capsys.readouterr().out)["error"]["field"] == "dnn.layers[0].flops"


@pytest.mark.parametrize("flops", [1e9, 1e15, 1e21, 9.9e21, 1e22, 1e23, 1e30, 1e300, 1e308])
@pytest.mark.parametrize("solver", ["highs", "ortools"])
def test_valid_means_solvable(flops, solver):
    """Whatever validation accepts, the solvers solve to a finite optimum (issue 15: `validate`
    said valid, `solve` said `status error`)."""
    try:
        inst = splitplan.instance_from_dict(_chain_with(flops))
    except InstanceError as exc:
        assert "flops" in exc.field
        return
    plan = splitplan.solve(inst, solver=solver)
    assert plan.status == "optimal", (plan.status, plan.reasons)
    assert math.isfinite(plan.objective) and math.isfinite(plan.bound)


# --------------------------------------------------------------------------- defect 4


def test_deeply_nested_json_is_bad_input(tmp_path, capsys):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    for command in ("validate", "solve"):
        assert main([command, str(path)]) == 2
        err = capsys.readouterr().err
        assert "nested too deeply" in err and "Traceback" not in err


def _no_profiling(monkeypatch):
    pytest.importorskip("torch")
    import splitplan.profile

    def never(*args, **kwargs):
        raise AssertionError("profiled although the arguments cannot work")

    monkeypatch.setattr(splitplan.profile, "profile", never)


def test_profile_checks_the_output_path_before_profiling(monkeypatch, capsys):
    _no_profiling(monkeypatch)
    assert main(["profile", "--model", "mlp", "-o", "/nonexistent/x.json"]) == 2
    err = capsys.readouterr().err
    assert "--output" in err and "/nonexistent" in err and "Traceback" not in err


def test_profile_on_cuda_without_cuda_is_bad_input(tmp_path, capsys):
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("this torch sees a GPU")
    out = tmp_path / "x.json"
    assert main(["profile", "--model", "mlp", "--device", "cuda", "-o", str(out)]) == 2
    err = capsys.readouterr().err
    assert "CUDA" in err and "Traceback" not in err
    assert not out.exists()


def _mbv2_report(tmp_path: Path) -> Path:
    path = tmp_path / "trials.json"
    report = {
        "format": "splitplan-nas-report/1",
        "spec": {"space": "mbv2-digits"},
        "front": [
            {"arch": "d1-1-1_w0.5-0.5-0.5_k3-3-3_e3-3-3", "accuracy": 95.0, "latency_s": 0.001}
        ],
    }
    path.write_text(json.dumps(report))
    return path


def test_retrain_without_torch_says_how_to_install(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` raises ImportError
    monkeypatch.setitem(sys.modules, "splitplan.nas.mbv2", None)
    assert main(["retrain", str(_mbv2_report(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "needs torch" in err and "download.pytorch.org/whl/cpu" in err
    assert "Traceback" not in err


# --------------------------------------------------------------------------- defect 5


def test_nas_nb201_on_an_unmeasured_preset_creates_nothing(tmp_path, capsys):
    storage = f"sqlite:///{tmp_path / 'studies.db'}"
    argv = [
        "nas",
        "--space",
        "nb201",
        "--network",
        "3tier-wifi",
        "--storage",
        storage,
        "--out",
        str(tmp_path / "report"),
    ]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--network 3tier-wifi" in err and "pi4-edge-wifi" in err and "Traceback" not in err
    assert not (tmp_path / "studies.db").exists() and not (tmp_path / "report").exists()


def test_nas_offers_only_presets_that_work():
    from splitplan.devices import PRESETS
    from splitplan.nas.command import presets_for
    from splitplan.nas.nb201 import Nb201Space

    usable = presets_for("nb201")
    # the help text's claim: pi4-edge-LINK and phone-edge-LINK
    assert set(usable) == {p for p in PRESETS if re.match(r"(pi4|phone)-edge-", p)}
    space = Nb201Space()
    arch = space.all_archs()[123]
    from splitplan.devices import network_preset

    for preset in PRESETS:
        classes = [n.device_class for n in network_preset(preset).nodes]
        if preset in usable:
            assert len(space.dnn(arch, classes).layers) == 19
        else:
            with pytest.raises(SplitplanError):
                space.dnn(arch, classes)
    assert presets_for("mbv2-digits") == tuple(PRESETS)


# --------------------------------------------------------------------------- defect 6


def test_native_stdout_goes_to_stderr():
    code = (
        "import os, sys\n"
        "from splitplan._output import native_stdout_to_stderr\n"
        "print('before')\n"
        "with native_stdout_to_stderr():\n"
        "    os.write(1, b'native\\n')\n"
        "    print('python')\n"
        "print('after')\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert run.returncode == 0, run.stderr
    assert run.stdout == "before\npython\nafter\n"
    assert run.stderr == "native\n"


@pytest.mark.parametrize("solver", ["highs", "ortools"])
def test_solve_verbose_json_prints_one_object(solver):
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "splitplan.cli",
            "solve",
            str(CHAIN),
            "--verbose",
            "--json",
            "--solver",
            solver,
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert run.returncode == 0, run.stderr
    out = json.loads(run.stdout)  # the whole of stdout is one JSON object
    assert out["status"] == "optimal"
    assert len(run.stderr.splitlines()) > 3  # the solver's log went to stderr


# --------------------------------------------------------------------------- defect 8


def test_profile_network_and_network_from_together_is_an_error(monkeypatch, tmp_path, capsys):
    _no_profiling(monkeypatch)
    argv = [
        "profile",
        "--model",
        "mlp",
        "--network",
        "3tier-wifi",
        "--network-from",
        str(CHAIN),
        "-o",
        str(tmp_path / "x.json"),
    ]
    assert main(argv) == 2
    assert "either --network or --network-from" in capsys.readouterr().err


def test_validate_exits_3_on_an_infeasible_file(tmp_path, capsys):
    data = json.loads(CHAIN.read_text())
    data["network"]["nodes"][0]["memory_bytes"] = 1e5  # the pinned first layer cannot fit
    path = tmp_path / "tight.json"
    path.write_text(json.dumps(data))
    assert main(["validate", str(path), "--json"]) == ExitCode.INFEASIBLE
    out = json.loads(capsys.readouterr().out)
    assert out["status"] == "infeasible" and out["infeasible"]
    assert main(["validate", str(CHAIN)]) == ExitCode.OK


def test_nas_without_optuna_blames_optuna_not_storage(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    storage = f"sqlite:///{tmp_path / 's.db'}"
    assert (
        main(["nas", "--space", "nb201", "--network", "pi4-edge-wifi", "--storage", storage]) == 2
    )
    err = capsys.readouterr().err
    assert "needs optuna" in err and "splitplan[nas]" in err and "--storage" not in err


def test_layer_takes_a_string_as_its_one_input():
    layer = Layer("a", "input", flops=1.0)
    assert layer.inputs == ("input",)
    assert Layer("b", ["input"]).inputs == ("input",)
    net = Network((Node("n", 1e9),), (), "n")
    inst = Instance(DNN("d", 1.0, (layer, Layer("b", "a"))), net)
    assert inst.dnn.layers[1].inputs == ("a",)


@pytest.mark.parametrize(
    ("make", "field"),
    [
        (lambda: Layer("a", "input", flops=-1), "Layer('a').flops"),
        (lambda: Layer("a", "input", out_bytes=float("nan")), "Layer('a').out_bytes"),
        (lambda: Layer("a", "input", time_s={"cpu": -1}), "Layer('a').time_s.cpu"),
        (lambda: Node("n", 0), "Node('n').flops_per_s"),
        (lambda: Node("n", 1e9, memory_bytes=-1), "Node('n').memory_bytes"),
        (lambda: Link("a", "b", -1), "Link('a', 'b').bandwidth_bytes_per_s"),
        (lambda: Link("a", "b", 1e6, latency_s=-1), "Link('a', 'b').latency_s"),
    ],
)
def test_dataclasses_reject_bad_numbers_when_built(make, field):
    with pytest.raises(InstanceError) as info:
        make()
    assert info.value.field == field


def test_evaluate_names_the_missing_layers():
    from splitplan.errors import AssignmentError

    inst = splitplan.load_instance(CHAIN)
    partial = {name: "phone" for name in inst.layer_names[:3]}
    with pytest.raises(AssignmentError) as info:
        splitplan.evaluate(inst, partial)
    missing = inst.layer_names[3:]
    assert isinstance(info.value, ValueError)
    assert f"{3} of {len(inst.layer_names)}" in str(info.value)
    assert all(name in str(info.value) for name in missing[:10])
    with pytest.raises(AssignmentError, match="unknown node 'mars'"):
        splitplan.evaluate(inst, {name: "mars" for name in inst.layer_names})


# --------------------------------------------------------------------------- defect 9


def test_readme_installs_the_cpu_torch_wheel_and_ci_runs_its_test_command():
    readme = (ROOT / "README.md").read_text()
    setup = readme.split("## Set-up", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", setup, flags=re.S)[0]
    lines = [ln for ln in commands.splitlines() if ln.strip() and not ln.startswith("#")]
    assert len(lines) == 2  # one runs the main job, one runs the tests
    test_command = lines[1]
    assert "torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu" in test_command
    ci = (ROOT / ".ci" / "run").read_text().replace("python -m pip install --quiet", "pip install")
    assert test_command in ci  # CI runs the README's command as written


# --------------------------------------------------------------------------- defect 10


class _FakeClock:
    """A deterministic `time.perf_counter`: each call advances by the next step of a cycle, so
    every timed interval is one step. Records torch's thread count at every call."""

    def __init__(self, steps_s: list[float]) -> None:
        self.now, self.steps, self.calls = 0.0, steps_s, 0
        self.threads: set[int] = set()

    def __call__(self) -> float:
        import torch

        self.threads.add(torch.get_num_threads())
        self.now += self.steps[self.calls % len(self.steps)]
        self.calls += 1
        return self.now


def _tiny_model():
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(
        torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 16), torch.nn.Linear(16, 4)
    )
    return model, torch.zeros(1, 8)


def test_profile_pins_threads_and_flags_no_layer_on_a_steady_clock(monkeypatch):
    torch = pytest.importorskip("torch")
    import splitplan.profile as prof

    model, x = _tiny_model()
    clock = _FakeClock([1e-3])
    monkeypatch.setattr(prof, "_clock", clock)
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        _, report = prof.profile(model, x, repeats=5, warmup=1, threads=1)
        assert clock.threads == {1}  # every timed run used one thread
        assert torch.get_num_threads() == 3  # and the caller's setting came back
    finally:
        torch.set_num_threads(before)
    assert report.threads == 1 and report.repeats == 5
    assert report.spread and all(v == 0 for v in report.spread.values())
    assert report.unstable == {} and report.unstable_summary() == ""


def test_profile_flags_unstable_layers(monkeypatch, tmp_path, capsys):
    pytest.importorskip("torch")
    import splitplan.profile as prof

    model, x = _tiny_model()
    # a cycle of 7 steps: a layer's interval differs from repeat to repeat, up to 20x
    monkeypatch.setattr(prof, "_clock", _FakeClock([1e-3, 1e-3, 20e-3, 1e-3, 2e-3, 1e-3, 5e-3]))
    dnn, report = prof.profile(model, x, repeats=5, warmup=1)
    assert report.unstable
    assert set(report.unstable) - {"(whole model)"} <= {la.name for la in dnn.layers}
    line = report.unstable_summary()
    assert "unstable" in line and "%" in line and "\n" not in line
    # the command line prints it as one warning line
    monkeypatch.setattr(prof, "_clock", _FakeClock([1e-3, 1e-3, 20e-3, 1e-3, 2e-3, 1e-3, 5e-3]))
    out = tmp_path / "mlp.json"
    assert (
        main(["profile", "--model", "mlp", "--repeats", "5", "--warmup", "1", "-o", str(out)]) == 0
    )
    err = capsys.readouterr().err
    warnings = [ln for ln in err.splitlines() if ln.startswith("splitplan: warning: unstable")]
    assert len(warnings) == 1
    assert "(1 thread)" in err
