"""Split export: the plan's segments as runnable torch modules, one set of files per node.

    segments = split(model, x, instance, assignment)       # in memory: torch.fx GraphModules
    out = run_chain(segments, x)                           # == model(x)
    export(model, x, instance, plan, "deploy/")            # files + manifest.json

The model is traced and grouped into layers by `splitplan.profile.trace_layers`, the very code
that named the instance's layers, so a layer of the instance is an exact set of fx nodes; the
export checks that the traced names, inputs and output equal the instance's and refuses a model
that does not match. A *segment* is a maximal run of consecutive layers (topological order) on one
node (`Plan.segments`); a node that is revisited has several. Each segment becomes one
`torch.fx.GraphModule` whose positional inputs and outputs are instance tensors (``input`` or a
layer's name; the manifest lists them in order). Shape queries and other non-tensor values are
baked in as the constants they had on the example input: an export is for one input shape.
Every operation carries its instance layer in `node.meta["custom"][LAYER_KEY]`, which
torch.export keeps in the files: `splitplan run --per-layer` times the layers by it.

Files: ``NODE.I.pt2`` (torch.export) or ``NODE.I.onnx`` (torch.onnx, checked with onnx.checker)
per segment I of NODE, ``io.pt`` (the example input and the unsplit model's output on it),
``instance.json`` and ``manifest.json`` (format ``splitplan-deployment/1``). This module imports
torch; `import splitplan` does not import it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

import torch
import torch.fx
from torch import nn

from .cost import evaluate, tables
from .errors import SplitplanError
from .instance import INPUT, RAW, Instance, save_instance
from .profile import GRANULARITIES, LayerMap, ProfileError, trace_layers

FORMAT = "splitplan-deployment/1"
FILE_FORMATS = ("pt2", "onnx")
# Key of the instance layer in each operation's `node.meta["custom"]`: torch.export keeps that
# dict through export, save, load and `.module()`, so `splitplan run --per-layer` can time a
# segment's program layer by layer.
LAYER_KEY = "splitplan_layer"


class ExportError(SplitplanError, ValueError):
    """A model, instance or plan that cannot be exported together (the message says why)."""


@dataclass
class Segment:
    """Consecutive layers on one node, as one module: `module(*inputs) -> tuple(outputs)`."""

    index: int  # position in the global topological order of segments
    node: str
    layers: list[str]
    inputs: list[str]  # tensor names, in argument order
    outputs: list[str]  # tensor names, in result order
    module: torch.fx.GraphModule


# --------------------------------------------------------------------------- matching


def _mismatch(lmap: LayerMap, inst: Instance) -> str | None:
    """Why the traced layers are not the instance's (None: they are)."""
    layers = inst.dnn.layers
    if len(lmap.names) != len(layers):
        return f"the model traces to {len(lmap.names)} layers, the instance has {len(layers)}"
    for name, inputs, layer in zip(lmap.names, lmap.inputs, layers, strict=True):
        if name != layer.name:
            return f"layer '{layer.name}' of the instance is '{name}' in the traced model"
        if tuple(inputs) != tuple(layer.inputs):
            return (
                f"layer '{layer.name}' reads {', '.join(inputs)} in the traced model but "
                f"{', '.join(layer.inputs)} in the instance"
            )
    if lmap.output != inst.dnn.output_layer:
        return f"the model's output is '{lmap.output}', the instance's '{inst.dnn.output_layer}'"
    # the same layers on another input shape: the bytes tell (at the profile's activation dtype)
    x = lmap.values[_fx_name(lmap, INPUT)]
    if not isinstance(x, torch.Tensor):
        return f"the model's input is a {type(x).__name__}, not one tensor"
    per_element = inst.dnn.input_bytes / max(x.numel(), 1)
    if per_element not in (1.0, 2.0, 4.0):
        return (
            f"the input has {x.numel()} elements but the instance's input_bytes is "
            f"{inst.dnn.input_bytes:g} (was it profiled with another --input-shape?)"
        )
    for name, group, layer in zip(lmap.names, lmap.groups, layers, strict=True):
        value = lmap.values[group[-1].name]
        numel = value.numel() if isinstance(value, torch.Tensor) else None
        if numel is not None and numel * per_element != layer.out_bytes:
            return (
                f"layer '{name}' outputs {numel} elements but out_bytes is {layer.out_bytes:g} "
                "in the instance (was it profiled with another --input-shape?)"
            )
    return None


