"""Starting or joining Ray.

Locally, Ray gets more logical CPUs than the machine has cores, so that Train workers, Ray Data
decode tasks and Tune trials cannot starve each other on a 2-core laptop (decode is mostly I/O and
native code). An address, or RAY_ADDRESS, joins an existing cluster instead.
"""

from __future__ import annotations

import logging
import os


def local_cpus() -> int:
    return max(4, 2 * (os.cpu_count() or 1))


def init_ray(address: str | None = None, num_cpus: int | None = None) -> None:
    import ray

    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    address = address or os.environ.get("RAY_ADDRESS")
    kwargs = dict(logging_level=logging.WARNING, log_to_driver=True, configure_logging=True)
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
    ctx.print_on_execution_start = False
