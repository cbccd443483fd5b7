"""The three stages of a run and the live objects they share.

``stage_config(suite, run, stage)`` is a stage's frozen config: what defines its artifacts,
chained to the stage before it by hash. ``Workspace`` holds the resolved suite, the output
folder, the device and the data stores loaded so far (each loaded once). ``STAGE_RUNNERS``
maps a stage to the function that does its work inside its folder:

* ``pretrain``: supervised pretraining on every class of the source split (``metahyper.meta.pretrain``);
* ``meta_train``: the run's method (``metahyper.meta.methods``: maml, anil, protonet) on episodes
  of the source split (within one group of ``episodes.groups`` when set) from the pretrained
  model, with a validation curve on the source ``val_split`` when it is set (within
  ``data.val_groups``, at ``episodes.eval_way``; ``metahyper.meta.train``);
* ``evaluate``: the meta-trained model and each baseline (on the pretrained model) on the fixed
  episode sets of every target (within its ``groups``) and shot, at ``episodes.eval_way``
  (``metahyper.eval.evaluate``) -> ``results.json``; a target whose data set defines its own
  episodes is scored on those, and what was skipped goes to ``skipped.json`` (``metahyper.pipeline.targets``).

Orchestration (skipping, markers, checks) is ``metahyper.pipeline.runs``, the report ``metahyper.pipeline.report``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from functools import partial
from pathlib import Path
from typing import Any, Callable

import torch

from metahyper.atomic import write_text_atomic
from metahyper.checkpoint import load_checkpoint
from metahyper.config import ConfigError, config_hash, to_dict
from metahyper.data import EpisodeSampler, EpisodeSet, ImageStore, fixed_episodes, load_store
from metahyper.data.presets import test_transform, train_transform
from metahyper.eval.ensemble import ProbabilityRecorder
from metahyper.eval.evaluate import evaluate, evaluate_all
from metahyper.eval.records import ResultRecord
from metahyper.meta import baselines
from metahyper.meta.distributed import world
from metahyper.meta.methods import make_method
from metahyper.meta.predictors import Predictor
from metahyper.meta.pretrain import PRETRAINED_NAME, pretrain
from metahyper.meta.train import CHECKPOINT_NAME, meta_train
from metahyper.meta.variants import Caches, predictor_rows
from metahyper.models import build_model, model_options
from metahyper.models.heads import restore_metric_scale
from metahyper.models.roles import MetaModel
from metahyper.outdir import shared_files_lock
from metahyper.pipeline.manifest import check_episode_file, record_episode_file, verify_stage
from metahyper.pipeline.stage_files import RESULTS, STAGES, stage_dir
from metahyper.pipeline.targets import absent_targets, data_episodes, fitting, write_skipped
from metahyper.progress import LOGGER
from metahyper.suite.config import SuiteConfig
from metahyper.suite.specs import DataSpec, EvaluationConfig, RunSpec

LEGACY_BN_MODE = "transductive"  # the default meta_train.maml.bn_mode had, hashed though never used
BASELINE_FACTORIES = {
    "nearest_centroid": baselines.nearest_centroid_predictor,
    "linear_head": baselines.linear_head_predictor,
    "logistic_regression": baselines.logistic_regression_predictor,
}


def log(message: str) -> None:
    """A status line (logger ``metahyper``; the command prints it on stderr, between bars)."""
    LOGGER.info(message)


def resolve_device(name: str) -> torch.device:
    """``auto`` -> this rank's CUDA device when available, else CPU; other names as given,
    checked to exist on this machine (``ConfigError`` naming the device otherwise)."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise ConfigError(f"device={name!r} is not a device name ({error}); use auto, cpu, cuda or cuda:N") from None
    count = torch.cuda.device_count() if device.type == "cuda" else 0
    if device.type == "cuda" and count == 0:
        raise ConfigError(f"device={name!r}, but torch sees no CUDA device on this machine; use device=cpu or "
                          "device=auto")
    if device.type == "cuda" and (device.index or 0) >= count:
        raise ConfigError(f"device={name!r}, but this machine has {count} CUDA device(s): cuda:0..cuda:{count - 1}")
    return device


def device_description(device: torch.device) -> str:
    """What reports print as the device."""
    return f"cuda: {torch.cuda.get_device_name(device)}" if device.type == "cuda" else str(device)


def domain_name(spec: DataSpec) -> str:
    """The source domain's name in reports: the data set (and synthetic family)."""
    return f"{spec.dataset}-{spec.family}" if spec.family else spec.dataset


# --- stage configs, folders and markers -------------------------------------------------------------


