"""What each `zsar` subcommand does: resolve the arguments, call one function of the package,
print its result with `emit` (stdout) and its logs on stderr."""

from __future__ import annotations

import json
import os
import sys

from zsar import console
from zsar.console import emit


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
