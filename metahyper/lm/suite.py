"""Language-model suites: character models x seeds on one corpus, reported in bits per character.

Schema (``kind: language_model``; every key but ``name``, ``data`` and ``models`` optional)::

    kind: language_model
    name: lm-tinyshakespeare
    description: "..."
    data:
      dataset: text              # ptb_char, enwik8 or text (metahyper.lm.data)
      root: ${METAHYPER_DATA}/text   # the folder with the files
      options: {file: tinyshakespeare.txt, split: [0.9, 0.05, 0.05]}   # reader options
    seeds: [0, 1, 2]
    device: auto                 # auto (cuda when available), cpu, cuda, cuda:1
    train: {steps: 600}          # LMConfig fields (seed comes from `seeds`)
    models:
      - label: HyperLSTM
        cell: hyper_lstm         # lstm, ln_lstm, hyper_lstm
        options: {hidden_size: 128, hyper_size: 64}   # CharLM options (vocab comes from the data)
        train: {}                # per-model overrides of `train`
    sample: {length: 320, prime: "ROMEO:", temperature: 1.0, seed: 0}
    logging: {tensorboard: false}  # true: metrics.jsonl also as TensorBoard events in tb/ (not hashed)

Runs go to ``<out>/runs/<label>/seed<k>/``; a run whose ``result.json`` matches its config is
skipped on rerun, a killed one resumes from its checkpoint. The report (``metahyper.lm.report``)
adds, per model, text sampled from its first seed's best weights and, for a HyperLSTM, the
weight-change figure. Everything is validated before the corpus is read or a model built.
"""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from metahyper.classify.suite import _slug, check_rows_and_seeds, finished_result, merged_train_config
from metahyper.config import ConfigError, config_hash, from_dict, load_config, save_yaml, to_dict
from metahyper.lm.data import READERS, Corpus, load_corpus
from metahyper.lm.model import CELLS, CharLM, seeded_model
from metahyper.lm.report import write_lm_report
from metahyper.lm.train import LMConfig, train_lm
from metahyper.meta.metrics_log import LoggingConfig
from metahyper.suite.data_paths import resolve_root

SUITE_NAME = "suite.yaml"
RUN_CONFIG_NAME = "config.yaml"


@dataclass(frozen=True)
class LMData:
    """Where the corpus comes from (``metahyper.lm.data.load_corpus``)."""

    dataset: str
    root: str | None = None
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class LMModelSpec:
    """One row of the suite's table."""

    label: str
    cell: str
    options: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class SampleSpec:
    """Text sampled for the report after reading ``prime``."""

    length: int = 320
    prime: str = "\n"
    temperature: float = 1.0
    seed: int = 0


@dataclass(frozen=True)
class LMSuite:
    """A language-model suite (``kind: language_model``)."""

    name: str
    data: LMData
    models: tuple[LMModelSpec, ...]
    kind: Literal["language_model"] = "language_model"
    description: str = ""
    seeds: tuple[int, ...] = (0, 1, 2)
    device: str = "auto"
    train: dict[str, Any] = field(default_factory=dict)
    sample: SampleSpec = field(default_factory=SampleSpec)
    logging: LoggingConfig = field(default_factory=LoggingConfig)


def run_config(suite: LMSuite, index: int, seed: int, where: str = "suite") -> LMConfig:
    """The LMConfig of model ``index`` and ``seed`` (``merged_train_config``)."""
    return merged_train_config(LMConfig, suite, index, seed, where)


def _check_model(spec: LMModelSpec, i: int, where: str) -> None:
    if spec.cell not in CELLS:
        raise ConfigError(f"{where}: models[{i}].cell: unknown cell {spec.cell!r}; known: {', '.join(CELLS)}")
    valid = [n for n in inspect.signature(CharLM).parameters if n not in ("vocab_size", "cell")]
    unknown = [key for key in spec.options if key not in valid]
    if unknown:
        raise ConfigError(f"{where}: models[{i}].options.{unknown[0]}: no such model option (options: {', '.join(valid)})")
    try:
        with torch.random.fork_rng(devices=[]):  # a tiny model checks the values; the RNG is restored
            CharLM(2, spec.cell, **{**spec.options, "hidden_size": 1, "input_size": 1, "hyper_size": 1})
    except (ValueError, TypeError) as error:
        raise ConfigError(f"{where}: models[{i}].options: {error}") from None


