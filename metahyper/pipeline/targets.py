"""What the evaluate stage does per target beyond drawing episodes: optional targets whose data
is absent, data sets with their own fixed episodes, and runs whose head does not fit them.

* An optional target (``optional: true``, ``metahyper.suite.specs.TargetSpec``) whose root does not
  exist is skipped: ``absent_targets`` says so, why and how to get the data; the log and the
  report carry it. Its stage hash does not change, so once the data is there a rerun redoes only
  the evaluate stages that skipped it (``evaluation_outdated``).
* A data set that defines its own evaluation episodes (``FIXED_EPISODES``, e.g. Lake's
  one-shot runs) is scored on exactly those, whatever ``evaluation.shots``/``query``/``episodes``
  say (``data_episodes``).
* maml and anil adapt a head of ``episodes.way`` outputs: on fixed episodes of another way such
  a run's meta-trained model is skipped with a note, its baselines are not (``fitting``).
  A method that works at any way (``protonet``) says so with ``way_agnostic = True``.

The evaluate stage writes what it skipped to ``skipped.json`` beside ``results.json``
(``write_skipped``); ``metahyper.pipeline.report`` reads it for the report, ``metahyper.pipeline.runs``
for ``evaluation_outdated``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from metahyper.atomic import write_text_atomic
from metahyper.data.episodes import FIXED_EPISODES, DataEpisodes
from metahyper.data.fetch import fetch_command
from metahyper.files import UnusableFileError, read_json
from metahyper.meta.methods import make_method
from metahyper.suite.config import SuiteConfig
from metahyper.suite.data_paths import absent_root, expand_root

SKIPPED = "skipped.json"


def absent_targets(suite: SuiteConfig) -> dict[str, str]:
    """target -> what the log and the report say about it, for every optional target whose data
    is absent (``metahyper.suite.data_paths.absent_root``): that it was skipped, why, and how to get it."""
    notes = {}
    for name, spec in suite.targets.items():
        reason = absent_root(spec)
        if reason is None:
            continue
        path, unset = expand_root(spec.root or "")
        command = fetch_command(spec.dataset, spec.root if unset else str(path))
        how = f"get it with `{command}` (or run with --download)" if command else f"put the {spec.dataset} data there"
        notes[name] = f"target {name} ({spec.dataset}, optional) was skipped: {reason}; {how}"
    return notes


def data_episodes(suite: SuiteConfig, target: str) -> DataEpisodes | None:
    """The episodes ``target``'s data set defines itself (``FIXED_EPISODES``), or None."""
    dataset = suite.targets[target].dataset
    return FIXED_EPISODES.get(dataset) if dataset in FIXED_EPISODES else None  # type: ignore[return-value]


def fitting(suite: SuiteConfig, run: str, predictors: Mapping[str, Any], target: str,
            way: int) -> tuple[dict[str, Any], list[str]]:
    """The predictors of ``run`` (its meta-trained model under ``run``, baselines under
    ``run+method``) that can score ``way``-way episodes of ``target``, and a note for any left out."""
    spec = suite.runs[run]
    method = make_method(spec.method, spec.meta_train)
    if way == spec.episodes.way or getattr(method, "way_agnostic", False) or run not in predictors:
        return dict(predictors), []
    note = (f"{run} ({spec.method}) was not evaluated on {target}: its episodes are {way}-way, and {spec.method} "
            f"adapts a head of episodes.way = {spec.episodes.way} outputs (train at way {way}, or use a method "
            "that works at any way such as protonet; its baselines were evaluated)")
    return {name: p for name, p in predictors.items() if name != run}, [note]


def write_skipped(folder: Path, absent: list[str], notes: list[str]) -> None:
    """``skipped.json``: the optional targets skipped for absent data, and every note for the report."""
    write_text_atomic(folder / SKIPPED, json.dumps({"absent_targets": absent, "notes": notes}, indent=1) + "\n")


def read_skipped(folder: Path) -> dict[str, list[str]]:
    """An evaluate folder's ``skipped.json`` (nothing skipped when it has none); one that cannot
    be read raises ``UnusableFileError`` naming it."""
    path = folder / SKIPPED
    if not path.is_file():
        return {"absent_targets": [], "notes": []}
    skipped = read_json(path, f"delete {folder} to evaluate again")
    if not all(isinstance(skipped.get(key), list) for key in ("absent_targets", "notes")):
        raise UnusableFileError(f"{path} lacks its lists absent_targets and notes (edited?); delete {folder} to "
                                "evaluate again")
    return skipped


def evaluation_outdated(suite: SuiteConfig, folder: Path) -> bool:
    """Whether a finished evaluate stage skipped an optional target whose data is there now."""
    absent = absent_targets(suite)
    return any(t in suite.targets and t not in absent for t in read_skipped(folder)["absent_targets"])
