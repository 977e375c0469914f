"""`splitplan nas` and `splitplan retrain`: the command-line side of the NAS loop."""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from ..errors import (
    TORCH_INSTALL,
    ExitCode,
    SplitplanError,
    check_writable,
    read_json,
    require,
)

if TYPE_CHECKING:
    from .search import Candidate

_Number = TypeVar("_Number", int, float)

EXIT_OK, EXIT_BAD_INPUT = ExitCode.OK, ExitCode.BAD_INPUT
NAS_INSTALL = "pip install 'splitplan[nas]'"


def presets_for(space: str) -> tuple[str, ...]:
    """The network presets `space` can plan on. NB201 has measured latencies for its own device
    classes only (`nb201.DEVICE_COLUMNS`), so only presets made of those classes work with it."""
    from ..devices import PRESETS, network_preset

    if space != "nb201":
        return tuple(PRESETS)
    from .nb201 import DEVICE_COLUMNS

    return tuple(
        p for p in PRESETS if all(n.device_class in DEVICE_COLUMNS for n in network_preset(p).nodes)
    )


def _positive(kind: type[_Number], what: str) -> Callable[[str], _Number]:
    def parse(text: str) -> _Number:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a {what}: {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(f"must be a positive {what}, got {text!r}")
        return value

    return parse


def add_nas_arguments(nas: argparse.ArgumentParser) -> None:
    """Declare the arguments of `nas` on its subparser (the registry is `splitplan.cli`)."""
    from ..devices import PRESETS
    from .search import DEFAULT_STORAGE, SAMPLERS, SPACES

    nas.description = (
        "Search architectures and their optimal splits together. `splitplan nas "
        "worker --study NAME` joins an existing study (several workers may share one storage)."
    )
    nas.add_argument(
        "mode", nargs="?", choices=("run", "worker"), default="run", help="default: run"
    )
    nas.add_argument("--space", choices=SPACES, help="search space (required to create a study)")
    nas.add_argument(
        "--network",
        metavar="PRESET",
        help=f"network preset (required to create a study): {', '.join(PRESETS)}; with "
        "--space nb201 only pi4-edge-LINK and phone-edge-LINK (its measured device classes)",
    )
    nas.add_argument(
        "--bandwidth",
        type=_positive(float, "number"),
        metavar="BYTES_PER_S",
        help="override the preset's device uplink",
    )
    nas.add_argument(
        "--trials",
        type=_positive(int, "whole number"),
        default=100,
        help="finished trials the study should hold (a rerun resumes; default 100)",
    )
    nas.add_argument(
        "--slo",
        type=_positive(float, "number of seconds"),
        metavar="S",
        help="latency SLO in seconds: maximise accuracy subject to latency <= S",
    )
    nas.add_argument(
        "--single-split",
        action="store_true",
        help="allow one split between the device and one server only (NASC's setting)",
    )
    nas.add_argument("--sampler", choices=SAMPLERS, default="nsga2", help="default: nsga2")
    nas.add_argument("--seed", type=int, default=0)
    nas.add_argument(
        "--storage",
        default=DEFAULT_STORAGE,
        help=f"Optuna storage URL (default {DEFAULT_STORAGE}; e.g. postgresql://host/db)",
    )
    nas.add_argument(
        "--study", help="study name (default: SPACE[-DATASET]-NETWORK[-sloS][-single-split])"
    )
    nas.add_argument("--out", metavar="DIR", help="report folder (default: nas-STUDY)")
    nas.add_argument(
        "--dataset",
        choices=("cifar10", "cifar100", "imagenet16-120"),
        default="cifar10",
        help="nb201: whose test accuracy (latencies are CIFAR-10's network); default cifar10",
    )
    nas.add_argument(
        "--supernet",
        metavar="FILE",
        help="mbv2-digits: the trained supernet (trained and saved there if missing; "
        "default splitplan-mbv2-supernet.pt)",
    )
    nas.add_argument(
        "--epochs", type=_positive(int, "whole number"), help="mbv2-digits: supernet epochs"
    )
    nas.add_argument("--device", default="cpu", help="mbv2-digits: torch device (cpu, cuda)")
    nas.add_argument("--quiet", action="store_true", help="no progress lines")


def add_retrain_arguments(retrain: argparse.ArgumentParser) -> None:
    """Declare the arguments of `retrain` on its subparser (the registry is `splitplan.cli`)."""
    retrain.add_argument("result", metavar="RESULT", help="trials.json written by `splitplan nas`")
    retrain.add_argument(
        "--top",
        type=_positive(int, "whole number"),
        default=5,
        help="how many front architectures, most accurate first (default 5)",
    )
    retrain.add_argument("--epochs", type=_positive(int, "whole number"), default=None)
    retrain.add_argument("--seed", type=int, default=0)
    retrain.add_argument("--device", default="cpu", help="torch device (cpu, cuda)")
    retrain.add_argument("-o", "--output", metavar="FILE", help="default: RESULT's folder")


def _error(message: str) -> int:
    print(f"splitplan: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def _space_options(spec_space: str, args: argparse.Namespace) -> dict[str, Any]:
    if spec_space == "nb201":
        return {"dataset": args.dataset}
    options: dict[str, Any] = {"path": args.supernet or "splitplan-mbv2-supernet.pt"}
    if args.epochs:
        options["epochs"] = args.epochs
    return options


def _progress(quiet: bool) -> Callable[[int, int, Candidate], None]:
    state = {"best": -math.inf}

    def report(done: int, total: int, cand: Candidate) -> None:
        if quiet:
            return
        if cand.latency_s is not None:
            state["best"] = max(state["best"], cand.accuracy)
        latency = f"{cand.latency_s * 1e3:.3f} ms" if cand.latency_s is not None else "-"
        line = (
            f"[{done}/{total}] {cand.arch}: accuracy {cand.accuracy:.2f} %, latency {latency} "
            f"({cand.status}, bound {cand.bound_s * 1e3:.3f} ms, {cand.solve_s * 1e3:.0f} ms)"
        )
        print(line, file=sys.stderr, flush=True)

    return report


def _training_progress(quiet: bool) -> Callable[[int, int, float], None]:
    def report(done: int, total: int, loss: float) -> None:
        if not quiet:
            print(f"supernet: epoch {done}/{total}, loss {loss:.4f}", file=sys.stderr, flush=True)

    return report


def cmd_nas(args: argparse.Namespace) -> int:
    from ..devices import network_preset
    from .search import (
        StudySpec,
        front_of,
        make_space,
        open_study,
        records,
        run,
        write_report,
    )

    if args.mode == "run":
        if not args.space or not args.network:
            return _error("nas: --space and --network are required to run a study")
        try:
            network_preset(args.network, bandwidth_bytes_per_s=args.bandwidth)
        except ValueError as exc:
            return _error(f"--network: {exc}")
        # Check everything cheap before a study is created (issue 15: nb201 on 3tier-wifi
        # crashed in the first trial and left an empty study behind).
        usable = presets_for(args.space)
        if args.network not in usable:
            return _error(
                f"--network {args.network}: the {args.space} space has no latencies measured for "
                f"its device classes; use one of {', '.join(usable)}"
            )
        try:
            require("optuna", "splitplan nas", NAS_INSTALL)
            if args.space != "nb201":
                require("torch", f"--space {args.space}", TORCH_INSTALL)
        except SplitplanError as exc:
            return _error(str(exc))
        spec = StudySpec(
            space=args.space,
            network=args.network,
            slo_s=args.slo,
            bandwidth_bytes_per_s=args.bandwidth,
            single_split=args.single_split,
            space_options=_space_options(args.space, args),
        )
        name = args.study or "-".join(
            [
                args.space,
                *([args.dataset] if args.space == "nb201" and args.dataset != "cifar10" else []),
                args.network,
                *([f"slo{args.slo:g}"] if args.slo else []),
                *(["single-split"] if args.single_split else []),
            ]
        )
    else:
        if not args.study:
            return _error("nas worker: --study NAME is required")
        try:
            require("optuna", "splitplan nas worker", NAS_INSTALL)
        except SplitplanError as exc:
            return _error(str(exc))
        spec, name = None, args.study
    try:
        study, spec = open_study(
            spec, study_name=name, storage=args.storage, sampler=args.sampler, seed=args.seed
        )
    except ValueError as exc:
        return _error(str(exc))
    except Exception as exc:  # storage URLs: a bad driver, an unreachable server
        return _error(f"--storage {args.storage}: {type(exc).__name__}: {exc}")
    runtime: dict[str, Any] = {}
    if spec.space != "nb201":  # where this worker trains and profiles, and its progress
        runtime = {"device": args.device, "progress": _training_progress(args.quiet)}
    try:
        space = make_space(spec.space, **spec.space_options, **runtime)
    except (ValueError, FileNotFoundError, ImportError) as exc:
        return _error(f"--space {spec.space}: {exc}")
    if spec.network not in presets_for(spec.space):  # a stored study of an older version
        return _error(
            f"study {name}: the {spec.space} space cannot plan on {spec.network}; use one of "
            f"{', '.join(presets_for(spec.space))}"
        )
    network = network_preset(spec.network, bandwidth_bytes_per_s=spec.bandwidth_bytes_per_s)
    print(
        f"study {name} in {args.storage}: {spec.space} on {spec.network}"
        + (f", SLO {spec.slo_s} s" if spec.slo_s else ", Pareto (accuracy, latency)"),
        file=sys.stderr,
    )
    run(study, space, network, spec, args.trials, progress=_progress(args.quiet))
    recs = records(study)
    out = Path(args.out or f"nas-{name}")
    paths = write_report(recs, out, spec=spec, extra={"study": name, "storage": args.storage})
    front = front_of(recs, spec.slo_s)
    print(f"{len(recs)} trials; front of {len(front)}:")
    print("| accuracy % | latency ms | split points | nodes | architecture |")
    print("|---:|---:|---|---|---|")
    for r in sorted(front, key=lambda r: -r["accuracy"]):
        print(
            f"| {r['accuracy']:.2f} | {r['latency_s'] * 1e3:.3f} | "
            f"{', '.join(r['split_points']) or '-'} | {', '.join(r['nodes_used'])} | "
            f"`{r['arch'].replace('|', chr(92) + '|')}` |"
        )
    print(f"wrote {paths['json']}, {paths['csv']}, {paths['png']}", file=sys.stderr)
    return EXIT_OK


def _front_of_report(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """The space and front of a `splitplan nas` report; `SplitplanError` naming the field."""
    report = read_json(path)

    def bad(field: str, reason: str) -> SplitplanError:
        return SplitplanError(reason, field=field, file=str(path))

    if not isinstance(report, dict) or report.get("format") != "splitplan-nas-report/1":
        raise bad("format", "not a report of `splitplan nas` (format splitplan-nas-report/1)")
    spec = report.get("spec")
    if not isinstance(spec, dict) or not isinstance(spec.get("space"), str):
        raise bad("spec.space", "must be the name of a search space")
    front = report.get("front")
    if not isinstance(front, list):
        raise bad("front", "must be a list of trials")
    for i, r in enumerate(front):
        if not isinstance(r, dict):
            raise bad(f"front[{i}]", "must be an object")
        for key, kind in (("arch", str), ("accuracy", (int, float)), ("latency_s", (int, float))):
            if not isinstance(r.get(key), kind) or isinstance(r.get(key), bool):
                raise bad(f"front[{i}].{key}", f"missing or not a {key} value: {r.get(key)!r}")
    return spec["space"], front


def cmd_retrain(args: argparse.Namespace) -> int:
    path = Path(args.result)
    try:
        space_name, front = _front_of_report(path)
    except SplitplanError as exc:
        return _error(str(exc))
    if space_name == "nb201":
        return _error(
            f"{path}: NAS-Bench-201 accuracies are the benchmark's own trained ones; "
            "there is nothing to retrain"
        )
    try:
        require("torch", "splitplan retrain", TORCH_INSTALL)
    except SplitplanError as exc:
        return _error(str(exc))
    out = Path(args.output or path.with_name("retrained.json"))
    try:
        check_writable(out, "--output")  # before hours of training, not after
    except SplitplanError as exc:
        return _error(str(exc))
    from .mbv2 import parse_arch, retrain

    for i, r in enumerate(front):
        try:
            parse_arch(r["arch"])
        except ValueError as exc:
            return _error(f"{path}: front[{i}].arch: {exc}")
    front = sorted(front, key=lambda r: -r["accuracy"])[: args.top]
    rows = []
    for r in front:
        print(f"retraining {r['arch']} ...", file=sys.stderr, flush=True)
        kwargs = {"seed": args.seed, "device": args.device}
        if args.epochs:
            kwargs["epochs"] = args.epochs
        try:
            result = retrain(r["arch"], **kwargs)
        except ValueError as exc:  # e.g. --device cuda where torch sees no GPU
            return _error(str(exc))
        rows.append({**r, "retrained": result})
    out.write_text(json.dumps({"source": str(path), "retrained": rows}, indent=1))
    print("| architecture | supernet estimate % | retrained test % | latency ms |")
    print("|---|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r['arch']} | {r['accuracy']:.2f} | {r['retrained']['accuracy_test']:.2f} | "
            f"{r['latency_s'] * 1e3:.3f} |"
        )
    print(f"wrote {out}", file=sys.stderr)
    return EXIT_OK
