"""What a sweep costs beyond its trials' own work.

8 identical tiny SC-CLIP trials (the 32-pixel random CLIP, a small rendering of the demo data,
3 epochs of 8-frame clips each, `max_concurrent=1`, ASHA never stopping one early) run as one sweep. Printed side
by side from the same run: the sweep's wall time (Tuner.fit; Ray start-up and the one-off decoding
of the data before the trials are timed apart), the sum of the trials' own training and
evaluation time (the loop's `time/train_s` + `time/eval_s` of every epoch, from MLflow), their
ratio (target <= 1.5) and the fixed overhead per trial (target < 10 s on a 2-core machine).

    python benchmarks/sweep_overhead.py [--trials 8] [--epochs 3] [--videos 16]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import yaml


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--videos", type=int, default=16, help="training videos per demo class")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="zsar-sweep-bench-"))
    os.environ["ZSAR_HOME"] = str(tmp / "home")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp / 'mlflow.db'}"

    from mlflow.tracking import MlflowClient

    from zsar.data.synth import synthesize
    from zsar.ray_runtime import init_ray
    from zsar.tune.sweep import run_sweep

    root = synthesize(tmp / "demo", seed=0, train_per_class=args.videos, test_per_class=3)
    spec = {
        "name": "overhead", "method": "sc_clip", "dataset": "demo", "root": str(root), "protocol": "base2novel",
        "split": "s1", "selection": "val",
        "overrides": {"data": {"augment": False, "num_frames": 8}, "optim": {"epochs": args.epochs, "batch_size": 8},
                      "tracking": {"experiment": "overhead"}},
        "space": {"tau": {"choice": [50.0]}},  # one value: every trial is the same work
        "metric": "val_hm", "num_samples": args.trials, "max_concurrent": 1,
        "asha": {"grace_period": args.epochs, "reduction_factor": 2}, "resources": {"cpus": 1}, "seed": 0,
    }
    (tmp / "spec.yaml").write_text(yaml.safe_dump(spec))
    t0 = time.time()
    init_ray()
    ray_s = time.time() - t0
    t0 = time.time()
    result = run_sweep(tmp / "spec.yaml", storage=str(tmp / "tune"), verbose=0)
    total_s = time.time() - t0

    client = MlflowClient(os.environ["MLFLOW_TRACKING_URI"])
    exp = client.get_experiment_by_name("overhead")
    children = [r for r in client.search_runs([exp.experiment_id]) if r.data.tags.get("zsar.kind") == "sweep_trial"]
    own = 0.0
    for run in children:
        for key in ("time/train_s", "time/eval_s"):
            own += sum(m.value for m in client.get_metric_history(run.info.run_id, key))
    n = len(children)
    print(f"trials: {n} ({result.trials}), {args.epochs} epochs each, max_concurrent=1, torch threads 1")
    print(f"ray start-up:                      {ray_s:7.1f} s (not counted)")
    print(f"data decoded once + checks:        {total_s - result.fit_s:7.1f} s (not counted)")
    print(f"sweep wall time (Tuner.fit):       {result.fit_s:7.1f} s")
    print(f"sum of trials' own train+eval:     {own:7.1f} s")
    print(f"ratio wall / own:                  {result.fit_s / own:7.2f}   (target <= 1.5)")
    print(f"fixed overhead per trial:          {(result.fit_s - own) / max(n, 1):7.1f} s (target < 10 s)")


if __name__ == "__main__":
    main()
