"""Benchmark suite configs: what to train, on which data, and how to evaluate it.

A suite (``benchmarks/suites/*.yaml``) is a source domain (``data``), target domains
(``targets``, by name), runs (``runs``, by name: a model with its pretraining, MAML and
training-episode settings) and the evaluation settings shared by every run. Everything is a
frozen dataclass built with ``metahyper.config.from_dict``, so unknown keys and bad values fail
with messages naming the file and the dotted key.

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

Data roots may name environment variables (``${METAHYPER_DATA}/omniglot``); ``check_data_paths``
expands them and checks every folder before any work starts.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal

from metahyper.config import (ConfigError, apply_overrides, check_at_most, did_you_mean, from_dict, load_yaml,
                              to_dict)
from metahyper.data.bounded import check_image_size
from metahyper.data.groupings import check_grouping
from metahyper.data.presets import augment_names
from metahyper.data.sources import DATASETS
from metahyper.data.synthetic import check_synthetic_size
from metahyper.meta.baselines import FEATURE_BN_MODES
from metahyper.meta.maml import BN_MODES
from metahyper.meta.methods import make_method
from metahyper.meta.metrics_log import LoggingConfig
from metahyper.meta.pretrain import PretrainConfig
from metahyper.meta.support_augment import SupportAugment
from metahyper.meta.train import MetaTrainConfig
from metahyper.models.compute import ComputeConfig
from metahyper.plugins import import_suite_modules
from metahyper.resources import SUITES_DIR, known_suites
from metahyper.suite.expansion import expand_runs
from metahyper.suite.keys import check_override, migrate
from metahyper.suite.launcher import LauncherConfig
from metahyper.suite.names import check_plain_name
from metahyper.suite.paper import PaperResult
from metahyper.suite.provenance import SettingSource, check_provenance

BASELINES = ("nearest_centroid", "linear_head", "logistic_regression")
MAX_EPISODE_SIZE, MAX_EPISODES = 10_000, 1_000_000  # way/shot/query/steps; episodes of a fixed set
MAX_SUPPORT_COPIES = 1_000  # evaluation.support_augment.copies: each copy is one more pass over the support set
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*$")


@dataclass(frozen=True)
class DataSpec:
    """One split of a data set, as ``metahyper.data.load_store`` reads it.

    ``root`` may hold ``$VAR``/``${VAR}`` (expanded by ``check_data_paths``); unused for
    ``synthetic``. ``image_size`` resizes once at load time. ``family``, ``num_classes`` and
    ``seed`` are synthetic-only; ``images_per_class`` is the generated count for synthetic data
    and the expected count for real data; ``options`` holds other reader options (Omniglot
    ``alphabets``, ``rotations``). Options a reader does not take are refused up front.
    """

    dataset: str
    root: str | None = None
    split: str = "test"
    image_size: int | None = None
    family: str | None = None
    num_classes: int | None = None
    images_per_class: int | None = None
    seed: int | None = None
    cache_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        check_data_sizes(self)

    def reader_options(self) -> dict[str, Any]:
        """The keyword options for ``load_store`` beyond dataset, root and split."""
        named = {k: getattr(self, k) for k in ("image_size", "family", "num_classes", "images_per_class", "seed",
                                               "cache_dir")}
        return {**{k: v for k, v in named.items() if v is not None}, **self.options}


def check_data_sizes(spec: DataSpec) -> None:
    """Refuse an ``image_size`` out of range, and synthetic settings whose store would not fit in
    memory (``metahyper.data.bounded``), naming the setting, before any data is read or made."""
    check_image_size(spec.image_size, "image_size")
    if spec.dataset == "synthetic":
        check_synthetic_size(spec.split, spec.num_classes, spec.images_per_class, spec.image_size)


def check_group_field(field_name: str, name: str | None) -> None:
    """Refuse a grouping name that is not registered (``metahyper.data.groupings``), naming the field."""
    if name is not None:
        try:
            check_grouping(name)
        except ValueError as error:
            raise ValueError(f"{field_name}: {error}") from None


@dataclass(frozen=True)
class SourceSpec(DataSpec):
    """The source domain: ``split`` (default train) for pretraining and meta-training;
    ``val_split`` (optional) for the validation curve during meta-training, its episodes drawn
    within one group of ``val_groups`` (a grouping, ``metahyper.data.groupings``) when set.
    ``val_groups`` sits beside ``val_split`` (not on a run) because every run is validated on
    the same episodes, as the targets' are shared."""

    split: str = "train"
    val_split: str | None = None
    val_groups: str | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        check_group_field("val_groups", self.val_groups)
        if self.val_groups is not None and self.val_split is None:
            raise ValueError(f"val_groups={self.val_groups!r} needs val_split (the split validation episodes "
                             "come from)")


