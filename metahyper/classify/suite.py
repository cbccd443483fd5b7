"""Classification suites: a YAML list of models x seeds on one data set, trained by
``train_classifier``, summarised as mean ± std over seeds.

Schema (``kind: classify``; every key but ``name``, ``data.dataset`` and ``models`` optional)::

    kind: classify
    name: babu-table2-penalty
    description: "Babu et al. Table 2: output-norm penalty vs none"
    data:
      dataset: cifar10          # any load_store data set: cifar10, cifar100, synthetic, omniglot
      root: null                # REQUIRED except for synthetic: the folder with the data files
      split: train              # the store read when holdout_per_class > 0
      holdout_per_class: 0      # 0: train on split 'train', test on 'test'; n > 0: test on the
                                #  first n images of each class of `split` (synthetic, Omniglot)
      image_size: null
      cache_dir: null
      options: {}               # reader options, e.g. synthetic num_classes/images_per_class
    seeds: [0, 1, 2]
    device: auto                # auto (cuda when available), cpu, cuda, cuda:1
    train: {epochs: 200}        # ClassifyConfig fields (seed comes from `seeds`)
    imports: []                 # modules registering your models / data sets (metahyper.plugins)
    models:
      - label: Hyper-WRN-40-2 (1)
        model: hyper_wrn40_2    # a metahyper.models name
        options: {variant: 1}   # build_model options (num_classes comes from the data)
        train: {output_penalty: 0.0}   # per-model overrides of `train`
        compress: false         # Babu et al. Table 6: embeddings drawn from the seed, frozen
    logging: {tensorboard: false}   # true: metrics.jsonl also as TensorBoard events in tb/ (not hashed)

Runs go to ``<out>/runs/<label>/seed<k>/``; a run whose ``result.json`` matches its config is
skipped on rerun, a killed one resumes from its checkpoint. Everything is validated (including
that ``data.root`` is given and exists) before any data is read or any model trained.
"""

from __future__ import annotations

import dataclasses
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

import torch

from metahyper.classify.data import split_holdout
from metahyper.classify.report import write_classify_report
from metahyper.classify.train import RESULT_NAME, ClassifyConfig, train_classifier
from metahyper.config import ConfigError, config_hash, from_dict, load_config, load_yaml, save_yaml, to_dict
from metahyper.data import load_store
from metahyper.data.rng import keyed_seed
from metahyper.data.stores import ImageStore
from metahyper.files import read_json
from metahyper.meta.metrics_log import LoggingConfig
from metahyper.models import build_model, compress, model_options, parameter_counts
from metahyper.outdir import FolderLock, check_writable
from metahyper.plugins import import_modules
from metahyper.suite.data_paths import resolve_root
from metahyper.suite.names import check_plain_name

SUITE_NAME = "suite.yaml"
RUN_CONFIG_NAME = "config.yaml"
T = TypeVar("T")


@dataclass(frozen=True)
class ClassifyData:
    """Where the images come from; see the module docstring."""

    dataset: str
    root: str | None = None
    split: str = "train"
    holdout_per_class: int = 0
    image_size: int | None = None
    cache_dir: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ModelSpec:
    """One row of the suite's table."""

    label: str
    model: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    compress: bool = False


@dataclass(frozen=True)
class ClassifySuite:
    """A classification suite (``kind: classify``)."""

    name: str
    data: ClassifyData
    models: tuple[ModelSpec, ...]
    kind: Literal["classify"] = "classify"
    description: str = ""
    seeds: tuple[int, ...] = (0, 1, 2)
    device: str = "auto"
    train: dict[str, Any] = field(default_factory=dict)
    imports: tuple[str, ...] = ()  # modules with a user's models / data sets (metahyper.plugins)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def merged_train_config(config_cls: type[T], suite: Any, index: int, seed: int, where: str = "suite") -> T:
    """The training config (``config_cls``) of model row ``index`` at ``seed`` of a suite with
    ``train``, ``models[*].train`` and ``seeds`` (classification and language-model suites): the
    suite's ``train``, then the row's; the seed comes from the suite's ``seeds`` list only."""
    if "seed" in suite.train or "seed" in suite.models[index].train:
        raise ConfigError(f"{where}: models[{index}].train: 'seed' is set by the suite's `seeds` list, not in train")
    merged = {**suite.train, **suite.models[index].train, "seed": seed}
    return from_dict(config_cls, merged, where=f"{where}: models[{index}].train (merged with train)")


