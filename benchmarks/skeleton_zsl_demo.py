"""Zero-shot accuracy of skeleton methods on `demo_skeleton`, over seeds.

For each seed: `stgcn_pretrain` on the seen classes (stage 1), then each stage-2 method of
`--methods` (default `skeleton_proj`) on that same encoder, frozen, with a frozen text space, under
the `zsl` protocol (and `gzsl` when asked: then also `seen`, `unseen`, `h`). Prints each run's
`zsl_top1` (the unseen compositions, scored among the unseen classes), the mean per method, chance
level (100 / number of unseen classes), and with several methods their ratios to the first, all
measured in this one run on the same split and seeds. Runs go through the real runner (Ray Train +
Ray Data + MLflow in ZSAR_HOME).

    python benchmarks/skeleton_zsl_demo.py [--seeds 0 1 2] [--text-space minilm] [--protocol zsl]
        [--methods skeleton_proj scople scople:sampler=false,joint_prompts=false]

A method may carry hyperparameters after a colon (`name:key=value,...`, YAML values): ablations
side by side with the full method.
"""

from __future__ import annotations

import argparse
import json
import statistics

import yaml

from zsar.config import resolve
from zsar.data.skeleton_synth import unseen_classes
from zsar.train.runner import run


def parse_method(spec: str) -> tuple[str, dict]:
    """"scople:sampler=false,n_ctx=2" -> ("scople", {"sampler": False, "n_ctx": 2})."""
    name, _, rest = spec.partition(":")
    pairs = [kv.split("=", 1) for kv in rest.split(",") if kv]
    if any(len(kv) != 2 for kv in pairs):
        raise SystemExit(f"--methods {spec}: expected name:key=value,...")
    return name, {k: yaml.safe_load(v) for k, v in pairs}


def one_seed(seed: int, text_space: str, protocol: str, root: str | None, methods: list[str]) -> list[dict]:
    common = {"seed": seed, "tracking": {"experiment": "skeleton-zsl-demo"}, **({"root": root} if root else {})}
    pre = run(resolve(method="stgcn_pretrain", dataset="demo_skeleton", protocol=protocol,
                      overrides={**common, "run": {"name": f"stgcn-s{seed}"}}))
    keys = ("zsl_top1", "seen", "unseen", "h")
    rows = []
    for method in methods:
        name, extra = parse_method(method)
        out = run(resolve(method=name, dataset="demo_skeleton", protocol=protocol,
                          overrides={**common, "run": {"name": f"{method.replace(':', '-')}-{text_space}-s{seed}"},
                                     "hparams": {"encoder_checkpoint": pre.checkpoint, "text_space": text_space, **extra}}))
        rows.append({"method": method, "seed": seed, "stgcn_seen_top1": pre.metrics["seen_top1"],
                     **{k: out.metrics[k] for k in keys if k in out.metrics}})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--text-space", default="minilm", choices=["minilm", "clip"])
    ap.add_argument("--protocol", default="zsl", choices=["zsl", "gzsl"])
    ap.add_argument("--methods", nargs="+", default=["skeleton_proj"], help="stage-2 methods, compared on the same encoders")
    ap.add_argument("--root", default=None)
    args = ap.parse_args()
    rows = [r for s in args.seeds for r in one_seed(s, args.text_space, args.protocol, args.root, args.methods)]
    for r in rows:
        print(json.dumps(r))
    chance = 100 / len(unseen_classes())
    means = {}
    for method in args.methods:
        mine = [r for r in rows if r["method"] == method]
        for key in ("zsl_top1", "h"):
            values = [r[key] for r in mine if key in r]
            if not values:
                continue
            means[method, key] = statistics.mean(values)
            line = f"{method} {key} over seeds {args.seeds}: mean {means[method, key]:.2f} (per seed {', '.join(f'{v:.2f}' for v in values)})"
            if key == "zsl_top1":
                line += f"; chance {chance:.2f}; ratio {means[method, key] / chance:.2f}x"
            print(line)
    first = args.methods[0]
    for method in args.methods[1:]:
        for key in ("zsl_top1", "h"):
            if (method, key) in means and means.get((first, key)):
                print(f"{method} / {first} {key}: {means[method, key] / means[first, key]:.2f}x")


if __name__ == "__main__":
    main()
