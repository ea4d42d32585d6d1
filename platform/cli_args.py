"""The `zsar` command's arguments: one subcommand per job, every option with its help."""

from __future__ import annotations

import argparse
import os
import sys


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

    _add_data_commands(sub)

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

    _add_cache_commands(sub)
    _add_sweep_commands(sub)
    _add_cluster_commands(sub)
    _add_weights_commands(sub)

    p = sub.add_parser("ui", help="start the MLflow UI on the store in use (Ctrl-C or SIGTERM stops it and its workers)")
    p.add_argument("--port", type=int, default=5000, help="port to serve on (default 5000)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for every interface)")
    return parser


def _add_data_commands(sub) -> None:
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


def _add_cache_commands(sub) -> None:
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