def check_rows_and_seeds(suite: Any, where: str = "suite") -> None:
    """Raise ``ConfigError`` unless the suite has a plain name (``metahyper.suite.names``), model rows
    with distinct labels (also as folder names) and a non-empty list of distinct seeds."""
    try:
        check_plain_name(suite.name, "name")
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None
    if not suite.models or not suite.seeds or len(set(suite.seeds)) != len(suite.seeds):
        raise ConfigError(f"{where}: a suite needs at least one model and distinct seeds, got seeds {list(suite.seeds)}")
    labels = [spec.label for spec in suite.models]
    if len({_slug(label) for label in labels}) != len(labels):
        raise ConfigError(f"{where}: models[*].label must be distinct (also as folder names), got {labels}")


def run_config(suite: ClassifySuite, index: int, seed: int, where: str = "suite") -> ClassifyConfig:
    """The ClassifyConfig of model ``index`` and ``seed`` (``merged_train_config``)."""
    return merged_train_config(ClassifyConfig, suite, index, seed, where)


def check_suite(suite: ClassifySuite, where: str = "suite") -> ClassifySuite:
    """Raise ``ConfigError`` naming the key for anything that would fail later; returns the
    suite with ``data.root`` expanded (``~``, ``$VAR``) and checked to be a folder."""
    root = resolve_root(suite, "data", suite.data)
    check_rows_and_seeds(suite, where)
    for i, spec in enumerate(suite.models):
        try:
            valid = model_options(spec.model)
        except ValueError as error:
            raise ConfigError(f"{where}: models[{i}].model: {error}") from None
        unknown = [key for key in spec.options if key not in valid]
        if unknown:
            raise ConfigError(f"{where}: models[{i}].options.{unknown[0]}: model {spec.model!r} has no such option "
                              f"(its options: {', '.join(valid) or 'none'})")
        run_config(suite, i, suite.seeds[0], where)
    return dataclasses.replace(suite, data=dataclasses.replace(suite.data, root=None if root is None else str(root)))


def load_classify_suite(path: str | os.PathLike, overrides: Iterable[str] = ()) -> ClassifySuite:
    """Read, override (dotted ``key=value``) and fully validate a classify suite file."""
    suite = load_config(ClassifySuite, path, overrides)
    import_modules(suite.imports, f"suite {path}: imports")
    return check_suite(suite, str(path))


def load_data(data: ClassifyData) -> tuple[ImageStore, ImageStore]:
    """(train, test) stores of the suite's data section."""
    def read(split: str) -> ImageStore:
        return load_store(data.dataset, data.root, split, data.image_size, data.cache_dir, **data.options)

    if data.holdout_per_class:
        return split_holdout(read(data.split), data.holdout_per_class)
    return read("train"), read("test")


def _slug(label: str) -> str:
    return re.sub(r"[^A-Za-z0-9._+-]+", "_", label).strip("_") or "model"


