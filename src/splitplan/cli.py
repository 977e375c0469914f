"""Command line: `splitplan COMMAND ...`, one registry of commands (`COMMANDS`) and one dispatch.

Each command is a `Command`: its name and one-line help, `add_arguments(parser)`,
`take_action(args, inst) -> exit code`, and its traits as attributes (it reads an instance file
first; its stdout is kept free of solvers' native output; its message on Ctrl-C). The commands of
the wings (online, adapt, nas, retrain, export, run) are `WingCommand`s: their module is imported,
and their arguments declared, only when that command runs, so that `splitplan --help` and the
core commands never import torch, optuna or a wing. The commands parse and print; what they run
is in the library (`splitplan.solve`, `baselines.compare`, `profile.profiled_instance`,
`online.study`, ...).

Exit codes (`splitplan.errors.ExitCode`): 0 solved (a plan is printed), 1 internal error, 2 bad
input, 3 infeasible, 4 no plan found within the time limit. A user error is one line on stderr
naming the file and field, and under --json the one error object of `errors.error_json`.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import math
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from ._output import native_stdout_to_stderr
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
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, got {text!r}")
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


class Command:
    """One `splitplan` command (Optuna's `cli.py` is the model): the registry `COMMANDS` holds
    one of these per command, and `main` dispatches on nothing else.

    Traits, read by the dispatch instead of special cases:
    - `loads_instance`: the positional FILE (``args.file``) is an instance file, read before the
      action; a bad file is exit 2 (and the JSON error object under --json); `take_action` gets
      the `Instance`.
    - `protect_stdout`: the action runs inside `native_stdout_to_stderr()`, so that solvers'
      native writes never mix with the command's JSON or table on stdout.
    - `interrupted`: the line printed on Ctrl-C (exit code `ExitCode.INTERRUPTED`).
    """

    name: str = ""
    help: str = ""  # the line `splitplan --help` shows
    loads_instance: bool = False
    protect_stdout: bool = False
    interrupted: str = "splitplan: interrupted"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """Declare the command's arguments on its own subparser."""
        raise NotImplementedError

    def take_action(self, args: argparse.Namespace, inst: Instance | None) -> int:
        """Run the command; returns its exit code. `inst` is the loaded instance file when
        `loads_instance`, else None."""
        raise NotImplementedError


class _Solve(Command):
    name = "solve"
    help = "solve an instance file to proven optimality"
    loads_instance = True
    protect_stdout = True  # --json promises one object on stdout (issue 15)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        from .solvers import SOLVERS

        parser.add_argument(
            "file", metavar="FILE", help="instance file (splitplan-instance/1 JSON)"
        )
        parser.add_argument(
            "--solver",
            type=_solver,
            default="highs",
            metavar="|".join(SOLVERS) + "|pyomo:NAME",
            help="default: highs; pyomo:NAME solves the Pyomo model with Pyomo's solver NAME",
        )
        parser.add_argument(
            "--time-limit", type=_positive_seconds, metavar="S", help="stop after S seconds"
        )
        parser.add_argument(
            "--polish",
            choices=("auto", "beside", "after", "off"),
            default="auto",
            help="where the search is hard, improve the solver's plan on neighbourhoods of a "
            "few nodes: beside the solver in a second process, after it (a quarter of the "
            "limit), or not (default: auto, beside with two cores or more)",
        )
        parser.add_argument("--json", action="store_true", help="print one JSON object")
        parser.add_argument("--verbose", action="store_true", help="show the solver's log")
        parser.add_argument(
            "--plot", metavar="PNG", help="draw the plan's timeline per node and route (matplotlib)"
        )

    def take_action(self, args: argparse.Namespace, inst: Instance | None) -> int:
        from .plan import solve

        assert inst is not None  # loads_instance
        if not args.json:
            print(
                f"solving {inst.name}: {len(inst.dnn.layers)} layers on "
                f"{len(inst.network.nodes)} nodes with {args.solver} ...",
                file=sys.stderr,
            )
        limit = args.time_limit
        if limit is not None:  # --time-limit covers the whole command, reading the file included
            limit = max(limit - (time.perf_counter() - args.started_s), 1e-3)
        plan = solve(inst, args.solver, limit, verbose=args.verbose, polish=args.polish)
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


class _Compare(Command):
    name = "compare"
    help = "the exact MILP against the chain DP and heuristics, on one evaluator"
    loads_instance = True
    protect_stdout = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE")
        parser.add_argument(
            "--methods",
            type=_methods,
            help=f"comma-separated subset of: {', '.join(METHODS)} (default: all)",
        )
        parser.add_argument(
            "--time-limit",
            type=_positive_seconds,
            default=1.0,
            metavar="S",
            help="budget of each heuristic search, s (default 1)",
        )
        parser.add_argument(
            "--milp-time-limit",
            type=_positive_seconds,
            default=60.0,
            metavar="S",
            help="time limit of each MILP solve, s (default 60)",
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the randomised heuristics")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def take_action(self, args: argparse.Namespace, inst: Instance | None) -> int:
        from .baselines import compare

        assert inst is not None  # loads_instance
        methods = args.methods or list(METHODS)
        if not args.json:
            print(f"comparing {len(methods)} methods on {inst.name} ...", file=sys.stderr)
        result = compare(
            inst, methods, args.time_limit, args.seed, milp_time_limit_s=args.milp_time_limit
        )
        if args.json:
            print(json.dumps(result.to_dict()))
        else:
            print(result.summary())
        return EXIT_OK


class _Profile(Command):
    name = "profile"
    help = "profile a zoo model into an instance file (needs torch)"

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument(
            "--model",
            required=True,
            help="resnet18, resnet50, mobilenetv2, vgg16, vit-tiny, mlp, or your own model: "
            "path/to/file.py:ClassOrFactory or package.module:factory",
        )
        parser.add_argument(
            "--input-shape",
            metavar="SHAPE",
            help="input shape with the batch, e.g. 1,3,224,224 (required for your own model)",
        )
        parser.add_argument(
            "--input-dtype", default="float32", help="input dtype (default float32; int64 for ids)"
        )
        parser.add_argument("--granularity", choices=("op", "module", "block"), default="module")
        parser.add_argument(
            "--dtype",
            choices=("fp32", "fp16", "int8"),
            default="fp32",
            help="activation dtype of out_bytes (default fp32)",
        )
        parser.add_argument("--repeats", type=int, default=5, help="timed runs; the median is kept")
        parser.add_argument("--warmup", type=int, default=2)
        parser.add_argument(
            "--tracer",
            choices=("auto", "fx", "export"),
            default="auto",
            help="torch.fx, torch.export, or fx with export where fx fails (default auto)",
        )
        parser.add_argument("--device", default="cpu", help="torch device to time on (cpu, cuda)")
        parser.add_argument(
            "--threads",
            type=whole_number(0),
            default=1,
            metavar="N",
            help="torch CPU threads while timing (default 1: per-layer times do not depend on the "
            "machine's other load as much; 0 keeps torch's own setting)",
        )
        parser.add_argument(
            "--device-class", help="name of the measured class (default host-cpu or the GPU's name)"
        )
        parser.add_argument(
            "--network",
            metavar="PRESET",
            help="a network preset (its device classes get roofline-estimated times): "
            "3tier-LINK, pi4-edge-LINK, phone-edge-LINK with LINK in 3g, lte, 5g, wifi, ethernet; "
            "star-wifi, chain-4, mesh-5",
        )
        parser.add_argument(
            "--bandwidth",
            type=float,
            metavar="BYTES_PER_S",
            help="override the preset's device uplink bandwidth",
        )
        parser.add_argument(
            "--network-from",
            metavar="INSTANCE",
            help="take the network, objective and latency limit of this instance "
            "(default: one node of the measured class)",
        )
        parser.add_argument("-o", "--output", required=True, metavar="FILE")

    def take_action(self, args: argparse.Namespace, inst: Instance | None) -> int:
        from .errors import TORCH_INSTALL, require

        # Everything cheap is checked before the model is profiled (issue 15).
        try:
            if args.network and args.network_from:
                raise UsageError(
                    "give either --network or --network-from, not both", field="--network-from"
                )
            check_writable(args.output, "--output")
            require("torch", "profiling", TORCH_INSTALL)
        except SplitplanError as exc:
            return _bad_input(exc, False)
        network = None
        if args.network:
            from .devices import network_preset

            try:
                network = network_preset(args.network, bandwidth_bytes_per_s=args.bandwidth)
            except ValueError as exc:  # an unknown preset, a negative --bandwidth
                print(f"splitplan: error: --network: {exc}", file=sys.stderr)
                return EXIT_BAD_INPUT
        from .instance import save_instance
        from .profile import ProfileError, ProfileReport, profiled_instance
        from .zoo import parse_shape

        def report(rep: ProfileReport) -> None:
            print(rep.summary(), file=sys.stderr)
            if rep.unstable:
                print(f"splitplan: warning: {rep.unstable_summary()}", file=sys.stderr)

        try:
            profiled = profiled_instance(
                args.model,
                input_shape=parse_shape(args.input_shape) if args.input_shape else None,
                input_dtype=args.input_dtype,
                granularity=args.granularity,
                activation_dtype=args.dtype,
                repeats=args.repeats,
                warmup=args.warmup,
                device=args.device,
                device_class=args.device_class,
                tracer=args.tracer,
                threads=args.threads or None,
                network=network,
                network_from=args.network_from,
                progress=lambda line: print(line, file=sys.stderr),
                on_report=report,
            )
        except InstanceError as exc:  # --network-from's file, or the instance built
            return _bad_input(exc, False)
        except (ProfileError, ValueError, RuntimeError) as exc:
            print(f"splitplan: error: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        try:
            save_instance(profiled, args.output)
        except OSError as exc:  # checked before profiling; it can still vanish meanwhile
            print(f"splitplan: error: --output: cannot write {args.output}: {exc}", file=sys.stderr)
            return EXIT_BAD_INPUT
        print(f"wrote {args.output}: {len(profiled.dnn.layers)} layers", file=sys.stderr)
        return EXIT_OK


class _Validate(Command):
    name = "validate"
    help = "check an instance file and report problems"
    loads_instance = True
    protect_stdout = True

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        parser.add_argument("file", metavar="FILE")
        parser.add_argument("--json", action="store_true", help="print one JSON object")

    def take_action(self, args: argparse.Namespace, inst: Instance | None) -> int:
        from .cost import tables

        assert inst is not None  # loads_instance
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
                f"{args.file}: valid: {inst.name}, {summary['layers']} layers, "
                f"{summary['nodes']} nodes, {summary['links']} links{forms}, objective "
                f"{inst.objective.kind}"
            )
            for reason in reasons:
                print(f"{args.file}: infeasible: {reason}")
        # A valid file that no plan can satisfy: the same code as `solve` gives it (issue 15).
        return EXIT_INFEASIBLE if reasons else EXIT_OK


class WingCommand(Command):
    """A command whose arguments and action live in a wing module (``module:function`` names),
    imported only when this command is chosen: `splitplan --help` and the other commands never
    import it (nor torch or optuna through it).

    `arguments(parser)` declares the arguments; `action(args)` runs the command, or
    `action(args, inst)` when `loads_instance`."""

    def __init__(
        self,
        name: str,
        help: str,
        module: str,
        *,
        arguments: str = "add_arguments",
        action: str = "take_action",
        loads_instance: bool = False,
        protect_stdout: bool = False,
        interrupted: str = Command.interrupted,
    ) -> None:
        self.name, self.help, self.module = name, help, module
        self.arguments, self.action = arguments, action
        self.loads_instance, self.protect_stdout = loads_instance, protect_stdout
        self.interrupted = interrupted

    def _function(self, attr: str) -> Callable[..., Any]:
        return getattr(importlib.import_module(self.module), attr)

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        self._function(self.arguments)(parser)

    def take_action(self, args: argparse.Namespace, inst: Instance | None) -> int:
        action = self._function(self.action)
        return int(action(args, inst) if self.loads_instance else action(args))


_NAS_INTERRUPTED = "splitplan: interrupted (a rerun resumes the study)"

# The registry, in the order `splitplan --help` lists the commands.
COMMANDS: dict[str, Command] = {
    command.name: command
    for command in (
        _Solve(),
        _Compare(),
        _Profile(),
        _Validate(),
        WingCommand(
            "online",
            "online splitting under a fading channel: optimal stopping, look-ahead, placement",
            "splitplan.online.cli",
            action="run",
            loads_instance=True,
            protect_stdout=True,
        ),
        WingCommand(
            "adapt",
            "run-time width adaptation of a slimmable encoder on a bandwidth trace",
            "splitplan.online.adapt_cli",
            action="run",
        ),
        WingCommand(
            "nas",
            "joint architecture and split search (Optuna outer loop, exact MILP inner loop)",
            "splitplan.nas.command",
            arguments="add_nas_arguments",
            action="cmd_nas",
            protect_stdout=True,  # solvers' native output must not mix with the front table
            interrupted=_NAS_INTERRUPTED,
        ),
        WingCommand(
            "retrain",
            "retrain the front's architectures of a NAS report from scratch",
            "splitplan.nas.command",
            arguments="add_retrain_arguments",
            action="cmd_retrain",
            protect_stdout=True,
            interrupted=_NAS_INTERRUPTED,
        ),
        WingCommand(
            "export",
            "split a model by a plan into one module per node (needs torch)",
            "splitplan.runtime",
            arguments="add_export_arguments",
            action="cmd_export",
        ),
        WingCommand(
            "run",
            "run an export directory, one process per node, measured against the plan",
            "splitplan.runtime",
            arguments="add_run_arguments",
            action="cmd_run",
        ),
    )
}


class _CommandParser(_Parser):
    """The subparser of one command: its arguments are declared the first time it parses or
    prints its help, so that only the chosen command's `add_arguments` ever runs."""

    def __init__(self, *args: Any, command: Command | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._command = command

    def _declare(self) -> None:
        command, self._command = self._command, None
        if command is not None:
            command.add_arguments(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        self._declare()
        return super().parse_known_args(args, namespace)

    def format_help(self) -> str:
        self._declare()
        return super().format_help()

    def format_usage(self) -> str:
        self._declare()
        return super().format_usage()


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="splitplan",
        allow_abbrev=False,
        description="Optimal placement of DNN layers across device, edge and cloud nodes.",
    )
    sub = parser.add_subparsers(
        dest="command", required=True, metavar="COMMAND", parser_class=_CommandParser
    )
    for command in COMMANDS.values():
        sub.add_parser(command.name, help=command.help, command=command)
    return parser


def _bad_input(exc: SplitplanError, as_json: bool) -> int:
    print(f"splitplan: error: {exc}", file=sys.stderr)
    if as_json:
        print(json.dumps(error_json(exc)))
    return EXIT_BAD_INPUT


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
    args = _parser().parse_args(argv)
    args.started_s = started_s
    command = COMMANDS[args.command]
    try:
        inst = None
        if command.loads_instance:
            try:
                inst = load_instance(args.file)
            except InstanceError as exc:
                return _bad_input(exc, getattr(args, "json", False))
        protect = native_stdout_to_stderr() if command.protect_stdout else contextlib.nullcontext()
        with protect:
            return command.take_action(args, inst)
    except KeyboardInterrupt:
        print(command.interrupted, file=sys.stderr)
        return ExitCode.INTERRUPTED
    except BrokenPipeError:
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
