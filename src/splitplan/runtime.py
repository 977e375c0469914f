"""`splitplan export` and `splitplan run`: deploy a plan and measure it against its prediction.

`run_deployment(DIR)` starts one process per node of an export directory (`runtime_node`), on one
machine, joined by a torch.distributed gloo group with a TCP rendezvous on a free local port; it
watches them, and when one dies or the time is up it ends every other one and says which node
failed. The measurements of the nodes are reduced to a `RunReport`: end-to-end latency (request
start at the source to the result at the sink), per-node and per-segment compute, per-link bytes
and time, and the period in pipelined mode, beside the planner's prediction from the manifest;
with `per_layer`, each layer's time on its node beside §1's. `run --rank R` runs one node of a
run across machines; its rank 0 gathers the others' measurements and reports the whole run.

This module does not import torch at import time (the command line imports it to register its
commands); the node processes do.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ExitCode

EXIT_OK, EXIT_BAD_INPUT, EXIT_RUN_FAILED = ExitCode.OK, ExitCode.BAD_INPUT, ExitCode.RUN_FAILED
GRACE_S = 3.0  # after a node fails, how long the others get to exit on their own
WORST_LAYERS = 5  # layers listed in the text report (`--per-layer`): the furthest off


class RunError(RuntimeError):
    """A run that failed: a node died, timed out or could not start (names the node)."""


@dataclass
class RunReport:
    """Measured against predicted for one run; times in seconds, bytes per inference."""

    predicted_latency_s: float
    measured_latency_s: float | None
    predicted_period_s: float
    measured_period_s: float | None
    max_abs_diff: float
    requests: int
    pipelined: bool
    link_emulation: bool
    nodes: list[dict[str, Any]] = field(default_factory=list)
    segments: list[dict[str, Any]] = field(default_factory=list)
    links: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    latencies_s: list[float] = field(default_factory=list)
    timeline: list[tuple[str, str, float, float]] = field(default_factory=list)
    layers: list[dict[str, Any]] = field(default_factory=list)  # with --per-layer
    # --rank mode: each node's clock minus rank 0's, estimated and taken out of its timestamps
    clock_offsets_s: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        out = dict(self.__dict__)
        out["timeline"] = [list(bar) for bar in self.timeline]
        return out

    def summary(self) -> str:
        def ms(v: float | None) -> str:
            return "-" if v is None else f"{v * 1e3:.3f}"

        mode = "pipelined" if self.pipelined else "one at a time"
        emu = "emulated links" if self.link_emulation else "links not emulated"
        lines = [
            f"{self.requests} requests ({mode}, {emu}); output max |diff| vs the unsplit model "
            f"{self.max_abs_diff:.3g}",
            f"{'':<22}{'predicted ms':>14}{'measured ms':>14}",
            f"{'latency':<22}{ms(self.predicted_latency_s):>14}{ms(self.measured_latency_s):>14}",
            f"{'period':<22}{ms(self.predicted_period_s):>14}{ms(self.measured_period_s):>14}",
        ]
        for n in self.nodes:
            label = f"compute {n['node']}"
            lines.append(
                f"{label:<22}{ms(n['predicted_compute_s']):>14}{ms(n['measured_compute_s']):>14}"
            )
        for link in self.links:
            label = f"link {link['from']} -> {link['to']}"
            lines.append(
                f"{label:<22}{ms(link['time_predicted_s']):>14}{ms(link['time_measured_s']):>14}"
                f"   bytes {link['bytes_predicted']:g} predicted, {link['bytes_measured']:g} sent"
            )
        if self.layers:
            pred = sum(la["predicted_s"] for la in self.layers)
            meas = sum(la["measured_s"] for la in self.layers)
            lines.append(f"{f'{len(self.layers)} layers, sum':<22}{ms(pred):>14}{ms(meas):>14}")
            # the layers that move the total most, whichever way
            worst = sorted(self.layers, key=lambda la: -abs(la["measured_s"] - la["predicted_s"]))
            for la in worst[:WORST_LAYERS]:
                label = f"  {la['name']} @{la['node']}"
                ratio = la["measured_s"] / la["predicted_s"] if la["predicted_s"] > 0 else None
                lines.append(
                    f"{label:<22}{ms(la['predicted_s']):>14}{ms(la['measured_s']):>14}"
                    + ("" if ratio is None else f"   x{ratio:.2f}")
                )
        return "\n".join(lines)


# --------------------------------------------------------------------------- launching


def free_port(addr: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on at `addr` now (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return int(s.getsockname()[1])


def _check_port(addr: str, port: int) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((addr, port))
        except OSError as exc:
            raise RunError(
                f"--master-port {port}: cannot listen on {addr}:{port} ({exc.strerror}); "
                "choose a free port or leave --master-port out"
            ) from None


def _preflight(directory: Path) -> dict[str, Any]:
    """The manifest, with every node's files present and unchanged (before starting anything)."""
    from .export import DeploymentError, _sha256, read_manifest  # no torch import needed

    manifest = read_manifest(directory)
    for node in manifest["nodes"]:
        for seg in node["segments"]:
            path = directory / seg["file"]
            if seg.get("sha256") and _sha256(path) != seg["sha256"]:
                raise DeploymentError(
                    f"node {node['name']}: {path} changed since the export (sha256 differs); "
                    "export again"
                )
    return manifest


