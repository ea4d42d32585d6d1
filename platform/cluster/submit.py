"""`zsar submit` and `zsar jobs`: run a zsar command on a Ray cluster through the Ray Jobs API.

The job's driver runs on the cluster's head node, where a bare copy of this repository could not
import `zsar` (its code lives in `platform/`). So the project is built into a wheel here, and the
wheel's `zsar` package travels in the runtime env's `py_modules` (Ray zips it into the cluster's
object store and puts it first on every worker's path). The wheel is unpacked rather than given to
`py_modules` as a .whl because Ray installs a .whl with `pip install --target`, which would
re-download torch and every other pinned dependency that the cluster image already has.

MLFLOW_TRACKING_URI (and any `--env KEY`) is forwarded. Ray's token (RAY_AUTH_TOKEN, the file in
RAY_AUTH_TOKEN_PATH, or ~/.ray/auth_token) is sent as a bearer header when there is one.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import yaml

from zsar.errors import ConfigError, ZsarError
from zsar.track.mlflow_log import git_commit

FORWARDED_ENV = ("MLFLOW_TRACKING_URI",)
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}


def source_root() -> Path | None:
    """The project checkout this zsar was installed from (editable install), if any."""
    root = Path(__file__).resolve().parents[2]
    return root if (root / "pyproject.toml").is_file() and (root / "platform" / "cli.py").is_file() else None


BUILD_LEFTOVERS = {"build", "dist", ".git", ".venv", "__pycache__"}


def checkout_files(root: Path) -> list[str]:
    """The checkout's files as git sees them (tracked, and untracked ones not ignored): what the
    user has, never build leftovers (setuptools' build/ keeps modules deleted since), even where
    .gitignore does not name them."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=root,
                         capture_output=True, text=True)
    if out.returncode == 0:
        files = [f for f in out.stdout.split("\0") if f]
    else:  # not a git checkout (an unpacked source tree)
        files = [str(p.relative_to(root)) for p in root.rglob("*")]
    return [f for f in files if (root / f).is_file() and not (BUILD_LEFTOVERS & set(Path(f).parts))
            and not any(part.endswith(".egg-info") for part in Path(f).parts)]