def match_layers(
    model: nn.Module,
    x: torch.Tensor,
    inst: Instance,
    *,
    granularity: str | None = None,
    tracer: str = "auto",
) -> tuple[LayerMap, str]:
    """The traced model grouped like the instance's layers, and the granularity that does it.

    `granularity` None tries module, op and block in turn. Raises `ExportError` saying where the
    model and the instance first differ.
    """
    tried = [granularity] if granularity else ["module", "op", "block"]
    reasons = []
    for g in tried:
        if g not in GRANULARITIES:
            raise ExportError(f"unknown granularity {g!r}; expected one of {GRANULARITIES}")
        try:
            lmap = trace_layers(model, x, granularity=g, tracer=tracer)
        except ProfileError as exc:
            raise ExportError(str(exc)) from None
        why = _mismatch(lmap, inst)
        if why is None:
            return lmap, g
        reasons.append(f"at {g} granularity {why}")
    raise ExportError(f"the model does not match instance '{inst.name}': " + "; ".join(reasons))


# --------------------------------------------------------------------------- segments


def segments_of(inst: Instance, assignment: Mapping[str, str]) -> list[tuple[str, list[str]]]:
    """Maximal runs of consecutive layers on the same node (as `Plan.segments`)."""
    runs: list[tuple[str, list[str]]] = []
    for layer in inst.layer_names:
        node = assignment[layer]
        if runs and runs[-1][0] == node:
            runs[-1][1].append(layer)
        else:
            runs.append((node, [layer]))
    return runs


def _ident(tensor: str) -> str:
    """A Python identifier for a tensor name (fx placeholder names must be identifiers)."""
    ident = re.sub(r"\W", "_", tensor)
    return f"t_{ident}"


def _constant(value: object) -> object:
    return tuple(value) if isinstance(value, torch.Size) else value


def _build_module(
    lmap: LayerMap, groups: list[int], inputs: list[str], outputs: list[str]
) -> torch.fx.GraphModule:
    gm = lmap.gm
    producer = {name: lmap.groups[g][-1] for g, name in enumerate(lmap.names)}
    placeholder = next(n for n in gm.graph.nodes if n.op == "placeholder")
    graph = torch.fx.Graph()
    env: dict[str, torch.fx.Node] = {}
    for t in inputs:
        fx_node = placeholder if t == INPUT else producer[t]
        env[fx_node.name] = graph.placeholder(_ident(t))

    def arg(n: torch.fx.Node) -> torch.fx.node.Argument:
        if n.name in env:
            return env[n.name]
        if n.op == "get_attr":  # a parameter or buffer: GraphModule copies it from gm
            env[n.name] = graph.get_attr(str(n.target))
            return env[n.name]
        value = lmap.values.get(n.name)
        if isinstance(value, torch.Tensor) or (
            isinstance(value, tuple | list) and any(isinstance(v, torch.Tensor) for v in value)
        ):
            raise ExportError(f"internal: tensor {n.name} is not an input of its segment")
        # a shape or other metadata: fixed for this input shape
        return cast(torch.fx.node.Argument, _constant(value))

    for g in groups:
        for n in lmap.groups[g]:
            copy = graph.node_copy(n, arg)
            copy.meta["custom"] = {**(copy.meta.get("custom") or {}), LAYER_KEY: lmap.names[g]}
            env[n.name] = copy
    graph.output(tuple(env[(placeholder if t == INPUT else producer[t]).name] for t in outputs))
    module = torch.fx.GraphModule(gm, graph)
    module.eval()
    return module


def split(
    model: nn.Module,
    x: torch.Tensor,
    inst: Instance,
    assignment: Mapping[str, str],
    *,
    granularity: str | None = None,
    tracer: str = "auto",
) -> list[Segment]:
    """The plan's segments as GraphModules, in topological order (see the module docstring)."""
    model = model.eval()
    lmap, _ = match_layers(model, x, inst, granularity=granularity, tracer=tracer)
    return _segments(lmap, inst, assignment)


