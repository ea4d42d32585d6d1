"""Reading weight files without running their code.

`load_weights_object(path)` returns what a checkpoint file holds: a TorchScript archive (OpenAI's
own files) as its `ScriptModule`, a `.safetensors` file as a dict, anything else through
`torch.load(weights_only=True)`. Training checkpoints often pickle objects of their own code base
next to the weights (ViFi-CLIP saves its yacs config, PySlowFast some of its state); when the
weights-only reader refuses one, the file is read again by an unpickler that rebuilds tensors and
plain containers and turns every other class into an inert `Opaque` record: no class or function of
the file is ever imported or called, so a foreign checkpoint stays as safe to read as a weights-only
one, and no foreign code base has to be installed.
"""

from __future__ import annotations

import pickle
import types
import zipfile
from pathlib import Path

import torch

from zsar.errors import ZsarError


class Opaque(dict):
    """An object of a class the checkpoint names but we do not import (kept as its state)."""

    origin = "?"

    def __init__(self, *args, **kwargs):
        super().__init__()
        self.args = args

    def __setstate__(self, state):
        self.__dict__["state"] = state

    def __repr__(self):
        return f"<{self.origin}>"


_OPAQUE: dict[str, type] = {}


def _opaque(module: str, name: str) -> type:
    key = f"{module}.{name}"
    if key not in _OPAQUE:
        _OPAQUE[key] = type(name, (Opaque,), {"origin": key})
    return _OPAQUE[key]


_PLAIN_BUILTINS = {"set", "frozenset", "slice", "complex", "bytearray", "int", "float", "bool", "str", "tuple", "list", "dict"}
_NUMPY_MODULES = {"numpy", "numpy.core.multiarray", "numpy._core.multiarray", "numpy.dtypes"}


def _trusted(module: str, name: str):
    """The real object for names that only rebuild data (tensors, storages, containers), else None."""
    if module == "collections" and name == "OrderedDict" or module == "builtins" and name in _PLAIN_BUILTINS:
        return getattr(__import__(module), name)
    if module in ("torch._utils", "torch._tensor") and name.startswith("_rebuild"):
        return getattr(__import__(module, fromlist=[name]), name)
    if module == "torch" and (name.endswith("Storage") or name in ("Size", "device")
                              or isinstance(getattr(torch, name, None), torch.dtype)):
        return getattr(torch, name)
    if module == "torch.nn.parameter" and name == "Parameter":
        return torch.nn.Parameter
    if module in _NUMPY_MODULES and (name in ("_reconstruct", "ndarray", "dtype", "scalar") or name.endswith("DType")):
        return getattr(__import__(module, fromlist=[name]), name)
    return None


class _InertUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        found = _trusted(module, name)
        return found if found is not None else _opaque(module, name)


_INERT_PICKLE = types.SimpleNamespace(
    __name__="zsar_inert_pickle", Unpickler=_InertUnpickler, load=lambda f, **kw: _InertUnpickler(f, **kw).load()
)


def is_torchscript(path: Path) -> bool:
    try:
        with zipfile.ZipFile(path) as z:
            return any(n.endswith("/constants.pkl") or "/code/__torch__/" in n for n in z.namelist())
    except (zipfile.BadZipFile, OSError):
        return False


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def load_weights_object(path: str | Path):
    """What the file at `path` holds (see the module docstring); a one-line ZsarError when it is
    not a weights file torch can read."""
    path = Path(path)
    if not path.is_file():
        raise ZsarError(f"backbone weights file not found: {path}")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path), device="cpu")
        if is_torchscript(path):
            return torch.jit.load(str(path), map_location="cpu")
        try:
            return torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if "Weights only load failed" not in str(e):
                raise
        return torch.load(path, map_location="cpu", weights_only=False, pickle_module=_INERT_PICKLE)
    except ZsarError:
        raise
    except Exception as e:  # a truncated, unrelated or corrupt file is a user error
        raise ZsarError(f"could not load {path}: not a weights file torch can read ({_first_line(e)})") from None
