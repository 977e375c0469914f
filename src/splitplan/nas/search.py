"""The NAS outer loop: Optuna proposes architectures, the exact planner scores each one.

Every trial: the space names an architecture and its accuracy; its layer DAG goes onto the
network and the MILP (HiGHS) returns the optimal multi-split placement with its proven bound
(`evaluate`, through `splitplan.nas.planner`, the planner of NB201's exact front too). Each
architecture is planned once per study and process (`EvaluationCache`), however many trials
and `run` calls name it. Two modes:

- **Pareto** (no SLO): two objectives, maximise accuracy and minimise the optimal latency
  (NSGA-II by default, or TPE).
- **Constrained** (an SLO in seconds, as NASC): maximise accuracy subject to latency <= SLO.
  Before any solve, a lower bound on the latency (each layer on its fastest allowed node, no
  transfers) screens the candidate: if the bound already exceeds the SLO the candidate is
  recorded as ``pruned`` and never solved. Otherwise the SLO becomes the instance's latency limit
  and the solver proves the plan infeasible or returns the fastest one.

Studies live in an Optuna storage: a SQLite file by default, any RDB URL otherwise, so several
workers (`splitplan nas worker`) on several machines can share one study; a study is resumed by
running it again with the same name. Trial records (architecture, plan, latency, bound,
accuracy) are kept as the trials' user attributes and exported by `records` / `write_report`.
"""

from __future__ import annotations

import csv
import json
import math
import time
import weakref
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from ..cost import tables
from ..instance import Network
from . import Space, planner

if TYPE_CHECKING:
    import optuna

DEFAULT_STORAGE = "sqlite:///splitplan-nas.db"
SPACES = ("nb201", "mbv2-digits")
SAMPLERS = ("nsga2", "tpe", "random")


@dataclass
class Candidate:
    """One architecture, planned on one network."""

    arch: str
    accuracy: float
    status: str  # optimal | feasible | time_limit | pruned | over-slo | infeasible
    latency_s: float | None  # the optimal plan's latency (None when pruned or infeasible)
    bound_s: float  # a proven lower bound on the latency of any plan
    local_latency_s: float  # everything on the source node (the device)
    flops: float
    assignment: dict[str, str] = field(default_factory=dict)
    split_points: list[str] = field(default_factory=list)
    nodes_used: list[str] = field(default_factory=list)
    solve_s: float = 0.0
    unmeasured_nodes: list[str] = field(default_factory=list)  # priced by flops / flops_per_s

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def evaluate(
    space: Space,
    arch: str,
    network: Network,
    *,
    slo_s: float | None = None,
    single_split: bool = False,
    solver: str = "highs",
    time_limit_s: float | None = None,
    method: str = "milp",
) -> Candidate:
    """Plan `arch` on `network` with `splitplan.nas.planner.plan_candidate` (the one planner
    NB201's exact front uses too): the exact MILP by default, or another of its `METHODS`;
    `single_split` is ``method="single-split"``, the best single split between the device and
    one server (Neurosurgeon, NASC's setting)."""
    start = time.perf_counter()
    p = planner.plan_candidate(
        space,
        arch,
        network,
        slo_s=slo_s,
        method="single-split" if single_split else method,
        solver=solver,
        time_limit_s=time_limit_s,
    )
    dnn = p.instance.dnn
    base: dict[str, Any] = dict(
        arch=arch,
        accuracy=float(space.accuracy(arch)),
        local_latency_s=p.local_latency_s,
        flops=float(sum(la.flops for la in dnn.layers)),
        unmeasured_nodes=p.unmeasured_nodes,
    )
    bound = p.bound_s
    plan = p.plan
    if plan is None:  # the bound exceeds the SLO: never solved
        return Candidate(
            status="pruned", latency_s=None, bound_s=bound, solve_s=_since(start), **base
        )
    ev = plan.evaluation
    if plan.assignment is None or ev is None or not ev.feasible:
        # with an SLO, infeasible means no plan meets it (the solver proved it)
        over_slo = slo_s is not None and not tables(p.instance).reasons
        status = "over-slo" if over_slo else "infeasible"
        if plan.status == "time_limit":
            status = "time_limit"
        return Candidate(
            status=status, latency_s=None, bound_s=bound, solve_s=_since(start), **base
        )
    latency = ev.latency_s
    if p.method == "single-split":
        status, proven = "feasible", bound
    else:
        status = plan.status
        proven = max(bound, plan.bound if plan.bound is not None else bound)
    return Candidate(
        status=status,
        latency_s=latency,
        bound_s=min(proven, latency),
        assignment=dict(plan.assignment),
        split_points=list(plan.split_points()),
        nodes_used=sorted(set(plan.assignment.values())),
        solve_s=_since(start),
        **base,
    )