def _segments(lmap: LayerMap, inst: Instance, assignment: Mapping[str, str]) -> list[Segment]:
    missing = [la for la in inst.layer_names if la not in assignment]
    if missing:
        raise ExportError(f"the plan does not place layer '{missing[0]}'")
    index = {name: g for g, name in enumerate(lmap.names)}
    runs = segments_of(inst, assignment)
    seg_of = {la: s for s, (_, layers) in enumerate(runs) for la in layers}
    consumers: dict[str, set[int]] = {}
    for layer in inst.dnn.layers:
        for src in layer.inputs:
            consumers.setdefault(src, set()).add(seg_of[layer.name])
    out: list[Segment] = []
    for s, (node, layers) in enumerate(runs):
        inputs: list[str] = []
        for la in layers:
            for src in inst.dnn.layers[index[la]].inputs:
                if (src == INPUT or seg_of[src] != s) and src not in inputs:
                    inputs.append(src)
        outputs = [
            la for la in layers if consumers.get(la, set()) - {s} or la == inst.dnn.output_layer
        ]
        for t in inputs + outputs:
            value = lmap.values[_fx_name(lmap, t)]
            if not isinstance(value, torch.Tensor):
                raise ExportError(
                    f"tensor '{t}' crosses segments but is a {type(value).__name__}, not one "
                    "tensor; split elsewhere or profile at another granularity"
                )
        module = _build_module(lmap, [index[la] for la in layers], inputs, outputs)
        out.append(Segment(s, node, list(layers), inputs, outputs, module))
    return out


def _fx_name(lmap: LayerMap, tensor: str) -> str:
    if tensor == INPUT:
        return next(n.name for n in lmap.gm.graph.nodes if n.op == "placeholder")
    return lmap.groups[lmap.names.index(tensor)][-1].name


def run_chain(
    segments: Sequence[Segment | Any], x: torch.Tensor, output: str | None = None
) -> torch.Tensor:
    """Run the segments one after another in one process, as the nodes would; the result is the
    model's output (`output`, default the last segment's last output). Each item needs `inputs`,
    `outputs` and a callable `module`."""
    store: dict[str, torch.Tensor] = {INPUT: x}
    with torch.no_grad():
        for seg in segments:
            results = seg.module(*(store[t] for t in seg.inputs))
            if isinstance(results, torch.Tensor):
                results = (results,)
            store.update(zip(seg.outputs, results, strict=True))
    return store[output or segments[-1].outputs[-1]]


# --------------------------------------------------------------------------- plans


