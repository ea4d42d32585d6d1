"""Class descriptions: sentences that can replace or enrich class names in the text prompts.

A source is a JSON file (`{"class name": "a sentence" | ["sentences", ...]}`), a folder of
`<class name>.txt` files (each non-empty line one description), a comma-separated list of those,
or the name of a shipped set (`ucf101-gemini`, `kinetics400-gemini`). Classes are matched by
their canonical key (`zsar.data.classnames.class_key`), so `apply_eye_makeup.txt` describes UCF's
`ApplyEyeMakeup`. `text.descriptions` in the config attaches a source to every label set of a
run; `text.use` decides whether prompts are built from names, descriptions or both.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from zsar.data.classnames import class_key
from zsar.errors import ConfigError
from zsar.models.text import LabelSet
from zsar.resources import resource

SHIPPED = {
    "ucf101-gemini": ("descriptions", "video", "ucf_101_texts_gemini"),
    "kinetics400-gemini": ("descriptions", "video", "kinetics_400_texts_gemini"),
}


def load_descriptions(source: str | Path) -> dict[str, tuple[str, ...]]:
    """Class key -> sentences, from one or more sources (see the module docstring)."""
    out: dict[str, list[str]] = {}
    for item in str(source).split(","):
        item = item.strip()
        if not item:
            continue
        path = resource(*SHIPPED[item]) if item in SHIPPED else Path(item).expanduser()
        for name, sentences in _read(path):
            key = class_key(name)
            out.setdefault(key, [])
            out[key] += [s for s in sentences if s not in out[key]]
    return {k: tuple(v) for k, v in out.items()}


def _read(path: Path):
    if path.is_dir():
        files = sorted(path.glob("*.txt"))
        if not files:
            raise ConfigError(f"text.descriptions: {path} has no <class>.txt files")
        for f in files:
            yield f.stem, _lines(f.read_text(encoding="utf-8", errors="replace"))
        return
    if path.is_file() and path.suffix.lower() == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as e:
            raise ConfigError(f"text.descriptions: {path} is not valid JSON ({e})") from None
        if not isinstance(data, dict):
            raise ConfigError(f"text.descriptions: {path} must map class names to sentences")
        for name, value in data.items():
            values = [value] if isinstance(value, str) else list(value or [])
            yield name, [str(v).strip() for v in values if str(v).strip()]
        return
    known = ", ".join(SHIPPED)
    raise ConfigError(f"text.descriptions: '{path}' is not a JSON file, a folder of <class>.txt, or a shipped set ({known})")


def _lines(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def describe(labels: LabelSet, descriptions: dict[str, tuple[str, ...]]) -> tuple[LabelSet, list[str]]:
    """`labels` with each class's descriptions attached; also the classes that have none."""
    found = tuple(descriptions.get(class_key(n), ()) for n in labels.names)
    missing = [n for n, d in zip(labels.names, found) if not d]
    return LabelSet(labels.names, found), missing


def attach_descriptions(plan, source: str) -> None:
    """Attach a description source to every label set of a plan; note the classes left without."""
    descriptions = load_descriptions(source)
    missing: dict[str, list[str]] = {}
    parts = ([plan.train] if plan.train is not None else []) + list(plan.evals)
    for part in (p for p in parts if not p.labels.verbatim):  # captions are their own sentences
        part.labels, lacking = describe(part.labels, descriptions)
        if lacking:
            missing[part.name] = lacking
    plan.notes["descriptions"] = {"source": source, "classes_without": missing}
    if missing:
        count = sum(len(v) for v in missing.values())
        print(f"[zsar] warning: {count} classes have no description in {source}; their names are used", file=sys.stderr)
