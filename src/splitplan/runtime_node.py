"""One node of a deployment: the process that `splitplan run` starts per network node.

    python -m splitplan.runtime_node --dir DIR --rank R --world-size W --master-addr A \\
        --master-port P --requests N [--pipelined] [--no-link-emulation] [--device DEV] \\
        [--per-layer] [--gather] --result FILE

The node joins a torch.distributed gloo group (TCP rendezvous at A:P) and loads its segments.
Per request it runs its segments in topological order; across requests it runs, of the requests
in flight, the earliest one's next segment whose inputs are all here (so a revisited node works
on request r + 1 while request r is elsewhere). One receiver thread per peer receives (`dist.recv`,
tagged by tensor) and one sender thread per destination sends each output to every distinct node
that consumes it (the transfers of `cost.evaluate`, listed in the manifest); both go in the order
the destination needs the tensors, so no pair of nodes waits on each other. One request at a
time (latency): a barrier of all nodes starts each request. Pipelined: up to IN_FLIGHT requests
per node.

Link emulation (on by default; off for real links): a tensor of B bytes produced at time t is
delivered at t + the route's time, the sum over its hops of latency_s + B / bandwidth_bytes_per_s
(§2, store and forward), where each arc carries one tensor at a time for B / bandwidth (the arc
load of §7) and latency does not occupy it: latency overlaps with the next send, as the period
assumes. The arcs' clocks are shared by the sends of one node; sends of different nodes whose
routes share an arc (a relayed route) are not queued behind each other (a limit of emulating at
the senders).

Device (--device, default cpu): the segments run there; received tensors are copied to it on
arrival, sent ones back to the CPU (gloo sends CPU tensors), and each segment's end waits for
its kernels. --per-layer: after the requests, the nodes in turn time each layer of their
segments on the last request's inputs (`time_layers`).

Clock: every timestamp is `time.time()`, comparable between processes of one machine. Across
machines (--gather, the `run --rank` mode) rank 0 estimates each node's clock offset at the
start and gathers every node's log at the end, to report the whole run. The result (timings,
bytes, the output's difference from the unsplit model) is written as JSON to --result; an error
is written there too, as one line naming the node, and the process exits 1.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

IN_FLIGHT = 4  # pipelined mode: requests a sender may run ahead of its slowest receiver
LAYER_REPEATS = 10  # --per-layer: timed runs at most (the median settles; big models take long)


class _Links:
    """The emulated arcs of this node's sends: when each is free to carry the next tensor."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.free: dict[tuple[str, str], float] = {}

    def schedule(self, produced: float, hops: list[tuple[str, str, float, float]]) -> float:
        """When a tensor produced at `produced` arrives over `hops` (tail, head, latency_s,
        bytes / bandwidth): store and forward (§2), each arc carrying one tensor at a time for
        its bytes / bandwidth (§7's load); latency does not occupy the arc."""
        at = produced
        with self.lock:
            for tail, head, latency, load in hops:
                start = max(at, self.free.get((tail, head), 0.0))
                self.free[(tail, head)] = start + load
                at = start + load + latency
        return at


class _Sender(threading.Thread):
    """Sends one destination's tensors in the order it receives them, after the emulated delay."""

    def __init__(
        self,
        dist: Any,
        dst_rank: int,
        order: list[dict[str, Any]],
        links: _Links | None,
        total: int,
    ) -> None:
        super().__init__(daemon=True)
        self.dist, self.dst, self.order, self.links = dist, dst_rank, order, links
        self.total = total
        self.ready: dict[tuple[int, str], tuple[Any, float]] = {}
        self.cond = threading.Condition()
        self.done = 0  # requests fully sent
        self.records: list[dict] = []
        self.error: BaseException | None = None

    def put(self, request: int, tensor: str, value, at: float) -> None:
        with self.cond:
            self.ready[(request, tensor)] = (value, at)
            self.cond.notify_all()

    def wait_done(self, requests: int, check) -> None:
        """Block until `requests` requests are sent (calling `check` to surface errors)."""
        with self.cond:
            while self.done < requests and self.error is None:
                self.cond.wait(0.1)
                check()

    def run(self) -> None:
        delivered = 0.0  # deliveries to one destination keep their order
        try:
            for request in range(self.total):
                for tr in self.order:
                    with self.cond:
                        while (request, tr["tensor"]) not in self.ready:
                            self.cond.wait()
                        value, produced = self.ready.pop((request, tr["tensor"]))
                    start = time.time()
                    if self.links is not None:
                        deliver = max(self.links.schedule(produced, tr["hops"]), delivered)
                        delivered = deliver
                        time.sleep(max(0.0, deliver - time.time()))
                    # gloo sends CPU tensors (a no-op for a CPU node)
                    self.dist.send(value.detach().cpu().contiguous(), dst=self.dst, tag=tr["tag"])
                    self.records.append(
                        {
                            "request": request,
                            "tensor": tr["tensor"],
                            "to": tr["to"],
                            "bytes": value.numel() * value.element_size(),
                            "produced": produced,
                            "start": start,
                            "sent": time.time(),
                        }
                    )
                with self.cond:
                    self.done = request + 1
                    self.cond.notify_all()
        except BaseException as exc:  # reported by the main thread
            self.error = exc


