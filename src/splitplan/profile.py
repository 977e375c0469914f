"""Profile a torch model into the `dnn` part of an instance: layer DAG, FLOPs, bytes, times.

    dnn, report = profile(model, example_input, granularity="module")
    inst = profiled_instance("resnet18", network="3tier-wifi")  # what `splitplan profile` writes

The model is traced with torch.fx; each traced operation is a node of the DAG (residual adds,
concatenations and branches are kept). Nodes are grouped into splittable layers:

- ``op``: every operation is a layer;
- ``module``: parameter-free element-wise operations (activations, batch norm in eval, residual
  adds, dropout, flatten) are folded into the layer that produces their input;
- ``block``: every child block of a container (``layer1.0``, ``features.3``, ``blocks.5``) is one
  layer.

A group is always a contiguous run of the traced (topological) order, and is cut where an inner
result is used outside it, so that every layer has one output tensor. Shape queries
(``x.shape``) are metadata, not data dependencies.

Per layer: FLOPs from ``torch.utils.flop_counter`` (2 per multiply-accumulate), ``param_bytes``
(parameters and buffers at their dtype), ``out_bytes`` at the chosen activation dtype, and the
median over ``repeats`` of the measured time on ``device`` after ``warmup`` runs, with the device
synchronised around every layer. This module imports torch: `pip install splitplan[torch]`.
"""

from __future__ import annotations

import operator
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.fx
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from .errors import SplitplanError
from .instance import DNN, INPUT, Instance, Layer, Network

ACTIVATION_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
# A layer's timings are unstable when their spread across repeats, (max - min) / median, exceeds
# this and the layer holds at least `UNSTABLE_SHARE` of the model's time (tiny layers are all
# timer noise; issue 15: a busy 2-core machine gave a convolution 50 ms for 0.2 ms).
UNSTABLE_SPREAD = 0.5
UNSTABLE_SHARE = 0.01
_clock = time.perf_counter  # the timer; tests replace it with a deterministic one
GRANULARITIES = ("op", "module", "block")
_FOLD_MODULES = (
    nn.BatchNorm1d,
    nn.BatchNorm2d,
    nn.BatchNorm3d,
    nn.ReLU,
    nn.ReLU6,
    nn.GELU,
    nn.SiLU,
    nn.Hardswish,
    nn.Hardsigmoid,
    nn.Sigmoid,
    nn.Tanh,
    nn.Dropout,
    nn.Identity,
    nn.Flatten,
    nn.Softmax,
)
_FOLD_FUNCTIONS = {
    operator.add,
    operator.iadd,
    operator.mul,
    operator.truediv,
    operator.getitem,
    torch.add,
    torch.mul,
    torch.cat,
    nn.functional.softmax,
    torch.relu,
    torch.flatten,
    torch.sigmoid,
    nn.functional.relu,
    nn.functional.relu6,
    nn.functional.gelu,
    nn.functional.silu,
    nn.functional.dropout,
    nn.functional.hardswish,
}
_FOLD_METHODS = {
    "relu",
    "flatten",
    "view",
    "reshape",
    "add",
    "mul",
    "contiguous",
    "sigmoid",
    "softmax",
    "permute",
    "transpose",
    "expand",
    "unsqueeze",
    "squeeze",
}

# The same for torch.export graphs, whose nodes are ATen operators (matched by base name).
_FOLD_ATEN = {
    "batch_norm",
    "_native_batch_norm_legit_no_training",
    "relu",
    "relu_",
    "relu6",
    "hardtanh",
    "hardtanh_",
    "gelu",
    "silu",
    "silu_",
    "hardswish",
    "hardsigmoid",
    "sigmoid",
    "tanh",
    "dropout",
    "add",
    "add_",
    "mul",
    "div",
    "cat",
    "flatten",
    "view",
    "reshape",
    "permute",
    "transpose",
    "expand",
    "unsqueeze",
    "squeeze",
    "contiguous",
    "clone",
    "softmax",
    "_softmax",
    "getitem",
    "alias",
    "identity",
}
TRACERS = ("auto", "fx", "export")


