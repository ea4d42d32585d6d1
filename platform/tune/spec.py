"""A sweep spec (`sweeps/<method>/<dataset>.yaml`): load, check everything before any trial starts,
and turn it into an Optuna search space and the points Optuna evaluates first.

```yaml
method: sc_clip
dataset: hmdb51
root: null                 # or --root / --set root=DIR
protocol: base2novel
split: s1
selection: val             # val: select on held-out base classes (val_hm); test: on the test classes
overrides: {optim: {epochs: 18}}       # fixed for every trial (any config key)
space:                     # names: fields of the method's Config, or dotted config keys (optim.lr)
  delta: {uniform: [0.7, 0.95]}
  tau: {int: [10, 100]}
  alpha: {loguniform: [1.0e-4, 1.0]}
  adapter_a: {choice: [tf, mlp]}
metric: val_hm             # default: what the protocol and the selection produce
mode: max
num_samples: 32
asha: {grace_period: 2, reduction_factor: 3}   # max_t = optim.epochs
resources: {cpus: 1, gpus: 0.5, workers: 1}    # per trial; workers > 1: a TorchTrainer per trial
max_concurrent: 2
seed: 0
points_to_evaluate: [{delta: 0.9}]   # after the preset's own values, which are always trial 0
```
"""

from __future__ import annotations

import copy
import difflib
import math
from dataclasses import dataclass, field
from pathlib import Path

from zsar.config import ExperimentConfig, deep_merge, field_paths, load_yaml, resolve
from zsar.errors import ConfigError, ZsarError

KINDS = ("uniform", "loguniform", "int", "choice")
TOP_KEYS = ("name", "method", "dataset", "root", "protocol", "split", "selection", "overrides", "space", "metric",
            "mode", "num_samples", "asha", "resources", "max_concurrent", "seed", "points_to_evaluate", "experiment")
ASHA_KEYS = ("grace_period", "reduction_factor")
RESOURCE_KEYS = ("cpus", "gpus", "workers")


@dataclass
class Param:
    name: str  # as the spec writes it
    key: str  # the dotted config key it sets (hparams.delta, optim.lr)
    kind: str
    values: list  # [low, high] or the choices

    def distribution(self):
        import optuna.distributions as d

        if self.kind == "uniform":
            return d.FloatDistribution(self.values[0], self.values[1])
        if self.kind == "loguniform":
            return d.FloatDistribution(self.values[0], self.values[1], log=True)
        if self.kind == "int":
            return d.IntDistribution(self.values[0], self.values[1])
        return d.CategoricalDistribution(self.values)

    def contains(self, value) -> bool:
        if self.kind == "choice":
            return value in self.values
        return isinstance(value, (int, float)) and self.values[0] <= value <= self.values[1]


@dataclass
class SweepSpec:
    path: str
    name: str
    method: str
    dataset: str
    protocol: str
    split: str | None
    root: str | None
    selection: str
    overrides: dict
    space: dict[str, Param]
    metric: str
    mode: str
    num_samples: int
    grace_period: int
    reduction_factor: int
    cpus: float
    gpus: float
    workers: int
    max_concurrent: int
    seed: int
    points: list[dict] = field(default_factory=list)  # trial 0 first: the preset's values
    experiment: str | None = None

    @property
    def max_t(self) -> int:
        """ASHA's horizon: reports per trial (one per epoch; one for a method that trains nothing)."""
        from zsar.registry import METHODS

        cfg = self.base_config()
        return max(cfg.optim.epochs, 1) if METHODS.get(cfg.method).trains else 1

    def _fixed(self) -> dict:
        fixed = {"selection": self.selection, "seed": self.seed,
                 # ASHA compares trials on the metric at every rung: every epoch reports it
                 "optim": {"eval_every": 1},
                 "resources": {"workers": self.workers if self.workers > 1 else 0,
                               "gpu": self.gpus > 0,
                               "cpus_per_worker": self.cpus,
                               "torch_threads": max(1, int(math.ceil(self.cpus)))}}
        for key, value in (("root", self.root), ("split", self.split)):
            if value is not None:
                fixed[key] = value
        if self.experiment:
            fixed["tracking"] = {"experiment": self.experiment}
        return deep_merge(self.overrides, fixed)

    def base_config(self) -> ExperimentConfig:
        """The config every trial starts from (presets + fixed overrides), before sampling."""
        return resolve(overrides=self._fixed(), method=self.method, dataset=self.dataset, protocol=self.protocol)

    def trial_config(self, params: dict) -> ExperimentConfig:
        """The resolved config of a trial with `params` (spec names -> sampled values)."""
        return resolve(overrides=deep_merge(self._fixed(), nest({self.space[k].key: v for k, v in params.items()})),
                       method=self.method, dataset=self.dataset, protocol=self.protocol)

    def optuna_space(self) -> dict:
        return {name: p.distribution() for name, p in self.space.items()}


def nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        parts = key.split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


def get_key(cfg: ExperimentConfig, key: str):
    node = cfg.to_dict()
    for part in key.split("."):
        node = node[part]
    return node


def _nearest(name: str, valid: list[str]) -> str:
    close = difflib.get_close_matches(name, valid, n=1, cutoff=0.4)
    return f"; did you mean '{close[0]}'?" if close else ""


def _param(where: str, name: str, raw, method_fields: list[str], config_keys: list[str], method: str) -> Param:
    if name in method_fields:
        key = f"hparams.{name}"
    elif name.startswith("hparams.") and name[len("hparams."):] in method_fields:
        key = name
    elif "." in name and name in config_keys and not name.startswith("hparams."):
        key = name
    else:
        valid = method_fields + [k for k in config_keys if "." in k and not k.startswith("hparams.")]
        raise ConfigError(f"{where}: unknown parameter '{name}' (not a field of {method}'s Config nor a config key)"
                          f"{_nearest(name, valid)}")
    if not isinstance(raw, dict) or len(raw) != 1 or next(iter(raw)) not in KINDS:
        raise ConfigError(f"{where}: parameter '{name}' must be one of {{uniform: [lo, hi]}}, {{loguniform: [lo, hi]}}, "
                          f"{{int: [lo, hi]}}, {{choice: [a, b, ...]}}; got {raw!r}")
    kind, values = next(iter(raw.items()))
    if not isinstance(values, list) or not values:
        raise ConfigError(f"{where}: parameter '{name}': {kind} needs a non-empty list, got {values!r}")
    if kind == "choice":
        return Param(name, key, kind, list(values))
    values = [_yaml_number(v) for v in values]
    if len(values) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
        raise ConfigError(f"{where}: parameter '{name}': {kind} needs [low, high] numbers, got {values!r}")
    low, high = values
    if kind == "int" and not all(float(v).is_integer() for v in values):
        raise ConfigError(f"{where}: parameter '{name}': int needs integer bounds, got {values!r}")
    if low >= high:
        raise ConfigError(f"{where}: parameter '{name}': {'empty' if low == high else 'inverted'} range [{low}, {high}] "
                          "(low must be below high)")
    if kind == "loguniform" and low <= 0:
        raise ConfigError(f"{where}: parameter '{name}': loguniform needs low > 0, got {low}")
    cast = int if kind == "int" else float
    return Param(name, key, kind, [cast(low), cast(high)])


def _yaml_number(v):
    """YAML 1.1 reads 1e-5 (no dot) as a string; it is meant as a number."""
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return v
    return v


