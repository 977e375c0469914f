"""Errors a user can cause, the exit codes of the command line, and the JSON error shape.

Every mistake a user can make (a bad instance, widths or trace file, a bad argument, a missing
optional dependency) raises a `SplitplanError` carrying the file, the field path and the reason;
the command line turns one into a single line on stderr, exit code `ExitCode.BAD_INPUT` and,
under ``--json``, the object of `error_json`. Anything else that escapes a command is a bug
(`ExitCode.INTERNAL`). This module imports nothing heavy: `import splitplan` stays light.
"""

from __future__ import annotations

import json
from enum import IntEnum
from pathlib import Path
from typing import Any


class ExitCode(IntEnum):
    """Exit codes of every `splitplan` command (README, "Command line")."""

    OK = 0  # done (solve: a plan is printed; check its status)
    INTERNAL = 1  # a bug: please report it
    BAD_INPUT = 2  # a file, field or argument is wrong; one line on stderr says which
    INFEASIBLE = 3  # valid input, but no plan satisfies the constraints
    NO_SOLUTION = 4  # the time limit passed before any plan was found
    RUN_FAILED = 5  # `splitplan run`: a node process failed (the message names it)
    INTERRUPTED = 130  # Ctrl-C (128 + SIGINT, as shells report it)


class SplitplanError(Exception):
    """A user mistake: which file (None if none), which field path ("" if the whole input) and
    what is wrong. `str()` is the one line the command line prints."""

    def __init__(self, reason: str = "", *, field: str = "", file: str | None = None) -> None:
        self.reason = reason
        self.field = field
        self.file = file
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.file}: " if self.file else ""
        at = f"{self.field}: " if self.field else ""
        return f"{where}{at}{self.reason}"

    def to_dict(self) -> dict[str, Any]:
        """The ``error`` member of `error_json`."""
        return {
            "type": type(self).__name__,
            "file": self.file,
            "field": self.field or None,
            "reason": self.reason,
            "message": str(self),
        }


class UsageError(SplitplanError, ValueError):
    """Command-line arguments that cannot work together (the field is the option, e.g.
    ``--network``)."""


class MissingDependency(SplitplanError, ImportError):
    """An optional package a command needs is not installed; the reason says how to install it."""


class AssignmentError(SplitplanError, ValueError):
    """An assignment {layer: node} handed to the evaluator that misses or invents layers or
    nodes."""


TORCH_INSTALL = (
    "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu "
    "&& pip install 'splitplan[torch]'"
)


def require(module: str, what: str, install: str) -> None:
    """Raise `MissingDependency` unless `module` imports: `what` needs it, `install` gets it."""
    import importlib

    try:
        importlib.import_module(module)
    except ImportError:
        raise MissingDependency(f"{what} needs {module}: {install}") from None


def check_writable(path: str | Path, option: str) -> None:
    """Raise `UsageError` (field `option`) when `path` cannot be written: checked before a long
    computation (profiling, training), not after it."""
    import os

    out = Path(path)
    folder = out.parent
    if out.is_dir():
        raise UsageError(f"{path} is a directory, not a file", field=option)
    if not folder.is_dir():
        raise UsageError(f"cannot write {path}: no folder {folder}", field=option)
    if not os.access(folder, os.W_OK) or (out.exists() and not os.access(out, os.W_OK)):
        raise UsageError(f"cannot write {path}: permission denied", field=option)


def error_json(exc: BaseException, status: str = "bad_input") -> dict[str, Any]:
    """The one JSON error shape of every command with ``--json``:
    ``{"status": "bad_input", "error": {"type", "file", "field", "reason", "message"}}``."""
    if isinstance(exc, SplitplanError):
        error = exc.to_dict()
    else:
        error = {
            "type": type(exc).__name__,
            "file": getattr(exc, "file", None),
            "field": getattr(exc, "field", None) or None,
            "reason": getattr(exc, "reason", None) or str(exc),
            "message": str(exc),
        }
    return {"status": status, "error": error}


def read_json(path: str | Path, error: type[SplitplanError] = SplitplanError) -> Any:
    """Parse a JSON file; every way it can fail (missing, a directory, unreadable, not UTF-8,
    invalid or too deeply nested JSON) raises `error` naming the file."""
    file = str(path)
    p = Path(path)

    def bad(reason: str) -> SplitplanError:
        return error(reason, file=file)

    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise bad("no such file") from None
    except IsADirectoryError:
        raise bad("is a directory, not a file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise bad(f"cannot read: {exc}") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise bad(f"invalid JSON at line {exc.lineno} column {exc.colno}: {exc.msg}") from None
    except RecursionError:
        raise bad("JSON nested too deeply to read") from None
