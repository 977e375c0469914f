"""One node of a deployment: the process that `splitplan run` starts per network node.

    python -m splitplan.runtime_node --dir DIR --rank R --world-size W --master-addr A \\
        --master-port P --requests N [--pipelined] [--no-link-emulation] --result FILE

The node joins a torch.distributed gloo group (TCP rendezvous at A:P), loads its segments, and
for every request runs them in topological order: it receives each input that another node
produces (`dist.recv`, tagged by tensor), runs the segment, and hands each output to the sender
thread of every distinct node that consumes it (the transfers of `cost.evaluate`, listed in the
manifest). One sender thread per destination sends in the order the destination receives, so no
pair of nodes waits on each other; with link emulation it first sleeps the route's time (the
sum over its hops of latency_s + bytes / bandwidth_bytes_per_s, §2 store and forward), so the
link's time is emulated on one machine and transfers to one destination queue behind each other.

Clock: every timestamp is `time.time()`, comparable between processes of one machine (and
between machines only as far as their clocks are synchronised). The result (timings, bytes,
the output's difference from the unsplit model) is written as JSON to --result; an error is
written there too, as one line naming the node, and the process exits 1.
"""

from __future__ import annotations

import argparse
import datetime
import itertools
import json
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

IN_FLIGHT = 4  # pipelined mode: requests a sender may run ahead of its slowest receiver


class _Sender(threading.Thread):
    """Sends one destination's tensors in the order it receives them, after the emulated delay."""

    def __init__(self, dist, dst_rank: int, order: list[dict], emulate: bool, total: int) -> None:
        super().__init__(daemon=True)
        self.dist, self.dst, self.order, self.emulate = dist, dst_rank, order, emulate
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
        try:
            for request in range(self.total):
                for tr in self.order:
                    with self.cond:
                        while (request, tr["tensor"]) not in self.ready:
                            self.cond.wait()
                        value, produced = self.ready.pop((request, tr["tensor"]))
                    start = time.time()
                    if self.emulate:
                        time.sleep(tr["emulated_s"])
                    self.dist.send(value.contiguous(), dst=self.dst, tag=tr["tag"])
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


def _route_time_s(inst, route: Sequence[str], size_bytes: float) -> float:
    from .cost import tables

    tb = tables(inst)
    total = 0.0
    for a, b in itertools.pairwise(route):
        arc = tb.arcs[tb.arc_index[(tb.node_index[a], tb.node_index[b])]]
        total += arc.hop_time_s(size_bytes)
    return total


