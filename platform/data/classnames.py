"""One name for every class.

The same class is spelled `ApplyEyeMakeup` (UCF-101 lists), `apply_eye_makeup` (description
files), `Apply Eye Makeup` (CEZSAR splits), `Pushing [something] from left to right` (SSv2
templates). `class_key` maps every spelling to one key (ASCII, lower case, letters and digits
only); a dataset's `Vocab` maps each key to one display name, the one label sets and prompts use.
Every shipped list and description file resolves through these (tests/data/test_classnames.py).

Display names are ours: a CamelCase token is split and lower-cased (`apply eye makeup`, `archery`), underscores become
spaces (`brush hair`), template brackets and a trailing period are dropped; other names are kept
as the dataset writes them (`Approaching something with your camera`, `abseiling`).
"""

from __future__ import annotations

import difflib
import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache

from zsar.errors import DataError
from zsar.resources import resource


def class_key(name: str) -> str:
    """The canonical key of a class name: every spelling of one class gives the same key."""
    ascii_name = unicodedata.normalize("NFKD", str(name)).encode("ascii", "ignore").decode()
    key = re.sub(r"[^a-z0-9]+", "", ascii_name.lower())
    if not key:
        raise ValueError(f"class name {name!r} has no letters or digits")
    return key


def display_name(name: str) -> str:
    """A readable spelling of a class name (see the module docstring)."""
    text = unicodedata.normalize("NFKC", str(name)).strip()
    text = text.replace("[", "").replace("]", "").rstrip(".").strip()
    if "_" in text and " " not in text:
        text = text.replace("_", " ")
    if re.fullmatch(r"[A-Za-z0-9]+", text) and re.search(r"[A-Z]", text):  # one CamelCase token
        text = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", text).lower()
    return re.sub(r"\s+", " ", text)


class UnknownClass(DataError):
    """A class name that is not one of the dataset's classes."""


@dataclass(frozen=True)
class Vocab:
    """The classes of one dataset in its official order: display names and their keys."""

    dataset: str
    names: tuple[str, ...]
    keys: tuple[str, ...] = field(init=False)

    def __post_init__(self):
        keys = tuple(class_key(n) for n in self.names)
        seen: dict[str, str] = {}
        for name, key in zip(self.names, keys):
            if key in seen:
                raise ValueError(f"{self.dataset}: classes {seen[key]!r} and {name!r} have the same key {key!r}")
            seen[key] = name
        object.__setattr__(self, "keys", keys)
        object.__setattr__(self, "_by_key", dict(zip(keys, self.names)))

    def __len__(self) -> int:
        return len(self.names)

    def __contains__(self, name: str) -> bool:
        return self.get(name) is not None

    def get(self, name: str) -> str | None:
        """The display name of any spelling of a class, or None."""
        try:
            return self._by_key.get(class_key(name))
        except ValueError:
            return None

    def resolve(self, name: str, where: str = "") -> str:
        """The display name of `name`; UnknownClass (naming the nearest classes) if it is not one."""
        found = self.get(name)
        if found is None:
            close = difflib.get_close_matches(display_name(name), self.names, n=3, cutoff=0.6)
            hint = f"; nearest: {', '.join(close)}" if close else ""
            raise UnknownClass(f"{where + ': ' if where else ''}'{name}' is not a {self.dataset} class{hint}")
        return found


@lru_cache(maxsize=None)
def vocab(dataset: str) -> Vocab:
    """The vocabulary of a dataset from its shipped official class list (labels/<dataset>.txt)."""
    path = resource("labels", f"{dataset}.txt")
    if not path.is_file():
        raise DataError(f"no shipped class list for '{dataset}' ({path.name})")
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return Vocab(dataset, tuple(display_name(line) for line in lines))


def overlap(train_names, eval_names) -> list[str]:
    """The classes of `eval_names` that are also among `train_names` (same key), in eval order."""
    train_keys = {class_key(n) for n in train_names}
    return [n for n in eval_names if class_key(n) in train_keys]
