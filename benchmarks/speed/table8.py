"""Time the Table-8 suite at full size on synthetic data and extrapolate to the suite's full length.

    python benchmarks/speed/table8.py [--device cuda] [--runs wrn28_4 hyper_wrn28_4]
        [--pretrain-steps 10] [--iterations 6] [--episodes 16] [--json out.json] [key=value ...]

The suite is ``benchmarks/suites/table8-fc100-to-miniimagenet.yaml`` (``key=value`` overrides
as for ``metahyper run``); its models, batch sizes and MAML settings are used as they are, on
random uint8 32x32 images in place of FC100 (the speed does not depend on the pixels). Per timed
run, after one warm-up of each part, on the package's own code paths:

* pretraining: the shared ``train_epoch`` of ``metahyper.train.supervised`` (SGD, the output-norm penalty for hyper models,
  pad-crop/flip augmentation) over ``--pretrain-steps`` batches after 2 -> seconds per step; the suite
  needs ceil(60 x 600 / batch size) steps per epoch (FC100 train: 60 CIFAR-100 classes of 600).
* meta-training: ``meta_train`` (episode sampler, transform, MAML, Adam, a checkpoint) for
  ``--iterations`` iterations, resumed after the warm-up ones -> seconds per iteration.
* evaluation: ``evaluate`` with the MAML predictor on ``--episodes`` episodes per shot ->
  seconds per episode; the suite scores ``evaluation.episodes`` per shot, plus
  ``val_episodes`` validation episodes every ``validate_every`` iterations. The baselines
  (nearest centroid, logistic regression on pretrained features) are not timed.

Runs not timed are counted at the time of the slowest timed run of their kind (hyper or plain):
for the default pair, WRN-16-4 and Hyper-WRN-16-4 at the 28-4 times, an upper bound.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import tempfile
import time
import torch

from metahyper.atomic import write_text_atomic
from metahyper.data import EpisodeSampler, ImageStore, fixed_episodes
from metahyper.data.presets import test_transform, train_transform
from metahyper.data.splits import split_info
from metahyper.eval.evaluate import evaluate
from metahyper.meta.predictors import maml_predictor
from metahyper.meta.train import meta_train
from metahyper.models import build_model
from metahyper.models.roles import ParamRole
from metahyper.suite.config import SuiteConfig, load_suite
from metahyper.suite.specs import RunSpec
from metahyper.train.supervised import EpochGenerators, build_optimizer, train_epoch

SUITE = "table8-fc100-to-miniimagenet"
FC100_TRAIN_IMAGES = len(split_info("fc100")["fine_ids"]["train"]) * 600


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn, device: torch.device) -> float:
    """Wall seconds of ``fn()``, the device synchronised before and after."""
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def random_store(images: int, classes: int, size: int) -> ImageStore:
    """``images`` random uint8 3 x size x size images, labels cycling through ``classes``."""
    generator = torch.Generator().manual_seed(0)
    pixels = torch.randint(0, 256, (images, 3, size, size), dtype=torch.uint8, generator=generator)
    labels = torch.arange(images) % classes
    return ImageStore(pixels, labels, [f"class{k}" for k in range(classes)], "random")


def build(spec: RunSpec, device: torch.device):
    torch.manual_seed(spec.seed)
    return build_model(spec.model.name, spec.episodes.way, **spec.model.options).to(device)


def pretrain_step_seconds(spec: RunSpec, store: ImageStore, steps: int, device: torch.device) -> float:
    """Seconds per pretraining step (batch ``spec.pretrain.batch_size``), after a 2-step warm-up."""
    model, cfg = build(spec, device), spec.pretrain
    model.reset_classifier(store.num_classes)
    optimizer = build_optimizer(model, cfg.optimizer, cfg.lr, cfg.weight_decay, cfg.momentum)
    transform, batch = train_transform(3, spec.augment), cfg.batch_size

    def epoch(batches: int, number: int) -> None:
        first = ImageStore(store.images[: batches * batch], store.labels[: batches * batch], store.class_names)
        train_epoch(model, optimizer, first, transform, batch, cfg.output_norm_penalty,
                    EpochGenerators.keyed("table8", cfg.seed, number))

    epoch(2, 1)
    return timed(lambda: epoch(steps, 2), device) / steps


def meta_iteration_seconds(spec: RunSpec, store: ImageStore, iterations: int, device: torch.device) -> float:
    """Seconds per meta-training iteration: ``meta_train`` resumed after 2 warm-up iterations."""
    model, episodes = build(spec, device), spec.episodes
    sampler = EpisodeSampler(store, episodes.way, episodes.shot, episodes.query, episodes.seed)
    transform = train_transform(3, False)
    never = 10 ** 9
    cfg = dataclasses.replace(spec.meta_train, iterations=2, validate_every=never, checkpoint_every=never)
    with tempfile.TemporaryDirectory() as folder:
        meta_train(model, sampler, transform, cfg, folder, config_hash="timing", progress=False)
        longer = dataclasses.replace(cfg, iterations=2 + iterations)
        seconds = timed(lambda: meta_train(model, sampler, transform, longer, folder, resume=True,
                                           config_hash="timing", progress=False), device)
    return seconds / iterations


def episode_seconds(spec: RunSpec, suite: SuiteConfig, store: ImageStore, shot: int, episodes: int,
                    device: torch.device) -> float:
    """Seconds per evaluation episode (MAML, ``inner_steps_eval`` steps) at ``shot`` shots."""
    model, ev = build(spec, device), suite.evaluation
    predictor = maml_predictor(model, spec.meta_train.maml, ev.inner_steps_eval, ev.bn_mode)
    way, transform = spec.episodes.way, test_transform(3)
    warm = fixed_episodes(store, way, shot, ev.query, n=2, seed=1)
    evaluate(predictor, warm, store, transform, device, batch_tasks=ev.batch_tasks, progress=False)
    timed_set = fixed_episodes(store, way, shot, ev.query, n=episodes, seed=ev.seed)
    seconds = timed(lambda: evaluate(predictor, timed_set, store, transform, device, batch_tasks=ev.batch_tasks,
                                     progress=False), device)
    return seconds / episodes


def time_run(suite: SuiteConfig, name: str, store: ImageStore, args: argparse.Namespace) -> dict:
    """Measured unit times of run ``name`` and their extrapolation to the suite's lengths (seconds)."""
    spec, ev, device = suite.runs[name], suite.evaluation, torch.device(args.device)
    meta = spec.meta_train
    units = {"pretrain_step": pretrain_step_seconds(spec, store, args.pretrain_steps, device),
             "meta_iteration": meta_iteration_seconds(spec, store, args.iterations, device)}
    for shot in sorted({*ev.shots, spec.episodes.shot}):
        units[f"episode_{shot}shot"] = episode_seconds(spec, suite, store, shot, args.episodes, device)
    steps = math.ceil(FC100_TRAIN_IMAGES / spec.pretrain.batch_size) * spec.pretrain.epochs
    validations = (meta.iterations // meta.validate_every) * ev.val_episodes
    full = {"pretrain": units["pretrain_step"] * steps,
            "meta_train": units["meta_iteration"] * meta.iterations,
            "validation": units[f"episode_{spec.episodes.shot}shot"] * validations,
            "evaluation": sum(units[f"episode_{s}shot"] for s in ev.shots) * ev.episodes * len(suite.targets)}
    counts = {"pretrain_steps": steps, "meta_iterations": meta.iterations, "validation_episodes": validations,
              "evaluation_episodes": ev.episodes * len(ev.shots) * len(suite.targets)}
    return {"model": spec.model.name, "hyper": is_hyper(spec), "unit_seconds": units, "counts": counts,
            "full_seconds": full, "total_seconds": sum(full.values())}


def is_hyper(spec: RunSpec) -> bool:
    model = build_model(spec.model.name, spec.episodes.way, **spec.model.options)
    return bool(model.params_by_role()[ParamRole.HYPERNET])


def suite_estimate(suite: SuiteConfig, timed_runs: dict[str, dict]) -> dict[str, dict]:
    """Seconds of every run of the suite: timed, or the slowest timed run of its kind."""
    estimate = {}
    for name, spec in suite.runs.items():
        if name in timed_runs:
            estimate[name] = {"seconds": timed_runs[name]["total_seconds"], "from": "timed"}
            continue
        kind = [r for r, t in timed_runs.items() if t["hyper"] == is_hyper(spec)] or list(timed_runs)
        slowest = max(kind, key=lambda r: timed_runs[r]["total_seconds"])
        estimate[name] = {"seconds": timed_runs[slowest]["total_seconds"], "from": f"upper bound: {slowest}"}
    return estimate


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="suite overrides, key=value (as for metahyper run)")
    parser.add_argument("--suite", default=SUITE)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--runs", nargs="+", default=["wrn28_4", "hyper_wrn28_4"], help="the suite's runs to time")
    parser.add_argument("--pretrain-steps", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=6, help="timed meta-training iterations")
    parser.add_argument("--episodes", type=int, default=16, help="timed evaluation episodes per shot")
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()
    for name in ("pretrain_steps", "iterations", "episodes"):
        if getattr(args, name) < 2:
            parser.error(f"--{name.replace('_', '-')} must be >= 2, got {getattr(args, name)}")
    args.suite_config = load_suite(args.suite, args.overrides)
    unknown = [r for r in args.runs if r not in args.suite_config.runs]
    if unknown:
        parser.error(f"--runs: {unknown[0]!r} is not a run of {args.suite}; its runs: {', '.join(args.suite_config.runs)}")
    return args


