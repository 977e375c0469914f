"""Neighbourhood search with the MILP itself (models/formulation.md §11, "Polishing").

`polish` improves a plan by solving the built model again with most of it fixed: the layers on a
few nodes may move among those nodes, every other layer stays where it is. Each such sub-MILP is
small enough for the solver to close or nearly close, and its answer is costed by the evaluator
before it is kept. It is the primal side of `splitplan.solve` where the full model's search
stalls: binding memory over many nodes, the period on profiled DAGs.

Neighbourhoods, by level: for the period, the nodes of the bottleneck (the busiest node, or both
ends of the busiest arc) plus m other nodes; for the other objectives, any m + 1 nodes (m = 1 ..
`_MAX_EXTRA`, never every node: that is the full model again), interleaved with windows of a
third and of half of the layers (topological order; after m = 1 and m = 2), free to move to any
node. The search starts at the first
level, returns to it after every improvement and goes one level on after a pass over a level's
neighbourhoods (in a seeded random order, at most `_MAX_PASS` of them) has improved nothing. It
ends at the deadline or after the last level's pass.

`PolishProcess` runs the same search in a second process while the solver runs on the full
model (`splitplan.solve` on a machine with two cores or more): the solver keeps the whole limit
for its bound, each better plan it finds is handed to the search, and the search's better plans
come back as they are found.
"""

from __future__ import annotations

import copyreg
import itertools
import math
import os
import pickle
import queue
import random
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from types import MappingProxyType
from typing import IO, Protocol

import numpy as np

from .cost import Evaluation, evaluate
from .milp import Milp

# A plan is better only by more than this fraction of its cost (rounding noise is no move).
_IMPROVE_REL = 1e-9
_MAX_EXTRA = 3  # nodes added to the bottleneck (or to a first node) in a neighbourhood
_MAX_PASS = 2000  # neighbourhoods tried per size before the next size
# Less time left than this and no solve is started: the solver would stop before its root (HiGHS
# is not even started, `solvers.HIGHS_ROOT_S_PER_NZ`), and polish would spin on such calls.
_MIN_SOLVE_S = 0.2
_MAX_SOLVE_S = 5.0  # the longest a neighbourhood is solved


@dataclass
class Polished:
    """The best plan `polish` holds: its assignment and encodings, the evaluator's cost, the
    MILP's objective of the point it came from (None: the plan it was given), and the number of
    sub-MILPs solved and of improvements found."""

    assignment: dict[str, str]
    encodings: dict[str, str]
    cost: float
    values: np.ndarray | None
    milp_objective: float | None
    solves: int = 0
    improvements: int = 0
    wall_s: float = 0.0


class Exchange(Protocol):
    """What a search run beside the solver trades with it (`PolishProcess`)."""

    def latest(self) -> np.ndarray | None:
        """The solver's newest point since the last call (model units), or None."""

    def stopped(self) -> bool:
        """Whether the search is to end now."""

    def improved(self, best: Polished) -> None:
        """Called with each better plan the search finds."""


def polish(
    milp: Milp,
    assignment: dict[str, str],
    deadline: float,
    solver: str = "highs",
    encodings: dict[str, str] | None = None,
    seed: int = 0,
    exchange: Exchange | None = None,
) -> Polished:
    """The best plan found from the feasible `assignment` by re-solving the model on
    neighbourhoods of nodes until `deadline` (`time.perf_counter()` seconds). `solver` is a
    solver of `solvers.SOLVERS` (not a Pyomo one). With an `exchange`, before each
    neighbourhood the search takes the solver's newest point where it is a better plan, and ends
    when the exchange says so."""
    began = time.perf_counter()
    rng = random.Random(seed)
    best = _search(milp, assignment, deadline, solver, encodings or {}, rng, exchange, began)
    best.wall_s = time.perf_counter() - began
    return best