def check_suite(suite: LMSuite, where: str = "suite") -> LMSuite:
    """Raise ``ConfigError`` naming the key for anything that would fail later; returns the suite
    with ``data.root`` expanded and checked to be a folder."""
    if suite.data.dataset not in READERS:
        raise ConfigError(f"{where}: data.dataset: unknown text format {suite.data.dataset!r}; "
                          f"known: {', '.join(READERS)}")
    accepted = [n for n in inspect.signature(READERS[suite.data.dataset]).parameters if n != "root"]
    for option in suite.data.options:
        if option not in accepted:
            raise ConfigError(f"{where}: data.options.{option}: {suite.data.dataset} takes no such option "
                              f"(its options: {', '.join(accepted) or 'none'})")
    root = resolve_root(suite, "data", suite.data)
    check_rows_and_seeds(suite, where)
    for i, spec in enumerate(suite.models):
        _check_model(spec, i, where)
        run_config(suite, i, suite.seeds[0], where)
    if suite.sample.length < 1 or not suite.sample.prime or suite.sample.temperature <= 0:
        raise ConfigError(f"{where}: sample needs length >= 1, a non-empty prime and temperature > 0")
    return dataclasses.replace(suite, data=dataclasses.replace(suite.data, root=str(root)))


def load_lm_suite(path: str | os.PathLike, overrides: Iterable[str] = ()) -> LMSuite:
    """Read, override (dotted ``key=value``) and fully validate a language-model suite file."""
    return check_suite(load_config(LMSuite, path, overrides), str(path))


def run_row(suite: LMSuite, index: int, seed: int, out: Path, corpus: Corpus, device: torch.device,
            progress: bool | None = None) -> dict[str, Any]:
    """Train (or resume, or read the finished result of) model ``index`` x ``seed``; its row."""
    spec = suite.models[index]
    data = {k: v for k, v in to_dict(suite.data).items() if k != "root"}
    identity = {"data": data, "model": to_dict(spec), "train": to_dict(run_config(suite, index, seed))}
    digest = config_hash(identity)
    run_dir = out / "runs" / _slug(spec.label) / f"seed{seed}"
    model = seeded_model(len(corpus.vocab), spec.cell, spec.options, seed)
    roles = {role.value: sum(p.numel() for p in group.values()) for role, group in model.params_by_role().items()}
    saved = finished_result(run_dir, digest)
    if saved is None:
        save_yaml({**identity, "vocab_size": len(corpus.vocab)}, run_dir / RUN_CONFIG_NAME)
        result = train_lm(model.to(device), corpus, run_config(suite, index, seed), run_dir, resume=True,
                          config_hash=digest, progress=progress, tensorboard=suite.logging.tensorboard)
        saved = dataclasses.asdict(result)
    return {"label": spec.label, "cell": spec.cell, "seed": seed, "params": sum(roles.values()),
            "params_hypernet": roles["hypernet"], "run_dir": str(run_dir.relative_to(out)), "config_hash": digest,
            **{k: saved[k] for k in ("valid_bpc", "test_bpc", "best_step")}}


def run_lm_suite(suite_cfg: LMSuite | dict[str, Any], out_dir: str | os.PathLike, *, where: str = "suite",
                 progress: bool | None = None) -> list[Path]:
    """Run every model x seed into ``out_dir`` (finished runs skipped, killed ones resumed), save
    ``suite.yaml`` there and write the report. Returns the written report files."""
    from metahyper.pipeline.runs import resolve_device  # here: runs.py imports the classify suites

    suite = suite_cfg if isinstance(suite_cfg, LMSuite) else from_dict(LMSuite, suite_cfg, where)
    suite = check_suite(suite, where)
    suite.logging.check()
    out, device = Path(out_dir), resolve_device(suite.device)
    try:
        corpus = load_corpus(suite.data.dataset, suite.data.root, **suite.data.options)
    except (ValueError, FileNotFoundError) as error:
        raise ConfigError(f"{where}: data: {error}") from None
    save_yaml(suite, out / SUITE_NAME)
    # Seed-major order: an interrupted suite has every model at its first seeds.
    rows = [run_row(suite, i, seed, out, corpus, device, progress)
            for seed in suite.seeds for i in range(len(suite.models))]
    return write_lm_report(suite, rows, corpus, out)
