"""The `zsar` command. Thin: parse (cli_args), call one function (cli_commands), print. User
errors print one line and exit 2; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import contextlib
import sys

from zsar import console
from zsar.cli_args import build_parser
from zsar.cli_commands import (
    cmd_best, cmd_cache_ls, cmd_cache_rm, cmd_config_show, cmd_data_check, cmd_data_synth, cmd_datasets, cmd_demo,
    cmd_eval, cmd_jobs, cmd_methods, cmd_prepare, cmd_report, cmd_reproduce, cmd_rerun, cmd_submit, cmd_sweep,
    cmd_train, cmd_ui, cmd_weights,
)

__all__ = ["build_parser", "main"]


COMMANDS = {
    ("demo",): cmd_demo,
    ("methods",): cmd_methods,
    ("datasets",): cmd_datasets,
    ("config", "show"): cmd_config_show,
    ("data", "synth"): cmd_data_synth,
    ("data", "check"): cmd_data_check,
    ("train",): cmd_train,
    ("eval",): cmd_eval,
    ("report",): cmd_report,
    ("prepare",): cmd_prepare,
    ("cache", "ls"): cmd_cache_ls,
    ("cache", "rm"): cmd_cache_rm,
    ("sweep",): cmd_sweep,
    ("best",): cmd_best,
    ("rerun",): cmd_rerun,
    ("submit",): cmd_submit,
    ("jobs",): cmd_jobs,
    ("ui",): cmd_ui,
    ("weights",): cmd_weights,
    ("reproduce",): cmd_reproduce,
}


# Commands whose stdout is their result alone (console.results_apart): they print it with `emit`.
# A command that prints its result with print() (submit, jobs: no local Ray) must not be listed.
RESULT_ONLY = {("methods",), ("datasets",), ("config", "show"), ("data", "synth"), ("data", "check"), ("train",), ("eval",),
               ("report",), ("prepare",), ("cache", "ls"), ("cache", "rm"), ("sweep",), ("best",), ("ui",), ("rerun",),
               ("weights",), ("reproduce",), ("demo",)}


def main(argv: list[str] | None = None) -> int:
    from zsar.errors import ZsarError
    from zsar.ray_runtime import interrupt_on_sigterm

    program = argv is None  # the `zsar` program itself, not a call from Python
    argv, level = console.split_flags(sys.argv[1:] if program else list(argv))
    args = build_parser().parse_args(argv)
    console.configure(level)
    key = tuple(x for x in (args.command, getattr(args, "config_command", None), getattr(args, "data_command", None),
                            getattr(args, "cache_command", None)) if x)
    key = key[:1] if key[0] in ("jobs", "weights") else key
    apart = console.results_apart(program, level) if key in RESULT_ONLY else contextlib.nullcontext()
    if program:
        interrupt_on_sigterm()
    try:
        with apart:
            status = COMMANDS[key](args)
    except ZsarError as e:
        console.error(f"zsar: error: {e}")
        return 2
    except KeyboardInterrupt:
        console.error("zsar: interrupted")
        return 130
    return status or 0


if __name__ == "__main__":
    raise SystemExit(main())