def report(suite: SuiteConfig, runs: dict[str, dict], estimate: dict[str, dict]) -> None:
    print("| run | model | pretrain s/step | meta s/iter | eval s/episode (1-shot) | full run h |")
    print("|---|---|---|---|---|---|")
    for name, t in runs.items():
        units = t["unit_seconds"]
        print(f"| {name} | {t['model']} | {units['pretrain_step']:.4f} | {units['meta_iteration']:.4f} | "
              f"{units.get('episode_1shot', float('nan')):.4f} | {t['total_seconds'] / 3600:.2f} |")
    for name, e in estimate.items():
        print(f"suite run {name}: {e['seconds'] / 3600:.2f} h ({e['from']})")
    print(f"suite {suite.name}: {sum(e['seconds'] for e in estimate.values()) / 3600:.2f} device-hours")


def save(args: argparse.Namespace, runs: dict[str, dict], estimate: dict[str, dict]) -> None:
    """The figures so far as JSON (after every run, so a run cut short still leaves the earlier ones)."""
    settings = {k: getattr(args, k) for k in ("pretrain_steps", "iterations", "episodes", "overrides")}
    out = {"suite": args.suite_config.name, "device": args.device, "timed": runs, "suite_runs": estimate,
           "suite_seconds": sum(e["seconds"] for e in estimate.values()), "settings": settings}
    write_text_atomic(args.json, json.dumps(out, indent=1))


def main() -> None:
    args = parse_args()
    suite = args.suite_config
    batch = max(suite.runs[r].pretrain.batch_size for r in args.runs)
    store = random_store(max(args.pretrain_steps * batch, 60 * 20), 60, 32)
    print(f"{suite.name} on {args.device} (torch {torch.__version__}): {args.pretrain_steps} pretraining steps, "
          f"{args.iterations} meta-iterations, {args.episodes} episodes per shot timed per run")
    runs: dict[str, dict] = {}
    for name in args.runs:
        runs[name] = time_run(suite, name, store, args)
        if args.json:
            save(args, runs, suite_estimate(suite, runs))
    report(suite, runs, suite_estimate(suite, runs))


if __name__ == "__main__":
    main()
