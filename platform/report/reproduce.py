"""`zsar reproduce TABLE`: the runs that fill one published table, and ours beside the paper's.

A recipe is a YAML file, shipped as `zsar/resources/recipes/<table>.yaml` (or any path):

    table: sc_clip-b2n-hmdb51
    title: SC-CLIP, base-to-novel on HMDB-51 (SC-CLIP Table 2)
    published: {source: "SC-CLIP (Pattern Recognition 2025), Table 2", method: SC-CLIP}
    weights:                      # checkpoints it needs or accepts: --weights NAME=PATH
      clip: {optional: true, help: "OpenAI's ViT-B-16.pt instead of the openai tag"}
    runs:
      - {name: hmdb51, method: sc_clip, dataset: hmdb51, protocol: base2novel, split: all,
         set: {backbone.checkpoint: "{weights.clip}"}}

`published` names rows of the shipped published tables (`zsar.report.published`), or lists them
(`rows: [{dataset, split, metric, value, std}]`). Each run is resolved as `zsar train` resolves it
(presets, then the recipe's `set`, then the user's `--set`; a `set` value naming a weight that was
not given is left out when the weight is optional), with its root from `--root DATASET=DIR` and
every `--root` in `roots` (for eval targets), and runs through `zsar.train.runner.run`.

Our number for a published cell: base-to-novel runs give `base_top1`, `novel_top1`, `hm` per
split; eval targets give `<dataset>/<split>/top1`. A published `mean` cell is compared with the
mean ± std over the splits we ran of that dataset (the full test set excluded), as the papers
average their three splits; any other cell with the same (dataset, split, metric).
"""

from __future__ import annotations

import copy
import dataclasses
import math
import re
import sys
from importlib import resources
from pathlib import Path

import yaml

from zsar.config import deep_merge, resolve
from zsar.errors import ConfigError, ZsarError
from zsar.registry import DATASETS

RECIPES = "recipes"
WEIGHT_REF = re.compile(r"\{weights\.([A-Za-z0-9_-]+)\}")


def list_recipes() -> list[str]:
    folder = resources.files("zsar.resources").joinpath(RECIPES)
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".yaml"))


def load_recipe(table: str) -> dict:
    """A shipped recipe by table name, or a recipe file."""
    path = Path(table)
    if path.suffix in (".yaml", ".yml") and path.is_file():
        text = path.read_text()
    else:
        entry = resources.files("zsar.resources").joinpath(RECIPES, f"{table}.yaml")
        if not entry.is_file():
            raise ConfigError(f"no recipe '{table}'; shipped recipes: {', '.join(list_recipes())} (or pass a recipe .yaml file)")
        text = entry.read_text()
    recipe = yaml.safe_load(text) or {}
    if not recipe.get("runs"):
        raise ConfigError(f"recipe {table}: no runs")
    for run in recipe["runs"]:
        missing = [k for k in ("name", "method", "dataset", "protocol") if not run.get(k)]
        if missing:
            raise ConfigError(f"recipe {table}: run {run.get('name', '?')} lacks {', '.join(missing)}")
    return recipe


def parse_pairs(items: list[str] | None, flag: str, default_key: str | None = None) -> dict[str, str]:
    """`["hmdb51=/data/hmdb"]` -> {"hmdb51": "/data/hmdb"}; a bare value goes to `default_key`."""
    out = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            if default_key is None:
                raise ConfigError(f"{flag} expects NAME=VALUE, got '{item}'")
            key, value = default_key, item
        out[key.strip()] = value.strip()
    return out


def _nest(flat: dict) -> dict:
    out: dict = {}
    for key, value in flat.items():
        node = out
        *parents, leaf = key.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return out