class ProfileError(SplitplanError, ValueError):
    """A model or input the profiler cannot handle (the message says what and why)."""


@dataclass
class ProfileReport:
    """How the per-layer times add up against the whole model's measured time."""

    device_class: str
    layers: int
    sum_of_layers_s: float
    whole_model_s: float
    tracer: str = "fx"
    threads: int | None = None  # torch CPU threads while timing (None: torch's own setting)
    repeats: int = 0
    spread: dict[str, float] = field(default_factory=dict)  # layer: (max - min) / median
    whole_model_spread: float = 0.0

    @property
    def unstable(self) -> dict[str, float]:
        """Layers whose times moved more than `UNSTABLE_SPREAD` across repeats and that hold at
        least `UNSTABLE_SHARE` of the time ("(whole model)" when the whole-model runs did)."""
        out = {k: v for k, v in self.spread.items() if v > UNSTABLE_SPREAD}
        if self.whole_model_spread > UNSTABLE_SPREAD:
            out["(whole model)"] = self.whole_model_spread
        return out

    def unstable_summary(self) -> str:
        """One line naming the unstable layers and their spread ("" when stable)."""
        bad = sorted(self.unstable.items(), key=lambda kv: -kv[1])
        if not bad:
            return ""
        shown = ", ".join(f"{k} {100 * v:.0f} %" for k, v in bad[:8])
        more = f" and {len(bad) - 8} more" if len(bad) > 8 else ""
        return (
            f"unstable timings on {self.device_class}: the spread (max - min) / median across "
            f"{self.repeats} repeats exceeds {100 * UNSTABLE_SPREAD:.0f} % for {shown}{more}; "
            "the machine is busy or its clock varies: rerun on an idle machine, with --threads 1 "
            "or more --repeats"
        )

    @property
    def ratio(self) -> float:
        return self.sum_of_layers_s / self.whole_model_s if self.whole_model_s else float("nan")

    @property
    def agrees(self) -> bool:
        """Within 20 % (the per-layer sum also pays one synchronisation per layer)."""
        return abs(self.ratio - 1.0) <= 0.2

    def summary(self) -> str:
        verdict = "agree" if self.agrees else "DO NOT agree within 20 %"
        threads = ""
        if self.threads:
            threads = f" ({self.threads} thread{'s' if self.threads > 1 else ''})"
        return (
            f"{self.layers} layers ({self.tracer}) on {self.device_class}{threads}: "
            "sum of layer times "
            f"{self.sum_of_layers_s * 1e3:.3f} ms vs whole model {self.whole_model_s * 1e3:.3f} ms "
            f"(ratio {self.ratio:.2f}; {verdict})"
        )


def _is_tensor(value) -> bool:
    if isinstance(value, torch.Tensor):
        return True
    return isinstance(value, tuple | list) and any(isinstance(v, torch.Tensor) for v in value)


def _nbytes(value, per_element: int) -> int:
    if isinstance(value, torch.Tensor):
        return value.numel() * per_element
    if isinstance(value, tuple | list):
        return sum(_nbytes(v, per_element) for v in value)
    return 0


class _Recorder(torch.fx.Interpreter):
    """Runs the traced graph node by node, recording outputs, FLOPs or times."""

    def __init__(self, gm: torch.fx.GraphModule, sync, mode: str) -> None:
        super().__init__(gm)
        self.sync, self.mode = sync, mode
        self.values: dict[str, object] = {}
        self.flops: dict[str, int] = {}
        self.times: dict[str, float] = {}

    def run_node(self, n: torch.fx.Node):
        if self.mode == "flops" and n.op.startswith("call"):
            with FlopCounterMode(display=False) as counter:
                out = super().run_node(n)
            self.flops[n.name] = counter.get_total_flops()
        elif self.mode == "time" and n.op.startswith("call"):
            self.sync()
            start = _clock()
            out = super().run_node(n)
            self.sync()
            self.times[n.name] = _clock() - start
        else:
            out = super().run_node(n)
        if self.mode == "flops":
            self.values[n.name] = out
        return out