class _Receiver(threading.Thread):
    """Receives one peer's tensors for every request, in the order the peer sends them."""

    def __init__(
        self,
        dist: Any,
        src_rank: int,
        order: list[dict[str, Any]],
        total: int,
        buffer: Callable[[str], Any],
        inbox: dict[tuple[int, str], tuple[Any, float]],
        cond: threading.Condition,
        device: Any,
    ) -> None:
        super().__init__(daemon=True)
        self.dist, self.src, self.order, self.total = dist, src_rank, order, total
        self.buffer, self.inbox, self.cond, self.device = buffer, inbox, cond, device
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            for request in range(self.total):
                for tr in self.order:
                    value = self.buffer(tr["tensor"])
                    self.dist.recv(value, src=self.src, tag=tr["tag"])
                    value = value.to(self.device)  # on arrival, while the node computes
                    with self.cond:
                        self.inbox[(request, tr["tensor"])] = (value, time.time())
                        self.cond.notify_all()
        except BaseException as exc:  # reported by the main thread
            self.error = exc
            with self.cond:
                self.cond.notify_all()


def _hops(inst, route: Sequence[str], size_bytes: float) -> list[tuple[str, str, float, float]]:
    """(tail, head, latency_s, bytes / bandwidth_bytes_per_s) of each hop of a route."""
    from .cost import tables

    tb = tables(inst)
    out = []
    for a, b in itertools.pairwise(route):
        arc = tb.arcs[tb.arc_index[(tb.node_index[a], tb.node_index[b])]]
        out.append((a, b, arc.latency_s, size_bytes / arc.bandwidth_bytes_per_s))
    return out


@dataclass
class _Request:
    """One request in flight at this node: its record (for the log), the tensors it holds (on
    this node's device), when this node made each of them, and its next segment."""

    rec: dict[str, Any]
    store: dict[str, Any] = field(default_factory=dict)
    made: dict[str, float] = field(default_factory=dict)
    next: int = 0


def check_device(node: str, spec: str) -> Any:
    """The torch device `spec` (``cpu``, ``cuda``, ``cuda:1``...) for `node`, checked to be usable
    here; raises `export.DeploymentError` naming the node."""
    import torch

    from .export import DeploymentError
    from .profile import cuda_problem

    where = f"node {node}: --device {spec}"
    try:
        dev = torch.device(spec)
    except (RuntimeError, TypeError, ValueError) as exc:
        raise DeploymentError(f"{where}: not a torch device ({exc})") from None
    if dev.type == "cuda":
        problem = cuda_problem(dev)
        if problem is not None:
            raise DeploymentError(f"{where}: {problem} here")
    elif dev.type == "meta":  # holds no data: nothing to send
        raise DeploymentError(f"{where}: the meta device computes no values")
    elif dev.type != "cpu":
        try:
            torch.empty(1, device=dev)
        except Exception as exc:  # whatever this build cannot allocate on
            raise DeploymentError(f"{where}: not usable here ({exc})") from None
    return dev


def time_layers(
    modules: Sequence[Any], inputs: Sequence[Sequence[Any]], repeats: int, sync
) -> dict[str, float]:
    """Median compute time in s of each layer of `modules` (segments exported with their layers
    tagged, see `export.LAYER_KEY`) on `inputs`, over `repeats` runs after one untimed run: an
    fx interpreter with a clock (and `sync`, the device's) around each operation, as `profile`
    times them. Operations without a tag (parameters, guards) are not counted."""
    import torch

    from .export import LAYER_KEY

    class Timer(torch.fx.Interpreter):
        def __init__(self, gm: torch.fx.GraphModule) -> None:
            super().__init__(gm)
            self.times: dict[str, float] = {}

        def run_node(self, n: torch.fx.Node) -> Any:
            layer = (n.meta.get("custom") or {}).get(LAYER_KEY)
            if layer is None or not n.op.startswith("call"):
                return super().run_node(n)
            sync()
            start = time.perf_counter()
            out = super().run_node(n)
            sync()
            self.times[layer] = self.times.get(layer, 0.0) + time.perf_counter() - start
            return out

    runs: dict[str, list[float]] = {}
    with torch.no_grad():
        for module, args in zip(modules, inputs, strict=True):
            for i in range(1 + repeats):
                timer = Timer(module)
                timer.run(*args)
                for layer, t in timer.times.items():
                    if i > 0:
                        runs.setdefault(layer, []).append(t)
    return {layer: statistics.median(ts) for layer, ts in runs.items()}