def stage_config(suite: SuiteConfig, run: str, stage: str) -> dict[str, Any]:
    """The frozen config of one stage; it names the hash of the stage before it."""
    spec, ev = suite.runs[run], suite.evaluation
    if stage == "pretrain":
        data = {k: v for k, v in to_dict(suite.data).items() if k not in ("val_split", "val_groups")}
        pretrain = {**spec.pretrain.hashed(), "way": spec.episodes.way}  # the head size, hashed where it was
        owner = spec.pretrain_from or run  # runs of one model at several shots share its pretraining
        return to_dict({"stage": stage, "run": owner, "model": spec.model, "seed": spec.seed, "augment": spec.augment,
                        "data": data, "pretrain": pretrain, **suite.compute.hashed()})
    before = config_hash(stage_config(suite, run, STAGES[STAGES.index(stage) - 1]))
    # a setting added after run folders existed enters a hash only when it is set (and changes the stage)
    eval_way = {} if spec.episodes.eval_way_or_way == spec.episodes.way else {"way": spec.episodes.eval_way}
    if stage == "meta_train":
        groups = {} if suite.data.val_groups is None else {"groups": suite.data.val_groups}
        validation = {"split": suite.data.val_split, "episodes": ev.val_episodes, "query": ev.query, "seed": ev.seed,
                      "bn_mode": ev.bn_mode, **groups, **eval_way} if suite.data.val_split else None
        method = {} if spec.method == "maml" else {"method": spec.method}
        augment = {} if spec.meta_augment is None else {"augment": spec.meta_augment}
        episodes = {k: v for k, v in set_only(spec.episodes, "groups").items() if k != "eval_way"}
        return to_dict({"stage": stage, "run": run, "after": before, "episodes": episodes, **method, **augment,
                        "meta_train": hashed_meta_train(spec, ev), "validation": validation, **suite.compute.hashed()})
    targets = {name: set_only(target, "groups", "optional") for name, target in suite.targets.items()}
    shots = {} if spec.eval_shots is None else {"shots": list(spec.eval_shots)}
    return to_dict({"stage": stage, "run": run, "after": before, "compare_with": spec.compare_with,
                    "targets": targets, "evaluation": hashed_evaluation(ev), **eval_way, **shots,
                    **suite.compute.hashed()})


def hashed_evaluation(ev: EvaluationConfig) -> dict[str, Any]:
    """The evaluation settings as the evaluate stage hashes them: without ``inner_steps_eval``
    (meta_train hashes it), without ``baseline_bn_mode`` where it changes nothing (no
    baselines) or gives what folders from before the setting did (the suite's ``bn_mode``), and
    without the later options of extra rows and files while they are off."""
    late = ("support_augment", "soft_kmeans_steps", "seed_ensemble")
    settings = {k: v for k, v in set_only(ev, *late).items() if k != "inner_steps_eval"}
    if not ev.baselines or ev.baseline_bn_mode == ev.bn_mode:
        del settings["baseline_bn_mode"]
    return settings


def eval_shots(suite: SuiteConfig, run: str) -> tuple[int, ...]:
    """The shots run ``run`` is evaluated at: its own (a per-shot run's) or ``evaluation.shots``."""
    return suite.runs[run].eval_shots or suite.evaluation.shots


def set_only(config: Any, *late: str) -> dict[str, Any]:
    """``to_dict(config)`` without each field of ``late`` while it has its default: settings
    added after run folders existed, kept out of the stage hashes at their defaults so those
    folders resume."""
    defaults = {f.name: f.default for f in dataclasses.fields(config)}
    return {k: v for k, v in to_dict(config).items() if not (k in late and v == defaults[k])}


def hashed_meta_train(spec: RunSpec, ev: EvaluationConfig) -> dict[str, Any]:
    """The meta-training settings as stage configs hash them: in the layout from before methods and
    one home per setting (``maml`` holding ``inner_steps_eval`` and ``bn_mode``), so that an
    unchanged MAML suite keeps the hashes of its run folders and resumes them."""
    settings = to_dict(spec.meta_train)
    maml = {k: v for k, v in settings["maml"].items() if not (k == "other_weights" and v == "frozen")}  # as before it
    settings["maml"] = {**maml, "inner_steps_eval": ev.inner_steps_eval, "bn_mode": LEGACY_BN_MODE}
    return settings


# --- the live objects a suite needs ------------------------------------------------------------------


