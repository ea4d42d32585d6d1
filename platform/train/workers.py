"""Where training workers ran, and how Ray Train is asked to place, scale and restart them.

Every Ray Train worker writes one small JSON record (rank, PID, Ray node, attempt) into
`<run dir>/workers/` when it starts, and prints the same on stderr. The run directory must be on
storage every node reads (see cluster/README.md), so the driver, `zsar jobs logs` and tests can
tell which nodes trained and which process to look at. A restarted worker group writes a new set
of records, so the number of attempts of a run is the number of distinct starts of rank 0.
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
import uuid
from pathlib import Path

from zsar.errors import ConfigError

RECORDS = "workers"


def scaling_kwargs(resources) -> dict:
    """ScalingConfig arguments: a fixed worker count, or (min, max) for an elastic run."""
    workers = resources.workers
    if resources.min_workers is not None:
        if resources.min_workers > workers:
            raise ConfigError(f"resources.min_workers={resources.min_workers} is larger than resources.workers={workers}")
        num_workers = workers if resources.min_workers == workers else (resources.min_workers, workers)
    else:
        num_workers = workers
    return {"num_workers": num_workers, "placement_strategy": resources.placement}


def write_record(run_dir: str | os.PathLike, rank: int, world_size: int, node_id: str) -> dict:
    record = {
        "rank": rank,
        "world_size": world_size,
        "pid": os.getpid(),
        "node_id": node_id,
        "host": socket.gethostname(),
        "started": time.time(),
        # which copy of zsar the worker imported: the runtime env's package on a submitted job
        "code": str(Path(__file__).resolve().parents[1]),
    }
    folder = Path(run_dir) / RECORDS
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".rank{rank}-pid{record['pid']}.json.tmp"
    tmp.write_text(json.dumps(record))
    # a restarted worker can reuse its pid within one millisecond: the random part keeps both records
    tmp.rename(folder / f"rank{rank}-pid{record['pid']}-{int(record['started'] * 1000)}-{uuid.uuid4().hex[:8]}.json")
    sys.stderr.write(f"[zsar] worker rank {rank}/{world_size} pid {record['pid']} on node {node_id} ({record['host']})\n")
    sys.stderr.flush()
    return record


def read_records(run_dir: str | os.PathLike) -> list[dict]:
    """Every worker start of the run, oldest first."""
    folder = Path(run_dir) / RECORDS
    if not folder.is_dir():
        return []
    records = [json.loads(p.read_text()) for p in folder.glob("rank*.json")]
    return sorted(records, key=lambda r: (r["started"], r["rank"]))


def attempts(records: list[dict]) -> int:
    return sum(1 for r in records if r["rank"] == 0)
