"""Typed run parameters: nested dataclasses loaded from YAML with strict validation.

One YAML file describes one run (``params/<profile>/<name>.yaml``); the same file drives the CLI
(``sisr train PARAMS``) and the notebooks (papermill ``-f``). Every section is a dataclass owned by the module
that uses it; this module only knows how to build dataclasses from mappings:

* an unknown or misspelt key is an error naming the file, the dotted key and the valid keys;
* a value of the wrong type is an error naming the key, the expected type and the value found;
* a float must be finite: ``.nan``/``.inf`` are errors (a NaN weight would silently drop a loss term, an
  infinite learning rate would train to NaN), whatever the field;
* strings may reference environment variables as ``${NAME}`` (an unset variable is an error naming it);
* a file may start from a base file: ``extends: base/03_training.yaml`` (a path relative to the file; the base
  may extend another one). Mappings merge recursively and the file's own values win; a list or a scalar
  replaces the base's whole value; ``extends`` itself is not part of the result. A missing base, or files that
  extend each other in a cycle, are errors naming the files.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

import yaml

T = TypeVar("T")

_ENV_PATTERN = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class ParamsError(ValueError):
    """A params file or mapping does not match its dataclass."""


def expand_env(value: str, where: str) -> str:
    """Replace ``${NAME}`` by the environment variable ``NAME``; an unset one is a ParamsError."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in os.environ or not os.environ[name]:
            raise ParamsError(
                f"{where}: environment variable {name} is not set (the value {value!r} needs it); "
                f"export {name}=/path/to/... before running"
            )
        return os.environ[name]

    return _ENV_PATTERN.sub(substitute, value)


def _type_name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or str(tp).replace("typing.", "")


