"""`zsar rerun RUN_ID`: train a logged run again from its own config (a new run) and compare the new
metrics with the logged ones, metric by metric, with the largest difference."""

from __future__ import annotations

import math
from dataclasses import dataclass

from zsar.config import ExperimentConfig, from_dict
from zsar.errors import ZsarError
from zsar.track import mlflow_log as track
from zsar.track import provenance
from zsar.track.best import best_config
from zsar.train.runner import run

NOT_RESULTS = ("time/", "features/", "system/")  # how long and which cache: not the run's numbers


@dataclass
class Comparison:
    run_id: str
    rerun_id: str
    rows: dict  # metric -> (logged, rerun, |difference|)

    @property
    def largest(self) -> tuple[str, float] | None:
        if not self.rows:
            return None
        key = max(self.rows, key=lambda k: self.rows[k][2])
        return key, self.rows[key][2]

    def as_dict(self) -> dict:
        largest = self.largest
        return {
            "run_id": self.run_id,
            "rerun_run_id": self.rerun_id,
            "compared": len(self.rows),
            "largest_difference": None if largest is None else {
                "metric": largest[0], "logged": self.rows[largest[0]][0], "rerun": self.rows[largest[0]][1],
                "difference": largest[1]},
            "metrics": {k: {"logged": a, "rerun": b, "difference": d} for k, (a, b, d) in sorted(self.rows.items())},
        }


def compare(logged: dict, new: dict) -> dict:
    rows = {}
    for key in sorted(set(logged) & set(track.numeric(new))):
        if key.startswith(NOT_RESULTS) or key.startswith("final/"):
            continue
        a, b = float(logged[key]), float(new[key])
        if math.isfinite(a) and math.isfinite(b):
            rows[key] = (a, b, abs(a - b))
    return rows


def rerun(run_id: str, uri: str | None = None) -> Comparison:
    uri = track.resolve_uri(uri)
    try:
        old = track.client(uri).get_run(run_id)
    except Exception as e:  # noqa: BLE001 - MLflow raises several kinds for an unknown id
        raise ZsarError(f"no run {run_id} in {uri} ({str(e).splitlines()[0]})") from None
    if old.data.tags.get("zsar.kind") == "sweep":
        raise ZsarError(f"run {run_id} is a sweep's parent: rerun one of its trials (zsar best lists them)")
    if old.info.status != "FINISHED":
        raise ZsarError(f"run {run_id} is {old.info.status}: only a finished run has numbers to compare")
    cfg = from_dict(ExperimentConfig, best_config(run_id, uri))
    result = run(cfg, expected_record=provenance.from_tags(old.data.tags))
    return Comparison(run_id, result.run_id, compare(old.data.metrics, result.metrics))