def run_node(args: argparse.Namespace) -> dict[str, Any]:
    """Run this rank's node for warmup + requests inferences; returns its measurements."""
    import torch
    import torch.distributed as dist

    from .export import LAYER_KEY, DeploymentError, load_segment, read_manifest
    from .instance import INPUT, load_instance

    if args.threads:
        torch.set_num_threads(args.threads)
    directory = Path(args.dir)
    manifest = read_manifest(directory)
    nodes = manifest["nodes"]
    if len(nodes) != args.world_size:
        raise DeploymentError(
            f"the manifest has {len(nodes)} nodes but the world size is {args.world_size}"
        )
    me = nodes[args.rank]
    name = me["name"]
    rank_of = {n["name"]: n["rank"] for n in nodes}
    # tensors live on this node's device; gloo sends and receives CPU tensors
    device = check_device(name, args.device) if args.device else torch.device("cpu")
    moved = device if args.device else None
    if device.type == "cuda":

        def sync() -> None:
            torch.cuda.synchronize(device)

    else:

        def sync() -> None:
            return None

    inst = load_instance(directory / manifest.get("instance", "instance.json"))
    tensors = manifest["tensors"]
    tag = {t: i + 1 for i, t in enumerate(tensors)}
    modules = [load_segment(directory, manifest, me, seg, moved) for seg in me["segments"]]
    if args.per_layer:
        for seg, module in zip(me["segments"], modules, strict=True):
            if not any(LAYER_KEY in (n.meta.get("custom") or {}) for n in module.graph.nodes):
                raise DeploymentError(
                    f"node {name}: --per-layer: {seg['file']} has no layer tags (exported by an "
                    "older splitplan); export again"
                )
    io = torch.load(directory / manifest["io"])
    dtypes = {t: getattr(torch, info["dtype"]) for t, info in tensors.items()}

    # What this node needs from others, in the order it needs them: segment inputs, then the
    # rest (the result, at the sink). Senders send in this same order (see `_need_key`).
    incoming = [tr for tr in manifest["transfers"] if tr["to"] == name]
    outgoing = [tr for tr in manifest["transfers"] if tr["from"] == name]
    output = manifest["output"]["tensor"]
    sink = manifest["sink"] or manifest["output"]["node"]
    reference = io["output"]
    total = args.warmup + args.requests

    timeout = datetime.timedelta(seconds=args.timeout)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{args.master_addr}:{args.master_port}",
        rank=args.rank,
        world_size=args.world_size,
        timeout=timeout,
    )
    # several machines: each node's clock against rank 0's, before any tensor is sent (tag 0 is
    # no tensor's)
    offsets = _clock_offsets(dist, args.rank, args.world_size) if args.gather else None
    senders: dict[str, _Sender] = {}
    links = None if args.no_link_emulation else _Links()  # shared by this node's senders
    for dst in sorted({tr["to"] for tr in outgoing}, key=rank_of.__getitem__):
        key = _need_key(nodes[rank_of[dst]], tag)
        order = [
            {
                "tensor": tr["tensor"],
                "to": dst,
                "tag": tag[tr["tensor"]],
                "hops": _hops(inst, tr["route"], tensors[tr["tensor"]]["bytes"]),
            }
            for tr in sorted((tr for tr in outgoing if tr["to"] == dst), key=key)
        ]
        senders[dst] = _Sender(dist, rank_of[dst], order, links, total)
        senders[dst].start()
    sends_of: dict[str, list[_Sender]] = {}
    for tr in outgoing:
        sends_of.setdefault(tr["tensor"], []).append(senders[tr["to"]])

    cond = threading.Condition()
    inbox: dict[tuple[int, str], tuple[Any, float]] = {}  # (request, tensor) -> (value, arrived)
    receivers = []
    key = _need_key(me, tag)
    for src in sorted({tr["from"] for tr in incoming}, key=rank_of.__getitem__):
        order = [
            {"tensor": tr["tensor"], "from": src, "tag": tag[tr["tensor"]]}
            for tr in sorted((tr for tr in incoming if tr["from"] == src), key=key)
        ]

        def buffer(t: str) -> Any:
            return torch.empty(tensors[t]["shape"], dtype=dtypes[t])

        receivers.append(_Receiver(dist, rank_of[src], order, total, buffer, inbox, cond, device))
        receivers[-1].start()

    def check_peers() -> None:
        for s in senders.values():
            if s.error is not None:
                raise RuntimeError(f"sending to {s.order[0]['to']} failed: {s.error}")
        for rv in receivers:
            if rv.error is not None:
                raise RuntimeError(f"receiving from {rv.order[0]['from']} failed: {rv.error}")

    progress = Path(args.result).with_suffix(".progress")
    log: dict[str, Any] = {"node": name, "rank": args.rank, "device": str(device), "requests": []}
    max_diff = 0.0
    segments = list(zip(me["segments"], modules, strict=True))
    last_inputs: dict[int, tuple[Any, ...]] = {}  # segment index -> its latest inputs
    window = IN_FLIGHT if args.pipelined else 1
    active: dict[int, _Request] = {}
    admitted = finished = 0
    x_here = io["input"].to(device)

    def available(r: int, t: str) -> bool:
        return t in active[r].store or (r, t) in inbox

    with torch.no_grad():
        while finished < total:
            # admit new requests while the window allows (one at a time: after a barrier)
            while admitted < total and admitted < min([*active, admitted]) + window:
                if not args.pipelined:
                    dist.barrier()  # every node is done with the previous request
                state = _Request(
                    {"request": admitted, "start": time.time(), "segments": [], "recv": []}
                )
                active[admitted] = state
                if name == manifest["source"]:
                    state.store[INPUT] = x_here
                    for s in sends_of.get(INPUT, []):
                        s.put(admitted, INPUT, io["input"], state.rec["start"])
                admitted += 1
            # run the earliest request's next segment whose inputs are all here
            job = None
            with cond:
                for r in sorted(active):
                    state = active[r]
                    if state.next < len(segments):
                        seg = segments[state.next][0]
                        if all(available(r, t) for t in seg["inputs"]):
                            for t in seg["inputs"]:
                                if t not in state.store:
                                    value, arrived = inbox.pop((r, t))
                                    state.store[t] = value
                                    state.rec["recv"].append({"tensor": t, "arrived": arrived})
                            job = r
                            break
            if job is not None:
                state = active[job]
                seg, module = segments[state.next]
                inputs = tuple(state.store[t] for t in seg["inputs"])
                begin = time.time()
                results = module(*inputs)
                sync()  # CUDA runs asynchronously: the segment ends when its kernels do
                end = time.time()
                last_inputs[seg["index"]] = inputs
                if isinstance(results, torch.Tensor):
                    results = (results,)
                state.rec["segments"].append({"index": seg["index"], "start": begin, "end": end})
                for t, value in zip(seg["outputs"], results, strict=True):
                    state.store[t] = value
                    state.made[t] = end
                    for s in sends_of.get(t, []):
                        s.put(job, t, value, end)
                state.next += 1
            # finish requests: all segments run and everything sent to this node arrived
            done_any = False
            with cond:
                for r in sorted(active):
                    state = active[r]
                    if state.next < len(segments) or not all(
                        available(r, tr["tensor"]) for tr in incoming
                    ):
                        continue
                    rec = state.rec
                    for tr in incoming:  # e.g. the result at the sink
                        if tr["tensor"] not in state.store:
                            value, arrived = inbox.pop((r, tr["tensor"]))
                            state.store[tr["tensor"]] = value
                            rec["recv"].append({"tensor": tr["tensor"], "arrived": arrived})
                    if name == sink:
                        got = {x["tensor"]: x["arrived"] for x in rec["recv"]}
                        rec["done"] = got.get(output) or state.made.get(output)
                        value = state.store[output].detach().cpu()
                        diff = (value.float() - reference.float()).abs().max().item()
                        max_diff = max(max_diff, diff)
                    log["requests"].append(rec)
                    del active[r]
                    finished += 1
                    done_any = True
                full = admitted >= total or admitted >= min([*active, admitted]) + window
                if job is None and not done_any and full:
                    cond.wait(0.2)  # a receiver notifies when a tensor arrives
            if done_any:
                progress.write_text(str(finished))  # read by the launcher (fault injection)
            check_peers()
    for s in senders.values():
        s.wait_done(total, check_peers)
    for rv in receivers:
        while rv.is_alive():
            rv.join(0.2)
            check_peers()
    check_peers()
    if args.per_layer:
        # after the timed requests, so that they are not disturbed; one node at a time, so
        # that the nodes of one machine do not compete for its cores
        for r in range(args.world_size):
            if r == args.rank:
                log["layers"] = time_layers(
                    [m for _, m in segments],
                    [last_inputs[seg["index"]] for seg, _ in segments],
                    max(1, min(args.requests, LAYER_REPEATS)),
                    sync,
                )
            dist.barrier()
    log["sends"] = [rec for s in senders.values() for rec in s.records]
    log["warmup"] = args.warmup
    if name == sink:
        log["max_abs_diff"] = max_diff
    dist.barrier()  # nobody leaves while a peer still receives
    if args.gather:  # several machines: rank 0 reports for all
        logs: list[Any] | None = [None] * args.world_size if args.rank == 0 else None
        dist.gather_object(log, logs, dst=0)
        if logs is not None:
            log = {
                **log,
                "all_nodes": [{k: v for k, v in x.items() if k != "all_nodes"} for x in logs],
                "clock_offsets_s": offsets,
            }
    dist.destroy_process_group()
    return log