def check_devices(manifest: dict[str, Any], devices: Mapping[str, str] | None) -> dict[str, str]:
    """`devices` (node name -> torch device, e.g. ``cuda:0``) checked against the deployment's
    nodes: an unknown node is a `export.DeploymentError`. Whether a device is usable is checked
    where the node runs (`runtime_node.check_device`)."""
    from .export import DeploymentError

    names = [n["name"] for n in manifest["nodes"]]
    for node in devices or {}:
        if node not in names:
            raise DeploymentError(
                f"--device {node}=...: no node '{node}' in the deployment (nodes: "
                f"{', '.join(names)})"
            )
    return dict(devices or {})


def _stop(procs: list[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            p.terminate()
    deadline = time.monotonic() + GRACE_S
    for p in procs:
        try:
            p.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def _failure(
    names: list[str], procs: list[subprocess.Popen], results: list[Path], logs: list[Path]
) -> str:
    """One message for the failed run, from the processes that have ended: a node that died by a
    signal or without saying why is the cause; otherwise the node that reported an error first
    (the others' errors, e.g. a closed connection, follow from it)."""
    said: dict[int, tuple[float, str]] = {}
    for r, path in enumerate(results):
        try:
            data = json.loads(path.read_text())
            said[r] = (float(data.get("at", 0.0)), data["error"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    codes = [p.poll() for p in procs]
    silent = [(r, c) for r, c in enumerate(codes) if c is not None and c != 0 and r not in said]
    others = "; ".join(msg for _, msg in sorted(said.values()))
    for r, code in silent:
        how = f"was killed by signal {-code}" if code < 0 else f"exited with code {code}"
        tail = ""
        try:
            lines = [ln for ln in Path(logs[r]).read_text().splitlines() if ln.strip()]
            if lines and code > 0:
                tail = f": {lines[-1][:300]}"
        except OSError:
            pass
        return f"node {names[r]} (rank {r}) {how}{tail}" + (f" (then: {others})" if others else "")
    if said:
        return min(said.values())[1]
    return "a node failed without a message"


def run_deployment(
    directory: str | Path,
    *,
    requests: int = 1,
    warmup: int = 1,
    pipelined: bool = False,
    link_emulation: bool = True,
    master_addr: str = "127.0.0.1",
    master_port: int | None = None,
    timeout_s: float = 300.0,
    threads: int | None = None,
    fault: tuple[int, int, int] | None = None,
    devices: Mapping[str, str] | None = None,
    per_layer: bool = False,
) -> RunReport:
    """Run the deployment in `directory` with one local process per node; see the module doc.

    `threads` is each node's torch intra-op thread count (default: the machine's cores shared
    among the node processes, at least 1; more threads than cores make every op wait for
    descheduled threads). `timeout_s` bounds the whole run (and each node's waits on its
    peers). `fault` = (rank, requests, signal) sends the signal to that node's process once it
    has finished that many requests (warm-up included): fault injection for tests.
    `devices` maps node names to the torch device their segments run on (default: the CPU);
    `per_layer` times every layer after the requests (`RunReport.layers`).
    Raises `RunError` (a node failed or timed out) or `export.DeploymentError` (bad directory,
    unknown node, a device this machine does not have).
    """
    from .runtime_node import check_device

    directory = Path(directory)
    manifest = _preflight(directory)
    devices = check_devices(manifest, devices)
    for node, spec in devices.items():
        check_device(node, spec)  # all nodes run here: a missing GPU ends the run before it starts
    if master_port is None:
        master_port = free_port(master_addr)
    else:
        _check_port(master_addr, master_port)
    names = [n["name"] for n in manifest["nodes"]]
    world = len(names)
    if threads is None:
        threads = max(1, (os.cpu_count() or 1) // world)
    with tempfile.TemporaryDirectory(prefix="splitplan-run-") as tmp:
        results = [Path(tmp) / f"{r}.json" for r in range(world)]
        logs = [Path(tmp) / f"{r}.log" for r in range(world)]
        procs: list[subprocess.Popen] = []
        start = time.monotonic()
        try:
            for r in range(world):
                cmd = [
                    sys.executable,
                    "-m",
                    "splitplan.runtime_node",
                    "--dir",
                    str(directory),
                    "--rank",
                    str(r),
                    "--world-size",
                    str(world),
                    "--master-addr",
                    master_addr,
                    "--master-port",
                    str(master_port),
                    "--requests",
                    str(requests),
                    "--warmup",
                    str(warmup),
                    "--timeout",
                    str(timeout_s),
                    "--result",
                    str(results[r]),
                    "--threads",
                    str(threads),
                    "--parent-pid",
                    str(os.getpid()),
                ]
                cmd += ["--pipelined"] if pipelined else []
                cmd += [] if link_emulation else ["--no-link-emulation"]
                cmd += ["--per-layer"] if per_layer else []
                cmd += ["--device", devices[names[r]]] if names[r] in devices else []
                with open(logs[r], "w") as log:
                    procs.append(
                        subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=_env())
                    )
            killed = False
            while True:
                codes = [p.poll() for p in procs]
                if all(c == 0 for c in codes):
                    break
                if any(c not in (0, None) for c in codes):
                    # give the others a moment to notice and say so, then end them
                    deadline = time.monotonic() + GRACE_S
                    while time.monotonic() < deadline and any(p.poll() is None for p in procs):
                        time.sleep(0.05)
                    message = _failure(names, procs, results, logs)  # before we end the rest
                    _stop(procs)
                    raise RunError(message)
                elapsed = time.monotonic() - start
                if elapsed > timeout_s:
                    running = [names[r] for r, c in enumerate(codes) if c is None]
                    _stop(procs)
                    raise RunError(
                        f"timed out after {timeout_s:g} s; still running: {', '.join(running)}"
                    )
                if fault and not killed and _progress(results[fault[0]]) >= fault[1]:
                    procs[fault[0]].send_signal(fault[2])
                    killed = True
                time.sleep(0.02)
        finally:
            _stop(procs)  # nothing outlives the run, whatever happened
        logs_by_rank = [json.loads(p.read_text()) for p in results]
    return _report(directory, manifest, logs_by_rank, pipelined, link_emulation)


def _progress(result: Path) -> int:
    """Requests a node has finished (its runtime_node progress file; 0 before it starts)."""
    try:
        return int(result.with_suffix(".progress").read_text() or 0)
    except (OSError, ValueError):
        return 0


def _env() -> dict[str, str]:
    """The children's environment: this process's, with its import path (so that the node
    imports the same splitplan, e.g. under PYTHONPATH=src)."""
    env = dict(os.environ)
    here = str(Path(__file__).resolve().parents[1])
    paths = [here, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


# --------------------------------------------------------------------------- reporting


def _median(values: Sequence[float]) -> float | None:
    return statistics.median(values) if values else None


def _report(
    directory: Path,
    manifest: dict[str, Any],
    logs: list[dict[str, Any]],
    pipelined: bool,
    link_emulation: bool,
) -> RunReport:
    from .instance import load_instance

    inst = load_instance(directory / manifest.get("instance", "instance.json"))
    by_name = {log["node"]: log for log in logs}
    warmup = logs[0]["warmup"]
    source = by_name[manifest["source"]]
    sink_name = manifest["sink"] or manifest["output"]["node"]
    sink = by_name[sink_name]
    starts = {rec["request"]: rec["start"] for rec in source["requests"]}
    done = {rec["request"]: rec["done"] for rec in sink["requests"]}
    measured = sorted(r for r in done if r >= warmup)
    latencies = [done[r] - starts[r] for r in measured]
    period = None
    if pipelined and len(measured) > 1:
        period = (done[measured[-1]] - done[measured[0]]) / (len(measured) - 1)

    predicted = manifest["predicted"]
    seg_pred = {seg["index"]: (n["name"], seg) for n in manifest["nodes"] for seg in n["segments"]}
    seg_times: dict[int, list[float]] = {}
    node_times: dict[str, list[float]] = {}
    for log in logs:
        for rec in log["requests"]:
            if rec["request"] < warmup:
                continue
            total = 0.0
            for s in rec["segments"]:
                seg_times.setdefault(s["index"], []).append(s["end"] - s["start"])
                total += s["end"] - s["start"]
            node_times.setdefault(log["node"], []).append(total)
    nodes = [
        {
            "node": n["name"],
            "device": by_name[n["name"]].get("device", "cpu"),
            "predicted_compute_s": predicted["node_compute_s"].get(n["name"], 0.0),
            "measured_compute_s": _median(node_times.get(n["name"], [])),
        }
        for n in manifest["nodes"]
    ]
    layers = _layers(inst, manifest["assignment"], by_name)
    segments = [
        {
            "index": i,
            "node": seg_pred[i][0],
            "layers": seg_pred[i][1]["layers"],
            "predicted_compute_s": seg_pred[i][1]["predicted_compute_s"],
            "measured_compute_s": _median(seg_times.get(i, [])),
        }
        for i in sorted(seg_pred)
    ]

    # transfers: the sender's record (when produced) against the receiver's (when arrived)
    arrived = {
        (log["node"], rec["request"], r["tensor"]): r["arrived"]
        for log in logs
        for rec in log["requests"]
        for r in rec["recv"]
    }
    sent_bytes: dict[tuple[str, str], list[int]] = {}
    times: dict[tuple[str, str], list[float]] = {}
    for log in logs:
        for s in log["sends"]:
            if s["request"] < warmup:
                continue
            key = (s["tensor"], s["to"])
            sent_bytes.setdefault(key, []).append(s["bytes"])
            got = arrived.get((s["to"], s["request"], s["tensor"]))
            if got is not None:
                times.setdefault(key, []).append(got - s["produced"])
    n_req = max(len(measured), 1)
    transfers = []
    for tr in manifest["transfers"]:
        key = (tr["tensor"], tr["to"])
        transfers.append(
            {
                "tensor": tr["tensor"],
                "from": tr["from"],
                "to": tr["to"],
                "route": tr["route"],
                "bytes_predicted": tr["bytes_predicted"],
                "bytes_measured": sum(sent_bytes.get(key, [])) / n_req,
                "predicted_s": tr["predicted_s"],
                "measured_s": _median(times.get(key, [])),
            }
        )
    links = _links(inst, transfers)
    return RunReport(
        predicted_latency_s=predicted["latency_s"],
        measured_latency_s=_median(latencies),
        predicted_period_s=predicted["period_s"],
        measured_period_s=period,
        max_abs_diff=sink.get("max_abs_diff", float("nan")),
        requests=len(measured),
        pipelined=pipelined,
        link_emulation=link_emulation,
        nodes=nodes,
        segments=segments,
        links=links,
        transfers=transfers,
        latencies_s=latencies,
        timeline=_timeline(logs, manifest, measured[0] if measured else None, starts),
        layers=layers,
    )


def _layers(
    inst: Any, assignment: Mapping[str, str], by_name: Mapping[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """Per layer, in topological order: the node it ran on, its predicted compute time (§1) and
    the median measured by that node's `--per-layer` pass (s); empty without that pass."""
    from .cost import tables

    if not any("layers" in log for log in by_name.values()):
        return []
    tb = tables(inst)
    out = []
    for layer in inst.layer_names:
        node = assignment[layer]
        measured = by_name[node].get("layers", {})
        out.append(
            {
                "name": layer,
                "node": node,
                "predicted_s": float(tb.compute_s[tb.layer_index[layer], tb.node_index[node]]),
                # a layer of no operation after export (e.g. a view folded away) takes 0 s
                "measured_s": float(measured.get(layer, 0.0)),
            }
        )
    return out


def _links(inst, transfers: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per directed link: bytes and time of the transfers whose route crosses it. A transfer's
    measured time is shared among its hops in proportion to their predicted times."""
    import itertools

    from .cost import tables

    tb = tables(inst)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for tr in transfers:
        hops = list(itertools.pairwise(tr["route"]))
        hop_s = [
            tb.arcs[tb.arc_index[(tb.node_index[a], tb.node_index[b])]].hop_time_s(
                tr["bytes_predicted"]
            )
            for a, b in hops
        ]
        total = sum(hop_s) or 1.0
        for (a, b), h in zip(hops, hop_s, strict=True):
            link = out.setdefault(
                (a, b),
                {
                    "from": a,
                    "to": b,
                    "bytes_predicted": 0.0,
                    "bytes_measured": 0.0,
                    "time_predicted_s": 0.0,
                    "time_measured_s": 0.0,
                },
            )
            link["bytes_predicted"] += tr["bytes_predicted"]
            link["bytes_measured"] += tr["bytes_measured"]
            link["time_predicted_s"] += h
            if tr["measured_s"] is not None:
                link["time_measured_s"] += tr["measured_s"] * h / total
    return list(out.values())


def _timeline(
    logs: list[dict[str, Any]], manifest: dict[str, Any], request: int | None, starts
) -> list[tuple[str, str, float, float]]:
    """Bars (row, label, start_s, duration_s) of one measured request, from its start."""
    if request is None:
        return []
    t0 = starts[request]
    layers = {seg["index"]: seg["layers"] for n in manifest["nodes"] for seg in n["segments"]}
    bars = []
    arrived = {}
    for log in logs:
        for rec in log["requests"]:
            if rec["request"] != request:
                continue
            for s in rec["segments"]:
                span = layers[s["index"]]
                label = span[0] if len(span) == 1 else f"{span[0]}..{span[-1]}"
                bars.append((log["node"], label, s["start"] - t0, s["end"] - s["start"]))
            for r in rec["recv"]:
                arrived[(log["node"], r["tensor"])] = r["arrived"]
    for log in logs:
        for s in log["sends"]:
            if s["request"] == request:
                got = arrived.get((s["to"], s["tensor"]))
                if got is not None:
                    row = f"{log['node']} -> {s['to']}"
                    bars.append((row, s["tensor"], s["produced"] - t0, got - s["produced"]))
    return bars


# --------------------------------------------------------------------------- command line


def add_export_arguments(exp: argparse.ArgumentParser) -> None:
    """Declare the arguments of `export` on its subparser (the registry is `splitplan.cli`)."""
    exp.add_argument(
        "--model",
        required=True,
        help="the model profiled into the instance: a zoo name, path/to/file.py:ClassOrFactory "
        "or package.module:factory",
    )
    exp.add_argument("--input-shape", metavar="SHAPE", help="as given to profile, e.g. 1,3,32,32")
    exp.add_argument("--input-dtype", default="float32", help="as given to profile")
    exp.add_argument("--instance", required=True, metavar="FILE", help="the profiled instance")
    exp.add_argument(
        "--plan", required=True, metavar="FILE", help="the plan: `splitplan solve --json` output"
    )
    exp.add_argument("-o", "--output", required=True, metavar="DIR")
    exp.add_argument("--format", choices=("pt2", "onnx"), default="pt2", help="default pt2")
    exp.add_argument(
        "--granularity",
        choices=("module", "op", "block"),
        help="as given to profile (default: the one that matches the instance)",
    )
    exp.add_argument("--tracer", choices=("auto", "fx", "export"), default="auto")


def add_run_arguments(run: argparse.ArgumentParser) -> None:
    """Declare the arguments of `run` on its subparser (the registry is `splitplan.cli`)."""
    from .cli import whole_number  # the command line is loaded: it calls this

    run.add_argument("dir", metavar="DIR", help="written by `splitplan export`")
    run.add_argument("--requests", type=whole_number(1), default=10, help="timed inferences")
    run.add_argument("--warmup", type=int, default=1, help="untimed inferences first (default 1)")
    run.add_argument(
        "--pipelined", action="store_true", help="keep several requests in flight (throughput)"
    )
    run.add_argument(
        "--no-link-emulation",
        action="store_true",
        help="send at once (real links) instead of sleeping latency + bytes / bandwidth",
    )
    run.add_argument("--plot", metavar="PNG", help="measured timeline beside the predicted one")
    run.add_argument("--json", action="store_true", help="print one JSON object")
    run.add_argument("--timeout", type=float, default=300.0, metavar="S", help="default 300")
    run.add_argument(
        "--threads",
        type=whole_number(1),
        metavar="N",
        help="torch threads per node process (default: cores // local processes, at least 1)",
    )
    run.add_argument(
        "--rank", type=int, help="run only this node's process (several machines; see README)"
    )
    run.add_argument("--world-size", type=int, help="number of node processes (with --rank)")
    run.add_argument("--master-addr", default="127.0.0.1", help="rendezvous host")
    run.add_argument("--master-port", type=int, help="rendezvous port (default: a free one)")
    run.add_argument(
        "--per-layer",
        action="store_true",
        help="after the requests, time every layer on its node (one node at a time)",
    )
    run.add_argument(
        "--device",
        action="append",
        type=_node_device,
        default=[],
        metavar="NODE=DEVICE",
        help="run NODE's segments on a torch device, e.g. server=cuda:0 (repeatable; default cpu)",
    )


def _node_device(text: str) -> tuple[str, str]:
    """`--device NODE=DEVICE` as (node, device)."""
    node, sep, device = text.partition("=")
    if not sep or not node or not device:
        raise argparse.ArgumentTypeError(f"{text!r}: expected NODE=DEVICE, e.g. server=cuda:0")
    return node, device


def _devices(pairs: list[tuple[str, str]]) -> dict[str, str]:
    """The `--device` options as node -> device; a node given twice is an error."""
    out: dict[str, str] = {}
    for node, device in pairs:
        if node in out and out[node] != device:
            raise ValueError(f"--device: node {node} given twice ({out[node]}, {device})")
        out[node] = device
    return out


def _error(message: str, as_json: bool = False, status: str = "bad_input") -> None:
    print(f"splitplan: error: {message}", file=sys.stderr)
    if as_json:
        print(json.dumps({"status": status, "error": message}))


def cmd_export(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        _error("export needs torch: pip install 'splitplan[torch]'")
        return EXIT_BAD_INPUT
    from .export import ExportError, export
    from .instance import InstanceError, load_instance
    from .profile import ProfileError
    from .zoo import load_model, parse_shape

    try:
        inst = load_instance(args.instance)
        shape = parse_shape(args.input_shape) if args.input_shape else None
        model, x = load_model(args.model, shape, args.input_dtype)
        manifest = export(
            model,
            x,
            inst,
            args.plan,
            args.output,
            file_format=args.format,
            model_ref=args.model,
            granularity=args.granularity,
            tracer=args.tracer,
        )
    except (InstanceError, ExportError, ProfileError, ValueError, OSError) as exc:
        _error(str(exc))
        return EXIT_BAD_INPUT
    files = sum(len(n["segments"]) for n in manifest["nodes"])
    print(
        f"wrote {args.output}: {files} {args.format} files for {len(manifest['nodes'])} nodes, "
        f"{len(manifest['transfers'])} transfers, manifest.json",
        file=sys.stderr,
    )
    return EXIT_OK


def cmd_run(args: argparse.Namespace) -> int:
    try:
        import torch  # noqa: F401
    except ImportError:
        _error("run needs torch: pip install 'splitplan[torch]'", args.json)
        return EXIT_BAD_INPUT
    from .export import DeploymentError

    def interrupted(signum, frame) -> None:
        raise KeyboardInterrupt  # so that the launcher ends its node processes on the way out

    signal.signal(signal.SIGTERM, interrupted)
    if args.rank is not None:
        return _run_one_rank(args)
    try:
        devices = _devices(args.device)
    except ValueError as exc:
        _error(str(exc), args.json)
        return EXIT_BAD_INPUT
    try:
        report = run_deployment(
            args.dir,
            requests=args.requests,
            warmup=args.warmup,
            pipelined=args.pipelined,
            link_emulation=not args.no_link_emulation,
            master_addr=args.master_addr,
            master_port=args.master_port,
            timeout_s=args.timeout,
            threads=args.threads,
            devices=devices,
            per_layer=args.per_layer,
        )
    except DeploymentError as exc:
        _error(str(exc), args.json)
        return EXIT_BAD_INPUT
    except RunError as exc:
        bad_port = str(exc).startswith("--master-port")
        _error(str(exc), args.json, "bad_input" if bad_port else "run_failed")
        return EXIT_BAD_INPUT if bad_port else EXIT_RUN_FAILED
    return _print_report(args, report)


def _print_report(args: argparse.Namespace, report: RunReport) -> int:
    """Print the report as `run` asked (text or --json), draw --plot; the exit code."""
    if args.json:
        print(json.dumps({"status": "ok", **report.to_dict()}))
    else:
        print(report.summary())
    if args.plot:
        try:
            print(f"wrote {plot_run(report, Path(args.dir), args.plot)}", file=sys.stderr)
        except (ImportError, OSError, ValueError) as exc:
            _error(f"--plot: {exc}")
            return EXIT_BAD_INPUT
    return EXIT_OK


def _run_one_rank(args: argparse.Namespace) -> int:
    """This machine's node of a run across machines: start the same command with --rank 0..W-1
    on each machine (rank 0's host is --master-addr). At the end rank 0 gathers every node's
    measurements (over the same gloo group) and prints the whole report, as a local run does;
    the other ranks print their own node's."""
    from .export import DeploymentError
    from .runtime_node import check_device
    from .runtime_node import main as node_main

    if args.master_port is None:
        _error("--rank needs --master-port (the same on every machine)", args.json)
        return EXIT_BAD_INPUT
    try:
        directory = Path(args.dir)
        manifest = _preflight(directory)
        names = [n["name"] for n in manifest["nodes"]]
        world = args.world_size or len(names)
        if world != len(names):
            raise DeploymentError(
                f"--world-size {world}: the deployment has {len(names)} nodes, one process each"
            )
        if not 0 <= args.rank < world:
            raise DeploymentError(f"--rank {args.rank}: expected 0 .. {world - 1}")
        devices = check_devices(manifest, _devices(args.device))
        me = names[args.rank]
        if me in devices:
            check_device(me, devices[me])
    except (DeploymentError, ValueError, OSError) as exc:
        _error(str(exc), args.json)
        return EXIT_BAD_INPUT
    with tempfile.TemporaryDirectory(prefix="splitplan-node-") as tmp:
        result = Path(tmp) / "result.json"
        argv = [
            "--dir",
            args.dir,
            "--rank",
            str(args.rank),
            "--world-size",
            str(world),
            "--master-addr",
            args.master_addr,
            "--master-port",
            str(args.master_port),
            "--requests",
            str(args.requests),
            "--warmup",
            str(args.warmup),
            "--timeout",
            str(args.timeout),
            "--result",
            str(result),
            "--gather",
        ]
        argv += ["--threads", str(args.threads)] if args.threads else []
        argv += ["--pipelined"] if args.pipelined else []
        argv += ["--no-link-emulation"] if args.no_link_emulation else []
        argv += ["--per-layer"] if args.per_layer else []
        argv += ["--device", devices[me]] if me in devices else []
        code = node_main(argv)
        log: dict[str, Any] = (
            json.loads(result.read_text()) if result.exists() else {"error": "no result"}
        )
    if code != 0:
        _error(str(log.get("error")), args.json, "run_failed")
        return EXIT_RUN_FAILED
    if "all_nodes" in log:  # rank 0: the whole run, on rank 0's clock
        offsets = log["clock_offsets_s"]
        logs = [_shift(x, -off) for x, off in zip(log["all_nodes"], offsets, strict=True)]
        report = _report(directory, manifest, logs, args.pipelined, not args.no_link_emulation)
        report.clock_offsets_s = {x["node"]: off for x, off in zip(logs, offsets, strict=True)}
        return _print_report(args, report)
    if args.json:
        print(json.dumps({"status": "ok", **log}))
    else:
        measured = [r for r in log["requests"] if r["request"] >= log["warmup"]]
        busy = [sum(s["end"] - s["start"] for s in r["segments"]) for r in measured]
        print(
            f"node {log['node']} (rank {log['rank']}): {len(measured)} requests, median compute "
            f"{1e3 * (_median(busy) or 0.0):.3f} ms (rank 0 prints the whole run)"
        )
    return EXIT_OK


def _shift(log: dict[str, Any], by_s: float) -> dict[str, Any]:
    """A node's log with every timestamp moved by `by_s` seconds (onto another node's clock)."""
    out = dict(log)
    out["requests"] = [
        {
            **rec,
            "start": rec["start"] + by_s,
            "segments": [
                {**s, "start": s["start"] + by_s, "end": s["end"] + by_s} for s in rec["segments"]
            ],
            "recv": [{**r, "arrived": r["arrived"] + by_s} for r in rec["recv"]],
            **({"done": rec["done"] + by_s} if rec.get("done") is not None else {}),
        }
        for rec in log["requests"]
    ]
    out["sends"] = [
        {**s, **{k: s[k] + by_s for k in ("produced", "start", "sent")}} for s in log["sends"]
    ]
    return out


def plot_run(report: RunReport, directory: Path, path: str | Path) -> Path:
    """The measured timeline of one request beside the planner's predicted one (PNG)."""
    try:
        import matplotlib
    except ImportError:
        raise ImportError("the plot needs matplotlib: pip install 'splitplan[plot]'") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .cost import evaluate
    from .instance import load_instance
    from .plan import Plan
    from .plot import timeline

    manifest = json.loads((directory / "manifest.json").read_text())
    inst = load_instance(directory / manifest.get("instance", "instance.json"))
    assignment = manifest["assignment"]
    plan = Plan(inst, "feasible", "manifest", assignment, evaluation=evaluate(inst, assignment))
    panels = [("predicted", timeline(plan)), ("measured", report.timeline)]
    rows: list[str] = []
    for _, bars in panels:
        rows += [b[0] for b in bars if b[0] not in rows]
    colour = {n: f"C{i % 10}" for i, n in enumerate(inst.node_names)}
    end = max((b[2] + b[3] for _, bars in panels for b in bars), default=1e-3)
    fig, axes = plt.subplots(1, 2, figsize=(13, 0.6 * len(rows) + 1.8), sharey=True)
    for ax, (title, bars) in zip(axes, panels, strict=True):
        for row, label, start, duration in bars:
            y = rows.index(row)
            ax.barh(y, duration * 1e3, left=start * 1e3, color=colour.get(row, "0.55"))
            if duration > 0.06 * end:
                mid = (start + duration / 2) * 1e3
                ax.text(mid, y, label, ha="center", va="center", fontsize=6)
        ax.set_xlim(0, end * 1e3 * 1.02)
        ax.set_xlabel("time (ms)")
        total = report.predicted_latency_s if title == "predicted" else report.measured_latency_s
        ax.set_title(f"{title}: latency {1e3 * (total or 0.0):.3f} ms", fontsize=9)
    axes[0].set_yticks(range(len(rows)), rows)
    axes[0].invert_yaxis()
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=130)
    plt.close(fig)
    return out
