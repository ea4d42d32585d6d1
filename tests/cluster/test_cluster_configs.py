"""The files under cluster/ validate (launcher configs against Ray's own schema, KubeRay
manifests against the operator's required fields), and broken variants are refused."""

from __future__ import annotations

import copy
import re
import shlex
from pathlib import Path

import pytest
import yaml

from conftest import REPO
from zsar.cli import build_parser
from zsar.cluster import validate

CLUSTER = REPO / "cluster"
LAUNCHERS = ["aws-gpu.yaml", "gcp-gpu.yaml"]
KUBERAY = ["kuberay/raycluster.yaml", "kuberay/rayjob-sweep.yaml"]


def test_every_yaml_in_cluster_is_covered():
    found = {str(p.relative_to(CLUSTER)) for p in CLUSTER.rglob("*.yaml")}
    assert found == set(LAUNCHERS) | set(KUBERAY) | {"runtime_env.yaml"}


@pytest.mark.parametrize("name", LAUNCHERS)
def test_launcher_configs_validate_against_rays_schema(name):
    config = validate.validate_launcher(CLUSTER / name)
    types = config["available_node_types"]
    head = types[config["head_node_type"]]
    assert head["resources"].get("GPU", 0) == 0 and head["resources"]["CPU"] >= 8  # a CPU head for Data
    gpu_types = {k: v for k, v in types.items() if v["resources"].get("GPU")}
    assert gpu_types and all(v["min_workers"] == 0 and v["max_workers"] > 0 for v in gpu_types.values())
    cheap = [v["node_config"].get("InstanceMarketOptions", {}).get("MarketType") == "spot"
             or v["node_config"].get("scheduling", {}).get("provisioningModel") == "SPOT"
             or v["node_config"].get("scheduling", {}).get("preemptible") for v in gpu_types.values()]
    assert any(cheap) and not all(cheap)  # spot/preemptible and on-demand variants
    assert config["idle_timeout_minutes"] > 0
    assert config["docker"]["image"].endswith(":0.1.0-py311-gpu")


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(unknown_key=1), "Additional properties"),
    (lambda c: c.update(max_workers="many"), "max_workers"),
    (lambda c: c["available_node_types"]["gpu_a10g"].pop("resources"), "resources"),
    (lambda c: c["available_node_types"]["gpu_a10g"].update(min_workers=9, max_workers=8), "min_workers 9 > max_workers 8"),
    (lambda c: c.update(head_node_type="nope"), "head_node_type"),
])
def test_broken_launcher_configs_are_refused(mutate, message):
    config = yaml.safe_load((CLUSTER / "aws-gpu.yaml").read_text())
    mutate(config)
    errors = validate.launcher_errors(config)
    assert errors and any(message in e for e in errors), errors


@pytest.mark.parametrize("name", KUBERAY)
def test_kuberay_manifests_carry_what_the_operator_needs(name):
    docs = validate.validate_kuberay(CLUSTER / name)
    ray_docs = [d for d in docs if d["apiVersion"] == "ray.io/v1"]
    assert ray_docs


def test_rayjob_runs_a_sweep_and_cleans_up():
    job = validate.validate_kuberay(CLUSTER / "kuberay/rayjob-sweep.yaml")[0]
    assert job["kind"] == "RayJob" and job["spec"]["entrypoint"].startswith("zsar sweep ")
    assert job["spec"]["shutdownAfterJobFinishes"] is True and job["spec"]["ttlSecondsAfterFinished"] > 0


def _raycluster():
    return [d for d in yaml.safe_load_all((CLUSTER / "kuberay/raycluster.yaml").read_text()) if d["kind"] == "RayCluster"][0]


@pytest.mark.parametrize("mutate, message", [
    (lambda d: d.update(apiVersion="ray.io/v1alpha1"), "apiVersion"),
    (lambda d: d["spec"]["workerGroupSpecs"][0].update(minReplicas=3, maxReplicas=2), "minReplicas"),
    (lambda d: d["spec"]["workerGroupSpecs"][0]["template"]["spec"].pop("tolerations"), "toleration"),
    (lambda d: [g["template"]["spec"]["containers"][0]["resources"]["limits"].pop("nvidia.com/gpu", None)
                for g in d["spec"]["workerGroupSpecs"]], "nvidia.com/gpu"),
    (lambda d: d["spec"].pop("authOptions"), "authOptions"),
    (lambda d: d["spec"]["autoscalerOptions"].update(version="v1"), "v2"),
    (lambda d: d["spec"]["workerGroupSpecs"][1].update(groupName="gpu"), "groupName"),
])
def test_broken_kuberay_manifests_are_refused(mutate, message):
    doc = copy.deepcopy(_raycluster())
    mutate(doc)
    errors = validate.kuberay_errors([doc])
    assert errors and any(message in e for e in errors), errors


def test_dockerfile_builds_on_the_installed_ray():
    import ray

    base = re.search(r"^FROM (\S+)", (CLUSTER / "Dockerfile").read_text(), re.M).group(1)
    assert base == f"rayproject/ray:{ray.__version__}-py311-gpu"


def test_runtime_env_file_is_accepted_by_submit():
    from zsar.cluster.submit import load_runtime_env, runtime_env

    base = load_runtime_env(str(CLUSTER / "runtime_env.yaml"))
    env = runtime_env(base, Path("/pkg/zsar"), {"MLFLOW_TRACKING_URI": "http://mlflow:5000"})
    assert env["py_modules"][0] == "/pkg/zsar"
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000" and env["env_vars"]["ZSAR_HOME"]


def _readme_zsar_commands() -> list[list[str]]:
    text = (CLUSTER / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", text, re.S)
    lines = " \n".join(blocks).replace("\\\n", " ").splitlines()
    return [shlex.split(line.strip())[1:] for line in lines if line.strip().startswith("zsar ")]


def test_readme_zsar_commands_parse():
    commands = _readme_zsar_commands()
    names = {tuple(c[:2]) if c[0] == "jobs" else (c[0],) for c in commands}
    assert {("submit",), ("jobs", "list"), ("jobs", "status"), ("jobs", "logs"), ("jobs", "stop")} <= names
    for command in commands:
        args = build_parser().parse_args(command)
        if args.command == "submit":
            job = args.job[1:] if args.job[:1] == ["--"] else args.job
            if job[0] != "sweep":  # `zsar sweep` belongs to the sweeps issue
                build_parser().parse_args(job)
