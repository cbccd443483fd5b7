"""What a report says about the suite itself, so that a reader needs nothing else: its title and
description, how and when the report was made (``made_line``), the data (``data_section``)
and where each setting comes from (``provenance_section``).

They read the suite as saved in its folder (``suite.yaml``: ``metahyper.pipeline.report.rebuild_report``
passes it), or, for records made elsewhere, the one-run suite each record's config carries
(``suite_of``); records without either give a plain title and no data section. The compute
time comes from the stages' ``done.json`` markers: ``seconds`` (wall), ``cpu_seconds`` where the
marker has it, ``device`` and ``threads``, summed over the runs.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence

from metahyper.data.splits import split_info
from metahyper.eval.markdown import md_table
from metahyper.suite.provenance import SettingSource, setting_values

LISTED = 6  # a split of at most this many entries (Omniglot's alphabets) is listed by name
DATA_HEADER = ["role", "data set", "split (entries in data_splits/)", "image size", "reader options", "episodes",
               "root"]
READER_FIELDS = ("family", "num_classes", "images_per_class", "seed")  # DataSpec fields passed to the reader
STAGE_NAMES = {"pretrain": "pretraining", "meta_train": "meta-training", "evaluate": "evaluation"}


def suite_of(records: Sequence[Any], suite: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
    """``suite`` (as saved), else the one-run suite in the first record's config
    (``metahyper.pipeline.stages.make_record``)."""
    if suite is not None:
        return suite
    run = records[0].config.get("run") if isinstance(records[0].config, dict) else None
    return run if isinstance(run, dict) and "name" in run and "data" in run else None


def title_lines(suite: Mapping[str, Any] | None) -> list[str]:
    """``# name`` and the description, or a plain title for records without a suite."""
    if suite is None:
        return ["# metahyper report"]
    return [f"# {suite['name']}", *([suite["description"]] if suite.get("description") else [])]


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min" if seconds < 5400 else f"{seconds / 3600:.2f} h"


def stage_times(markers: Iterable[Mapping[str, Any]]) -> list[str]:
    """Per stage, in pipeline order: wall time summed over its runs, and CPU time where the
    markers have it ("pretraining (2 runs): 2.0 min wall, 3.9 min CPU")."""
    found: dict[str, list[Mapping[str, Any]]] = {}
    for marker in markers:
        found.setdefault(str(marker.get("stage", "?")), []).append(marker)
    lines = []
    for stage in [s for s in STAGE_NAMES if s in found] + [s for s in found if s not in STAGE_NAMES]:
        done = found[stage]
        wall = _duration(sum(m.get("seconds") or 0 for m in done))
        text = f"{STAGE_NAMES.get(stage, stage)} ({len(done)} run{'s' if len(done) != 1 else ''}): {wall} wall"
        cpu = [m["cpu_seconds"] for m in done if m.get("cpu_seconds") is not None]
        if cpu:
            text += f", {_duration(sum(cpu))} CPU" + ("" if len(cpu) == len(done) else f" (of {len(cpu)} of them)")
        lines.append(text)
    return lines


def made_line(environment: Mapping[str, str], markers: Sequence[Mapping[str, Any]], date: str) -> str:
    """One line: package version and commit, the report's date, device(s), CPU threads and the
    compute per stage summed over the runs (the markers); the environment's device without markers."""
    version = f"metahyper {environment.get('metahyper', '?')}"
    if environment.get("commit"):
        version += f" (git {environment['commit']})"
    devices = list(dict.fromkeys(str(m["device"]) for m in markers if m.get("device"))) or \
        [environment.get("device", "unknown")]
    parts = [f"Made with {version}; report of {date}", f"device{'s' if len(devices) > 1 else ''}: {', '.join(devices)}"]
    threads = sorted({int(m["threads"]) for m in markers if m.get("threads") is not None})
    if threads:
        parts.append(f"CPU threads per process: {', '.join(map(str, threads))}")
    times = stage_times(markers)
    if times:
        parts.append(f"compute summed over the runs: {'; '.join(times)}")
    return "_" + " · ".join(parts) + "._"