def _module_path(n: torch.fx.Node) -> str:
    """The qualified name of the innermost module that `n` runs in ("" outside any)."""
    stack = n.meta.get("nn_module_stack") or {}
    if not stack:
        return ""
    key, value = list(stack.items())[-1]
    if isinstance(value, tuple) and value and isinstance(value[0], str):
        return value[0]  # fx and torch.export both store (path, type)
    return key.split("@")[0]


def _block_path(model: nn.Module, n: torch.fx.Node) -> str:
    path = _module_path(n)
    if not path:
        return ""
    parts = path.split(".")
    # the traced module's copies of containers are plain Modules: ask the original model
    root = model.get_submodule(parts[0]) if parts[0] else None
    depth = 2 if isinstance(root, nn.Sequential | nn.ModuleList) and len(parts) > 1 else 1
    return ".".join(parts[:depth])


def _foldable(gm: torch.fx.GraphModule, n: torch.fx.Node) -> bool:
    if n.op == "call_module":
        return isinstance(gm.get_submodule(str(n.target)), _FOLD_MODULES)
    if n.op == "call_function":
        if isinstance(n.target, torch._ops.OpOverload | torch._ops.OpOverloadPacket):
            return n.target.__name__.split(".")[0] in _FOLD_ATEN
        return n.target in _FOLD_FUNCTIONS
    return n.op == "call_method" and n.target in _FOLD_METHODS


def _trace(model: nn.Module, x: torch.Tensor, tracer: str) -> tuple[torch.fx.GraphModule, str]:
    """A graph of `model`: torch.fx's symbolic trace, or torch.export's where fx fails (e.g. on
    Python control flow over shapes); returns the graph module and the tracer that made it."""
    errors = []
    if tracer in ("auto", "fx"):
        try:
            return torch.fx.symbolic_trace(model), "fx"
        except Exception as exc:
            errors.append(f"torch.fx cannot trace the model: {exc}")
    if tracer in ("auto", "export"):
        try:
            exported = torch.export.export(model, (x,), strict=False)
            return exported.module(), "export"
        except Exception as exc:
            errors.append(f"torch.export cannot export the model: {str(exc).splitlines()[0]}")
    raise ProfileError("; ".join(errors))


def _attr_bytes(gm: torch.fx.GraphModule, target: str) -> int:
    obj: object = gm
    for part in target.split("."):
        obj = getattr(obj, part, None)
    return obj.numel() * obj.element_size() if isinstance(obj, torch.Tensor) else 0


@dataclass
class LayerMap:
    """How the traced graph's operations make up the profile's layers (what export splits).

    `groups[g]` are the fx nodes of layer `names[g]` (a contiguous run of the graph's order, its
    last node produces the layer's output), `inputs[g]` the tensors it reads (``input`` or layer
    names), `values` every node's output on the example input and `flops` its FLOPs.
    """

    gm: torch.fx.GraphModule
    tracer: str
    groups: list[list[torch.fx.Node]]
    names: list[str]
    inputs: list[tuple[str, ...]]
    output: str
    values: dict[str, object]
    flops: dict[str, int]

    @property
    def group_of(self) -> dict[str, int]:
        """fx node name -> index of its layer (only nodes that belong to a layer)."""
        return {n.name: g for g, group in enumerate(self.groups) for n in group}


