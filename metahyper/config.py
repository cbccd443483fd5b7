"""Frozen dataclass configs: YAML in and out, strict validation, dotted overrides, hashing.

Every stage declares its config as a frozen dataclass beside its code (``meta/maml.py`` has
``MamlConfig`` and so on); this module is the shared machinery (docs/architecture.md section 11: clear
errors before work starts, nothing half-written):

* ``load_yaml(path)`` reads a mapping; floats such as ``1e-3`` are floats (YAML 1.2 style), not
  the strings PyYAML's YAML 1.1 rules make of them. Files and override values are parsed within a
  size, node and depth budget (``metahyper.safe_yaml``: an alias bomb is refused, naming the file).
* ``from_dict(cls, data, where)`` builds nested dataclasses recursively and checks types. Unknown
  keys, missing keys, bad types, numbers that are not finite (``.inf``, ``.nan``: anywhere in a
  config), integer fields beyond 64 bits and ``ValueError``/``TypeError`` raised by a dataclass's
  ``__post_init__`` become ``ConfigError`` naming ``where`` (the file) and the dotted key.
  Messages quote at most ``QUOTE_CHARS`` characters of a value (``clip``).
* ``apply_overrides(data, ["model.name=hyper_resnet12"])`` sets dotted keys, values parsed as YAML.
* ``to_dict``, ``save_yaml`` (atomic), ``config_hash`` (sha256 of canonical JSON).
* ``load_config(cls, path, overrides)`` does the whole load -> validate -> override -> validate.

Supported field types: ``int``, ``float`` (ints accepted), ``str``, ``bool``, ``pathlib.Path``,
``Enum`` subclasses (by value), ``Literal[...]``, unions such as ``X | None`` (arms tried in
order; a mapping that fits no arm gets the error of the one mapping arm, if there is one), ``tuple[X, ...]``, ``tuple[X, Y]``, ``list[X]``, ``dict[str, X]``, ``Any`` and nested
dataclasses.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import hashlib
import json
import math
import os
import reprlib
import types
import typing
from enum import Enum
from pathlib import Path
from typing import Any, Iterable, Literal, TypeVar, Union

import yaml

from metahyper.atomic import write_text_atomic
from metahyper.safe_yaml import YamlLimitError, load_text, read_text

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file, value or override is invalid; the message names the file and dotted key."""


QUOTE_CHARS = 200
INT64 = 2**63  # every integer setting ends up in a torch or numpy int64 (a seed, a count)


def clip(text: str, limit: int = QUOTE_CHARS) -> str:
    """``text`` as an error message may quote it: at most ``limit`` characters, then how many more."""
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text) - limit} more characters)"


def parse_yaml(text: str, where: str = "config") -> Any:
    """Parse YAML text with the config loader; syntax errors and texts past the limits of
    ``metahyper.safe_yaml`` become ``ConfigError`` naming ``where``."""
    try:
        return load_text(text)
    except YamlLimitError as error:
        raise ConfigError(f"{where}: refused YAML: {error}") from None
    except (yaml.YAMLError, ValueError) as error:  # ValueError: e.g. an integer of more digits than int() takes
        raise ConfigError(f"{where}: invalid YAML: {clip(str(error), 4 * QUOTE_CHARS)}") from None


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML file that holds a mapping (an empty file reads as ``{}``); it is read
    within ``metahyper.safe_yaml``'s size limit, never whole when longer."""
    try:
        text = read_text(path)
    except YamlLimitError as error:
        raise ConfigError(f"{path}: refused config file: {error}") from None
    except (OSError, UnicodeDecodeError) as error:
        reason = error.strerror if isinstance(error, OSError) and error.strerror else error
        raise ConfigError(f"{path}: cannot read config file: {reason}") from None
    data = parse_yaml(text, str(path))
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


# --- building dataclasses ---------------------------------------------------------------------


def _describe(value: Any) -> str:
    return f"{type(value).__name__} {_short_repr(value)}"


def _short_repr(value: Any) -> str:
    """``repr(value)`` within ``QUOTE_CHARS`` characters, never rendered whole first: ``reprlib``
    abbreviates long strings, numbers and collections (``[1, 2, ...]``) and deep nesting."""
    return clip(_REPR.repr(value))


_REPR = reprlib.Repr()
_REPR.maxlevel, _REPR.maxlist, _REPR.maxtuple, _REPR.maxdict, _REPR.maxset = 4, 10, 10, 10, 10
_REPR.maxstring = _REPR.maxlong = _REPR.maxother = QUOTE_CHARS


def _type_name(tp: Any) -> str:
    return tp.__name__ if isinstance(tp, type) else str(tp).replace("typing.", "")


def from_dict(cls: type[T], data: Any, where: str = "config") -> T:
    """Build dataclass ``cls`` from a mapping, recursively; ``where`` names the source in errors."""
    if not dataclasses.is_dataclass(cls):
        raise TypeError(f"from_dict needs a dataclass type, got {cls!r}")
    return _build_dataclass(cls, data, where, "")


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path else key


