"""Where each setting of a suite comes from: the paper (with its section or table) or us (with
the reason): a suite's ``provenance:`` section.

A suite that reproduces a paper marks its settings so that a reader can tell the paper's
protocol from the choices made where the paper is silent::

    provenance:
      meta_train.maml.inner_lr: {source: paper, ref: "Section 4.2: batch gradient descent, lr 0.01"}
      evaluation.episodes: {source: ours, ref: "2000 test episodes, the field's usual count (MAML papers)"}
      targets.miniimagenet.image_size: {source: ours, ref: "32x32 as the FC100 source; the paper does not say"}

A key is a suite-level path (``evaluation.episodes``, ``data.image_size``,
``targets.<name>.image_size``) or a run setting (``meta_train.maml.inner_lr``,
``pretrain.epochs``, ``episodes.query``, ``model.options.variant``), which names that setting of
every run, as a command-line override does (``metahyper.suite.config``). ``check_provenance`` refuses
a key that names no setting before any work starts. The report shows the section as the table
"Where each setting comes from" with each setting's value (``setting_values``); like ``paper``
(``metahyper.suite.paper``) it is in no config hash and in no result record, so marking a setting
never invalidates a run.
"""

from __future__ import annotations

import dataclasses
import types
import typing
from dataclasses import dataclass
from typing import Any, Iterable, Literal, Mapping

from metahyper.config import did_you_mean, from_dict

SOURCES = ("paper", "ours")
NOT_SETTINGS = ("runs", "provenance", "paper", "name", "description", "kind", "imports")
"""Suite fields a key may not start with: runs are named through their settings (a key applies to
every run), and the others describe the suite rather than set up an experiment."""
_FREE = object()  # a free-form mapping (``model.options``, ``Any``): whatever follows is accepted
_UNKNOWN = object()  # a run setting: checked against the fields, not against one run's values


@dataclass(frozen=True)
class SettingSource:
    """Who chose a setting: ``source`` ``paper`` (``ref``: where the paper says it, section or
    table) or ``ours`` (``ref``: the reason, and whose convention it follows)."""

    source: Literal["paper", "ours"]
    ref: str

    def __post_init__(self) -> None:
        if not self.ref.strip():
            what = "the section or table that gives it" if self.source == "paper" else "the reason for the choice"
            raise ValueError(f"ref must not be empty: give {what}")


def setting_sources(items: Mapping[str, Any], where: str = "provenance") -> dict[str, SettingSource]:
    """``SettingSource`` s by key from dicts (a suite folder's ``suite.yaml``) or ``SettingSource`` s;
    errors name ``where`` and the key."""
    return {key: value if isinstance(value, SettingSource) else from_dict(SettingSource, value, f"{where}.{key}")
            for key, value in items.items()}


def check_provenance(suite: Any) -> None:
    """Raise ``ValueError`` naming the key unless every key of ``suite.provenance`` (a
    ``SuiteConfig``) names a suite setting or a setting of its runs (module docstring)."""
    hints = typing.get_type_hints(type(suite))
    run_type = typing.get_args(hints["runs"])[1]
    suite_fields = [f.name for f in dataclasses.fields(suite) if f.name not in NOT_SETTINGS]
    run_fields = [f.name for f in dataclasses.fields(run_type)]
    for key in suite.provenance:
        parts = key.split(".")
        if parts[0] in suite_fields:
            _walk(type(suite), suite, parts, f"provenance.{key}")
        elif parts[0] in run_fields:
            _walk(run_type, _UNKNOWN, parts, f"provenance.{key}")
        else:
            raise ValueError(f"provenance.{key}: {parts[0]!r} is neither a suite setting nor a run setting"
                             f"{did_you_mean(parts[0], suite_fields + run_fields)}")


def _walk(tp: Any, value: Any, parts: list[str], where: str) -> None:
    """Follow ``parts`` through type ``tp`` (and ``value`` where known); raise naming ``where``."""
    for i, part in enumerate(parts):
        tp, value = _step(tp, value, part, f"{where}: {'.'.join(parts[:i]) or 'the suite'}")
        if tp is _FREE:
            return


def _step(tp: Any, value: Any, part: str, where: str) -> tuple[Any, Any]:
    """The type and value of ``part`` inside ``tp``/``value``, or ``_FREE`` for a free-form mapping."""
    tp = _container(tp)
    if tp is Any:
        return _FREE, _UNKNOWN
    if dataclasses.is_dataclass(tp):
        names = [f.name for f in dataclasses.fields(tp)]
        if part not in names:
            raise ValueError(f"{where} has no setting {part!r}{did_you_mean(part, names)}")
        return typing.get_type_hints(tp)[part], _UNKNOWN if value is _UNKNOWN else getattr(value, part)
    if typing.get_origin(tp) is dict:
        item = typing.get_args(tp)[1]
        if value is not _UNKNOWN and part in value:
            return item, value[part]
        if value is not _UNKNOWN and dataclasses.is_dataclass(item):
            raise ValueError(f"{where} has no entry {part!r}{did_you_mean(part, value)}")
        return (_FREE, _UNKNOWN) if value is not _UNKNOWN else (item, _UNKNOWN)
    raise ValueError(f"{where} is a single setting; it has no {part!r}")


def _container(tp: Any) -> Any:
    """A union (``X | None``, ``float | dict[str, float]``) as the member that has settings inside
    (a dataclass, else a mapping), else as it is."""
    if typing.get_origin(tp) not in (typing.Union, types.UnionType):
        return tp
    members = typing.get_args(tp)
    return next((m for m in members if dataclasses.is_dataclass(m)),
                next((m for m in members if typing.get_origin(m) is dict or m is Any), tp))


MISSING = object()
"""``lookup``'s answer for a path that a suite (or run) does not set."""


def lookup(data: Any, parts: Iterable[str]) -> Any:
    """The value at ``parts`` in nested mappings (a suite as saved), or ``MISSING``."""
    for part in parts:
        if not isinstance(data, Mapping) or part not in data:
            return MISSING
        data = data[part]
    return data


EXPANDED = {"seeds": lambda spec: spec.get("seed"), "per_shot": lambda spec: spec.get("eval_shots") is not None}
"""Suite settings that expanding the runs consumes (``metahyper.suite.config.load_suite``): a saved
suite holds them in its runs, as each run's seed and whether it is evaluated at its own shot."""


def setting_values(suite: Mapping[str, Any], key: str) -> dict[str, list[Any]]:
    """The values of setting ``key`` in ``suite`` (a suite as saved in ``suite.yaml``): ``{"": [value]}``
    for a suite-level key, else by model (a run's ``report_name``, else its name: the seeds and
    shots of one model are one entry) its distinct values, for the runs that set it."""
    parts = key.split(".")
    if parts[0] in suite and parts[0] not in ("runs", *EXPANDED):
        value = lookup(suite, parts)
        return {} if value is MISSING else {"": [value]}
    found: dict[str, list[Any]] = {}
    for run, spec in (suite.get("runs") or {}).items():
        value = EXPANDED[key](spec) if key in EXPANDED else lookup(spec, parts)
        values = found.setdefault(spec.get("report_name") or run, []) if value is not MISSING else []
        if value is not MISSING and value not in values:
            values.append(value)
    return {model: values for model, values in found.items() if values}
