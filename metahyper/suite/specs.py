"""The settings of a suite, entry by entry: data, model, training episodes, runs and evaluation.

Each is a frozen dataclass that ``metahyper.config.from_dict`` builds from a suite's YAML, and
each checks its own values in ``__post_init__`` (sizes within the limits below, registered
groupings, augmentations and methods), so a bad value fails naming its key before any work.
``SuiteConfig`` (``metahyper.suite.config``) puts them together.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from metahyper.config import check_at_most
from metahyper.data.bounded import check_image_size
from metahyper.data.groupings import check_grouping
from metahyper.data.presets import augment_names
from metahyper.data.synthetic import check_synthetic_size
from metahyper.meta.baselines import FEATURE_BN_MODES
from metahyper.meta.maml import BN_MODES
from metahyper.meta.methods import make_method
from metahyper.meta.pretrain import PretrainConfig
from metahyper.meta.support_augment import SupportAugment
from metahyper.meta.train import MetaTrainConfig

BASELINES = ("nearest_centroid", "linear_head", "logistic_regression")
MAX_EPISODE_SIZE, MAX_EPISODES = 10_000, 1_000_000  # way/shot/query/steps; episodes of a fixed set
MAX_SUPPORT_COPIES = 1_000  # evaluation.support_augment.copies: each copy is one more pass over the support set


@dataclass(frozen=True)
class DataSpec:
    """One split of a data set, as ``metahyper.data.load_store`` reads it.

    ``root`` may hold ``$VAR``/``${VAR}`` (expanded by ``metahyper.suite.data_paths``); unused for
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
        check_seeds(self.seeds)
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


def check_seeds(seeds: tuple[int, ...] | None) -> None:
    """Seeds of a run or a suite (``seeds``): distinct, >= 0, at least one."""
    if seeds is not None and (not seeds or len(set(seeds)) != len(seeds) or min(seeds) < 0):
        raise ValueError(f"seeds must be a non-empty list of distinct integers >= 0, got {list(seeds)}")


def _check_shots(name: str, shots: tuple[int, ...]) -> None:
    """Shots of an evaluation (``evaluation.shots``, a run's ``eval_shots``): distinct, 1 to ``MAX_EPISODE_SIZE``."""
    if not shots or min(shots) < 1 or len(set(shots)) != len(shots):
        raise ValueError(f"{name} must be a non-empty list of distinct integers >= 1, got {list(shots)}")
    if max(shots) > MAX_EPISODE_SIZE:
        raise ValueError(f"{name} must be <= {MAX_EPISODE_SIZE}, got {max(shots)}")
