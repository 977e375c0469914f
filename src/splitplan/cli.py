"""Command line: `splitplan solve FILE` and `splitplan validate FILE`.

Exit codes (`splitplan.errors.ExitCode`): 0 solved (a plan is printed), 1 internal error, 2 bad
input, 3 infeasible, 4 no plan found within the time limit. A user error is one line on stderr
naming the file and field, and under --json the one error object of `errors.error_json`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence

from .baselines import METHODS
from .errors import ExitCode, SplitplanError, UsageError, check_writable, error_json
from .instance import Instance, InstanceError, load_instance

# The old names, kept for code that imports them; `ExitCode` is the table.
EXIT_OK, EXIT_INTERNAL, EXIT_BAD_INPUT, EXIT_INFEASIBLE, EXIT_NO_SOLUTION = (
    ExitCode.OK,
    ExitCode.INTERNAL,
    ExitCode.BAD_INPUT,
    ExitCode.INFEASIBLE,
    ExitCode.NO_SOLUTION,
)


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors also print the JSON error object under --json."""

    json_errors = False  # set by `main` when the command line asks for --json

    def error(self, message: str):  # type: ignore[override]
        self.print_usage(sys.stderr)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        if _Parser.json_errors:
            print(json.dumps(error_json(UsageError(message))))
        sys.exit(ExitCode.BAD_INPUT)


def _positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds, got {text!r}")
    return value


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `minimum`, else a usage error naming the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(
                f"must be a whole number >= {minimum}, got {text!r}"
            )
        return value

    return parse


def _solver(text: str) -> str:
    from .solvers import SolverUnavailable, check_solver

    try:
        check_solver(text)
    except SolverUnavailable as err:
        raise argparse.ArgumentTypeError(str(err)) from None
    return text


def _methods(text: str) -> list[str]:
    methods = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or '(none)'}; choose from {', '.join(METHODS)}"
        )
    return methods