def _run_set(run: dict, weights: dict, declared: dict, placeholders: bool) -> dict:
    """The recipe's `set` of one run (dotted keys) with `{weights.NAME}` filled in, nested; with
    `placeholders`, a required weight not given reads `<--weights NAME=PATH>` (for --dry-run)."""
    flat = {}
    for key, value in (run.get("set") or {}).items():
        names = WEIGHT_REF.findall(value) if isinstance(value, str) else []
        absent = [n for n in names if n not in weights]
        if absent:
            if all((declared.get(n) or {}).get("optional") for n in absent):
                continue
            if placeholders:
                weights = {**weights, **{n: f"<--weights {n}=PATH>" for n in absent}}
            else:
                raise ConfigError(f"recipe run {run['name']} needs --weights {absent[0]}=PATH "
                                  f"({(declared.get(absent[0]) or {}).get('help', 'a checkpoint')})")
        flat[key] = WEIGHT_REF.sub(lambda m: weights[m.group(1)], value) if names else value
    return _nest(flat)


def resolve_runs(recipe: dict, roots: dict, weights: dict, overrides: dict, expand: bool = False) -> list[tuple[dict, object]]:
    """(run, resolved config) for every run; with `expand`, a `split: all` run yields one config
    per split (what `--split all` runs)."""
    unknown = set(weights) - set(recipe.get("weights") or {})
    if unknown:
        raise ConfigError(f"recipe {recipe.get('table')} takes no weights named {', '.join(sorted(unknown))}; "
                          f"it takes: {', '.join(recipe.get('weights') or {}) or 'none'}")
    out = []
    for run in recipe["runs"]:
        layers = _run_set(run, weights, recipe.get("weights") or {}, placeholders=expand)
        place = {"split": run.get("split"), "roots": dict(roots)}
        if run["dataset"] in roots:
            place["root"] = roots[run["dataset"]]
        merged = deep_merge(deep_merge(layers, {k: v for k, v in place.items() if v is not None}), overrides)
        cfg = resolve(method=run["method"], dataset=run["dataset"], protocol=run["protocol"], overrides=merged)
        splits = [cfg.split]
        if expand and cfg.split == "all":
            splits = list(DATASETS.get(cfg.dataset).splits_for_all(cfg.protocol))
        out += [(run, dataclasses.replace(cfg, split=s)) for s in splits]
    return out


def published_rows(recipe: dict) -> list[dict]:
    spec = recipe.get("published") or {}
    if spec.get("rows"):
        return [{"std": None, **r} for r in spec["rows"]]
    from zsar.report.published import load_published

    runs = {(r["protocol"], r["dataset"]) for r in recipe["runs"]}
    rows = [{"dataset": p.dataset, "split": p.split, "metric": p.metric, "value": p.value, "std": p.std}
            for p in load_published() if p.source == spec.get("source") and p.method == spec.get("method")
            and (p.protocol, p.train_dataset) in runs]
    if not rows:
        raise ConfigError(f"recipe {recipe.get('table')}: no published rows for {spec}")
    return rows


def needs(recipe: dict, configs: list, roots: dict, weights: dict) -> dict:
    """The dataset roots and checkpoints the recipe's runs read: given, optional or missing."""
    datasets = sorted({cfg.dataset for _, cfg in configs} | {t.dataset for _, cfg in configs for t in cfg.eval_targets})
    root_needs = {d: roots.get(d) or ("not needed" if not DATASETS.get(d).needs_root else f"missing: --root {d}=DIR")
                  for d in datasets}
    weight_needs = {}
    for name, spec in (recipe.get("weights") or {}).items():
        spec = spec or {}
        weight_needs[name] = weights.get(name) or (("optional: " if spec.get("optional") else "missing: ")
                                                   + f"--weights {name}=PATH ({spec.get('help', 'a checkpoint')})")
    return {"roots": root_needs, "weights": weight_needs}


# ---------------------------------------------------------------------------- our numbers
def _cells(result, dataset: str, split: str) -> dict[tuple[str, str, str], float]:
    out = {}
    for key, value in (result.metrics or {}).items():
        if not isinstance(value, (int, float)) or (isinstance(value, float) and math.isnan(value)):
            continue
        parts = key.split("/")
        if len(parts) == 3:
            out[(parts[0], parts[1], parts[2])] = float(value)
        elif key in ("base_top1", "novel_top1", "hm", "top1", "top5") and split != "all":
            out[(dataset, split, key)] = float(value)
    return out