@dataclass(frozen=True)
class TargetSpec(DataSpec):
    """A target domain: ``split`` (default test) evaluated on fixed episodes; ``groups`` (a
    grouping, ``metahyper.data.groupings``) draws each episode's classes from one group, e.g.
    ``alphabet`` for Lake's within-alphabet Omniglot tasks. ``optional: true``: when its root
    does not exist (or names an unset environment variable) the suite runs without it, and the
    log and the report say so and how to get the data (``metahyper.pipeline.targets.absent_targets``);
    by default a missing root is refused up front. Both are left out of the stage hashes at
    their defaults."""

    groups: str | None = None
    optional: bool = False

    def __post_init__(self) -> None:
        super().__post_init__()
        check_group_field("groups", self.groups)


@dataclass(frozen=True)
class ModelSpec:
    """A registered model name and its options (``metahyper.models.build_model``)."""

    name: str
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class EpisodeSpec:
    """Meta-training episodes: ``way``-way ``shot``-shot with ``query`` queries per class,
    each drawn within one group of ``groups`` (a grouping, ``metahyper.data.groupings``) when set.
    ``eval_way`` (default: ``way``) is the way of the validation and evaluation episodes, for
    methods without a ``way``-output head (ProtoNet: Snell et al. train with more classes per
    episode than they test with); ``eval_way_or_way`` is the way those episodes have."""

    way: int = 5
    shot: int = 1
    query: int = 15
    seed: int = 0
    groups: str | None = None
    eval_way: int | None = None

    def __post_init__(self) -> None:
        for name, least in (("way", 2), ("shot", 1), ("query", 1), ("eval_way", 2)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise ValueError(f"{name} must be >= {least}, got {value}")
        check_at_most(self, MAX_EPISODE_SIZE, "way", "shot", "query", "eval_way")
        check_group_field("groups", self.groups)

    @property
    def eval_way_or_way(self) -> int:
        """The way of the run's validation and evaluation episodes."""
        return self.way if self.eval_way is None else self.eval_way


@dataclass(frozen=True)
class RunSpec:
    """One model through pretrain -> meta-train -> evaluate.

    ``method`` is the meta-learner (``metahyper.meta.methods``: maml, anil, protonet); its
    settings live in ``meta_train`` (``meta_train.maml`` for maml and anil). Pretraining ends
    with a head of ``episodes.way`` outputs.
    ``seed`` seeds the model's initialisation and is the seed reported with its results.
    ``compare_with`` names the plain run this one is paired with in the report (default: a
    run named ``hyper_X`` pairs with ``X``; a name without such a run leaves a note).
    ``augment`` augments the pretraining images: ``true`` or ``crop_flip`` (pad-4 crops and flips),
    ``affine`` (Koch et al.'s affine distortions, for handwritten characters), ``stroke``,
    ``elastic``, ``erase`` (``metahyper.data.presets``), or several joined by ``+``
    (``affine+elastic``); ``meta_augment`` augments the meta-training episodes (support and query)
    the same way.
    ``seeds`` (optional) lists several seeds: the run expands into one run per seed;
    ``per_shot`` (default: the suite's) expands it into one run per shot of ``evaluation.shots``,
    each meta-trained on episodes of that shot and evaluated at it. The expansion
    (``metahyper.suite.expansion``) sets ``report_name`` (the name results carry), ``eval_shots``
    (the shots the run is evaluated at; default ``evaluation.shots``) and ``pretrain_from`` (the
    run whose pretraining this one shares).
    """

    model: ModelSpec
    method: str = "maml"
    pretrain: PretrainConfig = field(default_factory=PretrainConfig)
    meta_train: MetaTrainConfig = field(default_factory=MetaTrainConfig)
    episodes: EpisodeSpec = field(default_factory=EpisodeSpec)
    seed: int = 0
    compare_with: str | None = None
    augment: bool | str = False
    meta_augment: str | None = None
    seeds: tuple[int, ...] | None = None
    per_shot: bool | None = None
    report_name: str | None = None
    eval_shots: tuple[int, ...] | None = None
    pretrain_from: str | None = None

    def __post_init__(self) -> None:
        _check_seeds(self.seeds)
        if self.eval_shots is not None:
            _check_shots("eval_shots", self.eval_shots)
        for name in ("augment", "meta_augment"):
            try:
                augment_names(getattr(self, name) or False)
            except ValueError as error:
                raise ValueError(f"{name}: {error}") from None
        try:
            method = make_method(self.method, self.meta_train)
        except ValueError as error:
            raise ValueError(f"method: {error}") from None
        way, eval_way = self.episodes.way, self.episodes.eval_way_or_way
        if eval_way != way and not getattr(method, "way_agnostic", False):
            raise ValueError(f"episodes.eval_way={eval_way} differs from episodes.way={way}, but method "
                             f"{self.method!r} classifies with a head of `way` outputs; remove episodes.eval_way "
                             "or use a method without such a head (protonet)")


@dataclass(frozen=True)
class EvaluationConfig:
    """Evaluation on fixed episode sets of every target, at each run's evaluation way
    (``episodes.eval_way``, default its ``way``) and each shot.

    ``bn_mode`` (transductive | inductive) applies to every meta-trained model;
    ``inner_steps_eval`` is the test-time inner-loop steps of maml and anil. ``baselines`` maps
    a method (``BASELINES``) to its options (see ``metahyper.meta.baselines``); they use each
    run's pretrained model, with features extracted under ``baseline_bn_mode``: ``running``
    (default; eval mode, pretraining's running statistics, as Chen et al. and Tian et al.
    extract them and as their published numbers assume), or ``transductive``/``inductive``
    (batch statistics of the episode, as the meta-trained models use); a baseline's own
    ``bn_mode`` option wins.
    ``val_episodes`` validation episodes of the source ``val_split`` are scored every
    ``meta_train.validate_every`` iterations.
    Rows of their own beside each feature predictor (``metahyper.meta.variants``; the plain,
    inductive number stays): ``support_augment`` (``{copies: 8, augment: affine}``) averages each
    support image's features over augmented copies (``+tta``); ``soft_kmeans_steps`` (> 0) refines
    the prototypes of protonet, meta_baseline and nearest_centroid with the episode's queries
    (``+soft_kmeans``, transductive). ``seed_ensemble: true`` keeps every record's per-query
    probabilities (``evaluate/probabilities.npz``) and the report adds, for each model with several
    seeds, the ensemble that averages them (``metahyper.eval.ensemble``).
    """

    shots: tuple[int, ...] = (1, 5)
    query: int = 15
    episodes: int = 600
    seed: int = 0
    bn_mode: str = "transductive"
    baseline_bn_mode: str = "running"
    inner_steps_eval: int = 10
    batch_tasks: int = 16
    val_episodes: int = 100
    baselines: dict[str, dict[str, Any]] = field(default_factory=dict)
    support_augment: SupportAugment | None = None
    soft_kmeans_steps: int = 0
    seed_ensemble: bool = False

    def __post_init__(self) -> None:
        for name, least in (("query", 1), ("episodes", 2), ("batch_tasks", 1), ("val_episodes", 2),
                            ("inner_steps_eval", 0), ("soft_kmeans_steps", 0)):
            if getattr(self, name) < least:
                raise ValueError(f"{name} must be >= {least}, got {getattr(self, name)}")
        check_at_most(self, MAX_EPISODES, "episodes", "val_episodes")
        check_at_most(self, MAX_EPISODE_SIZE, "query", "batch_tasks", "inner_steps_eval", "soft_kmeans_steps")
        _check_shots("shots", self.shots)
        if self.support_augment is not None and self.support_augment.copies > MAX_SUPPORT_COPIES:
            raise ValueError(f"support_augment.copies must be <= {MAX_SUPPORT_COPIES}, "
                             f"got {self.support_augment.copies}")
        if self.bn_mode not in BN_MODES:
            raise ValueError(f"bn_mode must be one of {list(BN_MODES)}, got {self.bn_mode!r}")
        if self.baseline_bn_mode not in FEATURE_BN_MODES:
            raise ValueError(f"baseline_bn_mode must be one of {list(FEATURE_BN_MODES)}, got {self.baseline_bn_mode!r}")
        unknown = sorted(set(self.baselines) - set(BASELINES))
        if unknown:
            raise ValueError(f"baselines: unknown method {unknown[0]!r}; known: {', '.join(BASELINES)}")


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
        _check_seeds(self.seeds)
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


def _check_seeds(seeds: tuple[int, ...] | None) -> None:
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0):
        raise ValueError(f"seeds must be a non-empty list of distinct integers >= 0, got {list(seeds)}")


def _check_shots(name: str, shots: tuple[int, ...]) -> None:
    """Shots of an evaluation (``evaluation.shots``, a run's ``eval_shots``): distinct, 1 to ``MAX_EPISODE_SIZE``."""
    if not shots or min(shots) < 1 or len(set(shots)) != len(shots):
        raise ValueError(f"{name} must be a non-empty list of distinct integers >= 1, got {list(shots)}")
    if max(shots) > MAX_EPISODE_SIZE:
        raise ValueError(f"{name} must be <= {MAX_EPISODE_SIZE}, got {max(shots)}")


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


# --- checks before any work ----------------------------------------------------------------------


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
