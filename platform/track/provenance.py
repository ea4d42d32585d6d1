"""A run's inputs record (zsar.train.record) as MLflow tags and as best.yaml header lines."""

from __future__ import annotations

PREFIX = "zsar.record."
HEADER = "# zsar.record "


def as_tags(rec: dict[str, str]) -> dict[str, str]:
    return {PREFIX + k: v for k, v in rec.items()}


def from_tags(tags: dict[str, str]) -> dict[str, str]:
    return {k[len(PREFIX):]: v for k, v in tags.items() if k.startswith(PREFIX)}


def header(rec: dict[str, str]) -> str:
    """best.yaml's comment lines (YAML ignores them)."""
    return "".join(f"{HEADER}{k}={v}\n" for k, v in sorted(rec.items()))


def read_header(text: str) -> dict[str, str]:
    out = {}
    for line in text.splitlines():
        if line.startswith(HEADER) and "=" in line:
            key, value = line[len(HEADER):].split("=", 1)
            out[key.strip()] = value.strip()
    return out