def _search(
    milp: Milp,
    assignment: dict[str, str],
    deadline: float,
    solver: str,
    encodings: dict[str, str],
    rng: random.Random,
    exchange: Exchange | None = None,
    began: float = 0.0,
) -> Polished:
    from .solvers import solve_milp

    inst, tb = milp.instance, milp.tables
    ev = evaluate(inst, assignment, encodings)
    if not ev.feasible:
        raise ValueError(f"polish needs a feasible plan: {'; '.join(ev.violations)}")
    best = Polished(dict(ev.assignment), dict(ev.encodings), ev.objective(inst), None, None)
    K, n = len(tb.nodes), len(tb.layers)
    # node groups and layer windows, interleaved: where the groups of a size are exhausted, a
    # window often still moves the splits (models/formulation.md §11)
    windows = [("layers", length) for length in _window_lengths(n)]
    levels = []
    for m in range(1, _MAX_EXTRA + 1):
        levels.append(("nodes", m))
        levels += windows[m - 1 : m]
    level = 0
    while level < len(levels):
        kind, size = levels[level]
        if kind == "nodes":
            core = _bottleneck(inst, ev) if inst.objective.kind == "throughput" else frozenset()
            others = [k for k in range(K) if tb.nodes[k] not in core]
            drawn = size if core else size + 1  # nodes drawn from `others`
            if len(core) + drawn >= K:
                level += 1
                continue
            busy = _busy(tb, ev) if core else None
            fixed = {tb.node_index[n] for n in core}
            hoods: Iterator[tuple[set[int], set[int] | None]] = (
                (fixed | set(combo), None) for combo in _neighbourhoods(others, drawn, rng, busy)
            )
        else:
            hoods = ((set(range(K)), window) for window in _windows(n, size, rng))
        improved = False
        for group, layers in hoods:
            now = time.perf_counter()
            if deadline - now < _MIN_SOLVE_S:
                return best
            if exchange is not None:
                if exchange.stopped():
                    return best
                taken = _take(milp, exchange.latest(), best)
                if taken is not None:  # the solver's plan is better: search around it
                    ev, improved = taken, True
                    break
            # a share of the time, at least a second (a neighbourhood that holds most of the
            # model needs that much for the solver to find the better packing it has) and at
            # most `_MAX_SOLVE_S` (a long search otherwise spends it on few windows)
            share = min(_MAX_SOLVE_S, (deadline - began) / 4)
            limit = min(deadline - now, max(1.0, share))
            result, _ = solve_milp(
                _restricted(milp, best.assignment, group, layers),
                solver,
                time_limit_s=limit,
                start=milp.start_vector(best.assignment),
                # HiGHS' presolve drops the fixed columns; its claims are not relied on here
                **({"presolve": True} if solver == "highs" else {}),
            )
            best.solves += 1
            if result.values is None:
                continue
            plan = milp.read_assignment(result.values)
            forms = milp.read_encodings(result.values)
            cand = evaluate(inst, plan, forms)
            cost = cand.objective(inst)
            if cand.feasible and cost < best.cost - _IMPROVE_REL * abs(best.cost):
                best.assignment, best.encodings, best.cost = plan, dict(cand.encodings), cost
                best.values, best.milp_objective = result.values, result.objective
                best.improvements += 1
                best.wall_s = time.perf_counter() - began
                ev, improved = cand, True
                if exchange is not None:
                    exchange.improved(best)
                break  # a new plan: new bottleneck, new neighbourhoods
        # the pass ended on a better plan, or went through every neighbourhood of its level
        level = 0 if improved else level + 1
    return best


def _take(milp: Milp, values: np.ndarray | None, best: Polished) -> Evaluation | None:
    """The solver's point `values` as `best` (its evaluation) where it is a feasible plan that
    costs less; else None and `best` unchanged."""
    if values is None:
        return None
    plan, forms = milp.read_assignment(values), milp.read_encodings(values)
    cand = evaluate(milp.instance, plan, forms)
    cost = cand.objective(milp.instance)
    if not cand.feasible or cost >= best.cost - _IMPROVE_REL * abs(best.cost):
        return None
    sf = milp.matrix
    best.assignment, best.encodings, best.cost = plan, dict(cand.encodings), cost
    best.values, best.milp_objective = values, float(sf.c @ values + sf.offset)
    return cand


def _neighbourhoods(
    others: list[int], size: int, rng: random.Random, busy: dict[int, float] | None = None
):
    """Subsets of `size` nodes of `others`: all of them when there are at most `_MAX_PASS`, the
    least `busy` first where given (ties in a random order), else in a random order;
    `_MAX_PASS` drawn at random when there are more."""
    if math.comb(len(others), size) <= _MAX_PASS:
        combos = list(itertools.combinations(others, size))
        rng.shuffle(combos)
        if busy is not None:
            combos.sort(key=lambda combo: sum(busy[k] for k in combo))
        yield from combos
    else:
        for _ in range(_MAX_PASS):
            yield tuple(sorted(rng.sample(others, size)))


