"""Zero-shot accuracy of the skeleton baseline on `demo_skeleton`, over seeds.

For each seed: `stgcn_pretrain` on the seen classes (stage 1), then `skeleton_proj` with its
encoder frozen and a frozen text space (stage 2), under the `zsl` protocol (and `gzsl` when asked).
Prints each seed's `zsl_top1` (the unseen compositions, scored among the unseen classes), the
mean, and chance level (100 / number of unseen classes). Runs go through the real runner (Ray
Train + Ray Data + MLflow in ZSAR_HOME).

    python benchmarks/skeleton_zsl_demo.py [--seeds 0 1 2] [--text-space minilm] [--protocol zsl]
"""

from __future__ import annotations

import argparse
import json
import statistics

from zsar.config import resolve
from zsar.data.skeleton_synth import unseen_classes
from zsar.train.runner import run


def one_seed(seed: int, text_space: str, protocol: str, root: str | None) -> dict:
    common = {"seed": seed, "tracking": {"experiment": "skeleton-zsl-demo"}, **({"root": root} if root else {})}
    pre = run(resolve(method="stgcn_pretrain", dataset="demo_skeleton", protocol=protocol,
                      overrides={**common, "run": {"name": f"stgcn-s{seed}"}}))
    proj = run(resolve(method="skeleton_proj", dataset="demo_skeleton", protocol=protocol,
                       overrides={**common, "run": {"name": f"proj-{text_space}-s{seed}"},
                                  "hparams": {"encoder_checkpoint": pre.checkpoint, "text_space": text_space}}))
    keys = ("zsl_top1", "seen", "unseen", "h")
    return {"seed": seed, "stgcn_seen_top1": pre.metrics["seen_top1"], **{k: proj.metrics[k] for k in keys if k in proj.metrics}}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--text-space", default="minilm", choices=["minilm", "clip"])
    ap.add_argument("--protocol", default="zsl", choices=["zsl", "gzsl"])
    ap.add_argument("--root", default=None)
    args = ap.parse_args()
    rows = [one_seed(s, args.text_space, args.protocol, args.root) for s in args.seeds]
    for r in rows:
        print(json.dumps(r))
    zsl = [r["zsl_top1"] for r in rows]
    chance = 100 / len(unseen_classes())
    print(f"zsl_top1 over seeds {args.seeds}: mean {statistics.mean(zsl):.2f} (per seed {', '.join(f'{v:.2f}' for v in zsl)}); "
          f"chance {chance:.2f}; ratio {statistics.mean(zsl) / chance:.2f}x")


if __name__ == "__main__":
    main()