def _split(dataset: str, split: str | None) -> str:
    """``val (Latin)``, ``train (60 entries)``, or the split alone without a class-split file."""
    try:
        entries = split_info(dataset).get(split or "")
    except (OSError, ValueError):
        entries = None
    if not isinstance(entries, list) or not split:
        return str(split or "–")
    shown = ", ".join(entries) if 0 < len(entries) <= LISTED else f"{len(entries)} entries"
    return f"{split} ({shown})"


def _options(spec: Mapping[str, Any]) -> str:
    named = {k: spec[k] for k in READER_FIELDS if spec.get(k) is not None}
    return ", ".join(f"{k}: {format_value(v)}" for k, v in {**named, **(spec.get("options") or {})}.items()) or "–"


def _data_row(role: str, spec: Mapping[str, Any], split: str | None, groups: str | None) -> list[str]:
    size = spec.get("image_size")
    return [role, spec["dataset"], _split(spec["dataset"], split), f"{size}x{size}" if size else "as stored",
            _options(spec), f"classes within one {groups}" if groups else "any classes",
            f"`{spec['root']}`" if spec.get("root") else "generated"]


def data_section(suite: Mapping[str, Any] | None) -> list[str]:
    """"## Data": one row for the source split, its validation split and each target, and
    the description of each data set that has a class-split file (``data_splits/``)."""
    if suite is None or "data" not in suite:
        return []
    data = suite["data"]
    rows = [_data_row("source (pretraining, meta-training)", data, data.get("split"), None)]
    if data.get("val_split"):
        rows.append(_data_row("source validation (curve during meta-training)", data, data["val_split"],
                              data.get("val_groups")))
    for name, spec in (suite.get("targets") or {}).items():
        optional = ", optional" if spec.get("optional") else ""
        rows.append(_data_row(f"target {name} (evaluation{optional})", spec, spec.get("split"), spec.get("groups")))
    notes = []
    for dataset in dict.fromkeys(row[1] for row in rows):
        try:
            description = split_info(dataset).get("description")
        except (OSError, ValueError):
            description = None
        if description:
            notes.append(f"- {dataset} (data_splits/{dataset}.json): {description}")
    return ["## Data", md_table(DATA_HEADER, rows), *(["\n".join(notes)] if notes else [])]


def format_value(value: Any) -> str:
    """A setting as the report prints it: ``0.01``, ``1, 5``, ``embedding 0.1, classifier 0.1``."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, Mapping):
        return ", ".join(f"{k} {format_value(v)}" for k, v in value.items()) or "{}"
    if isinstance(value, (list, tuple)):
        return ", ".join(map(format_value, value)) or "[]"
    return "none" if value is None else str(value)


def setting_text(suite: Mapping[str, Any], key: str) -> str:
    """The value of ``key`` in ``suite``; per model when the models differ or only some set it."""
    values = setting_values(suite, key)
    if not values:
        return "not set"
    by_text: dict[str, list[str]] = {}
    for model, found in values.items():
        by_text.setdefault(" / ".join(map(format_value, found)), []).append(model)
    models = {spec.get("report_name") or run for run, spec in (suite.get("runs") or {}).items()}
    if len(by_text) == 1 and ("" in values or set(values) == models):
        return next(iter(by_text))
    return "; ".join(f"{text} ({', '.join(names)})" for text, names in by_text.items())


def provenance_section(suite: Mapping[str, Any] | None, sources: Mapping[str, SettingSource]) -> list[str]:
    """The table "Where each setting comes from" (nothing for a suite without ``provenance``)."""
    if suite is None or not sources:
        return []
    rows = [[f"`{key}`", setting_text(suite, key), s.source, s.ref] for key, s in sources.items()]
    return ["### Where each setting comes from",
            "paper: the paper gives the setting (reference: where); ours: the paper does not, or we differ "
            "(reference: why, and whose convention we follow).",
            md_table(["setting", "value in this suite", "paper/ours", "reference"], rows)]


def ours_lines(suite: Mapping[str, Any] | None, sources: Mapping[str, SettingSource]) -> list[str]:
    """The settings marked ``ours``, one per line (the protocol differences under the headline)."""
    if suite is None:
        return []
    return [f"- `{key}` = {setting_text(suite, key)}: ours ({s.ref})" for key, s in sources.items()
            if s.source == "ours"]