@dataclasses.dataclass
class Workspace:
    """A resolved suite, its output folder and device, the data stores loaded so far, and the
    shared files (episode sets) the stage being run has read, which its manifest records
    (``metahyper.pipeline.manifest``)."""

    suite: SuiteConfig
    out: Path
    device: torch.device
    progress: bool | None = None
    stores: dict[str, ImageStore] = dataclasses.field(default_factory=dict)
    read_files: set[Path] = dataclasses.field(default_factory=set)  # shared files the current stage read

    def store(self, where: str, spec: DataSpec) -> ImageStore:
        """Load (once) the store of ``spec``; ``where`` names the config field in errors."""
        key = config_hash([spec.dataset, spec.root, spec.split, spec.reader_options()])  # what load_store reads
        if key not in self.stores:
            try:
                self.stores[key] = load_store(spec.dataset, spec.root, spec.split, **spec.reader_options())
            except (ValueError, KeyError, TypeError, FileNotFoundError) as error:
                raise ConfigError(f"suite {self.suite.name!r}: {where}: {error}") from None
        return self.stores[key]

    def source(self) -> ImageStore:
        """The source split (pretraining and meta-training)."""
        return self.store("data", self.suite.data)

    def validation(self) -> ImageStore | None:
        """The source ``val_split`` (validation during meta-training), or None."""
        data = self.suite.data
        if not data.val_split:
            return None
        return self.store("data.val_split", dataclasses.replace(data, split=data.val_split))

    def model(self, run: str, channels: int, weights: tuple[str, str] | None = None) -> MetaModel:
        """Build run ``run``'s model on the device: seeded by the run's seed, or with the
        weights of ``weights = (stage, file)`` of that run (checked against the stage's hash)."""
        spec, where = self.suite.runs[run], f"suite {self.suite.name!r}: runs.{run}.model"
        if spec.model.options.get("in_channels", channels) != channels:
            raise ConfigError(f"{where}.options.in_channels={spec.model.options['in_channels']}, but the images "
                              f"have {channels} channel(s)")
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(spec.seed)
            try:
                fits = {"in_channels": channels} if "in_channels" in model_options(spec.model.name) else {}
                model = build_model(spec.model.name, spec.episodes.way, **{**spec.model.options, **fits})
            except (ValueError, TypeError) as error:
                raise ConfigError(f"{where}: {error}") from None
        if weights is not None:
            stage, name = weights
            digest, path = config_hash(stage_config(self.suite, run, stage)), stage_dir(self.out, run, stage) / name
            if not path.is_file():
                raise ConfigError(f"{path} is missing from a finished {stage} stage; delete {path.parent} (and the "
                                  "later stages' folders of that run) to redo that stage")
            state = load_checkpoint(path, config_hash=digest)  # a damaged file: named as a damaged checkpoint
            verify_stage(self.out, path.parent, [name])  # a readable one: the very file that stage finished with
            restore_metric_scale(model, state["model"])  # a meta_baseline model's temperature
            model.load_state_dict(state["model"])
        try:
            return self.suite.compute.apply(model).to(self.device)
        except ValueError as error:
            raise ConfigError(f"suite {self.suite.name!r}: compute.{error}") from None


# --- the stages ----------------------------------------------------------------------------------------


def run_pretrain(ws: Workspace, run: str, folder: Path) -> None:
    """Supervised pretraining on every class of the source split (resumes per epoch)."""
    spec, store = ws.suite.runs[run], ws.source()
    model = ws.model(run, store.image_shape[0])
    pretrain(model, store.images, store.labels, train_transform(store.image_shape[0], spec.augment), spec.pretrain,
             folder, resume=True, config_hash=config_hash(stage_config(ws.suite, run, "pretrain")),
             progress=ws.progress, name=f"pretrain of {run}", way=spec.episodes.way,
             tensorboard=ws.suite.logging.tensorboard)


def validator(ws: Workspace, run: str) -> Callable[[MetaModel, int], dict[str, float]] | None:
    """Scores the run's method on fixed episodes of the source ``val_split`` (None without one)."""
    store, ev, spec = ws.validation(), ws.suite.evaluation, ws.suite.runs[run]
    if store is None:
        return None
    data = ws.suite.data
    episodes = fixed_episodes(store, spec.episodes.eval_way_or_way, spec.episodes.shot, ev.query, ev.val_episodes,
                              ev.seed, split_name=data.val_split, groups=data.val_groups)
    transform = test_transform(store.image_shape[0])

    def validate(model: MetaModel, iteration: int) -> dict[str, float]:
        """Mean accuracy and CI half width on the validation episodes."""
        predictor = make_method(spec.method, spec.meta_train).predictor(model, ev.inner_steps_eval, ev.bn_mode)
        result = evaluate(predictor, episodes, store, transform, ws.device, batch_tasks=ev.batch_tasks, progress=False)
        return {"accuracy": result.mean, "ci95": result.ci95}

    return validate