def trace_layers(
    model: nn.Module, x: torch.Tensor, *, granularity: str = "module", tracer: str = "auto"
) -> LayerMap:
    """Trace `model` on `x` and group its operations into layers exactly as `profile` names them
    (no timing). `model` must be in eval mode on `x`'s device."""
    if granularity not in GRANULARITIES:
        raise ProfileError(
            f"unknown granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}"
        )
    gm, traced_by = _trace(model, x, tracer)
    with torch.no_grad():
        flops_pass = _Recorder(gm, lambda: None, "flops")
        flops_pass.run(x)
    values = flops_pass.values
    nodes = list(gm.graph.nodes)
    real = [n for n in nodes if n.op.startswith("call") and _is_tensor(values.get(n.name))]
    is_real = {n.name for n in real}
    placeholders = [n for n in nodes if n.op == "placeholder"]
    if len(placeholders) != 1:
        raise ProfileError("the model must take exactly one input tensor")

    # Keys: consecutive nodes with the same key form one layer.
    keys: dict[str, str] = {}
    previous = None
    for n in real:
        if granularity == "op":
            key = n.name
        elif granularity == "module":
            fold = previous is not None and _foldable(gm, n) and previous in n.all_input_nodes
            # torch.export inlines modules: their ATen ops share the module's path
            same_module = (
                traced_by == "export"
                and previous is not None
                and _module_path(n) != ""
                and _module_path(n) == _module_path(previous)
            )
            key = keys[previous.name] if previous is not None and (fold or same_module) else n.name
        else:
            key = _block_path(model, n) or n.name
        keys[n.name] = key
        previous = n
    groups: list[list[torch.fx.Node]] = []
    for n in real:
        if groups and keys[groups[-1][-1].name] == keys[n.name]:
            groups[-1].append(n)
        else:
            groups.append([n])
    # Cut a group after any inner node whose result is used outside it (one output per layer).
    cut: list[list[torch.fx.Node]] = []
    for group in groups:
        current: list[torch.fx.Node] = []
        members = {n.name for n in group}
        for n in group:
            current.append(n)
            escapes = any(
                u.name not in members or u.op == "output"
                for u in n.users
                if u.name in is_real or u.op == "output"
            )
            if escapes and n is not group[-1]:
                cut.append(current)
                current = []
        if current:
            cut.append(current)

    group_of: dict[str, int] = {}
    names: list[str] = []
    all_inputs: list[tuple[str, ...]] = []
    for g, group in enumerate(cut):
        for n in group:
            group_of[n.name] = g
        inputs: list[str] = []
        for n in group:
            for src in n.all_input_nodes:
                if src.op == "placeholder" and INPUT not in inputs:
                    inputs.append(INPUT)
                elif src.name in is_real and group_of.get(src.name) != g:
                    producer = names[group_of[src.name]]
                    if producer not in inputs:
                        inputs.append(producer)
        head = group[0]
        label = str(head.target) if head.op == "call_module" else head.name
        if granularity == "block":
            label = keys[head.name]
        while label in names:
            label += "'"
        names.append(label)
        if not inputs:  # e.g. a constant generator: it still needs the input to exist
            inputs.append(INPUT)
        all_inputs.append(tuple(inputs))
    output_node = next(n for n in nodes if n.op == "output")
    produced = [a for a in output_node.all_input_nodes if a.name in is_real]
    if len(produced) != 1:
        raise ProfileError("the model must return exactly one tensor")
    return LayerMap(
        gm,
        traced_by,
        cut,
        names,
        all_inputs,
        names[group_of[produced[0].name]],
        values,
        flops_pass.flops,
    )


def _measure(gm, model, x, sync, warmup: int, repeats: int):
    """FLOPs of every node, then `repeats` timed runs per node and of the whole model, in s."""
    with torch.no_grad():
        flops_pass = _Recorder(gm, sync, "flops")
        flops_pass.run(x)
        timer = _Recorder(gm, sync, "time")
        runs: dict[str, list[float]] = {}
        for i in range(warmup + repeats):
            timer.run(x)
            if i >= warmup:
                for key, t in timer.times.items():
                    runs.setdefault(key, []).append(t)
        whole = []
        for i in range(warmup + repeats):
            sync()
            start = _clock()
            model(x)
            sync()
            if i >= warmup:
                whole.append(_clock() - start)
    return flops_pass, runs, whole


