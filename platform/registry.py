"""Name -> class registries. Methods and datasets register themselves with a decorator;
the platform finds them by name and never imports a method module by name."""

from __future__ import annotations

import difflib
import importlib
import pkgutil
from importlib.metadata import entry_points

from zsar.errors import ZsarError


class Registry:
    def __init__(self, kind: str):
        self.kind = kind
        self._items: dict[str, type] = {}

    def register(self, name: str):
        def decorator(obj):
            if name in self._items and self._items[name] is not obj:
                raise ValueError(f"{self.kind} '{name}' is registered twice")
            self._items[name] = obj
            obj.name = name
            return obj

        return decorator

    def get(self, name: str):
        load_plugins()
        if name not in self._items:
            close = difflib.get_close_matches(name, self.names(), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ZsarError(f"unknown {self.kind} '{name}'{hint}; known: {', '.join(self.names())}")
        return self._items[name]

    def names(self) -> list[str]:
        load_plugins()
        return sorted(self._items)

    def items(self):
        load_plugins()
        return sorted(self._items.items())


METHODS = Registry("method")
DATASETS = Registry("dataset")
register_method = METHODS.register
register_dataset = DATASETS.register

_loaded = False


def load_plugins() -> None:
    """Import every module of `zsar.methods` and `zsar.data.sources`, then third-party
    plug-ins declared under the `zsar.plugins` entry-point group."""
    global _loaded
    if _loaded:
        return
    _loaded = True
    for package_name in ("zsar.data.sources", "zsar.methods"):
        package = importlib.import_module(package_name)
        for info in pkgutil.iter_modules(package.__path__):
            if not info.name.startswith("_"):
                importlib.import_module(f"{package_name}.{info.name}")
    for ep in entry_points(group="zsar.plugins"):
        ep.load()
