"""The frozen-feature cache, cold against warm: the same `zsar` command run twice on the demo data.

The first run finds an empty cache (a fresh ZSAR_HOME that shares only the demo videos) and
encodes every evaluation clip; the second reads the features back. Printed: the feature stage
(`time/features_s`: cache look-up, decoding and encoding on a miss, opening the shards on a hit)
and the whole command's wall time, for both runs, and their ratios.

    python benchmarks/feature_cache.py [--method frozen_clip] [--set k=v ...]
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run_once(args, env) -> tuple[float, dict]:
    cmd = [sys.executable, "-m", "zsar.cli", args.command, "--method", args.method, "--dataset", "demo",
           "--protocol", "base2novel", "--workers", "0", *(["--set", *args.set] if args.set else [])]
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    run_id = re.search(r'"mlflow_run_id": "(\w+)"', proc.stdout).group(1)
    from mlflow.tracking import MlflowClient

    metrics = MlflowClient(env["MLFLOW_TRACKING_URI"]).get_run(run_id).data.metrics
    return wall, metrics


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--method", default="frozen_clip")
    parser.add_argument("--command", default="eval", choices=["eval", "train"])
    parser.add_argument("--set", nargs="*", default=[], help="extra --set overrides")
    args = parser.parse_args()

    from zsar.data.sources.demo import ensure_demo

    demo = ensure_demo(quiet=False)  # the user's ZSAR_HOME: rendered once, then shared
    with tempfile.TemporaryDirectory(prefix="zsar-bench-") as tmp:
        home = Path(tmp)
        (home / "data").mkdir()
        os.symlink(demo, home / "data" / demo.name)
        env = {**os.environ, "ZSAR_HOME": str(home), "MLFLOW_TRACKING_URI": f"sqlite:///{home / 'mlflow.db'}"}
        cold_wall, cold = run_once(args, env)
        warm_wall, warm = run_once(args, env)

    encoded = {k: v for k, v in cold.items() if k.endswith("/encoded")}
    print(f"{args.command} --method {args.method} on the demo (base2novel s1), zsar-tiny, --workers 0")
    print(f"clips encoded: cold {sum(encoded.values()):.0f}, warm "
          f"{sum(v for k, v in warm.items() if k.endswith('/encoded')):.0f}")
    print(f"{'':<16}{'cold':>10}{'warm':>10}{'cold/warm':>11}")
    fc, fw = cold["time/features_s"], warm["time/features_s"]
    print(f"{'feature stage':<16}{fc:>9.2f}s{fw:>9.2f}s{fc / fw:>10.1f}x")
    print(f"{'whole run':<16}{cold_wall:>9.2f}s{warm_wall:>9.2f}s{cold_wall / warm_wall:>10.1f}x")


if __name__ == "__main__":
    main()