def _build_dataclass(cls: type[T], data: Any, where: str, path: str) -> T:
    if isinstance(data, cls):
        return data
    if not isinstance(data, dict):
        at = path or "<top level>"
        raise ConfigError(f"{where}: {at}: expected a mapping for {cls.__name__}, got {_describe(data)}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [key for key in data if key not in fields]
    if unknown:
        dotted = clip(_join(path, str(unknown[0])))
        raise ConfigError(f"{where}: unknown key {dotted!r}{did_you_mean(unknown[0], fields)}")
    hints = typing.get_type_hints(cls)
    values = {}
    for name, spec in fields.items():
        if name in data:
            values[name] = _convert(hints[name], data[name], where, _join(path, name))
        elif spec.default is dataclasses.MISSING and spec.default_factory is dataclasses.MISSING:
            raise ConfigError(f"{where}: missing key {_join(path, name)!r} ({_type_name(hints[name])})")
    try:
        return cls(**values)
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: {path or cls.__name__}: {clip(str(error), 10 * QUOTE_CHARS)}") from None


def check_at_most(config: Any, limit: int, *names: str) -> None:
    """``ValueError`` naming the first field of ``names`` (on ``config``) above ``limit``; None
    passes. For counts and sizes whose memory or time grows with them (a ``__post_init__`` check)."""
    for name in names:
        value = getattr(config, name)
        if value is not None and value > limit:
            raise ValueError(f"{name} must be <= {limit}, got {value}")


def did_you_mean(name: Any, known: Iterable[Any]) -> str:
    """"; did you mean 'lr'? (known: lr, steps)" for an unknown ``name`` (a key, or a suite,
    model, data set or method name): the closest known name by ``difflib`` when one is close,
    then every known name. Every "unknown X" message of the package ends with it."""
    names = sorted(map(str, known))
    close = difflib.get_close_matches(str(name), names, n=1)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (known: {', '.join(names) or 'none'})"


def _convert(tp: Any, value: Any, where: str, path: str) -> Any:
    """Check/convert ``value`` against type hint ``tp``; raise ``ConfigError`` naming ``path``."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any:
        _check_finite(value, where, path)
        return value
    if dataclasses.is_dataclass(tp):
        return _build_dataclass(tp, value, where, path)
    if origin in (Union, types.UnionType):
        return _convert_union(tp, args, value, where, path)
    if origin is Literal:
        if any(type(value) is type(arg) and value == arg for arg in args):
            return value
        raise ConfigError(f"{where}: {path}: expected one of {list(args)}, got {_describe(value)}")
    if origin in (tuple, list, dict):
        return _convert_container(origin, args, value, where, path)
    if isinstance(tp, type) and issubclass(tp, Enum):
        return _convert_enum(tp, value, where, path)
    return _convert_scalar(tp, value, where, path)


def _convert_union(tp: Any, args: tuple, value: Any, where: str, path: str) -> Any:
    if value is None and type(None) in args:
        return None
    arms = [arg for arg in args if arg is not type(None)]
    if isinstance(value, float):  # the reason no arm takes .inf or .nan
        _check_finite(value, where, path)
    if len(arms) == 1:  # Optional[X]: report X's own, more precise error
        return _convert(arms[0], value, where, path)
    errors = []
    for arm in arms:
        try:
            return _convert(arm, value, where, path)
        except ConfigError as error:
            errors.append(error)
    shaped = [error for arm, error in zip(arms, errors) if _is_mapping_type(arm) and isinstance(value, dict)]
    if len(shaped) == 1:  # e.g. float | dict[str, float] given a mapping: the mapping's own error
        raise shaped[0]
    raise ConfigError(f"{where}: {path}: expected {_type_name(tp)}, got {_describe(value)}")


def _is_mapping_type(tp: Any) -> bool:
    """Whether values of type hint ``tp`` are written as mappings (dicts and dataclasses)."""
    return typing.get_origin(tp) is dict or tp is dict or dataclasses.is_dataclass(tp)


def _convert_container(origin: type, args: tuple, value: Any, where: str, path: str) -> Any:
    if origin is dict:
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: {path}: expected a mapping, got {_describe(value)}")
        key_type, value_type = args or (str, Any)
        bad = [key for key in value if key_type is str and not isinstance(key, str)]
        if bad:
            raise ConfigError(f"{where}: {path}: keys must be strings, got {_describe(bad[0])}")
        return {key: _convert(value_type, item, where, f"{path}.{key}") for key, item in value.items()}
    if not isinstance(value, (list, tuple)):
        raise ConfigError(f"{where}: {path}: expected a list, got {_describe(value)}")
    if origin is tuple and args and args[-1] is not Ellipsis and len(args) != len(value):
        raise ConfigError(f"{where}: {path}: expected {len(args)} items, got {len(value)}")
    if origin is tuple and args and args[-1] is not Ellipsis:
        item_types = args
    else:
        item_types = (args[0] if args else Any,) * len(value)
    items = [
        _convert(item_tp, item, where, f"{path}[{i}]")
        for i, (item_tp, item) in enumerate(zip(item_types, value))
    ]
    return tuple(items) if origin is tuple else items


def _convert_enum(tp: type[Enum], value: Any, where: str, path: str) -> Enum:
    if isinstance(value, tp):
        return value
    try:
        return tp(value)
    except ValueError:
        choices = [member.value for member in tp]
        message = f"expected one of {choices}, got {_describe(value)}"
        raise ConfigError(f"{where}: {path}: {message}") from None


_SCALARS = (int, float, str, bool, Path)


def _convert_scalar(tp: Any, value: Any, where: str, path: str) -> Any:
    if tp not in _SCALARS:
        raise TypeError(f"{path}: unsupported config field type {_type_name(tp)}")
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp is float and type(value) is float:
        _check_finite(value, where, path)
    if tp is int and type(value) is int and not -INT64 <= value < INT64:
        raise ConfigError(f"{where}: {path}: must fit in 64 bits (|value| < 2**63), got an integer of "
                          f"{len(str(abs(value)))} digits")
    if tp is Path and isinstance(value, (str, Path)):
        return Path(value)
    if type(value) is tp:
        return value
    raise ConfigError(f"{where}: {path}: expected {_type_name(tp)}, got {_describe(value)}")


def _check_finite(value: Any, where: str, path: str) -> None:
    """Refuse ``.inf``, ``-.inf`` and ``.nan`` in ``value`` (a number, or any list or mapping of
    them): no setting of the package means anything by them, and they would pass ``lr > 0``
    checks to fail mid-training."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"{where}: {path}: must be a finite number, got {value}")
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, (list, tuple)) else ()
    for key, item in items:
        _check_finite(item, where, f"{path}.{key}" if isinstance(value, dict) else f"{path}[{key}]")