def build_run_model(spec: ModelSpec, num_classes: int, seed: int) -> torch.nn.Module:
    """The model of one run; its initialisation (and compression seed) keyed on ``seed`` only,
    so every model of a suite starts from the same seed per run. The global RNG is restored."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(keyed_seed("classify-init", seed))
        model = build_model(spec.model, num_classes, **spec.options)
    return compress(model, keyed_seed("classify-compress", seed)) if spec.compress else model


def run_identity(suite: ClassifySuite, index: int, seed: int) -> dict[str, Any]:
    """What defines a run's results (hashed for resume and skipping): data (without where it
    lives: ``root``, ``cache_dir``), the model spec and the full ClassifyConfig."""
    data = {k: v for k, v in to_dict(suite.data).items() if k not in ("root", "cache_dir")}
    return {"data": data, "model": to_dict(suite.models[index]), "train": to_dict(run_config(suite, index, seed))}


def run_row(suite: ClassifySuite, index: int, seed: int, out: Path, *, train: bool,
            stores: tuple[ImageStore, ImageStore] | None = None, device: torch.device | None = None,
            progress: bool | None = None) -> dict[str, Any] | None:
    """The result row of one model x seed: read from its finished ``result.json`` or, with
    ``train``, trained (resumed) on ``device`` into ``<out>/runs/<label>/seed<k>``; None if
    unfinished and not ``train``. ``stores`` (train, test) and ``device`` are needed to train."""
    spec, identity = suite.models[index], run_identity(suite, index, seed)
    digest = config_hash(identity)
    run_dir = out / "runs" / _slug(spec.label) / f"seed{seed}"
    saved = finished_result(run_dir, digest)
    if saved is None and not train:
        return None
    num_classes = stores[0].num_classes if stores else int(load_yaml(run_dir / RUN_CONFIG_NAME)["num_classes"])
    model = build_run_model(spec, num_classes, seed)
    counts = parameter_counts(model)
    if saved is None:
        save_yaml({**identity, "num_classes": num_classes}, run_dir / RUN_CONFIG_NAME)
        result = train_classifier(model.to(device), *stores, run_config(suite, index, seed), run_dir,
                                  resume=True, config_hash=digest, progress=progress,
                                  tensorboard=suite.logging.tensorboard)
        saved = dataclasses.asdict(result)
    return {"label": spec.label, "model": spec.model, "seed": seed, "params_train": counts.train,
            "params_test": counts.test, "run_dir": str(run_dir.relative_to(out)), "config_hash": digest,
            **_flat_result(saved)}


def finished_result(run_dir: Path, digest: str) -> dict[str, Any] | None:
    """The run's ``result.json`` when it exists and was written under config hash ``digest``."""
    path = run_dir / RESULT_NAME
    if not path.is_file():
        return None
    saved = read_json(path, f"delete it to train that run again (it resumes from its checkpoint in {run_dir})")
    return saved if saved.get("config_hash") == digest else None


def _flat_result(result: Mapping[str, Any]) -> dict[str, Any]:
    """test/swa accuracy and Bayesian metrics as flat columns (absent ones left out)."""
    flat = {key: result[key] for key in ("test_accuracy", "swa_accuracy") if result.get(key) is not None}
    return {**flat, **(result.get("bayes") or {})}


def run_classify_suite(suite_cfg: ClassifySuite | Mapping[str, Any], out_dir: str | os.PathLike,
                       *, where: str = "suite", progress: bool | None = None) -> list[Path]:
    """Run every model x seed of the suite into ``out_dir`` (finished runs are skipped, killed
    ones resumed), save ``suite.yaml`` there and write report.md, results.csv, results.json and
    val_curves.png. Returns the written report files."""
    suite = suite_cfg if isinstance(suite_cfg, ClassifySuite) else from_dict(ClassifySuite, suite_cfg, where)
    from metahyper.pipeline.runs import resolve_device  # here: runs.py may import this module

    suite = check_suite(suite, where)
    suite.logging.check()
    check_writable(out_dir, "output folder (--out)")
    out, device = Path(out_dir), resolve_device(suite.device)
    stores = load_data(suite.data)
    with FolderLock(out, "suite folder"):  # one process per folder
        save_yaml(suite, out / SUITE_NAME)
        rows = [run_row(suite, i, seed, out, train=True, stores=stores, device=device, progress=progress)
                for i in range(len(suite.models)) for seed in suite.seeds]
        return write_classify_report(suite, rows, out)


def is_classify_output(out_dir: str | os.PathLike) -> bool:
    """True when ``out_dir`` was written by ``run_classify_suite``."""
    path = Path(out_dir) / SUITE_NAME
    return path.is_file() and load_yaml(path).get("kind") == "classify"


def rebuild_classify_report(out_dir: str | os.PathLike) -> list[Path]:
    """Rewrite the report of a ``run_classify_suite`` folder from its finished runs (no training)."""
    out = Path(out_dir)
    suite = from_dict(ClassifySuite, load_yaml(out / SUITE_NAME), where=str(out / SUITE_NAME))
    rows = [run_row(suite, i, seed, out, train=False) for i in range(len(suite.models)) for seed in suite.seeds]
    finished = [row for row in rows if row is not None]
    if not finished:
        raise ConfigError(f"{out}: no finished classification run (runs/*/seed*/{RESULT_NAME}); nothing to report")
    return write_classify_report(suite, finished, out)