def cuda_problem(dev: torch.device) -> str | None:
    """Why this torch cannot run on the CUDA device `dev`, or None (also for other devices):
    a CPU-only build, no CUDA device, or an index past the devices it sees."""
    if dev.type != "cuda":
        return None
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "a CPU-only build"
        return f"torch ({build}) sees no CUDA device"
    if dev.index is not None and dev.index >= torch.cuda.device_count():
        return f"torch sees {torch.cuda.device_count()} CUDA device(s)"
    return None


def _device(device: str | torch.device | None, example_input: torch.Tensor) -> torch.device:
    """The device to time on; a device this torch cannot use is a `ProfileError`, not a
    traceback (issue 15: `--device cuda` on a CPU-only torch)."""
    try:
        dev = torch.device(device) if device is not None else example_input.device
    except (RuntimeError, TypeError, ValueError) as exc:
        raise ProfileError(f"unknown device {device!r}: {exc}") from None
    if dev.type == "cuda":
        problem = cuda_problem(dev)
        if problem is not None:
            raise ProfileError(f"device {device!r}: {problem}")
    elif dev.type != "cpu":
        try:
            torch.empty(1, device=dev)
        except Exception as exc:  # mps, xpu, ...: whatever this build cannot allocate on
            raise ProfileError(f"device {device!r} is not usable: {exc}") from None
    return dev


def profile(
    model: nn.Module,
    example_input: torch.Tensor,
    *,
    granularity: str = "module",
    activation_dtype: str = "fp32",
    repeats: int = 5,
    warmup: int = 2,
    device: str | torch.device | None = None,
    device_class: str | None = None,
    name: str | None = None,
    tracer: str = "auto",
    threads: int | None = None,
) -> tuple[DNN, ProfileReport]:
    """Profile `model` on `example_input` (one batch) into a `DNN` and a timing report.

    `tracer` is ``fx`` (torch.fx symbolic tracing: module calls stay whole), ``export``
    (torch.export: ATen operators, grouped back into modules by their module path) or ``auto``
    (fx, and torch.export where fx fails). `ProfileReport.tracer` says which one ran.

    `device` defaults to the input's device; `device_class` (the key of `time_s`) defaults to
    ``host-cpu`` on the CPU and to the GPU's name (e.g. ``nvidia-h100-80gb-hbm3``) on CUDA.

    `threads` pins torch's CPU threads while profiling (restored afterwards; None keeps torch's
    setting). `ProfileReport.spread` holds the spread across the repeats of each layer with at
    least `UNSTABLE_SHARE` of the time, and `ProfileReport.unstable` the layers whose times are
    not to be trusted.
    """
    if threads is not None and (isinstance(threads, bool) or threads < 1):
        raise ProfileError(f"threads must be a whole number >= 1, got {threads!r}")
    if granularity not in GRANULARITIES:
        raise ProfileError(
            f"unknown granularity {granularity!r}; expected one of {', '.join(GRANULARITIES)}"
        )
    if activation_dtype not in ACTIVATION_BYTES:
        raise ProfileError(
            f"unknown activation dtype {activation_dtype!r}; expected one of "
            f"{', '.join(ACTIVATION_BYTES)}"
        )
    if tracer not in TRACERS:
        raise ProfileError(f"unknown tracer {tracer!r}; expected one of {', '.join(TRACERS)}")
    if repeats < 1 or warmup < 0:
        raise ProfileError("repeats must be >= 1 and warmup >= 0")
    device = _device(device, example_input)
    model = model.eval().to(device)
    x = example_input.to(device)
    sync: Callable[[], None]
    if device.type == "cuda":

        def sync() -> None:
            torch.cuda.synchronize()

        device_class = device_class or torch.cuda.get_device_name(device).lower().replace(" ", "-")
    else:

        def sync() -> None:
            return None

        device_class = device_class or "host-cpu"
    try:
        with torch.no_grad():
            model(x)
    except Exception as exc:  # a user's model on a wrong input: say so, without a traceback
        raise ProfileError(
            f"the model does not run on an input of shape {tuple(x.shape)}: {exc}"
        ) from None
    lmap = trace_layers(model, x, granularity=granularity, tracer=tracer)
    gm, traced_by, values = lmap.gm, lmap.tracer, lmap.values

    previous_threads = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        _, runs, whole = _measure(gm, model, x, sync, warmup, repeats)
    finally:
        torch.set_num_threads(previous_threads)

    cut, names = lmap.groups, lmap.names
    per_element = ACTIVATION_BYTES[activation_dtype]
    layers: list[Layer] = []
    for g, group in enumerate(cut):
        params = 0
        modules_seen: set[str] = set()
        for n in group:
            for src in n.all_input_nodes:
                if src.op == "get_attr":
                    params += _attr_bytes(gm, str(src.target))
            if n.op == "call_module" and str(n.target) not in modules_seen:
                modules_seen.add(str(n.target))
                module = gm.get_submodule(str(n.target))
                params += sum(p.numel() * p.element_size() for p in module.parameters())
                params += sum(b.numel() * b.element_size() for b in module.buffers())
        last = group[-1]
        layers.append(
            Layer(
                name=names[g],
                inputs=lmap.inputs[g],
                flops=float(sum(lmap.flops.get(n.name, 0) for n in group)),
                param_bytes=float(params),
                out_bytes=float(_nbytes(values[last.name], per_element)),
                time_s={device_class: float(sum(statistics.median(runs[n.name]) for n in group))},
            )
        )
    dnn = DNN(
        name=name or type(model).__name__.lower(),
        input_bytes=float(x.numel() * per_element),
        layers=tuple(layers),
        output=lmap.output,
    )
    # Spread per layer: its time in each repeat (the sum over its operations) around the median.
    total = sum(next(iter(la.time_s.values())) for la in layers)
    spread: dict[str, float] = {}
    for label, group, layer in zip(names, cut, layers, strict=True):
        per_run = [sum(runs[n.name][r] for n in group) for r in range(repeats)]
        middle = statistics.median(per_run)
        if middle > 0 and layer.time_s[device_class] >= UNSTABLE_SHARE * total:
            spread[label] = (max(per_run) - min(per_run)) / middle
    whole_middle = statistics.median(whole)
    report = ProfileReport(
        device_class,
        len(layers),
        total,
        whole_middle,
        traced_by,
        threads=threads,
        repeats=repeats,
        spread=spread,
        whole_model_spread=(max(whole) - min(whole)) / whole_middle if whole_middle > 0 else 0.0,
    )
    return dnn, report