def _window_lengths(n: int) -> list[int]:
    """The lengths of the layer windows (`_windows`): a third and a half of the layers, where
    that is at least 2 layers and not all of them."""
    return sorted({m for m in (math.ceil(n / 3), math.ceil(n / 2)) if 2 <= m < n})


def _windows(n: int, length: int, rng: random.Random) -> list[set[int]]:
    """Windows of `length` consecutive layers (topological order), overlapping by half, the
    last one ending at the last layer; in a random order."""
    step = max(1, length // 2)
    starts = sorted(set(range(0, n - length + 1, step)) | {n - length})
    windows = [set(range(a, a + length)) for a in starts]
    rng.shuffle(windows)
    return windows


def _busy(tb, ev: Evaluation) -> dict[int, float]:
    """Per node, the larger of its compute and of the loads of the arcs at it (§7): what it has
    left to take a share of the bottleneck's work is the period minus that."""
    out = {tb.node_index[n]: s for n, s in ev.node_compute_s.items()}
    for (i, j), s in ev.link_load_s.items():
        for n in (i, j):
            out[tb.node_index[n]] = max(out[tb.node_index[n]], s)
    return out


def _bottleneck(inst, ev: Evaluation) -> frozenset[str]:
    """The nodes of the period's bottleneck: every node, and both ends of every arc, whose load
    is the period (§7)."""
    period = ev.period_s
    tie = period * (1 - 1e-9)
    out = {n for n, s in ev.node_compute_s.items() if s >= tie}
    for (i, j), s in ev.link_load_s.items():
        if s >= tie:
            out |= {i, j}
    return frozenset(out)


def _restricted(
    milp: Milp, assignment: dict[str, str], group: set[int], layers: set[int] | None = None
) -> Milp:
    """The model with the layers on `group` (or, given, the `layers`) kept within `group` and
    every other layer fixed where `assignment` puts it (column bounds only: the rows are
    shared)."""
    tb, sf = milp.tables, milp.matrix
    lb, ub = sf.col_lb.copy(), sf.col_ub.copy()
    node_of = [tb.node_index[assignment[name]] for name in tb.layers]
    for (v, k), j in milp.x.items():
        if node_of[v] in group if layers is None else v in layers:
            if k not in group:
                ub[j] = 0.0
        else:
            lb[j] = ub[j] = float(k == node_of[v])
    return replace(milp, matrix=replace(sf, col_lb=lb, col_ub=ub))


# --------------------------------------------------------------------------- beside the solver

# The search beside the solver runs in a fresh interpreter (not multiprocessing): a forked child
# would inherit HiGHS' thread pool without its threads, and a spawned one re-runs the user's
# main module. Frames are pickles on the child's stdin (the job, then the solver's points) and
# stdout (its plans); the child's fd 1 is pointed at stderr so that nothing else reaches it.
_WORKER = "from splitplan.polish import _worker_main; _worker_main()"
# After the deadline, the wait for the child's last word (it stops after the solve it is in,
# whose limit ends at the deadline) before it is killed; its plans have come already.
_GRACE_S = 0.5


class PolishProcess:
    """`polish` in a second process, from the feasible plan `assignment` (or, when None, from
    the solver's first plan) until `deadline` (`time.perf_counter()` seconds of this process).

    Hand it the solver's better points with `offer` (it never blocks: a writer thread sends the
    newest); `finish` tells it to stop and returns the best plan it sent back (None: it found
    nothing better than what it was given); `kill` drops it. A child that fails to start or
    dies costs nothing but its plans."""

    def __init__(
        self,
        milp: Milp,
        assignment: dict[str, str] | None,
        deadline: float,
        solver: str = "highs",
        encodings: dict[str, str] | None = None,
        seed: int = 0,
        verbose: bool = False,
    ) -> None:
        self.began = time.perf_counter()
        self.best: Polished | None = None
        self.wall_s = 0.0
        self.completed = False  # the child said it ended by itself
        env = dict(os.environ)
        here = str(Path(__file__).resolve().parent.parent)  # the splitplan this process runs
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        self._proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=None if verbose else subprocess.DEVNULL,
            env=env,
        )
        job = {
            "milp": milp,
            "assignment": assignment,
            "encodings": encodings or {},
            "solver": solver,
            "seed": seed,
            "remaining_s": deadline - time.perf_counter(),
            "sent_at": time.time(),
        }
        self._outbox: queue.SimpleQueue[np.ndarray | None] = queue.SimpleQueue()
        self._writer = threading.Thread(target=self._write, args=(job,), daemon=True)
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._writer.start()
        self._reader.start()

    def offer(self, values: np.ndarray) -> None:
        """The solver's newest point (model units)."""
        self._outbox.put(values)

    def finish(self, deadline: float) -> Polished | None:
        """The best plan of the search, which ends by itself at its deadline or when it has
        gone through every neighbourhood size; waited for until `deadline` + `_GRACE_S`."""
        self._reader.join(max(0.0, deadline + _GRACE_S - time.perf_counter()))
        self.kill()
        return self.best

    def kill(self) -> None:
        self._outbox.put(None)
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.wait()
        self._reader.join(1.0)
        self.wall_s = time.perf_counter() - self.began

    def _write(self, job: dict) -> None:
        stream = self._proc.stdin
        assert stream is not None
        try:
            _dump(job, stream)
            stop = False
            while not stop and (item := self._outbox.get()) is not None:
                while True:  # only the newest point matters
                    try:
                        newer = self._outbox.get_nowait()
                    except queue.Empty:
                        break
                    if newer is None:
                        stop = True
                        break
                    item = newer
                self._send(stream, item)
        except (BrokenPipeError, OSError, ValueError):
            pass  # the child is gone: its plans so far are kept
        finally:
            try:
                stream.close()  # end of input: the child stops after its current solve
            except (BrokenPipeError, OSError):
                pass

    @staticmethod
    def _send(stream: IO[bytes], values: np.ndarray) -> None:
        pickle.dump(("incumbent", values), stream, protocol=pickle.HIGHEST_PROTOCOL)
        stream.flush()

    def _read(self) -> None:
        stream = self._proc.stdout
        assert stream is not None
        try:
            while True:
                kind, payload = pickle.load(stream)
                if kind == "plan":
                    self.best = payload
                elif kind == "done":
                    self.completed = True
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError):
            pass


