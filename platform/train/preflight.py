"""Before any epoch: probe every video of every part the run will use (zsar.data.probe: parallel
Ray tasks, cached by path, size and mtime) and stop at once, with one error naming them, when a
part has more bad files than `data.max_failure_fraction` allows.

A run that goes on gets every bad file as a known failure: its rows carry the probe's reason in
the manifest's `skip` column, so the decoder skips them without opening the file, and the loop
counts each once (`data/failures`, failures.csv). Files cut short that still decode
(`truncated`) are used within the frames they hold and counted apart (`data/truncated`).
"""

from __future__ import annotations

import pyarrow as pa

from zsar.errors import DataError
from zsar.log import log
from zsar.registry import DATASETS, METHODS

SHOWN = 10  # bad files named in the error; the rest are counted


def used_parts(cfg, plan) -> list:
    """(loop part name, Part) of every part the run decodes from its videos (the names
    `zsar.train.loop` counts by). Parts read through the feature cache (frozen inputs, fixed
    clips) are left out: a warm cache opens no video, and a cold one counts the files it could not
    encode as it fills."""
    method = METHODS.get(cfg.method)
    frozen = bool(method.frozen_inputs(cfg.method_config())) if cfg.data.feature_cache else False
    parts = []
    if plan.train is not None and method.trains and cfg.optim.epochs > 0 and not (frozen and not cfg.data.augment):
        parts.append(("train", plan.train))
    return parts + ([] if frozen else [(p.name, p) for p in plan.evals])


def _message(cfg, bad: dict, per_part: dict, parts: list, over: list) -> str:
    fractions = ", ".join(f"{name} {len(per_part[name])} of {len(part)} ({len(per_part[name]) / max(len(part), 1):.1%})"
                          for name, part in parts)
    shown = "; ".join(f"{p} ({f['error']})" for p, f in list(bad.items())[:SHOWN])
    more = f"; and {len(bad) - SHOWN} more" if len(bad) > SHOWN else ""
    worst = max(len(per_part[name]) / max(len(part), 1) for name, part in parts)
    root = f" --root {cfg.root}" if cfg.root else ""
    return (f"{len(bad)} videos cannot be read, more than data.max_failure_fraction={cfg.data.max_failure_fraction:g} "
            f"of {', '.join(over)} (bad per part: {fractions}): {shown}{more}. To train without them: "
            f"--set data.max_failure_fraction={worst:.3g}; to see every problem: "
            f"zsar data check --dataset {cfg.dataset}{root}")


def preflight(cfg, plan) -> tuple[dict, dict]:
    """(known failures, truncated files), each path -> {"part", "error"}; raises DataError when a
    part has too many bad files. Marks the bad rows of `plan`'s manifests (`skip` column)."""
    from zsar.data.probe import probe_all

    if DATASETS.get(cfg.dataset).modality != "video":
        return {}, {}
    parts = used_parts(cfg, plan)
    paths = [p for _, part in parts for p in part.manifest["path"].to_pylist()]
    results = probe_all(paths, jobs=max(cfg.data.decode_tasks, 1))
    bad, truncated, per_part = {}, {}, {}  # a file in two parts is one failure, counted in each part's fraction
    for name, part in parts:
        per_part[name] = set()
        for path in part.manifest["path"].to_pylist():
            found = {"part": name, "error": results[path]["reason"]}
            if results[path]["status"] == "bad":
                bad.setdefault(path, found)
                per_part[name].add(path)
            elif results[path]["status"] == "truncated":
                truncated.setdefault(path, found)
    over = [name for name, part in parts if len(part) and len(per_part[name]) / len(part) > cfg.data.max_failure_fraction]
    if over:
        raise DataError(_message(cfg, bad, per_part, parts, over))
    for _, part in parts:
        skip = [results[p]["reason"] if results[p]["status"] == "bad" else "" for p in part.manifest["path"].to_pylist()]
        if "skip" in part.manifest.column_names:
            part.manifest = part.manifest.drop_columns(["skip"])
        part.manifest = part.manifest.append_column("skip", pa.array(skip, pa.string()))
    if bad or truncated:
        log(f"pre-flight: {len(bad)} of {len(set(paths))} videos cannot be read and will be skipped; "
            f"{len(truncated)} are cut short and are sampled within the frames they hold")
    return bad, truncated


def report_skipped(metrics: dict) -> None:
    """The last line of a run that skipped videos (stderr)."""
    n = int(metrics.get("data/failures", 0))
    if n:
        log(f"skipped {n} videos (see failures.csv)")