# --------------------------------------------------------------------------- profiled instances


def _network_source(path: str | Path) -> Instance:
    """An instance file, or a JSON file with just a `network` object (and optionally `objective`
    and `constraints`) in the instance format; `InstanceError` naming the file and the field."""
    import json

    from .instance import FORMAT, InstanceError, instance_from_dict, load_instance

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError):
        return load_instance(path)  # its messages say what is wrong with the file
    if isinstance(data, dict) and "network" in data and "dnn" not in data:
        # a placeholder DNN so that the instance reader validates the network with field paths
        data = {"format": FORMAT, **data, "dnn": {"input_bytes": 0, "layers": []}}
        data["dnn"]["layers"] = [{"name": "placeholder", "inputs": ["input"]}]
        constraints = data.get("constraints")
        if isinstance(constraints, dict):
            constraints.pop("pin", None)
        try:
            return instance_from_dict(data)
        except InstanceError as exc:
            raise exc.in_file(str(path)) from None
    return load_instance(path)


def profiled_instance(
    model: str | nn.Module,
    example_input: torch.Tensor | None = None,
    *,
    input_shape: Sequence[int] | None = None,
    input_dtype: str = "float32",
    granularity: str = "module",
    activation_dtype: str = "fp32",
    repeats: int = 5,
    warmup: int = 2,
    device: str | torch.device | None = None,
    device_class: str | None = None,
    tracer: str = "auto",
    threads: int | None = None,
    network: str | Network | None = None,
    bandwidth_bytes_per_s: float | None = None,
    network_from: str | Path | Instance | None = None,
    name: str | None = None,
    progress: Callable[[str], None] | None = None,
    on_report: Callable[[ProfileReport], None] | None = None,
) -> Instance:
    """Profile a model into a complete instance: what `splitplan profile` writes.

    `model` is an `nn.Module` with its `example_input` (one batch), or a reference that
    `splitplan.zoo.load_model` builds, with a random input of `input_shape` (batch included;
    required for your own model) and `input_dtype`: a zoo name (``resnet18``, ``mlp``, ...),
    ``path/to/file.py:ClassOrFactory`` or ``package.module:factory``. The timing options are
    those of `profile` (times in seconds on `device`, the key of `time_s` is `device_class`).

    The network, at most one of:
    - `network`: a preset name (`splitplan.devices.PRESETS`; `bandwidth_bytes_per_s` overrides
      its device uplink, bytes/s) or a `Network`. Its device classes that were not measured get
      roofline-estimated times; default objective and constraints.
    - `network_from`: an instance (or the path of an instance file, or of a JSON file with just
      a ``network`` object): its network, objective and latency limit (pins are dropped: they
      name the other model's layers). Read before the model is profiled.
    - neither: one node ``host`` of the measured class, its speed the model's FLOPs over the
      sum of its measured layer times.

    `progress` gets one line when the timing starts; `on_report` gets the `ProfileReport` (sum
    of layer times vs the whole model, the spread across repeats, unstable layers) as soon as
    it is measured. The instance is named ``<dnn name>-profiled``; `name` names the DNN (default:
    the reference's last part, or the module's class name).

    Raises `ProfileError` (a model or input the profiler cannot handle), `ModelError` (a model
    reference that cannot be built), `InstanceError` (a bad `network_from` file or an instance
    that does not validate) and `UsageError` (both network arguments)."""
    from .devices import network_preset, with_roofline_times
    from .errors import UsageError
    from .instance import Constraints, Node, Objective

    if network is not None and network_from is not None:
        raise UsageError("give either network or network_from, not both", field="network_from")
    base = None
    if network_from is not None:
        base = network_from if isinstance(network_from, Instance) else _network_source(network_from)
    if isinstance(network, str):  # before the model is profiled: a typo costs nothing
        network = network_preset(network, bandwidth_bytes_per_s=bandwidth_bytes_per_s)
    if isinstance(model, str):
        from .zoo import load_model

        reference = model
        module, x = load_model(reference, tuple(input_shape) if input_shape else None, input_dtype)
        name = name or reference.rpartition(":")[2] or reference
    else:
        if example_input is None:
            raise ProfileError("an nn.Module needs its example_input (one batch)")
        module, x = model, example_input
        reference = type(model).__name__
    if progress is not None:
        where = device if device is not None else x.device
        progress(
            f"profiling {reference} at {granularity} granularity on {where} "
            f"({warmup} warm-up + {repeats} timed runs) ..."
        )
    dnn, report = profile(
        module,
        x,
        granularity=granularity,
        activation_dtype=activation_dtype,
        repeats=repeats,
        warmup=warmup,
        device=device,
        device_class=device_class,
        name=name,
        tracer=tracer,
        threads=threads,
    )
    if on_report is not None:
        on_report(report)
    if network is not None:
        classes = sorted({n.device_class for n in network.nodes if n.device_class})
        dnn = with_roofline_times(dnn, classes)
        objective, constraints = Objective(), Constraints()
    elif base is not None:
        network, objective = base.network, base.objective
        constraints = Constraints({}, base.constraints.max_latency_s)
    else:
        flops = sum(la.flops for la in dnn.layers)
        host = Node(
            "host", max(flops / max(report.sum_of_layers_s, 1e-12), 1.0), report.device_class
        )
        network = Network((host,), (), "host", "host")
        objective, constraints = Objective(), Constraints()
    return Instance(dnn, network, objective, constraints, f"{dnn.name}-profiled")
