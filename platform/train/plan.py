"""Protocol -> a checked plan: which videos train, which evaluate against which label set.

`checked_plan(cfg, split)` is what a run, a sweep and `zsar prepare` start from: the dataset's
plan for the split plus the config's eval targets, restricted to what the method can score, and
checked (modalities, batch sizes, empty parts, checkpoints trained on held-out classes) before
anything starts.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from zsar.config import ExperimentConfig
from zsar.data.dataset import Part, Plan
from zsar.errors import ConfigError, DataError, ZsarError
from zsar.registry import DATASETS, METHODS
from zsar.train import checkpoint as ckpt
from zsar.train.metrics import averaged_split
from zsar.log import log


def primary_metric(plan: Plan) -> str:
    if plan.selection == "val":  # hyperparameters are selected on held-out training classes
        return "val_hm"
    if plan.kind == "base2novel":
        return "hm"
    gzsl = [p for p in plan.evals if p.seen is not None]
    if gzsl:
        return f"{gzsl[0].prefix}h"
    first = plan.evals[0].prefix
    if first.count("/") == 2 and averaged_split(first.split("/")[1]):  # eval-target splits: their mean
        return f"{first.split('/')[0]}/top1_mean"
    return f"{first}top1"


def build_plan(cfg: ExperimentConfig, split: str) -> Plan:
    from zsar.data.classnames import overlap

    dataset_cls = DATASETS.get(cfg.dataset)
    dataset_cls.check_protocol(cfg.protocol, split)
    plan = dataset_cls(cfg.root).plan(cfg.protocol, split)
    for target in cfg.eval_targets:
        target_cls = DATASETS.get(target.dataset)
        root = target.root or cfg.roots.get(target.dataset)
        if root is None and target_cls.needs_root:
            raise ConfigError(
                f"eval target '{target.dataset}' has no root: --set roots.{target.dataset}=DIR, a root in its "
                f"eval_targets entry, or --set eval_targets=[] to evaluate on none"
            )
        splits = target.splits or [target_cls.check_protocol(target.protocol, None)]
        for target_split in splits:
            target_cls.check_protocol(target.protocol, target_split)
        source = target_cls(root)
        for target_split in splits:
            target_plan = source.plan(target.protocol, target_split)
            name = f"{target.dataset}/{target_split}"
            for part in target_plan.evals:
                prefix = f"{name}/"
                if len(target_plan.evals) > 1:  # e.g. a base-to-novel target: one prefix per part
                    prefix += f"{part.name}_"
                plan.evals.append(Part(f"{name}/{part.name}", part.manifest, part.labels, prefix))
                if plan.train is not None:  # cross-dataset class overlap is part of the protocol: reported, not removed
                    shared = overlap(plan.train.labels.names, part.labels.names)
                    plan.notes.setdefault("cross_dataset_overlap", {})[f"{name}/{part.name}"] = {
                        "classes": shared, "count": len(shared), "of": len(part.labels),
                    }
            if target_plan.notes:
                plan.notes.setdefault("target_notes", {})[name] = target_plan.notes
        shared = plan.notes.get("cross_dataset_overlap", {}).get(f"{target.dataset}/{splits[0]}/test")
        if shared and shared["count"]:
            log(f"{shared['count']} of the {shared['of']} {target.dataset} classes are {cfg.dataset} training classes too "
                f"(part of the published protocol; listed in plan.json)")
        plan.notes.setdefault("eval_targets", []).append({**dataclasses.asdict(target), "root": root})
    if not plan.evals:
        raise ConfigError(f"protocol '{cfg.protocol}' of '{cfg.dataset}' evaluates on eval_targets, and none are set")
    if cfg.text.descriptions:
        from zsar.data.descriptions import attach_descriptions

        attach_descriptions(plan, cfg.text.descriptions)
    from zsar.data.holdout import apply_selection

    return apply_selection(plan, cfg.selection, cfg.seed)


def restrict_to_trained_classes(cfg: ExperimentConfig, plan: Plan) -> Plan:
    """A closed-set method (a classifier) is scored only on parts whose classes it trains on."""
    if not METHODS.get(cfg.method).closed_set or plan.train is None:
        return plan
    known = set(plan.train.labels.names)
    keep = [p for p in plan.evals if set(p.labels.names) <= known]
    skipped = [p.name for p in plan.evals if p not in keep]
    if skipped:
        plan.notes["not_scored_by_closed_set_method"] = skipped
    if not keep:
        raise DataError(f"method '{cfg.method}' scores only its training classes, and no evaluation part of "
                        f"{cfg.dataset}/{cfg.protocol} has only those")
    plan.evals = keep
    return plan


def check_no_unseen_in_checkpoints(cfg: ExperimentConfig, plan: Plan) -> None:
    """Refuse weights (run.init_from, a method's stage-1 encoder) trained on a held-out class."""
    if not plan.unseen:
        return
    method_cls = METHODS.get(cfg.method)
    for path in [cfg.run.init_from, *method_cls.pretrained_checkpoints(cfg.method_config())]:
        if not path:
            continue
        if not Path(path).is_dir():
            raise ZsarError(f"checkpoint not found: {path}")
        classes = ckpt.trained_classes(path)
        if classes is None:
            raise DataError(f"checkpoint {path} does not record its training classes ({ckpt.TRAINED_CLASSES}); "
                            f"cannot verify that it never saw the unseen classes of {plan.dataset}/{plan.split}")
        leaked = sorted(set(classes) & set(plan.unseen))
        if leaked:
            raise DataError(f"checkpoint {path} was trained on classes that {plan.dataset}/{plan.protocol}/{plan.split} "
                            f"holds out ({', '.join(leaked[:5])}); train it under the same split")


def validate(cfg: ExperimentConfig, plan: Plan) -> None:
    method_cls = METHODS.get(cfg.method)
    if method_cls.modality != DATASETS.get(cfg.dataset).modality:
        raise ConfigError(f"method '{cfg.method}' is for {method_cls.modality}, dataset '{cfg.dataset}' is {DATASETS.get(cfg.dataset).modality}")
    for target in cfg.eval_targets:
        if DATASETS.get(target.dataset).modality != method_cls.modality:
            raise ConfigError(f"eval target '{target.dataset}' is {DATASETS.get(target.dataset).modality}, method '{cfg.method}' is for {method_cls.modality}")
    check_no_unseen_in_checkpoints(cfg, plan)
    workers = max(cfg.resources.workers, 1)
    trains = method_cls.trains and cfg.optim.epochs > 0
    if trains:
        if plan.train is None:
            raise DataError(f"protocol '{cfg.protocol}' of '{cfg.dataset}' has no training videos")
        if cfg.optim.batch_size % workers:
            raise ConfigError(f"optim.batch_size={cfg.optim.batch_size} must be divisible by resources.workers={workers}")
        if len(plan.train) // workers < cfg.optim.batch_size // workers:
            raise ConfigError(
                f"optim.batch_size={cfg.optim.batch_size} is larger than the {len(plan.train)} training videos"
            )
    for part in plan.evals:
        if len(part) == 0:
            raise DataError(f"evaluation part '{part.name}' has no videos")



def checked_plan(cfg: ExperimentConfig, split: str) -> Plan:
    """The plan of `split`, restricted to what the method scores, validated."""
    plan = restrict_to_trained_classes(cfg, build_plan(cfg, split))
    validate(cfg, plan)
    return plan


def summary(cfg: ExperimentConfig, plan: Plan) -> dict:
    """What a run of `plan` would train and evaluate (`zsar train --dry-run`)."""
    return {
        "method": cfg.method,
        "dataset": cfg.dataset,
        "protocol": cfg.protocol,
        "split": cfg.split,
        "train_videos": len(plan.train) if plan.train is not None else 0,
        "train_classes": len(plan.train.labels) if plan.train is not None else 0,
        "eval": {p.name: {"videos": len(p), "classes": len(p.labels)} for p in plan.evals},
    }