def build_wheel(out_dir: Path, root: Path | None = None) -> Path:
    """The wheel of exactly the checkout: built from a clean temporary copy of its files."""
    root = root or source_root()
    if root is None:
        raise ZsarError("zsar submit needs the project source (pyproject.toml) to build its wheel: run it from an editable install")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        for rel in checkout_files(root):
            (copy / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, copy / rel)
        out = subprocess.run(
            [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out_dir), str(copy)],
            capture_output=True, text=True,
        )
    wheels = sorted(out_dir.glob("zsar-*.whl"))
    if out.returncode != 0 or not wheels:
        raise ZsarError(f"building the zsar wheel failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return wheels[-1]


def package_dir(wheel: Path, dest: Path) -> Path:
    """Unpack the wheel and return its `zsar` package folder (what `py_modules` ships)."""
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(dest)
    pkg = dest / "zsar"
    if not (pkg / "cli.py").is_file():
        raise ZsarError(f"{wheel.name} holds no zsar package")
    return pkg


def parse_env(items: list[str]) -> dict[str, str]:
    env = {k: os.environ[k] for k in FORWARDED_ENV if os.environ.get(k)}
    for item in items:
        key, sep, value = item.partition("=")
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ConfigError(f"--env {item!r}: expected KEY or KEY=VALUE")
        if not sep:
            if key not in os.environ:
                raise ConfigError(f"--env {key}: not set here; give KEY=VALUE")
            value = os.environ[key]
        env[key] = value
    return env


def load_runtime_env(path: str | None) -> dict:
    if not path:
        return {}
    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"--runtime-env {path}: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"--runtime-env {path}: expected a mapping (see cluster/runtime_env.yaml)")
    if "working_dir" in data:
        raise ConfigError(f"--runtime-env {path}: drop working_dir; zsar ships itself as a package (py_modules)")
    return data


def runtime_env(base: dict, package: Path, env: dict[str, str]) -> dict:
    out = dict(base)
    out["py_modules"] = [str(package)] + list(base.get("py_modules", []))
    out["env_vars"] = {**base.get("env_vars", {}), **env}
    return out


def entrypoint(command: list[str]) -> str:
    if not command:
        raise ConfigError("zsar submit needs a zsar command after --, e.g. zsar submit -- train --method vificlip ...")
    if command[0] == "zsar":
        command = command[1:]
    if command and command[0] in ("submit", "jobs"):
        raise ConfigError(f"zsar {command[0]} cannot run as a job")
    return "python -m zsar.cli " + shlex.join(command)


def submission_id(command: list[str]) -> str:
    words = [w for w in (command[1:] if command and command[0] == "zsar" else command) if not w.startswith("-")][:1]
    flags = {w: command[i + 1] for i, w in enumerate(command[:-1]) if w in ("--name", "--method")}
    name = flags.get("--name") or flags.get("--method") or ""
    stem = "-".join(re.sub(r"[^A-Za-z0-9]+", "-", x).strip("-") for x in ["zsar", *words, name] if x)
    return f"{stem}-{time.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"


def auth_headers() -> dict[str, str]:
    token = os.environ.get("RAY_AUTH_TOKEN")
    path = os.environ.get("RAY_AUTH_TOKEN_PATH") or str(Path.home() / ".ray" / "auth_token")
    if not token and os.path.isfile(path):
        token = Path(path).read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def address(given: str | None) -> str:
    addr = given or os.environ.get("RAY_DASHBOARD_ADDRESS") or os.environ.get("RAY_ADDRESS")
    if not addr:
        raise ConfigError("no cluster address: pass --address http://HEAD:8265 or set RAY_ADDRESS")
    return addr if "://" in addr else f"http://{addr}"


def client(addr: str | None):
    from ray.job_submission import JobSubmissionClient

    url = address(addr)
    try:
        return JobSubmissionClient(url, headers=auth_headers())
    except Exception as e:
        raise ZsarError(f"cannot reach the Ray dashboard at {url}: {str(e).splitlines()[0]}") from None


def submit(command: list[str], *, addr: str | None = None, runtime_env_file: str | None = None,
           env_items: list[str] = (), wait: bool = True, job_id: str | None = None) -> tuple[str, str | None]:
    """Submit; with `wait`, stream the logs and return (job id, final status)."""
    entry = entrypoint(command)
    base = load_runtime_env(runtime_env_file)
    env = parse_env(list(env_items))
    env.setdefault("ZSAR_GIT_COMMIT", git_commit())  # the cluster has no .git: runs record the commit sent
    jobs = client(addr)
    with tempfile.TemporaryDirectory(prefix="zsar-submit-") as tmp:
        wheel = build_wheel(Path(tmp) / "wheel")
        pkg = package_dir(wheel, Path(tmp) / "pkg")
        job_id = jobs.submit_job(
            entrypoint=entry, submission_id=job_id or submission_id(command), runtime_env=runtime_env(base, pkg, env),
            metadata={"zsar_wheel": wheel.name},
        )
    print(f"[zsar] submitted {job_id}: {entry}", file=sys.stderr, flush=True)
    uri = env.get("MLFLOW_TRACKING_URI", "")
    if not uri.startswith(("http://", "https://", "databricks")):
        where = f"MLFLOW_TRACKING_URI={uri}" if uri else "no MLFLOW_TRACKING_URI"
        print(f"[zsar] note: {where}: the job logs to a store on the cluster, not to an MLflow server (cluster/README.md)",
              file=sys.stderr, flush=True)
    if not wait:
        return job_id, None
    return job_id, follow(jobs, job_id)


def follow(jobs, job_id: str) -> str:
    import asyncio

    async def tail():
        async for chunk in jobs.tail_job_logs(job_id):
            sys.stdout.write(chunk)
            sys.stdout.flush()

    try:
        asyncio.run(tail())
    except Exception as e:  # the log stream can drop; the status below is authoritative
        print(f"[zsar] log stream ended: {str(e).splitlines()[0] if str(e) else type(e).__name__}", file=sys.stderr)
    status = str(jobs.get_job_status(job_id))
    while status.split(".")[-1] not in TERMINAL:
        time.sleep(1)
        status = str(jobs.get_job_status(job_id))
    return status.split(".")[-1]


def list_jobs(addr: str | None) -> list[dict]:
    rows = []
    for job in client(addr).list_jobs():
        rows.append({
            "id": job.submission_id or job.job_id, "status": str(job.status).split(".")[-1],
            "start": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime((job.start_time or 0) / 1000)),
            "entrypoint": job.entrypoint,
        })
    return sorted(rows, key=lambda r: r["start"])


def status(addr: str | None, job_id: str) -> dict:
    info = _job(client(addr), job_id, "get_job_info")
    return {"id": job_id, "status": str(info.status).split(".")[-1], "message": info.message,
            "entrypoint": info.entrypoint, "start_time": info.start_time, "end_time": info.end_time}


def logs(addr: str | None, job_id: str, follow_logs: bool = False) -> str | None:
    jobs = client(addr)
    if follow_logs:
        follow(jobs, job_id)
        return None
    return _job(jobs, job_id, "get_job_logs")


def stop(addr: str | None, job_id: str) -> bool:
    return _job(client(addr), job_id, "stop_job")


def _job(jobs, job_id: str, method: str):
    try:
        return getattr(jobs, method)(job_id)
    except RuntimeError as e:
        if "does not exist" in str(e) or "404" in str(e):
            raise ZsarError(f"no job {job_id} on this cluster (zsar jobs list)") from None
        raise


def print_jobs(rows: list[dict]) -> None:
    if not rows:
        print("no jobs")
    for r in rows:
        print(f"{r['id']:<48} {r['status']:<10} {r['start']}  {r['entrypoint'][:80]}")


def print_status(info: dict) -> None:
    print(json.dumps(info, indent=1))