def run_node(args: argparse.Namespace) -> dict[str, Any]:
    """Run this rank's node for warmup + requests inferences; returns its measurements."""
    import torch
    import torch.distributed as dist

    from .export import DeploymentError, load_segment, read_manifest
    from .instance import INPUT, load_instance

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
    inst = load_instance(directory / manifest.get("instance", "instance.json"))
    tensors = manifest["tensors"]
    tag = {t: i + 1 for i, t in enumerate(tensors)}
    modules = [load_segment(directory, manifest, me, seg) for seg in me["segments"]]
    io = torch.load(directory / manifest["io"])
    dtypes = {t: getattr(torch, info["dtype"]) for t, info in tensors.items()}

    # What this node receives, in the order it needs them: segment inputs, then the rest
    # (e.g. the result, at the sink).
    incoming = [tr for tr in manifest["transfers"] if tr["to"] == name]
    need: list[str] = [t for seg in me["segments"] for t in seg["inputs"]]
    order_key = {t: i for i, t in reversed(list(enumerate(need)))}
    incoming.sort(key=lambda tr: (order_key.get(tr["tensor"], len(need)), tag[tr["tensor"]]))
    outgoing = [tr for tr in manifest["transfers"] if tr["from"] == name]
    output = manifest["output"]["tensor"]
    sink = manifest["sink"] or manifest["output"]["node"]
    reference = io["output"]

    timeout = datetime.timedelta(seconds=args.timeout)
    dist.init_process_group(
        "gloo",
        init_method=f"tcp://{args.master_addr}:{args.master_port}",
        rank=args.rank,
        world_size=args.world_size,
        timeout=timeout,
    )
    senders: dict[str, _Sender] = {}
    for dst in sorted({tr["to"] for tr in outgoing}, key=rank_of.get):
        # the destination's receive order, restricted to what this node sends it
        dst_node = nodes[rank_of[dst]]
        dst_need = [t for seg in dst_node["segments"] for t in seg["inputs"]]
        key = {t: i for i, t in reversed(list(enumerate(dst_need)))}
        order = sorted(
            (tr for tr in outgoing if tr["to"] == dst),
            key=lambda tr, key=key: (key.get(tr["tensor"], len(dst_need)), tag[tr["tensor"]]),
        )
        order = [
            {
                "tensor": tr["tensor"],
                "to": dst,
                "tag": tag[tr["tensor"]],
                "emulated_s": _route_time_s(inst, tr["route"], tensors[tr["tensor"]]["bytes"]),
            }
            for tr in order
        ]
        senders[dst] = _Sender(
            dist, rank_of[dst], order, not args.no_link_emulation, args.warmup + args.requests
        )
        senders[dst].start()
    sends_of: dict[str, list[_Sender]] = {}
    for tr in outgoing:
        sends_of.setdefault(tr["tensor"], []).append(senders[tr["to"]])

    total = args.warmup + args.requests
    progress = Path(args.result).with_suffix(".progress")
    log: dict[str, Any] = {"node": name, "rank": args.rank, "requests": []}
    max_diff = 0.0

    def check_senders() -> None:
        for s in senders.values():
            if s.error is not None:
                raise RuntimeError(f"sending to {s.order[0]['to']} failed: {s.error}")

    with torch.no_grad():
        for r in range(total):
            if args.pipelined:  # at most IN_FLIGHT requests of this node not yet sent
                for s in senders.values():
                    s.wait_done(r - IN_FLIGHT, check_senders)
            else:  # one request at a time: every node is done with the previous one
                dist.barrier()
            rec: dict[str, Any] = {"request": r, "start": time.time(), "segments": [], "recv": []}
            store: dict[str, Any] = {}
            if name == manifest["source"]:
                store[INPUT] = io["input"]
                for s in sends_of.get(INPUT, []):
                    s.put(r, INPUT, store[INPUT], rec["start"])
            pending = list(incoming)

            def receive(tensor: str, rec=rec, store=store, pending=pending) -> None:
                for tr in [p for p in pending if p["tensor"] == tensor]:
                    pending.remove(tr)
                    buf = torch.empty(tensors[tensor]["shape"], dtype=dtypes[tensor])
                    begin = time.time()
                    dist.recv(buf, src=rank_of[tr["from"]], tag=tag[tensor])
                    rec["recv"].append(
                        {
                            "tensor": tensor,
                            "from": tr["from"],
                            "wait_s": time.time() - begin,
                            "arrived": time.time(),
                        }
                    )
                    store[tensor] = buf

            for seg, module in zip(me["segments"], modules, strict=True):
                for t in seg["inputs"]:
                    if t not in store:
                        receive(t)
                check_senders()
                begin = time.time()
                results = module(*(store[t] for t in seg["inputs"]))
                end = time.time()
                if isinstance(results, torch.Tensor):
                    results = (results,)
                rec["segments"].append({"index": seg["index"], "start": begin, "end": end})
                for t, value in zip(seg["outputs"], results, strict=True):
                    store[t] = value
                    for s in sends_of.get(t, []):
                        s.put(r, t, value, end)
            for tr in list(pending):
                receive(tr["tensor"])
            if name == sink:
                rec["done"] = time.time()
                diff = (store[output].float() - reference.float()).abs().max().item()
                max_diff = max(max_diff, diff)
            log["requests"].append(rec)
            progress.write_text(str(r + 1))  # read by the launcher (fault injection in tests)
    for s in senders.values():
        s.wait_done(total, check_senders)
    check_senders()
    dist.barrier()  # nobody leaves while a peer still receives
    dist.destroy_process_group()
    log["sends"] = [rec for s in senders.values() for rec in s.records]
    log["warmup"] = args.warmup
    if name == sink:
        log["max_abs_diff"] = max_diff
    return log


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
    args = parser.parse_args(argv)
    result = Path(args.result)
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
