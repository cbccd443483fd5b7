"""Benchmark suite configs: what to train, on which data, and how to evaluate it; finding and loading a suite.

A suite (``benchmarks/suites/*.yaml``) is a source domain (``data``), target domains
(``targets``, by name), runs (``runs``, by name: a model with its pretraining, MAML and
training-episode settings) and the evaluation settings shared by every run. Everything is a
frozen dataclass built with ``metahyper.config.from_dict`` (the entries: ``metahyper.suite.specs``),
so unknown keys and bad values fail with messages naming the file and the dotted key.

Overrides (``load_suite(ref, overrides)``, the ``metahyper`` command line) are ``key.sub=value``
with the value parsed as YAML, plus three conveniences on top of ``config.apply_overrides``:

* ``runs.*.meta_train.iterations=5`` and ``targets.*.root=/data`` set a key in every entry;
* a number picks the n-th entry of a named mapping: ``runs.0.model.name=hyper_resnet12``;
* a key that starts with a run setting (``model``, ``method``, ``pretrain``, ``meta_train``,
  ``episodes``, ``seed``, ``compare_with``, ``augment``) applies to every run: ``meta_train.iterations=5``.

Settings that moved (``pretrain.way``, ``meta_train.maml.inner_steps_eval``/``bn_mode``) are
migrated or refused naming their new key (``metahyper.suite.keys``).

Seeds and shots: ``seeds: [0, 1, 2]`` on a run, or on the suite for every run without its own,
expands the run into one run per seed after the overrides; ``per_shot: true`` into one run per
evaluated shot, each meta-trained at its shot (``metahyper.suite.expansion``). ``seeds=[0,1]`` and
``per_shot=true`` on the command line set the suite's.

Data roots may name environment variables (``${METAHYPER_DATA}/omniglot``);
``metahyper.suite.data_paths.resolve_data_paths`` expands them and checks every folder before any
work starts.
"""

from __future__ import annotations

import dataclasses
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from metahyper.config import ConfigError, apply_overrides, did_you_mean, from_dict, load_yaml, to_dict
from metahyper.meta.metrics_log import LoggingConfig
from metahyper.models.compute import ComputeConfig
from metahyper.plugins import import_suite_modules
from metahyper.resources import SUITES_DIR, known_suites
from metahyper.suite.expansion import expand_runs
from metahyper.suite.keys import check_override, migrate
from metahyper.suite.launcher import LauncherConfig
from metahyper.suite.names import check_plain_name
from metahyper.suite.paper import PaperResult
from metahyper.suite.provenance import SettingSource, check_provenance
from metahyper.suite.specs import EvaluationConfig, RunSpec, SourceSpec, TargetSpec, check_seeds

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class SuiteConfig:
    """A suite: a source domain, named targets, named runs, shared evaluation settings.

    ``device``: ``auto`` (CUDA when available), ``cpu``, ``cuda`` or ``cuda:N``. ``kind`` tells
    these suites from classification suites (``kind: classify``, ``metahyper.classify.suite``).
    ``seeds`` applies to every run that lists no ``seeds`` of its own, ``per_shot`` to every run
    that does not set its own (``metahyper.suite.expansion``).
    ``imports`` names modules (a user's models, data sets, methods) imported before the suite is
    validated (``metahyper.plugins``).
    ``logging`` (``tensorboard: true``: event files beside each stage's JSONL metrics) and
    ``launcher`` (how ``--launcher slurm`` asks for jobs, ``metahyper.suite.launcher``) are left
    out of every stage's config hash (``metahyper.pipeline.stages.stage_config``) and of result records.
    ``paper`` lists published numbers that the report prints beside ours
    (``metahyper.suite.paper``); ``provenance`` says where each setting comes from, the paper or us
    (``metahyper.suite.provenance``); neither is in any config hash.
    ``compute`` (``channels_last``, ``autocast``: ``metahyper.models.compute``) sets how every
    run's model computes; it enters every stage's hash when set.
    """

    name: str
    data: SourceSpec
    targets: dict[str, TargetSpec]
    runs: dict[str, RunSpec]
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    device: str = "auto"
    kind: Literal["meta"] = "meta"
    description: str = ""
    seeds: tuple[int, ...] | None = None
    per_shot: bool = False
    imports: tuple[str, ...] = ()
    logging: LoggingConfig = field(default_factory=LoggingConfig)
    launcher: LauncherConfig = field(default_factory=LauncherConfig)
    paper: tuple[PaperResult, ...] = ()
    provenance: dict[str, SettingSource] = field(default_factory=dict)
    compute: ComputeConfig = field(default_factory=ComputeConfig)

    def __post_init__(self) -> None:
        check_plain_name(self.name, "name")
        check_seeds(self.seeds)
        check_provenance(self)
        for i, result in enumerate(self.paper):
            if result.target is not None and result.target not in self.targets:
                raise ValueError(f"paper[{i}].target: no target {result.target!r}"
                                 f"{did_you_mean(result.target, self.targets)}")
        for kind in ("targets", "runs"):
            entries = getattr(self, kind)
            if not entries:
                raise ValueError(f"{kind} must name at least one entry")
            bad = [name for name in entries if not _NAME.match(name)]
            if bad:
                raise ValueError(f"{kind}: name {bad[0]!r} must be letters, digits and _.+- (it names a folder)")

    def only(self, run: str) -> "SuiteConfig":
        """This suite with the single run ``run`` (a run's own config, as saved in its folder)."""
        if run not in self.runs:
            raise ConfigError(f"suite {self.name!r} has no run {run!r}"
                              f"{did_you_mean(run, {*self.runs, *self.run_groups()})}")
        return dataclasses.replace(self, runs={run: self.runs[run]})

    def select(self, name: str) -> list[str]:
        """The runs ``name`` stands for: itself, or every seed and shot of a run expanded by
        ``metahyper.suite.expansion`` (``wrn-s0``, ``wrn-s1`` for ``wrn``); raises naming the runs
        there are."""
        if name in self.runs:
            return [name]
        seeded = [run for run, spec in self.runs.items() if spec.report_name == name]
        if not seeded:
            self.only(name)  # raises naming the runs
        return seeded

    def run_groups(self) -> list[str]:
        """The runs as a user named them (one name per expanded run)."""
        return list(dict.fromkeys(spec.report_name or run for run, spec in self.runs.items()))