def collect(results: list[tuple[object, object]]) -> dict[tuple[str, str, str], float]:
    """(dataset, split, metric) -> value over every run (and split child) of the recipe."""
    cells: dict = {}
    for cfg, result in results:
        children = getattr(result, "children", None) or []
        splits = DATASETS.get(cfg.dataset).splits_for_all(cfg.protocol) if children else ()
        for split, child in zip(splits, children):  # the runner runs `--split all` in this order
            cells.update(_cells(child, cfg.dataset, split))
        cells.update(_cells(result, cfg.dataset, cfg.split))
    return cells


def compare(published: list[dict], ours: dict) -> list[dict]:
    rows = []
    for p in published:
        if p["split"] == "mean":
            values = [v for (d, s, m), v in sorted(ours.items()) if d == p["dataset"] and m == p["metric"] and s != "full"]
        else:
            values = [ours[k] for k in [(p["dataset"], p["split"], p["metric"])] if k in ours]
        mean = sum(values) / len(values) if values else None
        std = math.sqrt(sum((v - mean) ** 2 for v in values) / len(values)) if len(values) > 1 else None
        rows.append({**p, "ours": mean, "ours_std": std, "n": len(values),
                     "diff": None if mean is None else mean - p["value"]})
    return rows


def _pm(value, std) -> str:
    if value is None:
        return "not run"
    return f"{value:.1f}" + (f" ± {std:.1f}" if std is not None else "")


def format_table(recipe: dict, rows: list[dict]) -> str:
    lines = [f"{recipe.get('title', recipe.get('table'))}",
             "| dataset | split | metric | ours | published | ours - published |", "| --- | --- | --- | ---: | ---: | ---: |"]
    for r in rows:
        splits = f" ({r['n']} splits)" if r["split"] == "mean" and r["ours"] is not None else ""
        diff = "" if r["diff"] is None else f"{r['diff']:+.1f}"
        lines.append(f"| {r['dataset']} | {r['split']} | {r['metric']} | {_pm(r['ours'], r['ours_std'])}{splits} | "
                     f"{_pm(r['value'], r.get('std'))} | {diff} |")
    source = (recipe.get("published") or {}).get("source", "the recipe")
    lines.append(f"\nPublished: {source}. Ours: accuracies in percent, mean ± std over the splits run.")
    return "\n".join(lines)


def reproduce(table: str, roots: dict, weights: dict, overrides: dict, dry_run: bool = False):
    """Run (or, with `dry_run`, describe) one recipe; returns the dry-run dict or the table text."""
    recipe = load_recipe(table)
    published = published_rows(recipe)
    if dry_run:
        configs = resolve_runs(recipe, roots, weights, overrides, expand=True)
        return {"table": recipe.get("table", table), "title": recipe.get("title"),
                "needs": needs(recipe, configs, roots, weights),
                "runs": [{"name": run["name"], "split": cfg.split, "config": cfg.to_dict()} for run, cfg in configs],
                "published": published}
    configs = resolve_runs(recipe, roots, weights, overrides)
    missing = [v for group in needs(recipe, configs, roots, weights).values() for v in group.values() if v.startswith("missing")]
    if missing:
        raise ZsarError(f"recipe {recipe.get('table', table)} needs {'; '.join(v[len('missing: '):] for v in missing)}")
    from zsar.train.runner import run

    results = []
    for i, (spec, cfg) in enumerate(configs, 1):
        print(f"[zsar] reproduce {recipe.get('table', table)}: run {i}/{len(recipe['runs'])} {spec['name']} "
              f"({cfg.method} on {cfg.dataset}/{cfg.protocol}/{cfg.split})", file=sys.stderr, flush=True)
        results.append((cfg, run(copy.deepcopy(cfg))))
    return format_table(recipe, compare(published, collect(results)))
