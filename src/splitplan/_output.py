"""Keep stdout for the command's own output: solvers' native writes go to stderr.

HiGHS, SCIP and CP-SAT are C/C++ libraries that write their logs (and, in HiGHS's case, stray
debugging lines even without a log, issue 15) straight to file descriptor 1, below Python's
`sys.stdout`. `--json` promises exactly one JSON object on stdout, so the command line runs
solves inside `native_stdout_to_stderr()`: descriptor 1 points at stderr for the duration, while
Python's `print` still reaches the real stdout.
"""

from __future__ import annotations

import contextlib
import ctypes
import io
import os
import sys
from collections.abc import Iterator


def _flush_c_stdio() -> None:
    """Flush the C library's stdio buffers (a solver's printf output may still sit there)."""
    try:
        ctypes.CDLL(None).fflush(None)
    except (OSError, AttributeError, TypeError):  # no C library to ask (e.g. some Windows builds)
        pass


def _stdout_fd() -> int | None:
    try:
        return sys.stdout.fileno()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return None  # replaced by an in-memory stream (pytest's capsys, a notebook)


@contextlib.contextmanager
def native_stdout_to_stderr() -> Iterator[None]:
    """Within the block, whatever is written to file descriptor 1 by native code goes to
    descriptor 2; Python's `sys.stdout` keeps writing to the real stdout."""
    try:
        sys.stdout.flush()
    except (AttributeError, OSError, ValueError):
        pass
    _flush_c_stdio()
    try:
        saved = os.dup(1)
    except OSError:  # no descriptor 1 at all: nothing to protect
        yield
        return
    python_stdout = sys.stdout
    swapped = None
    if _stdout_fd() == 1:
        # Python's stdout is descriptor 1 itself: give it its own copy of the real stdout, so
        # that moving descriptor 1 away does not take `print` with it.
        swapped = open(  # closed in the finally below
            saved,
            "w",
            encoding=getattr(python_stdout, "encoding", None) or "utf-8",
            errors=getattr(python_stdout, "errors", None) or "strict",
            closefd=False,
            buffering=1 if python_stdout.isatty() else -1,
        )
        sys.stdout = swapped
    try:
        os.dup2(2, 1)
        yield
    finally:
        _flush_c_stdio()
        os.dup2(saved, 1)
        try:
            if swapped is not None:
                swapped.flush()  # may raise BrokenPipeError: the caller handles it
        finally:
            sys.stdout = python_stdout
            if swapped is not None:
                with contextlib.suppress(OSError):  # a closed pipe was reported by flush
                    swapped.close()
            os.close(saved)