def _clock_offsets(dist: Any, rank: int, world: int, rounds: int = 8) -> list[float]:
    """At rank 0: each rank's clock minus rank 0's, in s (Cristian's method: rank 0 sends its
    time, the peer answers with its own; of `rounds` exchanges, the one with the shortest round
    trip, whose error is at most half of it). Other ranks answer and get zeros."""
    import torch

    offsets = [0.0] * world
    buf = torch.zeros(1, dtype=torch.float64)
    for r in range(1, world):
        if rank == 0:
            best = (float("inf"), 0.0)
            for _ in range(rounds):
                t0 = time.time()
                dist.send(torch.tensor([t0], dtype=torch.float64), dst=r, tag=0)
                dist.recv(buf, src=r, tag=0)
                t2 = time.time()
                best = min(best, (t2 - t0, float(buf.item()) - (t0 + t2) / 2))
            offsets[r] = best[1]
        elif rank == r:
            for _ in range(rounds):
                dist.recv(buf, src=0, tag=0)
                dist.send(torch.tensor([time.time()], dtype=torch.float64), dst=0, tag=0)
    return offsets


def _need_key(node: dict, tag: dict[str, int]):
    """Sort key of transfers to `node`: the order its segments need them, then the rest."""
    need = [t for seg in node["segments"] for t in seg["inputs"]]
    first = {t: i for i, t in reversed(list(enumerate(need)))}
    return lambda tr: (first.get(tr["tensor"], len(need)), tag[tr["tensor"]])