def run_meta_train(ws: Workspace, run: str, folder: Path) -> None:
    """The run's method from the pretrained model (resumes from ``checkpoint.pt``)."""
    spec, store = ws.suite.runs[run], ws.source()
    episodes = spec.episodes
    model = ws.model(run, store.image_shape[0], ("pretrain", PRETRAINED_NAME))
    sampler = EpisodeSampler(store, episodes.way, episodes.shot, episodes.query, episodes.seed,
                             split_name=ws.suite.data.split, groups=episodes.groups)
    augmented = train_transform(store.image_shape[0], spec.meta_augment or False)
    meta_train(model, sampler, augmented, spec.meta_train, folder,
               validate=validator(ws, run), resume=True,
               config_hash=config_hash(stage_config(ws.suite, run, "meta_train")), progress=ws.progress,
               name=f"meta-train of {run}", method=spec.method, tensorboard=ws.suite.logging.tensorboard)


def episode_set(ws: Workspace, target: str, store: ImageStore, way: int, shot: int) -> EpisodeSet:
    """The fixed episodes of ``target`` at ``way``/``shot`` (within its ``groups`` when set):
    loaded from ``OUT/episodes/`` when there (checked against ``OUT/episodes/manifest.json``, and
    drawn from this very store under this grouping), else drawn and saved there (and its SHA-256
    in that manifest) for every later run. A grouped set's file name ends in
    ``-within-<grouping>``, so two settings never share a file."""
    ev, spec = ws.suite.evaluation, ws.suite.targets[target]
    within = "" if spec.groups is None else f"-within-{spec.groups}"
    path = ws.out / "episodes" / f"{target}-{way}w{shot}s-q{ev.query}-n{ev.episodes}-seed{ev.seed}{within}.npz"
    ws.read_files.add(path)
    with shared_files_lock(ws.out):  # runs evaluated side by side draw and save each set once
        if path.is_file():
            check_episode_file(path)  # against OUT/episodes/manifest.json, not the hash the file carries
            episodes = EpisodeSet.load(path)
            if episodes.store_fingerprint != store.fingerprint() or episodes.groups != spec.groups:
                raise ConfigError(f"{path} was drawn from other data or another grouping than targets.{target} now "
                                  "holds; delete it (and the evaluate stages that used it) or use a new --out folder")
            return episodes
        episodes = fixed_episodes(store, way, shot, ev.query, ev.episodes, ev.seed, split_name=spec.split,
                                  groups=spec.groups)
        if world()[0] == 0:
            episodes.save(path)
            record_episode_file(path)
        return episodes


def predictors(ws: Workspace, run: str, channels: int) -> dict[str, Predictor]:
    """Report name -> predictor: the meta-trained model (``run``) and each baseline on the
    pretrained model (``run+method``; the baselines share one ``FeatureCache``), each with the
    rows of its evaluation options (``metahyper.meta.variants``: ``+tta``, ``+soft_kmeans``). A run
    without pretraining (``pretrain.epochs: 0``) has no pretrained features, so no baselines."""
    spec, ev = ws.suite.runs[run], ws.suite.evaluation
    model, method = ws.model(run, channels, ("meta_train", CHECKPOINT_NAME)), make_method(spec.method, spec.meta_train)
    if getattr(method, "prototypes", False):
        found = predictor_rows(run, partial(method.predictor, model, ev.inner_steps_eval, ev.bn_mode),
                               Caches.for_model(ev.support_augment), ev.soft_kmeans_steps, True)
    else:
        found = {run: method.predictor(model, ev.inner_steps_eval, ev.bn_mode)}
    if ev.baselines and spec.pretrain.epochs > 0:
        pretrained = ws.model(run, channels, ("pretrain", PRETRAINED_NAME))
        caches = Caches.for_model(ev.support_augment)
        for name, options in ev.baselines.items():
            build = partial(refined_baseline, ws.suite, name, pretrained, options)
            found |= predictor_rows(f"{run}+{name}", build, caches, ev.soft_kmeans_steps, name == "nearest_centroid")
    return found


def refined_baseline(suite: SuiteConfig, method: str, model: MetaModel, options: dict[str, Any], *,
                     refine_steps: int, features: baselines.FeatureCache | None) -> Predictor:
    """``baseline_predictor`` with ``refine_steps`` soft k-means steps (nearest_centroid only; 0: none)."""
    refined = {"refine_steps": refine_steps} if refine_steps else {}
    return baseline_predictor(suite, method, model, {**options, **refined}, features)