def _parser() -> argparse.ArgumentParser:
    from .solvers import SOLVERS

    parser = _Parser(
        prog="splitplan",
        allow_abbrev=False,
        description="Optimal placement of DNN layers across device, edge and cloud nodes.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    solve = sub.add_parser("solve", help="solve an instance file to proven optimality")
    solve.add_argument("file", metavar="FILE", help="instance file (splitplan-instance/1 JSON)")
    solve.add_argument(
        "--solver",
        type=_solver,
        default="highs",
        metavar="|".join(SOLVERS) + "|pyomo:NAME",
        help="default: highs; pyomo:NAME solves the Pyomo model with Pyomo's solver NAME",
    )
    solve.add_argument(
        "--time-limit", type=_positive_seconds, metavar="S", help="stop after S seconds"
    )
    solve.add_argument("--json", action="store_true", help="print one JSON object")
    solve.add_argument("--verbose", action="store_true", help="show the solver's log")
    solve.add_argument(
        "--plot", metavar="PNG", help="draw the plan's timeline per node and route (matplotlib)"
    )
    compare = sub.add_parser(
        "compare", help="the exact MILP against the chain DP and heuristics, on one evaluator"
    )
    compare.add_argument("file", metavar="FILE")
    compare.add_argument(
        "--methods",
        type=_methods,
        help=f"comma-separated subset of: {', '.join(METHODS)} (default: all)",
    )
    compare.add_argument(
        "--time-limit",
        type=_positive_seconds,
        default=1.0,
        metavar="S",
        help="budget of each heuristic search, s (default 1)",
    )
    compare.add_argument(
        "--milp-time-limit",
        type=_positive_seconds,
        default=60.0,
        metavar="S",
        help="time limit of each MILP solve, s (default 60)",
    )
    compare.add_argument("--seed", type=int, default=0, help="seed of the randomised heuristics")
    compare.add_argument("--json", action="store_true", help="print one JSON object")
    prof = sub.add_parser("profile", help="profile a zoo model into an instance file (needs torch)")
    prof.add_argument(
        "--model",
        required=True,
        help="resnet18, resnet50, mobilenetv2, vgg16, vit-tiny, mlp, or your own model: "
        "path/to/file.py:ClassOrFactory or package.module:factory",
    )
    prof.add_argument(
        "--input-shape",
        metavar="SHAPE",
        help="input shape with the batch, e.g. 1,3,224,224 (required for your own model)",
    )
    prof.add_argument(
        "--input-dtype", default="float32", help="input dtype (default float32; int64 for ids)"
    )
    prof.add_argument("--granularity", choices=("op", "module", "block"), default="module")
    prof.add_argument(
        "--dtype",
        choices=("fp32", "fp16", "int8"),
        default="fp32",
        help="activation dtype of out_bytes (default fp32)",
    )
    prof.add_argument("--repeats", type=int, default=5, help="timed runs; the median is kept")
    prof.add_argument("--warmup", type=int, default=2)
    prof.add_argument(
        "--tracer",
        choices=("auto", "fx", "export"),
        default="auto",
        help="torch.fx, torch.export, or fx with export where fx fails (default auto)",
    )
    prof.add_argument("--device", default="cpu", help="torch device to time on (cpu, cuda)")
    prof.add_argument(
        "--threads",
        type=whole_number(0),
        default=1,
        metavar="N",
        help="torch CPU threads while timing (default 1: per-layer times do not depend on the "
        "machine's other load as much; 0 keeps torch's own setting)",
    )
    prof.add_argument(
        "--device-class", help="name of the measured class (default host-cpu or the GPU's name)"
    )
    prof.add_argument(
        "--network",
        metavar="PRESET",
        help="a network preset (its device classes get roofline-estimated times): "
        "3tier-LINK, pi4-edge-LINK, phone-edge-LINK with LINK in 3g, lte, 5g, wifi, ethernet; "
        "star-wifi, chain-4, mesh-5",
    )
    prof.add_argument(
        "--bandwidth",
        type=float,
        metavar="BYTES_PER_S",
        help="override the preset's device uplink bandwidth",
    )
    prof.add_argument(
        "--network-from",
        metavar="INSTANCE",
        help="take the network, objective and latency limit of this instance "
        "(default: one node of the measured class)",
    )
    prof.add_argument("-o", "--output", required=True, metavar="FILE")
    validate = sub.add_parser("validate", help="check an instance file and report problems")
    validate.add_argument("file", metavar="FILE")
    validate.add_argument("--json", action="store_true", help="print one JSON object")
    from .online.cli import add_parser as add_online_parser

    add_online_parser(sub)
    from .online.adapt_cli import add_parser as add_adapt_parser

    add_adapt_parser(sub)
    from .nas.command import add_parsers as add_nas_parsers

    add_nas_parsers(sub)
    from .runtime import add_parsers as add_runtime_parsers

    add_runtime_parsers(sub)
    return parser


def _bad_input(exc: SplitplanError, as_json: bool) -> int:
    print(f"splitplan: error: {exc}", file=sys.stderr)
    if as_json:
        print(json.dumps(error_json(exc)))
    return EXIT_BAD_INPUT


def _cmd_validate(args: argparse.Namespace, inst: Instance) -> int:
    from .cost import tables

    tb = tables(inst)
    reasons = tb.reasons
    coded = [t for t in tb.tensors if t.encodings]
    summary = {
        "status": "infeasible" if reasons else "valid",
        "name": inst.name,
        "layers": len(inst.dnn.layers),
        "nodes": len(inst.network.nodes),
        "links": len(inst.network.links),
        "objective": inst.objective.kind,
        "encoded_tensors": len(coded),
        "encodings": sum(len(t.encodings) for t in coded),
        "infeasible": reasons,
    }
    if args.json:
        print(json.dumps(summary))
    else:
        forms = f", {summary['encodings']} encodings of {len(coded)} tensors" if coded else ""
        print(
            f"{args.file}: valid: {inst.name}, {summary['layers']} layers, {summary['nodes']} "
            f"nodes, {summary['links']} links{forms}, objective {inst.objective.kind}"
        )
        for reason in reasons:
            print(f"{args.file}: infeasible: {reason}")
    # A valid file that no plan can satisfy: the same code as `solve` gives it (issue 15).
    return EXIT_INFEASIBLE if reasons else EXIT_OK


def _cmd_solve(args: argparse.Namespace, inst: Instance) -> int:
    from .plan import solve

    if not args.json:
        print(
            f"solving {inst.name}: {len(inst.dnn.layers)} layers on {len(inst.network.nodes)} "
            f"nodes with {args.solver} ...",
            file=sys.stderr,
        )
    limit = args.time_limit
    if limit is not None:  # --time-limit covers the whole command, reading the file included
        limit = max(limit - (time.perf_counter() - args.started_s), 1e-3)
    plan = solve(inst, solver=args.solver, time_limit_s=limit, verbose=args.verbose)
    if args.json:
        print(json.dumps(plan.to_dict()))
    else:
        print(plan.summary())
    if args.plot and plan.assignment is not None:
        from .plot import plot_plan

        try:
            print(f"wrote {plot_plan(plan, args.plot)}", file=sys.stderr)
        except (ImportError, OSError, ValueError) as exc:
            print(f"splitplan: error: --plot: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
    if plan.solved:
        return EXIT_OK
    if plan.status == "infeasible":
        return EXIT_INFEASIBLE
    if plan.status == "time_limit":
        return EXIT_NO_SOLUTION
    return EXIT_INTERNAL


def _cmd_compare(args: argparse.Namespace, inst: Instance) -> int:
    from .baselines import compare, comparison_table

    methods = args.methods or list(METHODS)
    if not args.json:
        print(f"comparing {len(methods)} methods on {inst.name} ...", file=sys.stderr)
    rows, optimum, proven = compare(
        inst, methods, args.time_limit, args.seed, milp_time_limit_s=args.milp_time_limit
    )
    if args.json:
        out = {
            "instance": inst.name,
            "optimum": optimum if proven else None,
            "reference": optimum,
            "reference_is_optimum": proven,
            "methods": [
                {
                    "method": r.method,
                    "status": r.plan.status if r.plan else "not_applicable",
                    "objective": r.plan.objective if r.plan else None,
                    "above_optimum": r.above_optimum(optimum),
                    "wall_s": r.wall_s,
                    "assignment": r.plan.assignment if r.plan else None,
                    "note": r.note or "; ".join(r.plan.reasons if r.plan else []),
                }
                for r in rows
            ],
        }
        print(json.dumps(out))
    else:
        what = "optimum" if proven else "no proven optimum; best lower bound"
        print(f"instance {inst.name}: {what} {optimum if optimum is not None else 'unknown'}")
        print(comparison_table(rows, optimum, proven))
    return EXIT_OK


def _load_network_from(path: str) -> Instance:
    """An instance file, or a JSON file with just a `network` object (and optionally `objective`
    and `constraints`) in the instance format; errors name the file and the field."""
    from pathlib import Path

    from .instance import FORMAT, instance_from_dict

    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return load_instance(path)  # its messages say what is wrong with the file
    if isinstance(data, dict) and "network" in data and "dnn" not in data:
        # a placeholder DNN so that the instance reader validates the network with field paths
        data = {"format": FORMAT, **data, "dnn": {"input_bytes": 0, "layers": []}}
        data["dnn"]["layers"] = [{"name": "placeholder", "inputs": ["input"]}]
        data.get("constraints", {}).pop("pin", None)
        try:
            return instance_from_dict(data)
        except InstanceError as exc:
            raise exc.in_file(path) from None
    return load_instance(path)


def _cmd_profile(args: argparse.Namespace) -> int:
    from .errors import TORCH_INSTALL, require

    try:
        if args.network and args.network_from:
            raise UsageError(
                "give either --network or --network-from, not both", field="--network-from"
            )
        check_writable(args.output, "--output")
        require("torch", "profiling", TORCH_INSTALL)
    except SplitplanError as exc:
        return _bad_input(exc, False)
    from .instance import Constraints, Network, Node, Objective, save_instance
    from .profile import ProfileError, profile
    from .zoo import load_model, parse_shape

    base = None
    try:
        if args.network_from:
            base = _load_network_from(args.network_from)
        shape = parse_shape(args.input_shape) if args.input_shape else None
        model, x = load_model(args.model, shape, args.input_dtype)
        print(
            f"profiling {args.model} at {args.granularity} granularity on {args.device} "
            f"({args.warmup} warm-up + {args.repeats} timed runs) ...",
            file=sys.stderr,
        )
        dnn, report = profile(
            model,
            x,
            granularity=args.granularity,
            activation_dtype=args.dtype,
            repeats=args.repeats,
            warmup=args.warmup,
            device=args.device,
            device_class=args.device_class,
            name=args.model.rpartition(":")[2] or args.model,
            tracer=args.tracer,
            threads=args.threads or None,
        )
    except InstanceError as exc:
        return _bad_input(exc, False)
    except (ProfileError, ValueError, RuntimeError) as exc:
        print(f"splitplan: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(report.summary(), file=sys.stderr)
    if report.unstable:
        print(f"splitplan: warning: {report.unstable_summary()}", file=sys.stderr)
    if args.network:
        from .devices import network_preset, with_roofline_times

        try:
            network = network_preset(args.network, bandwidth_bytes_per_s=args.bandwidth)
        except ValueError as exc:
            print(f"splitplan: error: --network: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        classes = sorted({n.device_class for n in network.nodes if n.device_class})
        dnn = with_roofline_times(dnn, classes)
        objective, constraints = Objective(), Constraints()
    elif base is not None:
        network, objective = base.network, base.objective
        constraints = Constraints({}, base.constraints.max_latency_s)
    else:
        flops = sum(la.flops for la in dnn.layers)
        node = Node(
            "host", max(flops / max(report.sum_of_layers_s, 1e-12), 1.0), report.device_class
        )
        network, objective, constraints = (
            Network((node,), (), "host", "host"),
            Objective(),
            Constraints(),
        )
    try:
        inst = Instance(dnn, network, objective, constraints, f"{dnn.name}-profiled")
    except InstanceError as exc:  # e.g. a negative --bandwidth
        return _bad_input(exc, False)
    try:
        save_instance(inst, args.output)
    except OSError as exc:  # checked before profiling; it can still vanish meanwhile
        print(f"splitplan: error: --output: cannot write {args.output}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(f"wrote {args.output}: {len(dnn.layers)} layers", file=sys.stderr)
    return EXIT_OK


def _cmd_online(args: argparse.Namespace, inst: Instance) -> int:
    from .online.cli import run

    return run(args, inst)


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit code (`ExitCode`). Never lets a traceback reach the
    user: user errors are one line and exit 2, anything else is a bug, one line and exit 1
    (set SPLITPLAN_TRACEBACK=1 to see the traceback)."""
    started_s = time.perf_counter()  # --time-limit covers the whole command
    argv = sys.argv[1:] if argv is None else list(argv)
    _Parser.json_errors = "--json" in argv
    try:
        return _main(argv, started_s)
    except SplitplanError as exc:
        return _bad_input(exc, _Parser.json_errors)
    except KeyboardInterrupt:
        print("splitplan: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK
    except RecursionError:
        print("splitplan: error: input nested too deeply to process", file=sys.stderr)
        return EXIT_BAD_INPUT
    except Exception as exc:
        if os.environ.get("SPLITPLAN_TRACEBACK"):
            raise
        print(
            f"splitplan: internal error: {type(exc).__name__}: {exc} (a bug: please report it; "
            "SPLITPLAN_TRACEBACK=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL


def _main(argv: Sequence[str], started_s: float) -> int:
    from ._output import native_stdout_to_stderr

    args = _parser().parse_args(argv)
    args.started_s = started_s
    if args.command == "profile":
        return _cmd_profile(args)
    if args.command in ("export", "run"):
        from .runtime import cmd_export, cmd_run

        try:
            return (cmd_export if args.command == "export" else cmd_run)(args)
        except KeyboardInterrupt:
            print("splitplan: interrupted", file=sys.stderr)
            return 130
    if args.command == "adapt":
        from .online.adapt_cli import run as run_adapt

        return run_adapt(args)
    if args.command in ("nas", "retrain"):
        from .nas.command import cmd_nas, cmd_retrain

        try:
            # solvers' native output must not mix with the front table on stdout
            with native_stdout_to_stderr():
                return (cmd_nas if args.command == "nas" else cmd_retrain)(args)
        except KeyboardInterrupt:
            print("splitplan: interrupted (a rerun resumes the study)", file=sys.stderr)
            return ExitCode.INTERRUPTED
    commands = {
        "solve": _cmd_solve,
        "validate": _cmd_validate,
        "compare": _cmd_compare,
        "online": _cmd_online,
    }
    try:
        try:
            inst = load_instance(args.file)
        except InstanceError as exc:
            return _bad_input(exc, args.json)
        # --json promises one object on stdout: solvers' native writes go to stderr (issue 15)
        with native_stdout_to_stderr():
            return commands[args.command](args, inst)
    except KeyboardInterrupt:
        print("splitplan: interrupted", file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
