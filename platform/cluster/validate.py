"""Checks for the files under `cluster/`, before they reach a cloud account.

Ray cluster launcher configs are validated against the JSON schema that ships inside the
installed `ray` package (`ray/autoscaler/ray-schema.json`, what `ray up` itself applies), plus
the cross-field rules the schema cannot state. KubeRay manifests are checked for the fields the
operator needs: apiVersion `ray.io/v1`, the kinds, head and worker groups, replica bounds,
GPU limits with a matching toleration, autoscaling and token auth.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from zsar.errors import ConfigError


def ray_schema() -> dict:
    import ray

    return json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


def _load(path) -> list:
    try:
        return [d for d in yaml.safe_load_all(Path(path).read_text()) if d is not None]
    except (OSError, yaml.YAMLError) as e:
        raise ConfigError(f"{path}: {str(e).splitlines()[0]}") from None


def launcher_errors(config: dict) -> list[str]:
    import jsonschema

    validator = jsonschema.Draft7Validator(ray_schema())
    errors = [f"{'/'.join(map(str, e.absolute_path)) or '<top>'}: {e.message}" for e in validator.iter_errors(config)]
    if errors:
        return errors
    types = config.get("available_node_types", {})
    if config.get("head_node_type") not in types:
        errors.append(f"head_node_type: '{config.get('head_node_type')}' is not one of available_node_types")
    for name, node in types.items():
        if name == config.get("head_node_type"):
            continue
        lo, hi = node.get("min_workers", 0), node.get("max_workers", 0)
        if lo > hi:
            errors.append(f"available_node_types/{name}: min_workers {lo} > max_workers {hi}")
    if not any(node.get("resources", {}).get("GPU", 0) > 0 for node in types.values()):
        errors.append("available_node_types: no node type offers a GPU")
    return errors


def validate_launcher(path) -> dict:
    docs = _load(path)
    if len(docs) != 1 or not isinstance(docs[0], dict):
        raise ConfigError(f"{path}: a Ray cluster config is one YAML mapping")
    errors = launcher_errors(docs[0])
    if errors:
        raise ConfigError(f"{path}: {errors[0]}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
    return docs[0]


def _containers(template: dict, where: str) -> list[dict]:
    containers = (template or {}).get("spec", {}).get("containers") or []
    if not containers or not all(c.get("image") for c in containers):
        raise ConfigError(f"{where}: template.spec.containers needs at least one container with an image")
    return containers


def cluster_spec_errors(spec: dict, where: str) -> list[str]:
    errors = []
    if not spec.get("rayVersion"):
        errors.append(f"{where}.rayVersion is missing")
    head = spec.get("headGroupSpec")
    if not isinstance(head, dict) or "rayStartParams" not in head:
        errors.append(f"{where}.headGroupSpec needs rayStartParams and a template")
    else:
        _containers(head.get("template"), f"{where}.headGroupSpec")
    groups = spec.get("workerGroupSpecs") or []
    if not groups:
        errors.append(f"{where}.workerGroupSpecs is empty")
    names = [g.get("groupName") for g in groups]
    if len(set(names)) != len(names) or not all(names):
        errors.append(f"{where}.workerGroupSpecs: every group needs a unique groupName")
    gpu_groups = 0
    for g in groups:
        gw = f"{where}.workerGroupSpecs[{g.get('groupName')}]"
        lo, hi, n = g.get("minReplicas"), g.get("maxReplicas"), g.get("replicas", g.get("minReplicas"))
        if not all(isinstance(x, int) for x in (lo, hi, n)) or not lo <= n <= hi:
            errors.append(f"{gw}: needs integer minReplicas <= replicas <= maxReplicas (got {lo}, {n}, {hi})")
        if "rayStartParams" not in g:
            errors.append(f"{gw}.rayStartParams is missing")
        template = g.get("template") or {}
        containers = _containers(template, gw)
        gpus = [c.get("resources", {}).get("limits", {}).get("nvidia.com/gpu") for c in containers]
        if any(gpus):
            gpu_groups += 1
            tolerations = template.get("spec", {}).get("tolerations") or []
            if not any(t.get("key") == "nvidia.com/gpu" for t in tolerations):
                errors.append(f"{gw}: GPU pods need a nvidia.com/gpu toleration")
    if not gpu_groups:
        errors.append(f"{where}: no worker group has nvidia.com/gpu limits")
    if spec.get("enableInTreeAutoscaling") is not True:
        errors.append(f"{where}.enableInTreeAutoscaling must be true")
    if (spec.get("autoscalerOptions") or {}).get("version") != "v2":
        errors.append(f"{where}.autoscalerOptions.version must be v2")
    if (spec.get("authOptions") or {}).get("mode") != "token":
        errors.append(f"{where}.authOptions.mode must be token")
    return errors


def kuberay_errors(docs: list) -> list[str]:
    errors = []
    ray_docs = [d for d in docs if str(d.get("apiVersion", "")).startswith("ray.io/")]
    if not ray_docs:
        return ["no ray.io resource in the file"]
    for doc in ray_docs:
        kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
        where = f"{kind}/{name}"
        if doc.get("apiVersion") != "ray.io/v1":
            errors.append(f"{where}: apiVersion must be ray.io/v1")
        if not name:
            errors.append(f"{kind}: metadata.name is missing")
        spec = doc.get("spec") or {}
        if kind == "RayCluster":
            errors += cluster_spec_errors(spec, "spec")
        elif kind == "RayJob":
            if not spec.get("entrypoint"):
                errors.append(f"{where}: spec.entrypoint is missing")
            if spec.get("shutdownAfterJobFinishes") is not True:
                errors.append(f"{where}: spec.shutdownAfterJobFinishes must be true (the cluster goes away with the job)")
            if not isinstance(spec.get("ttlSecondsAfterFinished"), int):
                errors.append(f"{where}: spec.ttlSecondsAfterFinished is missing")
            if "runtimeEnvYAML" in spec:
                yaml.safe_load(spec["runtimeEnvYAML"])
            errors += cluster_spec_errors(spec.get("rayClusterSpec") or {}, "spec.rayClusterSpec")
        else:
            errors.append(f"{where}: unexpected kind (RayCluster or RayJob)")
    return errors


def validate_kuberay(path) -> list:
    docs = _load(path)
    errors = kuberay_errors(docs)
    if errors:
        raise ConfigError(f"{path}: {errors[0]}" + (f" (+{len(errors) - 1} more)" if len(errors) > 1 else ""))
    return docs