def _convert(value: Any, tp: Any, where: str) -> Any:
    """Check/convert ``value`` to the annotated type ``tp``."""
    origin = get_origin(tp)
    if tp is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        args = get_args(tp)
        if value is None:
            if type(None) in args:
                return None
            raise ParamsError(f"{where}: a value is required (expected {_type_name(tp)}), got null")
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _convert(value, arg, where)
            except ParamsError as exc:
                errors.append(str(exc))
        raise ParamsError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        allowed = get_args(tp)
        if value not in allowed:
            raise ParamsError(f"{where}: expected one of {list(allowed)}, got {value!r}")
        return value
    if origin in (list, tuple):
        if not isinstance(value, list | tuple):
            raise ParamsError(f"{where}: expected a list, got {value!r}")
        args = get_args(tp)
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            return tuple(_convert(v, args[0], f"{where}[{i}]") for i, v in enumerate(value))
        if origin is tuple and args:
            if len(args) != len(value):
                raise ParamsError(f"{where}: expected {len(args)} values, got {len(value)}: {value!r}")
            return tuple(
                _convert(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(args, value, strict=True))
            )
        inner = args[0] if args else Any
        items = [_convert(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return items if origin is list else tuple(items)
    if origin is dict:
        if not isinstance(value, Mapping):
            raise ParamsError(f"{where}: expected a mapping, got {value!r}")
        kt, vt = get_args(tp) or (Any, Any)
        return {_convert(k, kt, where): _convert(v, vt, f"{where}.{k}") for k, v in value.items()}
    if dataclasses.is_dataclass(tp) and isinstance(tp, type):
        if isinstance(value, tp):
            return value
        return from_mapping(tp, value, where)
    if tp is bool:
        if not isinstance(value, bool):
            raise ParamsError(f"{where}: expected true or false, got {value!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ParamsError(f"{where}: expected a number, got {value!r}")
        if not math.isfinite(value):
            raise ParamsError(f"{where}: expected a finite number, got {value!r}; give a finite value")
        return float(value)
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ParamsError(f"{where}: expected an integer, got {value!r}")
        return value
    if tp is str:
        if not isinstance(value, str):
            raise ParamsError(f"{where}: expected a string, got {value!r}")
        return expand_env(value, where)
    if tp is Path:
        if not isinstance(value, str | Path):
            raise ParamsError(f"{where}: expected a path, got {value!r}")
        return Path(expand_env(str(value), where))
    if isinstance(tp, type) and not isinstance(value, tp):
        raise ParamsError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    return value


def from_mapping(cls: type[T], data: Any, where: str = "params") -> T:
    """Build the dataclass ``cls`` from a mapping, strictly (see the module docstring)."""
    if not (dataclasses.is_dataclass(cls) and isinstance(cls, type)):
        raise TypeError(f"{cls!r} is not a dataclass")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ParamsError(f"{where}: expected a mapping of {cls.__name__} keys, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ParamsError(
            f"{where}: unknown key(s) {', '.join(repr(str(k)) for k in unknown)}; valid keys are: "
            f"{', '.join(sorted(fields))}"
        )
    kwargs: dict[str, Any] = {}
    for name, f in fields.items():
        key = f"{where}.{name}"
        if name in data:
            kwargs[name] = _convert(data[name], hints[name], key)
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
            raise ParamsError(f"{where}: missing required key {name!r} ({_type_name(hints[name])})")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError) as exc:
        if isinstance(exc, ParamsError):
            raise
        raise ParamsError(f"{where}: {exc}") from exc


def to_mapping(obj: Any) -> Any:
    """Plain YAML-ready data (dicts, lists, scalars) from a dataclass tree."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_mapping(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, list | tuple):
        return [to_mapping(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_mapping(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


#: The key of a params file that names its base file (see the module docstring).
EXTENDS = "extends"


def _read_mapping(p: Path) -> dict[str, Any]:
    """One YAML file's top-level mapping (``extends`` not resolved)."""
    if not p.is_file():
        raise ParamsError(f"params file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParamsError(f"params file {p} is not valid YAML: {exc}") from exc
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ParamsError(f"params file {p}: expected a mapping at the top level, got {type(data).__name__}")
    return data


def merge(base: Mapping[str, Any], child: Mapping[str, Any]) -> dict[str, Any]:
    """``child`` over ``base``: mappings merge key by key (recursively), any other value of ``child`` (a
    scalar, a list, null) replaces the base's value. Neither argument is modified."""
    merged = dict(base)
    for key, value in child.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge(below, value)
        else:
            merged[key] = value
    return merged


def _base_of(p: Path, data: Mapping[str, Any]) -> Path | None:
    """The base file a params file's ``extends`` names (relative to the file), or None."""
    if EXTENDS not in data:
        return None
    name = data[EXTENDS]
    if not isinstance(name, str) or not name.strip():
        raise ParamsError(
            f"{p}: {EXTENDS}: expected the path of a base params file (relative to {p.parent}), got {name!r}"
        )
    base = p.parent / name
    if not base.is_file():
        raise ParamsError(
            f"{p}: {EXTENDS}: base file {name!r} not found ({base} does not exist; the path is relative "
            f"to the folder of {p.name})"
        )
    return base


def extends_chain(path: str | Path) -> list[Path]:
    """``[path, its base, the base's base, ...]``; a cycle is a ParamsError naming every file of it."""
    chain = [Path(path)]
    while True:
        current = chain[-1]
        base = _base_of(current, _read_mapping(current))
        if base is None:
            return chain
        seen = [c.resolve() for c in chain]
        if base.resolve() in seen:
            cycle = [*chain[seen.index(base.resolve()) :], base]
            raise ParamsError(
                f"{chain[0]}: params files extend each other in a cycle: {' -> '.join(map(str, cycle))}; "
                f"remove the {EXTENDS} key of one of them"
            )
        chain.append(base)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Read a params file's YAML mapping, merged over its base files (``extends``, see the module
    docstring), with a clear error for a missing, unreadable or non-mapping file."""
    merged: dict[str, Any] = {}
    for p in reversed(extends_chain(path)):
        own = _read_mapping(p)
        own.pop(EXTENDS, None)
        merged = merge(merged, own)
    return merged


def load(cls: type[T], path: str | Path, overrides: Mapping[str, Any] | None = None) -> T:
    """Load ``cls`` from a YAML file; ``overrides`` (dotted keys) replace values before validation."""
    data = read_yaml(path)
    for dotted, value in (overrides or {}).items():
        node: Any = data
        parts = dotted.split(".")
        if not all(parts):
            raise ParamsError(f"{path}: override {dotted!r} has an empty part; use section.key=value")
        for i, part in enumerate(parts[:-1]):
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
            if not isinstance(node, dict):
                section = ".".join(parts[: i + 1])
                raise ParamsError(
                    f"{path}: cannot set {dotted!r}: {section} is a value ({node!r}), not a section with "
                    f"keys; set {section}=VALUE instead"
                )
        node[parts[-1]] = value
    try:
        return from_mapping(cls, data, where=str(path))
    except ParamsError as exc:
        chain = extends_chain(path)
        if len(chain) == 1:
            raise
        key = _failing_key(str(exc), str(path))
        overridden = key is not None and any(key == k or key.startswith(k + ".") for k in overrides or {})
        origin = _where_set(chain, key) if key else None
        if origin == chain[0] or overridden:
            raise
        if origin is not None:
            raise ParamsError(f"{exc} ({key} is set in {origin})") from exc
        raise ParamsError(f"{exc} (merged over the base file(s) {', '.join(map(str, chain[1:]))})") from exc


def _failing_key(message: str, where: str) -> str | None:
    """The dotted key a :func:`from_mapping` error of the file ``where`` is about (for an unknown key: the
    first unknown one), or None."""
    match = re.match(re.escape(where) + r"((?:\.[^\s:.]+)*): (unknown key\(s\) '([^']+)')?", message)
    if match is None:
        return None
    parts = [part.split("[")[0] for part in match.group(1).split(".") if part]
    if match.group(3):
        parts.append(match.group(3))
    return ".".join(parts) or None


def _where_set(chain: list[Path], key: str) -> Path | None:
    """The first file of ``chain`` (the file, then its bases) whose own mapping sets the dotted ``key``."""
    for p in chain:
        node: Any = _read_mapping(p)
        for part in key.split("."):
            if not isinstance(node, Mapping) or part not in node:
                break
            node = node[part]
        else:
            return p
    return None