RUN_FIELDS = tuple(f.name for f in dataclasses.fields(RunSpec))


# --- finding and loading suites -----------------------------------------------------------------


def suite_path(ref: str | os.PathLike) -> Path:
    """A suite name (``smoke``) or a YAML path -> the file; raises ``ConfigError`` if absent."""
    path = Path(ref)
    if path.suffix in (".yaml", ".yml") or path.is_file():
        if not path.is_file():
            raise ConfigError(f"suite file {path} does not exist")
        return path
    named = SUITES_DIR / f"{ref}.yaml"
    if not named.is_file():
        raise ConfigError(f"unknown suite {str(ref)!r} (neither a file nor a built-in suite)"
                          f"{did_you_mean(ref, known_suites())}")
    return named


def load_suite(ref: str | os.PathLike, overrides: Iterable[str] = ()) -> SuiteConfig:
    """Load a suite by name or path, apply ``overrides`` (module docstring), validate it."""
    path = suite_path(ref)
    raw = load_yaml(path)
    import_suite_modules(raw, f"suite {path}")
    suite = from_dict(SuiteConfig, migrate(raw, f"suite {path}"), where=f"suite {path}")
    overrides = list(overrides)
    if not overrides:
        return expand_runs(suite)
    data = to_dict(suite)
    expanded = [item for override in overrides for item in expand_override(data, override)]
    for item in expanded:
        check_override(item.partition("=")[0])
    where = f"suite {suite.name!r} ({path}) with overrides"
    data = apply_overrides(data, expanded, where)
    import_suite_modules(data, where)
    return expand_runs(from_dict(SuiteConfig, data, where=where))


def expand_override(data: dict[str, Any], override: str) -> list[str]:
    """``override`` rewritten for ``apply_overrides``: ``*`` and indices expanded, run keys
    prefixed with ``runs.*``. Unresolvable keys are left for ``apply_overrides`` to report."""
    key, sep, value = override.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        return [override]
    if parts[0] in RUN_FIELDS and parts[0] not in data:
        parts = ["runs", "*", *parts]
    paths: list[tuple[list[str], Any]] = [([], data)]
    for part in parts:
        step = []
        for prefix, node in paths:
            keys = [part]
            if isinstance(node, dict) and part not in node:
                if part == "*":
                    keys = list(node)
                elif part.isdigit() and int(part) < len(node):
                    keys = [list(node)[int(part)]]
            for k in keys:
                step.append(([*prefix, k], node.get(k) if isinstance(node, dict) else None))
        if not step:
            raise ConfigError(f"override {override!r}: {'.'.join(parts)} matches nothing (the mapping is empty)")
        paths = step
    return [f"{'.'.join(prefix)}={value}" for prefix, _ in paths]