def _number(where, data, key, default, cast, low):
    value = data.get(key, default)
    try:
        value = cast(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{where}: {key} must be a number, got {data.get(key)!r}") from None
    if value < low:
        raise ConfigError(f"{where}: {key} must be >= {low}, got {value}")
    return value


def load_spec(path: str | Path, *, trials: int | None = None, root: str | None = None) -> SweepSpec:
    """Read and check a spec: every parameter, range, metric and preset value (see module docstring)."""
    path = Path(path)
    data = load_yaml(path)
    spec = _read_spec(str(path), data, trials, root)
    _check_spec(spec, data)
    return spec


def _read_spec(where: str, data: dict, trials: int | None, root: str | None) -> SweepSpec:
    """The spec's keys, each checked on its own."""
    from zsar.registry import DATASETS, METHODS

    for key in data:
        if key not in TOP_KEYS:
            raise ConfigError(f"{where}: unknown key '{key}'{_nearest(key, list(TOP_KEYS))}")
    for key in ("method", "dataset", "space"):
        if key not in data:
            raise ConfigError(f"{where}: '{key}' is required")
    method_cls = METHODS.get(data["method"])
    dataset_cls = DATASETS.get(data["dataset"])
    protocol = data.get("protocol") or next(iter(dataset_cls.protocols))
    split = dataset_cls.check_protocol(protocol, data.get("split"))
    if split == "all":
        raise ConfigError(f"{where}: split 'all' is not supported in a sweep; sweep one split (s1) and run the best config with --split all")
    selection = data.get("selection", "val")
    if selection not in ("val", "test"):
        raise ConfigError(f"{where}: selection must be val or test, got {selection!r}")
    space_raw = data["space"]
    if not isinstance(space_raw, dict) or not space_raw:
        raise ConfigError(f"{where}: space must map parameter names to ranges")
    method_fields, config_keys = field_paths(method_cls.Config), field_paths(ExperimentConfig)
    space = {name: _param(where, name, raw, method_fields, config_keys, data["method"]) for name, raw in space_raw.items()}
    asha, resources = data.get("asha") or {}, data.get("resources") or {}
    for section, valid, value in (("asha", ASHA_KEYS, asha), ("resources", RESOURCE_KEYS, resources)):
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {section} must be a mapping")
        for key in value:
            if key not in valid:
                raise ConfigError(f"{where}: unknown key '{section}.{key}'{_nearest(key, list(valid))}")
    mode = data.get("mode", "max")
    if mode not in ("max", "min"):
        raise ConfigError(f"{where}: mode must be max or min, got {mode!r}")
    overrides = data.get("overrides") or {}
    if not isinstance(overrides, dict):
        raise ConfigError(f"{where}: overrides must be a mapping of config keys")
    return SweepSpec(
        path=where, name=data.get("name") or f"{data['method']}-{data['dataset']}-{protocol}",
        method=data["method"], dataset=data["dataset"], protocol=protocol, split=split,
        root=root if root is not None else data.get("root"), selection=selection, overrides=copy.deepcopy(overrides),
        space=space, metric="", mode=mode,
        num_samples=trials if trials is not None else _number(where, data, "num_samples", 16, int, 1),
        grace_period=_number(where, asha, "grace_period", 1, int, 1),
        reduction_factor=_number(where, asha, "reduction_factor", 3, int, 2),
        cpus=_number(where, resources, "cpus", 1.0, float, 0.0), gpus=_number(where, resources, "gpus", 0.0, float, 0.0),
        workers=_number(where, resources, "workers", 1, int, 1),
        max_concurrent=_number(where, data, "max_concurrent", 1, int, 1), seed=_number(where, data, "seed", 0, int, 0),
        experiment=data.get("experiment"),
    )


def _check_spec(spec: SweepSpec, data: dict) -> None:
    """What only the whole spec can show: the metric its runs produce, the preset points, and that
    every bound and choice makes a valid config."""
    where = spec.path
    if spec.num_samples < 1:
        raise ConfigError(f"{where}: --trials / num_samples must be >= 1")
    if spec.gpus > 1 and not float(spec.gpus).is_integer():
        raise ConfigError(f"{where}: resources.gpus={spec.gpus}: fractions are for a share of one GPU (<= 1)")
    base = spec.base_config()  # checks the fixed overrides (unknown keys, types, ranges)
    produced = produced_metrics(base)
    spec.metric = data.get("metric") or ("val_hm" if spec.selection == "val" else default_metric(base, produced))
    if spec.metric not in produced:
        raise ConfigError(f"{where}: metric '{spec.metric}' is not produced by {spec.dataset}/{spec.protocol} with "
                          f"selection={spec.selection}; it produces: {', '.join(sorted(produced))}")
    if spec.selection == "val" and not spec.metric.startswith("val_"):
        raise ConfigError(f"{where}: selection=val selects on the held-out classes (val_hm, val_base_top1, ...), "
                          f"not on '{spec.metric}'; use selection: test to select on the test classes")
    spec.points = _points(where, spec, base, data.get("points_to_evaluate") or [])
    for p in spec.space.values():
        for value in p.values:
            try:
                spec.trial_config({p.name: value})
            except ConfigError as e:
                raise ConfigError(f"{where}: parameter '{p.name}' = {value!r} is not a valid value: {e}") from None


def _points(where: str, spec: SweepSpec, base: ExperimentConfig, extra: list) -> list[dict]:
    """The preset's own values of every swept parameter (trial 0), then the spec's points."""
    preset = {}
    for name, p in spec.space.items():
        value = get_key(base, p.key)
        if not p.contains(value):
            raise ConfigError(f"{where}: the preset's {name}={value!r} lies outside its range {p.values}; widen the range "
                              f"(the preset is always trial 0)")
        preset[name] = value
    points = [preset]
    if not isinstance(extra, list):
        raise ConfigError(f"{where}: points_to_evaluate must be a list of mappings")
    for i, point in enumerate(extra):
        if not isinstance(point, dict):
            raise ConfigError(f"{where}: points_to_evaluate[{i}] must be a mapping")
        for name, value in point.items():
            if name not in spec.space:
                raise ConfigError(f"{where}: points_to_evaluate[{i}]: '{name}' is not in the space{_nearest(name, list(spec.space))}")
            if not spec.space[name].contains(value):
                raise ConfigError(f"{where}: points_to_evaluate[{i}]: {name}={value!r} lies outside {spec.space[name].values}")
        points.append({**preset, **point})
    return points


# ---------------------------------------------------------------- metrics a protocol produces


def produced_metrics(cfg: ExperimentConfig) -> set[str]:
    """Metric names a run of `cfg` reports: from its plan when the data is at hand, else from the
    protocol's shape (a spec is checked on machines without the dataset)."""
    from zsar.train.metrics import averaged_split, derived_metrics
    from zsar.train.plan import build_plan

    plan = None
    if cfg.root is not None:  # without a root (a shipped spec, the demo), from the protocol alone
        try:
            plan = build_plan(cfg, cfg.split)
        except ZsarError:
            plan = None
    if plan is not None:
        names = set()
        for p in plan.evals:
            names |= {f"{p.prefix}top1", f"{p.prefix}top5"}
            if p.seen is not None:
                names |= {f"{p.prefix}seen", f"{p.prefix}unseen", f"{p.prefix}h"}
        probe = {n: 1.0 for n in names}
        return names | set(derived_metrics(plan.kind, [p.prefix for p in plan.evals], probe))
    names = set()
    if cfg.protocol == "base2novel":
        names |= {"base_top1", "base_top5", "novel_top1", "novel_top5", "hm"}
    elif cfg.protocol in ("zsl", "gzsl"):
        names |= {"zsl_top1", "zsl_top5", "seen_top1", "seen_top5"}
        if cfg.protocol == "gzsl":
            names |= {"top1", "top5", "seen", "unseen", "h"}
    elif cfg.protocol in ("full", "cezsar") or (cfg.protocol == "zeroshot" and not cfg.eval_targets):
        names |= {"top1", "top5"}
    for target in cfg.eval_targets:
        if not target.splits or any(averaged_split(s) for s in target.splits):
            names |= {f"{target.dataset}/top1_mean", f"{target.dataset}/top1_std"}
        names |= {f"{target.dataset}/{s}/top1" for s in target.splits}
    if cfg.selection == "val":
        names |= {"val_base_top1", "val_base_top5", "val_novel_top1", "val_novel_top5", "val_hm"}
    return names


def default_metric(cfg: ExperimentConfig, produced: set[str]) -> str:
    for name in ("hm", "h", "zsl_top1", "top1"):
        if name in produced:
            return name
    means = sorted(n for n in produced if n.endswith("/top1_mean"))
    return means[0] if means else sorted(produced)[0]


def shipped_specs(root: str | Path) -> list[Path]:
    return sorted(Path(root).glob("*/*.yaml"))