# --- overrides, serialisation, hashing ---------------------------------------------------------


def apply_overrides(
    data: dict[str, Any], overrides: Iterable[str], where: str = "overrides"
) -> dict[str, Any]:
    """Return a copy of ``data`` with each ``"a.b.c=value"`` applied (value parsed as YAML).

    Every key on the path must already exist, so pass a complete mapping (``to_dict`` of a
    validated config): a misspelt key is an error naming it, not a silently ignored setting.
    To fill a section that is ``null`` or add keys to a free-form mapping, set the whole
    section with a YAML flow mapping: ``model.extra={depth: 12}``.
    """
    result = copy.deepcopy(data)
    for override in overrides:
        key, sep, text = override.partition("=")
        parts = key.strip().split(".")
        context = f"{where}: override {clip(override)!r}"
        if not sep or not all(parts):
            raise ConfigError(f"{context} must look like 'section.key=value'")
        section = _section_of(result, parts, context)
        section[parts[-1]] = parse_yaml(text, context)
    return result


def _section_of(data: dict[str, Any], parts: list[str], context: str) -> dict[str, Any]:
    """The mapping holding the key ``parts[-1]``; every key on the dotted path must exist."""
    node: Any = data
    for depth, part in enumerate(parts):
        if not isinstance(node, dict):
            above = ".".join(parts[:depth])
            raise ConfigError(f"{context}: {above!r} is {_describe(node)}, not a section with keys")
        if part not in node:
            dotted = clip(".".join(parts[: depth + 1]))
            raise ConfigError(f"{context}: unknown key {dotted!r}{did_you_mean(part, node)}")
        parent, node = node, node[part]
    return parent


def to_dict(cfg: Any) -> Any:
    """Dataclass (or nested plain data) -> plain YAML/JSON data: tuples become lists,
    enums their values, paths strings."""
    if dataclasses.is_dataclass(cfg) and not isinstance(cfg, type):
        return {f.name: to_dict(getattr(cfg, f.name)) for f in dataclasses.fields(cfg)}
    if isinstance(cfg, dict):
        return {str(key): to_dict(value) for key, value in cfg.items()}
    if isinstance(cfg, (list, tuple)):
        return [to_dict(item) for item in cfg]
    if isinstance(cfg, Enum):
        return cfg.value
    if isinstance(cfg, Path):
        return str(cfg)
    return cfg


def save_yaml(cfg: Any, path: str | os.PathLike) -> None:
    """Write a config (dataclass or mapping) as YAML, atomically, keeping field order."""
    write_text_atomic(path, yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True))


def config_hash(cfg: Any) -> str:
    """sha256 hex digest of the config's canonical JSON (sorted keys, no whitespace)."""
    canonical = json.dumps(to_dict(cfg), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def load_config(cls: type[T], path: str | os.PathLike, overrides: Iterable[str] = ()) -> T:
    """Load ``path`` into ``cls``, apply dotted ``overrides``, and validate the result.

    The file is validated on its own first (so its errors name the file), then overrides are
    applied to its complete form (defaults included) and the result validated again.
    """
    config = from_dict(cls, load_yaml(path), where=str(path))
    overrides = list(overrides)
    if not overrides:
        return config
    where = f"{path} with overrides"
    return from_dict(cls, apply_overrides(to_dict(config), overrides, where), where=where)