def plan_assignment(plan: Any, inst: Instance, where: str = "plan") -> dict[str, str]:
    """The assignment of a `Plan` or of `solve --json` output (a dict or a JSON file path),
    checked against the instance; the runtime sends tensors raw, so encodings are refused."""
    if isinstance(plan, str | Path):
        where = str(plan)
        try:
            plan = json.loads(Path(plan).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ExportError(f"{where}: no such file") from None
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ExportError(f"{where}: cannot read a plan: {exc}") from None
    if isinstance(plan, dict):
        assignment, encodings = plan.get("assignment"), plan.get("encodings") or {}
        status = plan.get("status")
    else:  # a Plan
        assignment, encodings, status = plan.assignment, plan.encodings, plan.status
    if not isinstance(assignment, dict):
        raise ExportError(f"{where}: assignment: the plan has none (status {status})")
    layers = set(inst.layer_names)
    for layer, node in assignment.items():
        if layer not in layers:
            raise ExportError(f"{where}: assignment: layer '{layer}' is not in the instance")
        if node not in inst.node_names:
            raise ExportError(f"{where}: assignment.{layer}: unknown node '{node}'")
    missing = [la for la in inst.layer_names if la not in assignment]
    if missing:
        raise ExportError(f"{where}: assignment: layer '{missing[0]}' is not placed")
    coded = {t: e for t, e in encodings.items() if e != RAW}
    if coded:
        raise ExportError(
            f"{where}: encodings: the plan sends {', '.join(coded)} encoded; the runtime sends "
            "tensors raw (solve an instance without encodings)"
        )
    return dict(assignment)


# --------------------------------------------------------------------------- files


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _write_pt2(seg: Segment, args: tuple[torch.Tensor, ...], path: Path) -> None:
    try:
        program = torch.export.export(seg.module, args, strict=False)
    except Exception as exc:
        raise ExportError(
            f"node {seg.node}: torch.export cannot export segment {seg.index} "
            f"({seg.layers[0]} .. {seg.layers[-1]}): {str(exc).splitlines()[0]}"
        ) from None
    torch.export.save(program, path)


def _write_onnx(seg: Segment, args: tuple[torch.Tensor, ...], path: Path) -> None:
    try:
        import onnx
    except ImportError:
        raise ExportError(
            "--format onnx needs onnx and onnxscript: pip install onnx onnxscript"
        ) from None
    try:
        torch.onnx.export(
            seg.module,
            args,
            str(path),
            input_names=[_ident(t) for t in seg.inputs],
            output_names=[_ident(t) for t in seg.outputs],
            dynamo=True,
            external_data=False,
        )
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except Exception as exc:
        raise ExportError(
            f"node {seg.node}: ONNX export of segment {seg.index} failed: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def _dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).removeprefix("torch.")


def export(
    model: nn.Module,
    x: torch.Tensor,
    inst: Instance,
    plan: Any,
    out_dir: str | Path,
    *,
    file_format: str = "pt2",
    model_ref: str | None = None,
    granularity: str | None = None,
    tracer: str = "auto",
) -> dict[str, Any]:
    """Write the deployment of `plan` (a `Plan`, `solve --json` dict or file) into `out_dir`;
    returns the manifest (also written as ``manifest.json``). Bytes are those of the tensors'
    real dtypes; times in the manifest are the planner's predictions in seconds."""
    if file_format not in FILE_FORMATS:
        raise ExportError(f"unknown format {file_format!r}; expected one of {FILE_FORMATS}")
    assignment = plan_assignment(plan, inst)
    model = model.eval()
    lmap, grain = match_layers(model, x, inst, granularity=granularity, tracer=tracer)
    segments = _segments(lmap, inst, assignment)
    with torch.no_grad():
        reference = model(x)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    ev = evaluate(inst, assignment)
    if ev.violations:
        raise ExportError("the plan violates the instance: " + "; ".join(ev.violations))
    net = inst.network
    participants = {net.source} | {seg.node for seg in segments}
    participants |= {net.sink} if net.sink is not None else set()
    participants |= {t.target for t in ev.transfers}
    ranks = [n for n in inst.node_names if n in participants]

    values: dict[str, torch.Tensor] = {INPUT: x}
    with torch.no_grad():
        for seg in segments:
            results = seg.module(*(values[t] for t in seg.inputs))
            values.update(zip(seg.outputs, results, strict=True))
    tensors = {
        t: {
            "shape": list(v.shape),
            "dtype": _dtype_name(v.dtype),
            "bytes": v.numel() * v.element_size(),
        }
        for t, v in values.items()
    }
    tb = tables(inst)
    compute = {
        seg.index: sum(
            float(tb.compute_s[tb.layer_index[la], tb.node_index[seg.node]]) for la in seg.layers
        )
        for seg in segments
    }
    nodes = []
    for name in ranks:
        segs = []
        for seg in (s for s in segments if s.node == name):
            file = f"{_safe(name)}.{seg.index}.{file_format}"
            args = tuple(values[t] for t in seg.inputs)
            (_write_pt2 if file_format == "pt2" else _write_onnx)(seg, args, out_dir / file)
            segs.append(
                {
                    "index": seg.index,
                    "file": file,
                    "sha256": _sha256(out_dir / file),
                    "layers": seg.layers,
                    "inputs": seg.inputs,
                    "outputs": seg.outputs,
                    "predicted_compute_s": compute[seg.index],
                }
            )
        nodes.append(
            {
                "name": name,
                "rank": ranks.index(name),
                "segments": segs,
                "predicted_compute_s": ev.node_compute_s[name],
            }
        )
    torch.save({"input": x, "output": reference}, out_dir / "io.pt")
    save_instance(inst, out_dir / "instance.json")
    manifest = {
        "format": FORMAT,
        "model": {
            "reference": model_ref,
            "input_shape": list(x.shape),
            "input_dtype": _dtype_name(x.dtype),
            "granularity": grain,
            "tracer": lmap.tracer,
        },
        "file_format": file_format,
        "instance": "instance.json",
        "io": "io.pt",
        "source": net.source,
        "sink": net.sink,
        "output": {"tensor": inst.dnn.output_layer, "node": assignment[inst.dnn.output_layer]},
        "assignment": assignment,
        "tensors": tensors,
        "nodes": nodes,
        "transfers": [
            {
                "tensor": t.tensor,
                "from": t.source,
                "to": t.target,
                "route": list(t.route),
                "bytes_predicted": t.size_bytes,
                "bytes": tensors[t.tensor]["bytes"],
                "predicted_s": t.time_s,
            }
            for t in ev.transfers
        ],
        "predicted": {
            "latency_s": ev.latency_s,
            "compute_s": ev.compute_s,
            "transfer_s": ev.transfer_s,
            "period_s": ev.period_s,
            "node_compute_s": ev.node_compute_s,
            "link_load_s": [
                {"from": a, "to": b, "load_s": load} for (a, b), load in ev.link_load_s.items()
            ],
        },
    }
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf-8")
    return manifest


def _safe(name: str) -> str:
    return re.sub(r"[^\w.-]", "_", name)


# --------------------------------------------------------------------------- reading it back


class DeploymentError(ExportError):
    """A deployment directory that cannot run (missing file, changed file, bad manifest)."""


def read_manifest(directory: str | Path) -> dict[str, Any]:
    """The manifest of a deployment directory, with its files checked to exist.

    Raises `DeploymentError` naming the file (and the node it belongs to)."""
    directory = Path(directory)
    path = directory / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DeploymentError(
            f"{path}: no such file (is {directory} an export directory?)"
        ) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DeploymentError(f"{path}: cannot read: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise DeploymentError(f"{path}: format: expected {FORMAT!r}")
    for key in ("nodes", "tensors", "transfers", "io", "source", "output", "predicted"):
        if key not in manifest:
            raise DeploymentError(f"{path}: {key}: is required")
    for name in (manifest["io"], manifest.get("instance", "instance.json")):
        if not (directory / name).is_file():
            raise DeploymentError(f"{directory / name}: missing file")
    for node in manifest["nodes"]:
        for seg in node["segments"]:
            if not (directory / seg["file"]).is_file():
                raise DeploymentError(
                    f"node {node['name']}: missing file {directory / seg['file']} "
                    f"(segment {seg['index']})"
                )
    return manifest


def load_segment(
    directory: str | Path,
    manifest: dict[str, Any],
    node: dict[str, Any],
    seg: dict[str, Any],
    device: torch.device | None = None,
) -> torch.fx.GraphModule:
    """The runnable module of one segment of `node`, checked against the manifest: the file's
    hash, its number of inputs and outputs, and its input shapes. `device` (None: as exported,
    on the CPU) moves the program there: its parameters and buffers, and the devices written
    into its operations (e.g. a tensor created inside the graph)."""
    path = Path(directory) / seg["file"]
    where = f"node {node['name']}: {path}"
    if manifest.get("file_format", "pt2") != "pt2":
        raise DeploymentError(
            f"{where}: the runtime runs pt2 files; export with --format pt2 (ONNX files are for "
            "other runtimes)"
        )
    if seg.get("sha256") and _sha256(path) != seg["sha256"]:
        raise DeploymentError(f"{where}: the file changed since the export (sha256 differs)")
    try:
        program = torch.export.load(path)
    except Exception as exc:
        raise DeploymentError(f"{where}: not a torch.export program: {exc}") from None
    sig = program.graph_signature
    if len(sig.user_inputs) != len(seg["inputs"]) or len(sig.user_outputs) != len(seg["outputs"]):
        raise DeploymentError(
            f"{where}: the program takes {len(sig.user_inputs)} inputs and returns "
            f"{len(sig.user_outputs)} outputs; the manifest says {len(seg['inputs'])} and "
            f"{len(seg['outputs'])}"
        )
    placeholders = {n.name: n for n in program.graph.nodes if n.op == "placeholder"}
    for tensor, arg in zip(seg["inputs"], sig.user_inputs, strict=True):
        val = placeholders[arg].meta.get("val") if arg in placeholders else None
        want = manifest["tensors"].get(tensor, {}).get("shape")
        if val is not None and want is not None and list(val.shape) != list(want):
            raise DeploymentError(
                f"{where}: input '{tensor}' has shape {list(val.shape)} in the program but "
                f"{want} in the manifest"
            )
    if device is not None:
        from torch.export.passes import move_to_device_pass

        program = move_to_device_pass(program, device)
    return cast(torch.fx.GraphModule, program.module())  # what torch.export unlifts to
