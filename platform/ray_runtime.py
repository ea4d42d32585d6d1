"""Starting or joining Ray.

Locally, Ray gets more logical CPUs than the machine has cores, so that Train workers, Ray Data
decode tasks and Tune trials cannot starve each other on a 2-core laptop (decode is mostly I/O and
native code). An address, or RAY_ADDRESS, joins an existing cluster instead.

What Ray prints follows `verbosity()` (the CLI's `--quiet` / `-v`, through ZSAR_VERBOSITY):
0 only errors, and workers' output is not echoed to the driver; 1 (default) warnings, without the
notices that say nothing about this run (`HARMLESS`); 2 everything, INFO included. Where Ray echoes
worker output (stdout or stderr) on the driver, the CLI has already pointed the driver's stdout at
stderr, so a command's result stays alone on stdout.
"""

from __future__ import annotations

import logging
import os

VERBOSITY_ENV = "ZSAR_VERBOSITY"

# (logger, start of the message) of notices that say nothing about the run:
# - a new local cluster always enables token authentication and says so;
# - zsar turns Ray Data's progress bars off on purpose (it prints its own progress lines).
# - Ray Data checks for free CPUs once, at a moment when a sweep's trials or Train's placement
#   group may hold them all; the tasks it then runs get CPUs as those are released.
HARMLESS = (
    ("ray._private.authentication.authentication_token_setup", "Token authentication is enabled for this Ray cluster"),
    ("ray.data._internal.progress", "Progress bars disabled"),
    ("ray.data.dataset", "Warning: The Ray cluster currently does not have any available CPUs"),
)


def verbosity() -> int:
    try:
        return int(os.environ.get(VERBOSITY_ENV, "1"))
    except ValueError:
        return 1


class _DropNotice(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.getMessage()).startswith(self.start)


def silence_harmless_notices() -> None:
    """Drop the `HARMLESS` notices in this process (once; verbosity 2 keeps them)."""
    if verbosity() >= 2:
        return
    for name, start in HARMLESS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNotice) and f.start == start for f in logger.filters):
            logger.addFilter(_DropNotice(start))


def local_cpus() -> int:
    return max(4, 2 * (os.cpu_count() or 1))


_sigterm_interrupts = False


def interrupt_on_sigterm() -> None:
    """SIGTERM (`zsar jobs stop`, a preempted node, `kill`) takes the same path as Ctrl-C: whatever
    handles SIGINT at that moment handles it (KeyboardInterrupt, or Ray Tune's graceful stop), so
    runs end KILLED instead of being left RUNNING. Kept across `init_ray` (ray.init replaces it)."""
    import signal
    import threading

    global _sigterm_interrupts
    if threading.current_thread() is not threading.main_thread():
        return
    _sigterm_interrupts = True

    def as_interrupt(signum, frame):
        handler = signal.getsignal(signal.SIGINT)
        if callable(handler) and handler is not as_interrupt:
            handler(signal.SIGINT, frame)
        else:
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, as_interrupt)


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    import ray

    address = address or os.environ.get("RAY_ADDRESS")
    if address and address.startswith("ray://"):
        from zsar.errors import ConfigError

        raise ConfigError(f"{address} is a Ray Client address, and Ray Data cannot decode videos through Ray Client; run "
                          "the command on the cluster instead: zsar submit --address http://HEAD:8265 -- <command>")
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    silence_harmless_notices()
    level = {0: logging.ERROR, 1: logging.WARNING}.get(verbosity(), logging.INFO)
    kwargs = dict(logging_level=level, log_to_driver=verbosity() > 0, configure_logging=True)
    if address:
        ray.init(address=address, **kwargs)
    else:
        # address="local": always a new local instance, never another session's cluster that
        # happens to run on this machine. The dashboard also serves the state API that Ray
        # Train's cleanup thread polls.
        ray.init(address="local", num_cpus=num_cpus or local_cpus(), dashboard_host="127.0.0.1", **kwargs)
    from ray.data import DataContext

    ctx = DataContext.get_current()
    ctx.enable_progress_bars = False  # zsar prints its own progress lines
    if _sigterm_interrupts:  # ray.init put its own SIGTERM handler (sys.exit) in place of the CLI's
        interrupt_on_sigterm()
    ctx.print_on_execution_start = False