def _since(start: float) -> float:
    return time.perf_counter() - start


# --------------------------------------------------------------------------- spaces


def make_space(name: str, **options: Any) -> Space:
    """The search space `name` (see `SPACES`); options go to its constructor."""
    if name == "nb201":
        from .nb201 import Nb201Space

        return Nb201Space(**options)
    if name in ("mbv2", "mbv2-digits"):
        from .mbv2 import Mbv2Space

        return Mbv2Space(**options)
    raise ValueError(f"unknown search space {name!r}; expected one of {', '.join(SPACES)}")


# --------------------------------------------------------------------------- the Optuna loop


@dataclass(frozen=True)
class StudySpec:
    """Everything a worker needs to rebuild a study's objective (kept in the study)."""

    space: str
    network: str
    slo_s: float | None = None
    bandwidth_bytes_per_s: float | None = None
    single_split: bool = False
    space_options: dict[str, Any] = field(default_factory=dict)


def _sampler(kind: str, seed: int | None) -> optuna.samplers.BaseSampler:
    import optuna

    if kind == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if kind == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if kind == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise ValueError(f"unknown sampler {kind!r}; expected one of {', '.join(SAMPLERS)}")


def open_study(
    spec: StudySpec | None,
    *,
    study_name: str,
    storage: str | None = DEFAULT_STORAGE,
    sampler: str = "nsga2",
    seed: int | None = 0,
) -> tuple[optuna.Study, StudySpec]:
    """Create the study, or load it (its spec must then match, or be None to take the stored
    one). Returns (study, spec)."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    existing = None
    if storage is not None:  # None: in memory (tests, benchmarks)
        try:
            existing = optuna.load_study(study_name=study_name, storage=storage)
        except KeyError:
            pass
    if existing is not None:
        assert storage is not None  # `existing` was loaded from it
        stored = StudySpec(**existing.user_attrs["spec"])
        if spec is not None and spec != stored:
            old, new = asdict(stored), asdict(spec)
            diff = ", ".join(f"{k} {old[k]!r} (asked: {new[k]!r})" for k in old if old[k] != new[k])
            raise ValueError(
                f"study {study_name!r} in {storage} was created with {diff}; "
                "run it with those settings or choose another --study name"
            )
        spec = stored
        kind = existing.user_attrs.get("sampler", sampler)
        return (
            optuna.load_study(
                study_name=study_name,
                storage=storage,
                sampler=_sampler(kind, seed),
            ),
            spec,
        )
    if spec is None:
        raise ValueError(f"no study {study_name!r} in {storage}: create it with `splitplan nas`")
    directions: list[Literal["maximize", "minimize"]]
    directions = ["maximize"] if spec.slo_s is not None else ["maximize", "minimize"]
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        directions=directions,
        sampler=_sampler(sampler, seed),
    )
    study.set_user_attr("spec", asdict(spec))
    study.set_user_attr("sampler", sampler)
    return study, spec


class EvaluationCache:
    """Candidates already planned, by architecture, kept apart per (space, network, spec).

    A candidate depends on the space object (its tables, its profiled times), the network and
    the spec (an SLO prunes or limits; `single_split` changes the planner), so each such triple
    has a table of its own: the same object, an equal network and an equal spec share one.
    `run` keeps one cache per study object unless given one, so that running a study in steps
    (benchmarks/nas_nb201.py's checkpoints) never plans an architecture twice. Candidates stored
    by other processes are not read back: a space's profiled times may differ between machines.
    """

    def __init__(self) -> None:
        self._tables: list[tuple[Space, Network, StudySpec, dict[str, Candidate]]] = []

    def table(self, space: Space, network: Network, spec: StudySpec) -> dict[str, Candidate]:
        """The candidates of `space` on `network` under `spec`, by architecture (mutable)."""
        for s, n, sp, table in self._tables:
            if s is space and n == network and sp == spec:
                return table
        new: dict[str, Candidate] = {}
        self._tables.append((space, network, spec, new))
        return new

    def __len__(self) -> int:
        """Candidates held, over all tables."""
        return sum(len(t) for *_, t in self._tables)


_STUDY_CACHES: weakref.WeakKeyDictionary[Any, EvaluationCache] = weakref.WeakKeyDictionary()


def cache_of(study: Any) -> EvaluationCache:
    """The evaluation cache `run` keeps for `study` (an `optuna.Study`) while it lives."""
    cache = _STUDY_CACHES.get(study)
    if cache is None:
        cache = _STUDY_CACHES[study] = EvaluationCache()
    return cache


def objective_for(
    space: Space, network: Network, spec: StudySpec, cache: EvaluationCache | None = None
) -> Callable[[optuna.Trial], float | tuple[float, float]]:
    """The Optuna objective: suggest, plan (once per architecture in `cache`, default a fresh
    one), record the candidate in the trial's user attrs."""
    seen = (EvaluationCache() if cache is None else cache).table(space, network, spec)

    def objective(trial: optuna.Trial) -> float | tuple[float, float]:
        arch = space.suggest(trial)
        if arch not in seen:
            seen[arch] = evaluate(
                space, arch, network, slo_s=spec.slo_s, single_split=spec.single_split
            )
        cand = seen[arch]
        trial.set_user_attr("candidate", cand.to_dict())  # one storage write per trial
        if spec.slo_s is not None:
            # feasible when <= 0: the plan's latency, or the proven bound, past the SLO
            if cand.latency_s is not None:
                violation = cand.latency_s - spec.slo_s
            else:
                violation = max(cand.bound_s - spec.slo_s, 1e-9)
            trial.set_constraint("latency_over_slo_s", violation)
            return cand.accuracy
        latency = cand.latency_s if cand.latency_s is not None else math.inf
        return cand.accuracy, latency

    return objective


def run(
    study: optuna.Study,
    space: Space,
    network: Network,
    spec: StudySpec,
    trials: int,
    *,
    progress: Callable[[int, int, Candidate], None] | None = None,
    cache: EvaluationCache | None = None,
) -> None:
    """Run trials until the study holds `trials` finished ones (so a rerun resumes). Each
    architecture is planned once per `cache` (default: `cache_of(study)`, kept across calls)."""
    import optuna

    done = len(study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)))
    objective = objective_for(space, network, spec, cache_of(study) if cache is None else cache)
    count = done

    def callback(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        nonlocal count
        count += 1
        if progress is not None and "candidate" in trial.user_attrs:
            progress(count, trials, Candidate(**trial.user_attrs["candidate"]))

    if trials > done:
        # MaxTrialsCallback counts the study's finished trials, so workers sharing the storage
        # stop together once it holds `trials` of them.
        stop = optuna.study.MaxTrialsCallback(trials, states=(optuna.trial.TrialState.COMPLETE,))
        study.optimize(objective, n_trials=trials - done, callbacks=[callback, stop])


# --------------------------------------------------------------------------- results


def records(study: optuna.Study) -> list[dict[str, Any]]:
    """One record per finished trial: the candidate's fields plus the trial number."""
    import optuna

    out = []
    for t in study.get_trials(states=(optuna.trial.TrialState.COMPLETE,)):
        out.append({"trial": t.number, **t.user_attrs["candidate"]})
    return out


def front_of(recs: Sequence[dict[str, Any]], slo_s: float | None = None) -> list[dict[str, Any]]:
    """The accuracy / latency Pareto front of planned records (unique architectures), sorted by
    latency; with an SLO, only those that meet it."""
    from .pareto import pareto_front

    planned: dict[str, dict[str, Any]] = {}
    for r in recs:
        if r["latency_s"] is not None and (slo_s is None or r["latency_s"] <= slo_s):
            planned.setdefault(r["arch"], r)
    rows = list(planned.values())
    keep = pareto_front([(r["accuracy"], r["latency_s"]) for r in rows])
    return sorted((rows[i] for i in keep), key=lambda r: r["latency_s"])


def write_report(
    recs: Sequence[dict[str, Any]],
    out_dir: str | Path,
    *,
    spec: StudySpec,
    extra: dict[str, Any] | None = None,
    reference: Sequence[tuple[float, float]] | None = None,
) -> dict[str, Path]:
    """trials.json (spec, every record, the front), trials.csv, front.png. `reference`: points
    (accuracy, latency) of a yardstick front drawn beside the search's."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    front = front_of(recs, spec.slo_s)
    report = {
        "format": "splitplan-nas-report/1",
        "spec": asdict(spec),
        "trials": list(recs),
        "front": front,
        **(extra or {}),
    }
    paths = {"json": out / "trials.json", "csv": out / "trials.csv", "png": out / "front.png"}
    paths["json"].write_text(json.dumps(report, indent=1))
    columns = ["trial", "arch", "accuracy", "status", "latency_s", "bound_s", "local_latency_s"]
    columns += ["flops", "split_points", "nodes_used", "solve_s"]
    with open(paths["csv"], "w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(columns)
        for r in recs:
            writer.writerow([";".join(r[c]) if isinstance(r[c], list) else r[c] for c in columns])
    plot_front(recs, front, paths["png"], spec=spec, reference=reference)
    return paths


def plot_front(
    recs: Sequence[dict[str, Any]],
    front: Sequence[dict[str, Any]],
    path: str | Path,
    *,
    spec: StudySpec,
    reference: Sequence[tuple[float, float]] | None = None,
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    planned = [r for r in recs if r["latency_s"] is not None]
    ax.scatter(
        [r["latency_s"] * 1e3 for r in planned],
        [r["accuracy"] for r in planned],
        s=8,
        c="0.7",
        label=f"trials ({len(recs)})",
    )
    if reference:
        ref = sorted(reference, key=lambda p: p[1])
        ax.step(
            [p[1] * 1e3 for p in ref],
            [p[0] for p in ref],
            where="post",
            c="C1",
            label="exact front",
        )
    ax.step(
        [r["latency_s"] * 1e3 for r in front],
        [r["accuracy"] for r in front],
        where="post",
        c="C0",
        marker="o",
        ms=3,
        label="search front",
    )
    if spec.slo_s is not None:
        ax.axvline(spec.slo_s * 1e3, c="C3", ls="--", label="SLO")
    ax.set_xlabel(f"optimal end-to-end latency on {spec.network} (ms)")
    ax.set_ylabel("accuracy (%)")
    ax.set_xscale("log")
    ax.set_title(f"{spec.space}: accuracy vs optimally split latency")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# --------------------------------------------------------------------------- baselines


def baselines(
    space: Space,
    network: Network,
    *,
    slo_s: float | None = None,
    archs: Sequence[str] | None = None,
) -> dict[str, dict[str, Any] | None]:
    """The references the search is judged against, on the same network and evaluator.

    - ``most_accurate`` (a): the most accurate architecture, with its optimal split;
    - ``nas_then_split`` (b), with an SLO: the most accurate architecture whose latency on the
      device alone meets the SLO, chosen without knowing the network, then optimally split.

    Candidates are `archs`, else every architecture of the space (`all_archs`). The third
    reference, (c) the joint search with a single split point, is a study of its own
    (``StudySpec(single_split=True)``).
    """
    pool = list(archs) if archs is not None else list(space.all_archs() or [])
    if not pool:
        raise ValueError("no candidate architectures: pass `archs` for a space it cannot list")
    accuracy = {a: space.accuracy(a) for a in pool}
    best = max(pool, key=lambda a: (accuracy[a], a))
    out: dict[str, dict[str, Any] | None] = {
        "most_accurate": evaluate(space, best, network).to_dict(),
        "nas_then_split": None,
    }
    if slo_s is not None:
        on_device = getattr(space, "device_latency_s", None)
        device_class = next(n.device_class for n in network.nodes if n.name == network.source)

        def local(arch: str) -> float:
            if on_device is not None:
                try:
                    return on_device(arch, device_class)
                except ValueError:  # a class the space has no measurement of
                    pass
            return evaluate(space, arch, network, single_split=True).local_latency_s

        for arch in sorted(pool, key=lambda a: (-accuracy[a], a)):
            if local(arch) <= slo_s:
                out["nas_then_split"] = evaluate(space, arch, network).to_dict()
                break
    return out
