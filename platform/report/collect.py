"""Finished MLflow runs -> plain records the tables are computed from.

Only FINISHED runs count (a running or failed run is not a result). A run's value for a metric is
its `final/<name>` when the training pipeline logged one, else the latest logged value.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from zsar.errors import ZsarError


@dataclass(frozen=True)
class RunRecord:
    run_id: str
    name: str
    experiment: str
    start_time: int
    tags: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)

    def tag(self, key: str, default: str = "") -> str:
        return self.tags.get(key, default)

    @property
    def selection(self) -> str:
        return self.tags.get("selection", "?")


def final_metrics(metrics: dict) -> dict:
    out = {k: v for k, v in metrics.items() if not k.startswith("final/")}
    out.update({k[len("final/"):]: v for k, v in metrics.items() if k.startswith("final/")})
    return out


def collect_runs(uri: str, experiment: str | None = None, run_filter: str | None = None) -> list[RunRecord]:
    """Finished runs of `experiment` (all experiments when None), optionally narrowed by an MLflow
    search filter such as `tags.method = 'vificlip'`."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    if experiment is not None:
        exp = client.get_experiment_by_name(experiment)
        if exp is None:
            names = sorted(e.name for e in client.search_experiments())
            raise ZsarError(f"--experiment: no MLflow experiment '{experiment}' in {uri} (there are: {', '.join(names) or 'none'})")
        experiments = [exp]
    else:
        experiments = client.search_experiments()
    if not experiments:
        return []
    names = {e.experiment_id: e.name for e in experiments}
    flt = "attributes.status = 'FINISHED'" + (f" and {run_filter}" if run_filter else "")
    try:
        runs = client.search_runs(list(names), filter_string=flt, max_results=50000, order_by=["attributes.start_time DESC"])
    except MlflowException as e:
        raise ZsarError(f"--runs: MLflow cannot parse the filter {run_filter!r} ({str(e).splitlines()[0]}); "
                        "write it like \"tags.method = 'vificlip'\"") from None
    return [
        RunRecord(
            run_id=r.info.run_id,
            name=r.info.run_name or r.info.run_id,
            experiment=names[r.info.experiment_id],
            start_time=r.info.start_time or 0,
            tags=dict(r.data.tags),
            metrics=final_metrics(dict(r.data.metrics)),
        )
        for r in runs
    ]
