"""`zsar best`: the best runs of a method on a dataset, across sweeps and plain runs.

Each run is ranked by its own selection metric: `val_<metric>` for runs tagged `selection=val`
(chosen on held-out training classes), `<metric>` for `selection=test`; the table shows which.
Trials that ASHA stopped early are left out (their config, with the full schedule, would not
reproduce their metric), and so are runs that only aggregate others: a sweep's parent, and the
parent of a `--split all` run (which logs `<metric>_mean`; its children are ranked). A child's own
split may be called `all` too (`folder` has one split of that name), so a parent is recognised by
having children, not by its split tag. The written config is the run's resolved `config.yaml`, without its run
name, so `zsar train --config best.yaml` trains it again as a new run.
"""

from __future__ import annotations

import math
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from zsar.errors import ZsarError
from zsar.track import mlflow_log as track
from zsar.track import provenance


@dataclass
class Ranked:
    run_id: str
    name: str
    selection: str
    key: str  # the metric it is ranked by
    value: float
    test: float | None  # the test-set value of `metric`
    params: dict
    parent: str | None
    experiment_id: str


def selection_key(metric: str, selection: str) -> str:
    if selection == "val" and not metric.startswith("val_"):
        return f"val_{metric}"
    return metric


def _value(metrics: dict, key: str) -> float | None:
    for k in (f"final/{key}", key):
        v = metrics.get(k)
        if v is not None and math.isfinite(v):
            return float(v)
    return None


def rank_runs(method: str, dataset: str, protocol: str | None = None, metric: str = "hm", top: int = 5,
              mode: str = "max", uri: str | None = None, experiment: str | None = None) -> tuple[list[Ranked], int]:
    """(the top runs, how many trials stopped early were left out)."""
    uri = track.resolve_uri(uri)
    c = track.client(uri)
    if experiment:
        exp = c.get_experiment_by_name(experiment)
        exp_ids = [exp.experiment_id] if exp else []
    else:
        exp_ids = [e.experiment_id for e in c.search_experiments()]
    if not exp_ids:
        return [], 0
    filt = f"tags.method = '{method}' and tags.dataset = '{dataset}' and attributes.status = 'FINISHED'"
    if protocol:
        filt += f" and tags.protocol = '{protocol}'"
    runs = c.search_runs(exp_ids, filter_string=filt, max_results=5000)
    parents = {r.data.tags.get("mlflow.parentRunId") for r in runs}
    out, early, logged = [], 0, {}
    for run in runs:
        tags = run.data.tags
        if tags.get("zsar.kind") == "sweep" or run.info.run_id in parents:
            continue
        if tags.get("zsar.stopped_early") == "true":
            early += 1
            continue
        selection = tags.get("selection", "test")
        key = selection_key(metric, selection)
        value = _value(run.data.metrics, key)
        if value is None:
            logged.update(dict.fromkeys(k.removeprefix("final/") for k in run.data.metrics))
            continue
        swept = [k for k in tags.get("zsar.swept", "").split(",") if k]
        params = {}
        for name in swept or ():
            for p in (f"hparams.{name}", name):
                if p in run.data.params:
                    params[name] = run.data.params[p]
                    break
        if not swept:
            params = {k[len("hparams."):]: v for k, v in run.data.params.items() if k.startswith("hparams.")}
        out.append(Ranked(run.info.run_id, run.info.run_name, selection, key, value, _value(run.data.metrics, metric),
                          params, tags.get("mlflow.parentRunId"), run.info.experiment_id))
    if not out and logged:
        shown = sorted(k for k in logged if not k.startswith(("time/", "features/", "data/")) and k != "epoch")
        raise ZsarError(f"--metric {metric}: no finished {method} run on {dataset} logged it (selection=val runs are ranked "
                        f"by val_{metric}); they logged: {', '.join(shown[:12])}{' ...' if len(shown) > 12 else ''}")
    sign = -1 if mode == "max" else 1
    out.sort(key=lambda r: sign * r.value)
    return out[:top], early


def best_config(run_id: str, uri: str | None = None) -> dict:
    """The resolved config a run logged, ready for `zsar train --config`."""
    import mlflow

    uri = track.resolve_uri(uri)
    with tempfile.TemporaryDirectory() as tmp:
        try:
            path = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="config.yaml", dst_path=tmp,
                                                       tracking_uri=uri)
        except Exception as e:  # noqa: BLE001
            raise ZsarError(f"run {run_id} has no config.yaml artifact ({str(e).splitlines()[0]})") from None
        cfg = yaml.safe_load(Path(path).read_text())
    cfg.setdefault("run", {})["name"] = None
    return cfg


def format_table(ranked: list[Ranked], metric: str, early: int) -> str:
    if not ranked:
        return "no finished run matches"
    lines = [f"{'#':>2}  {'run id':<32}  {'selection':<9}  {'ranked by':<12}  {'value':>7}  {metric + ' (test)':>12}  params"]
    for i, r in enumerate(ranked, 1):
        test = f"{r.test:.2f}" if r.test is not None else "-"
        params = ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(r.params.items()))
        lines.append(f"{i:>2}  {r.run_id:<32}  {r.selection:<9}  {r.key:<12}  {r.value:>7.2f}  {test:>12}  {params}")
        lines.append(f"    {r.name}" + (f" (parent run {r.parent})" if r.parent else ""))
    if early:
        lines.append(f"({early} trial(s) stopped early by ASHA are not ranked)")
    return "\n".join(lines)


def _fmt(v: str) -> str:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return str(v)
    return f"{f:.4g}"


def write_best(path: str | Path, run_id: str, uri: str | None = None) -> Path:
    """The run's config, behind a header naming the run and its inputs record (`zsar train
    --config` warns about any that differ when it trains it again)."""
    cfg = best_config(run_id, uri)
    inputs = provenance.from_tags(track.client(track.resolve_uri(uri)).get_run(run_id).data.tags)
    path = Path(path)
    path.write_text(f"# zsar best: MLflow run {run_id}; `zsar train --config {path.name}` trains it again\n"
                    + provenance.header(inputs) + yaml.safe_dump(cfg, sort_keys=False))
    return path