def _mapping(items: dict) -> MappingProxyType:
    return MappingProxyType(items)


def _dump(obj: object, stream: IO[bytes]) -> None:
    """`pickle.dump`, with the read-only mappings of an `Instance` (pins, measured times)."""
    pickler = pickle.Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = copyreg.dispatch_table.copy()
    pickler.dispatch_table[MappingProxyType] = lambda m: (_mapping, (dict(m),))
    pickler.dump(obj)
    stream.flush()


class _Inbox:
    """The child's side of `PolishProcess`: the solver's points from stdin (a reader thread),
    its plans to `out`."""

    def __init__(self, inp: IO[bytes], out: IO[bytes]) -> None:
        self._out = out
        self._latest: np.ndarray | None = None
        self._ended = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._read, args=(inp,), daemon=True).start()

    def _read(self, inp: IO[bytes]) -> None:
        try:
            while True:
                kind, values = pickle.load(inp)
                if kind == "incumbent":
                    with self._lock:
                        self._latest = values
        except (EOFError, OSError, pickle.UnpicklingError, ValueError, TypeError):
            self._ended.set()

    def latest(self) -> np.ndarray | None:
        with self._lock:
            values, self._latest = self._latest, None
        return values

    def stopped(self) -> bool:
        return self._ended.is_set()

    def improved(self, best: Polished) -> None:
        pickle.dump(("plan", replace(best)), self._out, protocol=pickle.HIGHEST_PROTOCOL)
        self._out.flush()


def _worker_main() -> None:
    """The child of `PolishProcess`."""
    out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # a stray print must not corrupt the frames
    inp = sys.stdin.buffer
    job = pickle.load(inp)
    began = time.perf_counter()
    deadline = began + job["remaining_s"] - max(0.0, time.time() - job["sent_at"])
    milp, inbox = job["milp"], _Inbox(inp, out)
    assignment, encodings = job["assignment"], job["encodings"]
    while assignment is None:  # no feasible start: the solver's first feasible plan
        if inbox.stopped() or time.perf_counter() > deadline - _MIN_SOLVE_S:
            break
        values = inbox.latest()
        if values is None:
            time.sleep(0.05)
            continue
        plan, forms = milp.read_assignment(values), milp.read_encodings(values)
        if evaluate(milp.instance, plan, forms).feasible:
            assignment, encodings = plan, forms
    if assignment is not None:
        polish(milp, assignment, deadline, job["solver"], encodings, job["seed"], inbox)
    pickle.dump(("done", None), out)
    out.flush()
