"""The `zsar` command. Thin: parse, call one function, print. User errors print one line and
exit 2; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys

from zsar import console
from zsar.console import emit


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the whole usage)
        print(f"{self.prog}: error: {message} (see {self.prog} --help)", file=sys.stderr)
        raise SystemExit(2)


def _add_run_args(p, *, needs_method=True):
    p.add_argument("--config", help="experiment YAML (e.g. a best.yaml or a checkpoint's config.yaml)")
    p.add_argument("--method", required=False, help="a registered method (zsar methods)")
    p.add_argument("--dataset", help="a registered dataset (zsar datasets)")
    p.add_argument("--root", help="dataset root folder or URI")
    p.add_argument("--protocol", help="base2novel, zeroshot, full, ... (zsar datasets)")
    p.add_argument("--split", help="protocol split, or `all`")
    p.add_argument("--set", dest="overrides", action="extend", nargs="+", default=[], metavar="KEY=VALUE", help="override config keys: --set optim.lr=1e-4 data.num_frames=16 (repeatable)")
    p.add_argument("--workers", type=int, help="Ray Train workers (0: run in this process)")
    p.add_argument("--gpu", action="store_true", help="one GPU per worker, bf16 autocast")
    p.add_argument("--name", help="run name; relaunching the same name resumes the run")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="zsar", description="Zero-shot action recognition lab (Ray + MLflow). "
                     "stdout carries a command's result (JSON or a table); logs go to stderr.")
    # taken out of the arguments wherever they stand (console.split_flags); listed here for --help
    parser.add_argument("-q", "--quiet", action="store_true", help="print only the result and errors")
    parser.add_argument("-v", "--verbose", action="store_true", help="print every log line (Ray and MLflow INFO, progress bars)")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("demo", help="synthesise the demo data, evaluate frozen CLIP, train ViFi-CLIP, print the table")
    p.add_argument("--out", help="folder for the demo's results table (default ZSAR_HOME/demo)")
    p.add_argument("--epochs", type=int, help="ViFi-CLIP epochs (default: the demo preset)")
    p.add_argument("--quick", action="store_true", help="a small rendering and 2 epochs: the whole path in well under a minute")

    sub.add_parser("methods", help="list registered methods")
    sub.add_parser("datasets", help="list registered datasets and their protocols")

    p = sub.add_parser("config", help="show the resolved config")
    csub = p.add_subparsers(dest="config_command", required=True, parser_class=_Parser)
    show = csub.add_parser("show", help="print the resolved config as YAML")
    _add_run_args(show)

    p = sub.add_parser("data", help="synthesise or check data")
    dsub = p.add_subparsers(dest="data_command", required=True, parser_class=_Parser)
    synth = dsub.add_parser("synth", help="render a synthetic demo dataset: real videos, or official-format .skeleton files")
    synth.add_argument("--out", required=True, help="folder to write the dataset to")
    synth.add_argument("--modality", choices=["video", "skeleton"], default="video", help="videos (default) or .skeleton files")
    synth.add_argument("--seed", type=int, default=0, help="seed of the rendering (default 0)")
    check = dsub.add_parser("check", help="validate a dataset tree against its protocols; every failed file with its reason")
    check.add_argument("--dataset", required=True, help="a registered dataset (zsar datasets)")
    check.add_argument("--root", help="the dataset's folder or URI")
    check.add_argument("--protocol", help="check one protocol (default: all of the dataset's)")
    check.add_argument("--split", help="check one split of --protocol (default: all)")
    check.add_argument("--frames", type=int, default=3, help="frames decoded per video (default 3)")
    check.add_argument("--jobs", type=int, default=min(8, os.cpu_count() or 1), help="videos decoded in parallel")
    check.add_argument("--no-decode", action="store_true", help="check names, classes and splits only")
    check.add_argument("--max-failures", type=float, default=0.0, metavar="FRACTION",
                       help="missing + unreadable videos tolerated, as a fraction of those named (default 0)")

    p = sub.add_parser("train", help="train (and evaluate) a method under a protocol")
    _add_run_args(p)
    p.add_argument("--dry-run", action="store_true", help="resolve config and data, print what would run, and stop")

    p = sub.add_parser("eval", help="evaluate a checkpoint, an MLflow run, or an untrained method")
    src = p.add_mutually_exclusive_group()
    src.add_argument("--checkpoint", help="a checkpoint directory")
    src.add_argument("--run", help="an MLflow run id whose checkpoint to evaluate")
    _add_run_args(p)

    p = sub.add_parser("report", help="paper-style tables (Markdown + CSV), plots and one HTML page from MLflow runs")
    p.add_argument("--experiment", help="MLflow experiment name (default: every experiment)")
    p.add_argument("--runs", dest="run_filter", metavar="FILTER", help="MLflow search filter, e.g. \"tags.method = 'vificlip'\"")
    p.add_argument("--out", required=True, help="output folder (index.html, report.md, tables/, plots/)")
    p.add_argument("--run", dest="chosen_runs", action="append", metavar="RUN_ID",
                   help="a run to plot per-class accuracy, confusion and t-SNE for (repeatable; default: the newest that logged them)")
    p.add_argument("--tsne-videos", type=int, default=64, help="videos embedded for the t-SNE (0: no t-SNE)")

    p = sub.add_parser("prepare", help="decode and sample a dataset's clips once into the prepared-clip cache (Parquet)")
    _add_run_args(p)
    p.add_argument("--cache", help="cache folder or URI (default data.prepared_cache, else ZSAR_HOME/cache/clips)")
    p.add_argument("--rebuild", action="store_true", help="write the entries again even when they exist")

    p = sub.add_parser("cache", help="list or remove cache entries: frozen features (ZSAR_HOME/cache/features) and prepared clips (ZSAR_HOME/cache/clips)")
    ksub = p.add_subparsers(dest="cache_command", required=True, parser_class=_Parser)
    ksub.add_parser("ls", help="key, what, rows, size, age and hits of every entry")
    rm = ksub.add_parser("rm", help="remove one entry by key (a unique prefix is enough), or --all")
    what = rm.add_mutually_exclusive_group(required=True)
    what.add_argument("key", nargs="?", help="the entry's key (zsar cache ls)")
    what.add_argument("--all", action="store_true", help="remove every entry")

    _add_sweep_commands(sub)
    _add_cluster_commands(sub)
    _add_weights_commands(sub)

    p = sub.add_parser("ui", help="start the MLflow UI on the store in use (Ctrl-C or SIGTERM stops it and its workers)")
    p.add_argument("--port", type=int, default=5000, help="port to serve on (default 5000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    return parser


def _add_sweep_commands(sub) -> None:
    p = sub.add_parser("sweep", help="Ray Tune + Optuna (TPE) + ASHA over a spec's search space (sweeps/<method>/<dataset>.yaml)")
    p.add_argument("spec", help="sweep spec YAML")
    p.add_argument("--trials", type=int, help="number of trials (default: the spec's num_samples)")
    p.add_argument("--resume", action="store_true", help="continue an interrupted sweep (finished trials are not rerun)")
    p.add_argument("--address", help="Ray address (default RAY_ADDRESS or a local Ray)")
    p.add_argument("--storage", help="Tune storage: a local folder (default ZSAR_HOME/sweeps), s3://, gs:// or a shared path")
    p.add_argument("--root", help="dataset root (overrides the spec's)")

    p = sub.add_parser("rerun", help="train a logged run again from its own config; print logged vs new metrics")
    p.add_argument("run_id", metavar="RUN_ID", help="an MLflow run id (a plain run or a sweep trial)")
    p.add_argument("--tolerance", type=float, default=1e-3,
                   help="exit 1 when a metric differs by more than this (default 1e-3 points)")

    p = sub.add_parser("best", help="the best runs of a method on a dataset (sweeps and plain runs), and their config")
    p.add_argument("--method", required=True, help="a registered method (zsar methods)")
    p.add_argument("--dataset", required=True, help="a registered dataset (zsar datasets)")
    p.add_argument("--protocol", help="only runs under this protocol (default: any)")
    p.add_argument("--metric", default="hm", help="ranked by val_<metric> for selection=val runs, <metric> for selection=test")
    p.add_argument("--mode", choices=["max", "min"], default="max", help="max (default): higher is better; min for a loss")
    p.add_argument("--top", type=int, default=5, help="how many runs to list (default 5)")
    p.add_argument("--experiment", help="MLflow experiment (default: all)")
    p.add_argument("--out", help="write the best run's config here (zsar train --config FILE reproduces it)")


def _add_weights_commands(sub) -> None:
    p = sub.add_parser("weights", help="inspect a foreign checkpoint, or pre-fetch a pretrained tag into the local cache")
    wsub = p.add_subparsers(dest="weights_command", required=True, parser_class=_Parser)
    q = wsub.add_parser("inspect", help="detected layout, the open_clip model it fits, and the keys it would drop")
    q.add_argument("path", help="a weights file or zsar checkpoint folder")
    q.add_argument("--format", default="auto", help="force a layout: open_clip, openai, vificlip, pyslowfast, zsar")
    q = wsub.add_parser("fetch", help="download a pretrained tag's weights into the Hugging Face cache (needs internet); prints the file")
    q.add_argument("tag", help="an open_clip pretrained tag, e.g. openai")
    q.add_argument("--model", default="ViT-B-16", help="the open_clip model name (default ViT-B-16)")

    p = sub.add_parser("reproduce", help="run the recipe of one published table and print ours beside the published numbers")
    p.add_argument("table", help="a shipped recipe (zsar reproduce --list) or a recipe .yaml file")
    p.add_argument("--root", action="append", default=[], metavar="DATASET=DIR",
                   help="a dataset root (repeatable; a bare DIR is the first run's dataset)")
    p.add_argument("--weights", action="append", default=[], metavar="NAME=PATH", help="a checkpoint the recipe names (repeatable)")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help="override every run's config")
    p.add_argument("--dry-run", action="store_true", help="print the resolved configs, the roots and weights needed, and the published rows")


def _add_cluster_commands(sub) -> None:
    addr = dict(help="Ray dashboard address, http://HEAD:8265 (default RAY_ADDRESS)")
    p = sub.add_parser("submit", help="run a zsar command as a job on a Ray cluster: zsar submit --address URL -- train ...")
    p.add_argument("--address", **addr)
    p.add_argument("--runtime-env", help="runtime env YAML merged under the zsar package (e.g. cluster/runtime_env.yaml)")
    p.add_argument("--env", action="append", default=[], metavar="KEY[=VALUE]", help="forward an environment variable (MLFLOW_TRACKING_URI always is)")
    p.add_argument("--id", help="submission id (default: zsar-<command>-<name>-<time>)")
    p.add_argument("--no-wait", action="store_true", help="print the job id and return instead of streaming the logs")
    p.add_argument("job", nargs=argparse.REMAINDER, help="-- then the zsar command to run")

    p = sub.add_parser("jobs", help="list, inspect, follow or stop jobs on a Ray cluster")
    jsub = p.add_subparsers(dest="jobs_command", required=True, parser_class=_Parser)
    jsub.add_parser("list", help="every job on the cluster").add_argument("--address", **addr)
    for name, text in (("status", "a job's status"), ("logs", "a job's logs"), ("stop", "stop a job")):
        q = jsub.add_parser(name, help=text)
        q.add_argument("job_id", help="the job's submission id (zsar jobs list)")
        q.add_argument("--address", **addr)
        if name == "logs":
            q.add_argument("--follow", "-f", action="store_true", help="stream until the job ends")


def _resolve(args, extra: dict | None = None):
    from zsar.config import deep_merge, parse_set, resolve

    overrides = parse_set(args.overrides)
    if getattr(args, "workers", None) is not None:
        overrides = deep_merge(overrides, {"resources": {"workers": args.workers}})
    if getattr(args, "gpu", False):
        overrides = deep_merge(overrides, {"resources": {"gpu": True}})
    if getattr(args, "name", None):
        overrides = deep_merge(overrides, {"run": {"name": args.name}})
    for key in ("root", "split"):
        if getattr(args, key, None) is not None:
            overrides = deep_merge(overrides, {key: getattr(args, key)})
    overrides = deep_merge(overrides, extra or {})
    return resolve(file=args.config, overrides=overrides, method=args.method, dataset=args.dataset, protocol=args.protocol)


def cmd_methods(args):
    from zsar.registry import METHODS

    for name, cls in METHODS.items():
        doc = (cls.__module__ and sys.modules[cls.__module__].__doc__ or "").strip().splitlines()
        emit(f"{name:<14} {cls.modality:<9} {doc[0] if doc else ''}")


def cmd_datasets(args):
    from zsar.registry import DATASETS

    for _, cls in DATASETS.items():
        emit(cls.summary())


def cmd_config_show(args):
    emit(_resolve(args).to_yaml(), end="")


def cmd_data_synth(args):
    if args.modality == "skeleton":
        from zsar.data.skeleton_synth import synthesize
    else:
        from zsar.data.synth import synthesize
    what = "skeleton files" if args.modality == "skeleton" else "videos"

    def progress(done, total):
        if done % 64 == 0 or done == total:
            print(f"[zsar] rendered {done}/{total} {what}", file=sys.stderr, flush=True)

    out = synthesize(args.out, seed=args.seed, progress=progress)
    emit(str(out))


def cmd_data_check(args):
    from zsar.data.check import check_dataset

    def progress(done, total):
        print(f"[zsar] decoded {done}/{total} videos", file=sys.stderr, flush=True)

    report = check_dataset(args.dataset, args.root, args.protocol, args.split, frames=max(args.frames, 1), jobs=args.jobs,
                           decode=not args.no_decode, max_failures=args.max_failures, progress=progress)
    report.print(out=console.result_stream())
    return 0 if report.usable else 1


def _print_result(result):
    if isinstance(result, dict):
        emit(json.dumps(result, indent=1))
        return
    shown = {k: round(v, 2) for k, v in sorted(result.metrics.items()) if isinstance(v, float) and "/" not in k or k.endswith("top1_mean")}
    out = {"run": result.run_name, "mlflow_run_id": result.run_id, "checkpoint": result.checkpoint, "metrics": shown}
    if result.children:  # the parent of `--split all` has no checkpoint: each split's run has one
        out["splits"] = {c.split: {"mlflow_run_id": c.run_id, "checkpoint": c.checkpoint} for c in result.children}
    emit(json.dumps(out, indent=1))
    print(f"MLflow store: {result.tracking_uri}  (zsar ui)", file=sys.stderr)


def cmd_train(args):
    from zsar.errors import ConfigError
    from zsar.track.provenance import read_header
    from zsar.train.runner import run

    if not args.config and not (args.method and args.dataset):
        missing = " and ".join(f"--{k}" for k in ("method", "dataset") if not getattr(args, k))
        raise ConfigError(f"zsar train needs {missing} (or --config FILE); zsar methods and zsar datasets list them, "
                          "zsar demo runs the demo")
    expected = read_header(open(args.config).read()) if args.config and os.path.isfile(args.config) else None
    _print_result(run(_resolve(args), dry_run=args.dry_run, expected_record=expected))


def cmd_eval(args):
    from zsar.config import deep_merge
    from zsar.errors import ZsarError
    from zsar.train.runner import checkpoint_config, run

    extra = {"optim": {"epochs": 0}}
    if args.run:
        args.checkpoint = _download_checkpoint(args.run)
    if args.checkpoint:
        base = checkpoint_config(args.checkpoint)
        base = deep_merge(base, {"run": {"init_from": os.path.abspath(args.checkpoint), "name": None}, "eval_targets": []})
        import tempfile

        import yaml

        with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as f:
            yaml.safe_dump(base, f)
        if args.config:
            raise ZsarError("--config and --checkpoint/--run are exclusive: the checkpoint carries its config")
        args.config = f.name
    elif not args.method and not args.config:
        raise ZsarError("zsar eval needs --checkpoint PATH, --run ID, or --method M (an untrained method)")
    _print_result(run(_resolve(args, extra)))


def _download_checkpoint(run_id: str) -> str:
    import mlflow

    from zsar.errors import ZsarError
    from zsar.track.mlflow_log import child_runs, resolve_uri

    children = child_runs(resolve_uri(), run_id)
    if len(children) == 1:
        run_id = children[0][1]
    elif children:
        listed = ", ".join(f"{split} {child}" for split, child in children)
        raise ZsarError(f"run {run_id} is the parent of one run per split, which hold the checkpoints: pass one of them "
                        f"to --run ({listed})")
    try:
        return mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="checkpoint", tracking_uri=resolve_uri())
    except Exception as e:
        raise ZsarError(f"run {run_id} has no checkpoint artifact in {resolve_uri()} ({str(e).splitlines()[0]})") from None


def cmd_report(args):
    from zsar.report.build import build_report

    index = build_report(args.out, experiment=args.experiment, run_filter=args.run_filter,
                         chosen_runs=args.chosen_runs, tsne_videos=args.tsne_videos)
    emit(str(index))


def _feature_cache():
    from zsar.data.features import FeatureCache
    from zsar.home import cache_dir

    return FeatureCache(cache_dir("features"))


def _caches():
    from zsar.data.prepared import PreparedCache, default_root

    return {"features": _feature_cache(), "clips": PreparedCache(default_root())}


def cmd_prepare(args):
    from zsar.train.inputs import prepare_clips

    cfg = _resolve(args)
    done = prepare_clips(cfg, cache_root=args.cache, rebuild=args.rebuild, log=lambda m: print(m, file=sys.stderr))
    for d in done:
        emit(f"{d['key']}  {d['rows']:>6} videos  {len(d['failures']):>4} failed  {d['part']}")


def _age(seconds: float | None) -> str:
    import time

    if seconds is None:
        return "?"
    age = time.time() - seconds
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if age >= size:
            return f"{age / size:.0f}{unit}"
    return f"{age:.0f}s"


def cmd_cache_ls(args):
    caches = _caches()
    emit(f"{'key':<24}  {'kind':<8}  {'rows':>6}  {'size':>9}  {'age':>5}  {'hits':>4}  what")
    total = 0
    for kind, cache in caches.items():
        for e in cache.entries():
            total += 1
            emit(f"{e['key']:<24}  {kind:<8}  {e['rows']:>6}  {e['bytes'] / 2**20:>7.1f}MB  {_age(e['created']):>5}  "
                  f"{e['hits']:>4}  {e['what']}")
    print(f"{total} entries in {', '.join(str(c.root) for c in caches.values())}", file=sys.stderr)


def cmd_cache_rm(args):
    from zsar.errors import ConfigError

    caches = _caches()
    if args.all:
        removed = [k for c in caches.values() for k in c.remove(None)]
    else:
        holders = [c for c in caches.values() if any(e["key"].startswith(args.key) for e in c.entries())]
        if len(holders) != 1:
            found = "no entry" if not holders else "entries of both kinds"
            raise ConfigError(f"cache key '{args.key}': {found} matches it (zsar cache ls lists the keys)")
        removed = holders[0].remove(args.key)
    for key in removed:
        emit(f"removed {key}")
    if not removed:
        print("the cache is empty", file=sys.stderr)


def cmd_submit(args):
    from zsar.cluster.submit import submit

    job = args.job[1:] if args.job[:1] == ["--"] else args.job
    job_id, status = submit(job, addr=args.address, runtime_env_file=args.runtime_env, env_items=args.env,
                            wait=not args.no_wait, job_id=args.id)
    print(job_id)
    if status is not None and status != "SUCCEEDED":
        print(f"zsar: job {job_id} ended {status} (zsar jobs logs {job_id})", file=sys.stderr)
        raise SystemExit(1)


def cmd_jobs(args):
    from zsar.cluster import submit as jobs

    if args.jobs_command == "list":
        jobs.print_jobs(jobs.list_jobs(args.address))
    elif args.jobs_command == "status":
        jobs.print_status(jobs.status(args.address, args.job_id))
    elif args.jobs_command == "logs":
        text = jobs.logs(args.address, args.job_id, follow_logs=args.follow)
        if text is not None:
            print(text, end="")
    else:
        stopped = jobs.stop(args.address, args.job_id)
        print(f"{args.job_id}: {'stop requested' if stopped else 'already finished'}")


def cmd_sweep(args):
    from zsar.tune.sweep import run_sweep

    result = run_sweep(args.spec, trials=args.trials, resume=args.resume, address=args.address, storage=args.storage,
                       root=args.root)
    emit(json.dumps({"sweep": result.path, "mlflow_parent_run_id": result.parent_run_id, "trials": result.trials,
                      "metric": result.metric, "best": result.best_metric, "best_params": result.best_params,
                      "interrupted": result.interrupted}, indent=1))
    if result.interrupted:
        t = result.trials
        console.error(f"zsar: sweep interrupted: {t['finished']} trial(s) finished, {t['failed']} failed, "
                      f"{t['unfinished']} unfinished; the same command with --resume continues it")
        return 130


def cmd_rerun(args):
    from zsar.train.rerun import rerun

    comparison = rerun(args.run_id)
    emit(json.dumps(comparison.as_dict(), indent=1))
    largest = comparison.largest
    if largest is not None:
        print(f"[zsar] largest difference: {largest[0]} {largest[1]:.3g} (tolerance {args.tolerance:g})", file=sys.stderr)
    return 1 if largest is not None and largest[1] > args.tolerance else 0


def cmd_best(args):
    from zsar.registry import DATASETS, METHODS
    from zsar.track.best import format_table, rank_runs, write_best

    METHODS.get(args.method)  # a typo is an error that names the closest name, not an empty table
    dataset = DATASETS.get(args.dataset)
    if args.protocol:
        dataset.check_protocol(args.protocol, None)
    ranked, early = rank_runs(args.method, args.dataset, args.protocol, args.metric, args.top, args.mode,
                              experiment=args.experiment)
    emit(format_table(ranked, args.metric, early))
    if args.out:
        if not ranked:
            from zsar.errors import ZsarError

            raise ZsarError(f"no finished {args.method} run on {args.dataset} with {args.metric}: nothing to write")
        print(f"wrote {write_best(args.out, ranked[0].run_id)} (MLflow run {ranked[0].run_id})", file=sys.stderr)


def cmd_ui(args):
    from zsar.track.ui import serve

    serve(args.host, args.port, announce=emit)


def cmd_weights(args):
    from zsar.models.backbone import add_model_configs

    add_model_configs()
    if args.weights_command == "inspect":
        from zsar.models.checkpoint_layouts import inspect_checkpoint

        for name, value in inspect_checkpoint(args.path, args.format):
            emit(f"{name}: {value}")
    else:
        from zsar.models.pretrained import fetch_tag

        emit(str(fetch_tag(args.model, args.tag)))


def cmd_reproduce(args):
    from zsar.config import parse_set
    from zsar.report.reproduce import load_recipe, parse_pairs, reproduce

    first = load_recipe(args.table)["runs"][0]["dataset"]
    out = reproduce(args.table, parse_pairs(args.root, "--root", default_key=first), parse_pairs(args.weights, "--weights"),
                    parse_set(args.overrides), dry_run=args.dry_run)
    if args.dry_run:
        import yaml

        emit(yaml.safe_dump(out, sort_keys=False), end="")
    else:
        emit(str(out))


def cmd_demo(args):
    from zsar.demo import run_demo

    emit(run_demo(out=args.out, epochs=args.epochs, quick=args.quick))


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
