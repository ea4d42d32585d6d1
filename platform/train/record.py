"""What identifies a run's inputs, logged as tags on every MLflow run (`zsar.record.*`): the config
hash, the manifest hash, the code commit, the package versions that affect numbers, and the seed.
`zsar best` writes them into best.yaml's header; `zsar train --config best.yaml` warns, one line
each, about any that differ now (`differences`).

The config hash leaves out what never changes the numbers: the run's name and storage, tracking,
the cluster address, how many checkpoints are kept, and how data is read (decode tasks and batch,
decoder threads, the caches: they give the same rows, zsar.data.order).
"""

from __future__ import annotations

import copy
import hashlib
import json
from importlib import metadata

from zsar.config import ExperimentConfig
from zsar.data.dataset import Plan
from zsar.track import mlflow_log as track
from zsar.track.provenance import as_tags, from_tags, header, read_header  # noqa: F401 - one place for callers

PACKAGES = ("torch", "open_clip_torch", "av", "ray", "numpy")
NOT_NUMBERS = {
    "run": ("name", "storage", "checkpoints_to_keep", "max_failures"),
    "resources": ("address",),
    "data": ("decode_tasks", "decode_batch", "decoder_threads", "feature_actors", "feature_cache", "use_prepared",
             "prepared_cache"),
}


def config_hash(cfg: ExperimentConfig) -> str:
    d = copy.deepcopy(cfg.to_dict())
    d.pop("tracking", None)
    for section, keys in NOT_NUMBERS.items():
        for key in keys:
            d.get(section, {}).pop(key, None)
    return hashlib.sha256(json.dumps(d, sort_keys=True, default=str).encode()).hexdigest()[:16]


def manifest_hash(plan: Plan) -> str:
    """Every part's rows: paths, labels, order and segment windows (the training part and every
    evaluation part)."""
    from zsar.data.pipeline import hash_rows

    h = hashlib.sha256()
    parts = ([("train", plan.train)] if plan.train is not None else []) + [(p.name, p) for p in plan.evals]
    for name, part in parts:
        h.update(f"\x01{name}\x02{','.join(part.labels.names)}\x02".encode())
        hash_rows(h, part.manifest, names=False)
    return h.hexdigest()[:16]


def versions() -> dict[str, str]:
    out = {}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "absent"
    return out


def record(cfg: ExperimentConfig, plan: Plan) -> dict[str, str]:
    rec = {"config_hash": config_hash(cfg), "manifest_hash": manifest_hash(plan), "commit": track.git_commit(),
           "seed": str(cfg.seed)}
    rec.update({f"version.{k}": v for k, v in versions().items()})
    return rec


def differences(then: dict[str, str], now: dict[str, str]) -> list[str]:
    """One line per recorded input that differs now (keys only one side has are left out)."""
    return [f"{k} was {then[k]}, now {now[k]}" for k in sorted(set(then) & set(now)) if then[k] != now[k]]