def baseline_predictor(suite: SuiteConfig, method: str, model: MetaModel, options: dict[str, Any],
                       cache: baselines.FeatureCache | None = None) -> Predictor:
    """A baseline's predictor (BN mode: ``evaluation.baseline_bn_mode``, unless ``options`` name
    one; features through ``cache``); bad options raise ``ConfigError`` naming the field."""
    try:
        return BASELINE_FACTORIES[method](model, **{"bn_mode": suite.evaluation.baseline_bn_mode, **options},
                                          cache=cache)
    except (TypeError, ValueError) as error:
        raise ConfigError(f"suite {suite.name!r}: evaluation.baselines.{method}: {error}") from None


def target_episodes(ws: Workspace, run: str, target: str, store: ImageStore) -> list[tuple[EpisodeSet, dict]]:
    """The episode sets ``target`` is scored on by ``run``, each with what its records add to
    their metadata: the episodes its data set defines (``metahyper.pipeline.targets.data_episodes``, with
    their ``metric``), else one drawn set per shot of the run (``eval_shots``) at its way."""
    way = ws.suite.runs[run].episodes.eval_way_or_way
    fixed = data_episodes(ws.suite, target)
    if fixed is not None:
        return [(fixed(store), {"episodes_from": ws.suite.targets[target].dataset, "metric": fixed.metric})]
    return [(episode_set(ws, target, store, way, shot), {}) for shot in eval_shots(ws.suite, run)]


def run_evaluate(ws: Workspace, run: str, folder: Path) -> None:
    """Every predictor on the fixed episodes of every target and shot -> ``results.json``, then
    ``skipped.json`` (optional targets without data, predictors that do not fit a target)."""
    spec, ev = ws.suite.runs[run], ws.suite.evaluation
    records, absent, recorder = [], absent_targets(ws.suite), ProbabilityRecorder(ev.seed_ensemble)
    notes = list(absent.values())
    for target, target_spec in ws.suite.targets.items():
        if target in absent:
            continue
        store = ws.store(f"targets.{target}", target_spec)
        transform = test_transform(store.image_shape[0])
        found = predictors(ws, run, store.image_shape[0])
        for episodes, extra in target_episodes(ws, run, target, store):
            usable, skipped = fitting(ws.suite, run, found, target, episodes.way)
            for note in skipped:
                log(f"  {note}")
            notes += skipped
            log(f"  {', '.join(usable)} on {target}, {episodes.way}-way {episodes.shot}-shot, {len(episodes)} episodes")
            status = f"{run} on {target}, {episodes.way}-way {episodes.shot}-shot"
            results = evaluate_all(recorder.wrap_all(usable), episodes, store, transform, ws.device,
                                   batch_tasks=ev.batch_tasks, progress=ws.progress, metadata=extra,
                                   status=status) if usable else {}
            records += [make_record(ws.suite, run, name, target, result) for name, result in results.items()]
            recorder.keep(list(results), episodes)
    recorder.save(folder)  # evaluation.seed_ensemble: the per-query probabilities (metahyper.eval.ensemble)
    write_text_atomic(folder / RESULTS, json.dumps([to_dict(r) for r in records], indent=1) + "\n")
    write_skipped(folder, list(absent), notes)  # after results.json: see metahyper.pipeline.targets


def make_record(suite: SuiteConfig, run: str, name: str, target: str, result: Any) -> ResultRecord:
    """The report record of ``result`` (an ``EvalResult`` with ``evaluate``'s metadata); a
    seeded run's records carry its name without the seed suffix, and the seed."""
    spec = suite.runs[run]
    compare, label = spec.compare_with, spec.report_name or run  # one name for every seed of a run
    method = name[len(run):]  # "" for the meta-trained model, "+method" for a baseline
    info = result.metadata
    unhashed = ("logging", "launcher", "paper", "provenance")  # in no config hash: how and where it ran, the paper
    run_config = {k: v for k, v in to_dict(suite.only(run)).items() if k not in unhashed}
    config = {"run": run_config, "evaluation": {k: v for k, v in info.items() if k != "bn_mode"}}
    return ResultRecord(model=f"{label}{method}", source=domain_name(suite.data), target=target, way=info["way"],
                        shot=info["shot"], bn_mode=info["bn_mode"], per_episode=result.per_episode,
                        episodes_hash=info["episodes_hash"], seed=suite.runs[run].seed, config=config,
                        baseline=f"{compare}{method}" if compare else None)


STAGE_RUNNERS = {"pretrain": run_pretrain, "meta_train": run_meta_train, "evaluate": run_evaluate}
