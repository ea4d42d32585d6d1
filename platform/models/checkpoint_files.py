"""The files of a zsar checkpoint directory and how to read them: what the model layer needs to load
a stage-one encoder, and the train layer to restore a run (`zsar.train.checkpoint` writes them)."""

from __future__ import annotations

import json
from pathlib import Path

import torch
import yaml

STATE = "state.pt"
CONFIG = "config.yaml"
METRICS = "metrics.json"
MANIFEST = "manifest.json"  # written last: file sizes, so a partial copy is recognised
TRAINED_CLASSES = "trained_classes.json"  # every class name the weights were trained on, stages before included


def load_state(path) -> dict:
    return torch.load(Path(path) / STATE, map_location="cpu", weights_only=False)


def read_config(path) -> dict:
    return yaml.safe_load((Path(path) / CONFIG).read_text())


def trained_classes(path) -> list[str] | None:
    """The class names a checkpoint's weights were trained on; None if it does not record them."""
    try:
        return json.loads((Path(path) / TRAINED_CLASSES).read_text())
    except (OSError, ValueError):
        return None


def inherited_classes(paths) -> list[str] | None:
    """The union of what the checkpoints in `paths` (None entries ignored) were trained on."""
    found = [trained_classes(p) for p in paths if p]
    if not any(f is not None for f in found):
        return None
    return sorted({c for f in found if f for c in f})
