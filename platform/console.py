"""Where a command's output goes: its result on stdout, everything else on stderr.

A command prints its result (JSON, a table, a path) with `emit`. While it runs, `results_apart`
points stdout at stderr, so that whatever else writes to stdout (Ray echoing worker output and
raylet warnings on the driver, a library's print) lands on stderr and `zsar eval ... | jq` works.
When this process is the `zsar` program the switch is made on file descriptor 1 itself and never
undone: native code, child processes and Ray's exit-time flush of deduplicated worker lines then
also write to stderr. Called in-process (`zsar.cli.main([...])` in a test), only `sys.stdout` is
swapped, and restored afterwards.

Verbosity (`--quiet` 0, default 1, `-v` 2) reaches Ray through ZSAR_VERBOSITY (`zsar.ray_runtime`);
here it sets the Python loggers, MLflow's artifact progress bars (off below 2) and, with `--quiet`
in the program, sends stderr to /dev/null: only the result and an error line remain.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
import warnings

from zsar.ray_runtime import VERBOSITY_ENV

_result = None  # the stream `emit` writes to while a command runs
_errors = None  # where the error line goes when --quiet silenced stderr
QUIET_FLAGS, VERBOSE_FLAGS = ("-q", "--quiet"), ("-v", "--verbose")


def split_flags(argv: list[str]) -> tuple[list[str], int]:
    """(argv without the global --quiet/-v flags, verbosity). They may stand anywhere before `--`
    (after it they belong to the command a `zsar submit` runs)."""
    cut = argv.index("--") if "--" in argv else len(argv)
    head, tail = argv[:cut], argv[cut:]
    quiet = any(a in QUIET_FLAGS for a in head)
    verbose = any(a in VERBOSE_FLAGS for a in head)
    level = 0 if quiet else 2 if verbose else 1
    return [a for a in head if a not in QUIET_FLAGS + VERBOSE_FLAGS] + tail, level


def emit(text: str = "", end: str = "\n") -> None:
    """Print a command's result (stdout, however the command's logs are routed)."""
    stream = _result if _result is not None else sys.stdout
    stream.write(text + end)
    stream.flush()


def result_stream():
    """The stream `emit` writes to (for code that takes a file to print its result to)."""
    return _result if _result is not None else sys.stdout


def error(text: str) -> None:
    stream = _errors if _errors is not None else sys.stderr
    print(text, file=stream, flush=True)


def configure(level: int) -> None:
    """Set the verbosity for this process and the Ray processes it starts."""
    os.environ[VERBOSITY_ENV] = str(level)
    if level < 2:
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    logging_level = {0: logging.ERROR, 1: logging.WARNING}.get(level, logging.INFO)
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", logging.getLevelName(logging_level))  # read when mlflow is imported
    for name in ("mlflow", "alembic", "ray"):
        logging.getLogger(name).setLevel(logging_level)
    if level == 0:
        warnings.simplefilter("ignore")


@contextlib.contextmanager
def results_apart(program: bool, level: int = 1):
    """Run a command with stdout pointed at stderr; `emit` writes to the real stdout."""
    global _result, _errors
    sys.stdout.flush()
    if program:
        _result = os.fdopen(os.dup(1), "w", buffering=1)
        os.dup2(2, 1)  # for good: see the module docstring
        sys.stdout = sys.stderr  # one stream, so that logs keep their order
        if level == 0:
            _errors = os.fdopen(os.dup(2), "w", buffering=1)
            _silence_stderr()
        yield
        _result.flush()
        return
    saved, _result = sys.stdout, sys.stdout
    sys.stdout = sys.stderr
    try:
        yield
    finally:
        sys.stdout, _result = saved, None


def _silence_stderr() -> None:
    devnull = os.open(os.devnull, os.O_WRONLY)
    sys.stderr.flush()
    os.dup2(devnull, 2)
    os.dup2(devnull, 1)
    os.close(devnull)

    def excepthook(kind, value, tb):  # a bug's traceback still reaches the user
        traceback.print_exception(kind, value, tb, file=_errors)

    sys.excepthook = excepthook