def _orphan_watch(parent: int) -> None:
    """End this node when its launcher is gone (killed without the chance to end its nodes)."""
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(3)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="splitplan-node")
    parser.add_argument("--dir", required=True)
    parser.add_argument("--rank", type=int, required=True)
    parser.add_argument("--world-size", type=int, required=True)
    parser.add_argument("--master-addr", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, required=True)
    parser.add_argument("--requests", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--pipelined", action="store_true")
    parser.add_argument("--no-link-emulation", action="store_true")
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--result", required=True)
    parser.add_argument("--threads", type=int, help="torch intra-op threads (default torch's)")
    parser.add_argument("--parent-pid", type=int, help="exit when this process (the launcher) ends")
    parser.add_argument("--device", help="torch device of this node's segments (default cpu)")
    parser.add_argument(
        "--per-layer", action="store_true", help="time each layer after the requests"
    )
    parser.add_argument(
        "--gather", action="store_true", help="rank 0 collects every node's log (several machines)"
    )
    args = parser.parse_args(argv)
    result = Path(args.result)
    if args.parent_pid:
        threading.Thread(target=_orphan_watch, args=(args.parent_pid,), daemon=True).start()
    try:
        log = run_node(args)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:
        node = f"rank {args.rank}"
        try:
            manifest = json.loads((Path(args.dir) / "manifest.json").read_text())
            node = f"node {manifest['nodes'][args.rank]['name']}"
        except Exception:
            pass
        message = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if not message.startswith("node "):
            message = f"{node}: {message}"
        result.write_text(json.dumps({"error": message, "at": time.time()}), encoding="utf-8")
        print(f"splitplan: {message}", file=sys.stderr)
        return 1
    result.write_text(json.dumps(log), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
