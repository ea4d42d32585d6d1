"""Typed dataclasses from plain mappings (YAML, `--set`): every key, type and range checked.

`F` declares a field with its range and one-line help; `from_dict` builds a dataclass from a
mapping and names the field of any wrong key, type or value."""

from __future__ import annotations

import copy
import dataclasses
import difflib
import types
import typing
from dataclasses import field
from typing import Any, Literal

import yaml

from zsar.errors import ConfigError


def F(default=dataclasses.MISSING, *, ge=None, gt=None, le=None, lt=None, help="", factory=None):
    """A dataclass field with an optional range check and a one-line help."""
    meta = {"ge": ge, "gt": gt, "le": le, "lt": lt, "help": help}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    return field(default=default, metadata=meta)


def _type_name(tp) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value, tp, path: str):
    origin = typing.get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        return _convert_union(value, typing.get_args(tp), path)
    if origin is Literal:
        return _convert_literal(value, typing.get_args(tp), path)
    if origin in (list, tuple) or tp in (list, tuple):
        return _convert_list(value, (typing.get_args(tp) or (Any,))[0], path)
    if origin is dict or tp is dict:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{path}: expected a mapping, got {value!r}")
        return from_dict(tp, value, path)
    if tp in _SCALARS:
        return _convert_scalar(value, tp, path)
    return value


def _convert_union(value, args, path: str):
    if value is None and type(None) in args:
        return None
    errors = []
    for arg in args:
        if arg is type(None):
            continue
        try:
            return _convert(value, arg, path)
        except ConfigError as e:
            errors.append(str(e))
    raise ConfigError(errors[0] if errors else f"{path}: invalid value {value!r}")


def _convert_literal(value, args, path: str):
    if isinstance(value, bool) and ("off" if not value else "on") in args:
        value = "off" if not value else "on"  # YAML 1.1 reads a bare off/on (`--set x=off`) as a bool
    if value not in args:
        raise ConfigError(f"{path}: {value!r} is not one of {', '.join(map(repr, args))}")
    return value


def _convert_list(value, item_tp, path: str):
    if isinstance(value, str):
        value = yaml.safe_load(value) if value.strip().startswith("[") else [v for v in value.split(",") if v]
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{path}: expected a list, got {value!r}")
    return [_convert(v, item_tp, f"{path}[{i}]") for i, v in enumerate(value)]


_SCALARS = {bool: "true or false", int: "an integer", float: "a number", str: "a string"}
_TRUE, _FALSE = ("true", "yes", "1", "on"), ("false", "no", "0", "off")


def _convert_scalar(value, tp, path: str):
    """bool/int/float/str from YAML or `--set` text; a bool is never taken for a number."""
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in _TRUE + _FALSE:
            return value.lower() in _TRUE
    elif tp is str:
        if isinstance(value, (str, int, float)) and not isinstance(value, bool):
            return str(value)
    elif not isinstance(value, bool):
        if tp is int and isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, (int, float)) and (tp is float or isinstance(value, int)):
            return tp(value)
        if isinstance(value, str):
            try:
                return tp(value)
            except ValueError:
                pass
    raise ConfigError(f"{path}: expected {_SCALARS[tp]}, got {value!r}")


def _check_range(value, meta, path: str):
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    for key, ok, word in (
        ("ge", lambda v, b: v >= b, ">="),
        ("gt", lambda v, b: v > b, ">"),
        ("le", lambda v, b: v <= b, "<="),
        ("lt", lambda v, b: v < b, "<"),
    ):
        bound = meta.get(key)
        if bound is not None and not ok(value, bound):
            raise ConfigError(f"{path}: {value!r} is out of range (must be {word} {bound})")


def field_paths(cls, prefix: str = "") -> list[str]:
    """Every dotted key a dataclass accepts (for 'did you mean' hints and sweep specs)."""
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        name = f"{prefix}{f.name}"
        out.append(name)
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp):
            out.extend(field_paths(tp, name + "."))
    return out


def unknown_key_error(key: str, valid: list[str], path: str) -> ConfigError:
    where = f"{path}.{key}" if path else key
    close = difflib.get_close_matches(key, valid, n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else f"; valid keys: {', '.join(valid)}"
    return ConfigError(f"unknown config key '{where}'{hint}")


def from_dict(cls, data: dict | None, path: str = ""):
    """Build dataclass `cls` from a plain mapping, checking every key, type and range."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    for key in data:
        if key not in names:
            raise unknown_key_error(key, names, path)
    kwargs = {}
    for f in dataclasses.fields(cls):
        fpath = f"{path}.{f.name}" if path else f.name
        if f.name in data:
            value = _convert(data[f.name], hints[f.name], fpath)
        elif f.default is not dataclasses.MISSING:
            value = copy.deepcopy(f.default)
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            raise ConfigError(f"{fpath}: required")
        _check_range(value, f.metadata, fpath)
        kwargs[f.name] = value
    obj = cls(**kwargs)
    check = getattr(obj, "validate", None)
    if callable(check):
        check()
    return obj
