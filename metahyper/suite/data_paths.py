"""A suite's data, checked before any work: every data root expanded (``~``, ``$VAR``/``${VAR}``)
and checked to be a folder, every reader option checked against its data set's reader.

An optional target (``optional: true``) whose root is absent is kept, not refused
(``absent_root``; ``metahyper.pipeline.targets`` says in the log and the report that it was
skipped). Errors name the suite, the field and the path, and say what to set.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from pathlib import Path

from metahyper.config import ConfigError
from metahyper.data.sources import DATASETS
from metahyper.suite.config import SuiteConfig
from metahyper.suite.specs import DataSpec


def data_specs(suite: SuiteConfig) -> dict[str, DataSpec]:
    """Every data spec of the suite by its dotted field: ``data`` and ``targets.<name>``."""
    return {"data": suite.data, **{f"targets.{name}": spec for name, spec in suite.targets.items()}}


def expand_root(root: str) -> tuple[Path, list[str]]:
    """``root`` with ``~`` and environment variables expanded, made absolute, and the names of
    the variables it uses that are not set (then the path still holds them)."""
    expanded = os.path.expandvars(os.path.expanduser(root))
    return Path(expanded).resolve(), re.findall(r"\$\{?(\w+)\}?", expanded)


def resolve_root(suite: SuiteConfig, where: str, spec: DataSpec) -> Path | None:
    """``spec.root`` with environment variables expanded, checked to be a folder (None for
    synthetic data, which refuses a root: an unused key would hide a typo). Errors name the
    suite, the field and the path."""
    if spec.dataset == "synthetic":
        if spec.root:
            raise ConfigError(f"suite {suite.name!r}: {where}.root = {spec.root!r}, but synthetic data is generated, "
                              f"not read from files; remove {where}.root (or set {where}.dataset)")
        return None
    field_name = f"{where}.root"
    hint = f"pass it as an override: {field_name}=/path/to/{spec.dataset}"
    if not spec.root:
        raise ConfigError(f"suite {suite.name!r}: {field_name} is not set; {spec.dataset} needs its data folder; "
                          f"{hint}")
    path, unset = expand_root(spec.root)
    if unset:
        raise ConfigError(f"suite {suite.name!r}: {field_name} = {spec.root!r} uses environment variable "
                          f"{unset[0]}, which is not set; set it, or {hint}")
    if not path.is_dir():
        problem = "is a file, not a folder" if path.exists() else "does not exist"
        raise ConfigError(f"suite {suite.name!r}: {field_name} = {str(path)!r} {problem}; {hint}")
    return path


def check_data_options(where: str, spec: DataSpec) -> None:
    """Refuse an unknown data set or an option its reader does not take, naming the field."""
    if spec.dataset not in DATASETS:
        raise ConfigError(f"{where}.dataset: {DATASETS.unknown(spec.dataset)}")
    params = inspect.signature(DATASETS.get(spec.dataset)).parameters
    accepted = [name for name in params if name not in ("root", "split")]
    for option in spec.reader_options():
        if option not in accepted:
            key = option if option in DataSpec.__dataclass_fields__ else f"options.{option}"
            raise ConfigError(f"{where}.{key}: data set {spec.dataset!r} takes no option {option!r} "
                              f"(its options: {', '.join(accepted)})")


def absent_root(spec: DataSpec) -> str | None:
    """Why an optional target's data is absent (its root does not exist, or names an unset
    environment variable), or None: a present root, or a spec that is not optional."""
    if not getattr(spec, "optional", False) or not spec.root:
        return None
    path, unset = expand_root(spec.root)
    if unset:
        return f"its root {spec.root!r} uses environment variable {unset[0]}, which is not set"
    return None if path.exists() else f"its root {path} does not exist"


def resolve_data_paths(suite: SuiteConfig) -> SuiteConfig:
    """The suite with every data root expanded and checked (see ``resolve_root``) and every
    data option checked; raises ``ConfigError`` before any work starts. An optional target
    whose data is absent (``absent_root``) keeps its root, expanded as far as it can be."""
    resolved = {}
    for where, spec in data_specs(suite).items():
        check_data_options(where, spec)
        if absent_root(spec) is not None:
            path, unset = expand_root(spec.root)
            resolved[where] = dataclasses.replace(spec, root=spec.root if unset else str(path))
            continue
        root = resolve_root(suite, where, spec)
        resolved[where] = dataclasses.replace(spec, root=None if root is None else str(root))
    targets = {name: resolved[f"targets.{name}"] for name in suite.targets}
    return dataclasses.replace(suite, data=resolved["data"], targets=targets)
