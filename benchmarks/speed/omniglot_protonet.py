"""Where a ProtoNet step on Omniglot spends its time, and what channels-last and bfloat16 buy (issue 26).

Three measurements, one torch thread unless ``--threads``:

1. ``--profile``: loads the small1 training alphabets (Latin held out, rotations as classes) at
   ``--size`` from ``$METAHYPER_DATA/omniglot`` and runs ``--steps`` ProtoNet steps of the
   omniglot-minimal recipe (Conv4, 60-way 1-shot 5-query episodes within one alphabet, Koch et
   al.'s affine distortions, Adam) under cProfile; prints the load time, the seconds per step and
   the functions with the most own time (decoding, augmentation, forward, backward).
2. The step alone (random images of the same shape, the model built by ``--model``): float32
   NCHW, channels-last, bfloat16 features (``metahyper.models.compute``) and both, interleaved
   ``--repeats`` times; prints the median seconds per step and each variant's speed-up.
3. With ``--pretrain``, the same for a pretraining batch (64 images, ``--classes`` outputs).

A speed ratio measured on a machine shared with other jobs is only indicative; say so when you
quote one. Usage:
    python benchmarks/speed/omniglot_protonet.py --size 28 [--profile --steps 20] [--repeats 5]
        [--model conv4 --options '{"width": 128}'] [--way 60] [--pretrain]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import pstats
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from metahyper.data import EpisodeSampler, load_store
from metahyper.data.presets import train_transform
from metahyper.meta.methods import make_method, prototype_logits
from metahyper.meta.train import MetaTrainConfig, prepare_batch, transform_generator
from metahyper.models import build_model
from metahyper.models.compute import ComputeConfig

VARIANTS = {"float32": ComputeConfig(), "channels_last": ComputeConfig(channels_last=True),
            "bfloat16 features": ComputeConfig(autocast="bfloat16"),
            "channels_last + bfloat16": ComputeConfig(channels_last=True, autocast="bfloat16")}


def profile_training(size: int, steps: int, way: int) -> None:
    """Load the real training split and profile ``steps`` ProtoNet steps (item 1)."""
    root = Path(os.environ.get("METAHYPER_DATA", "../shared/data")) / "omniglot"
    profiler = cProfile.Profile()
    start = time.perf_counter()
    profiler.enable()
    store = load_store("omniglot", root, "train", rotations=True, image_size=size)
    loaded = time.perf_counter() - start
    model = build_model("conv4", 20, in_channels=1)
    sampler = EpisodeSampler(store, way, 1, 5, 0, split_name="train", groups="alphabet")
    method, transform = make_method("protonet", MetaTrainConfig()), train_transform(1, "affine")
    optimizer = torch.optim.Adam(method.outer_parameters(model), 1e-3)
    start = time.perf_counter()
    for step in range(steps):
        batch = prepare_batch(sampler.sample_for(step, 0, 1, 1), transform, transform_generator(0, step, 0),
                              torch.device("cpu"))
        optimizer.zero_grad(set_to_none=True)
        method.step(model, batch)
        optimizer.step()
    trained = time.perf_counter() - start
    profiler.disable()
    print(f"{size}px: loading and decoding the store {loaded:.1f} s; {steps} steps {trained:.1f} s "
          f"({trained / steps:.2f} s/step)")
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(10)
    print(text.getvalue().split("\n\n", 1)[-1])


def step_time(model: torch.nn.Module, x: torch.Tensor, loss_fn, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        loss_fn(model, x).backward()
        times.append(time.perf_counter() - start)
    return times


def compare_variants(args: argparse.Namespace) -> None:
    """Median step time of each compute variant (item 2, and 3 with ``--pretrain``)."""
    generator = torch.Generator().manual_seed(0)
    options = json.loads(args.options)
    labels = torch.arange(args.way)

    def episode_loss(model, x):
        logits = prototype_logits(model, x[:args.way], labels, x[args.way:])
        return F.cross_entropy(logits, labels.repeat_interleave(5))

    def pretrain_loss(model, x):
        return F.cross_entropy(model(x), torch.arange(len(x)) % args.classes)

    cases = [("episode", episode_loss, torch.randn(args.way * 6, 1, args.size, args.size, generator=generator))]
    if args.pretrain:
        batch = torch.randn(64, 1, args.size, args.size, generator=generator)
        cases.append(("pretraining batch", pretrain_loss, batch))
    for case, loss_fn, x in cases:
        models = {}
        for name, compute in VARIANTS.items():
            torch.manual_seed(0)
            models[name] = compute.apply(build_model(args.model, args.classes, in_channels=1, **options))
        times = {name: [] for name in VARIANTS}
        for _ in range(args.repeats):  # interleaved, so a change of machine load hits every variant
            for name, model in models.items():
                times[name] += step_time(model, x, loss_fn, 1)
        base = statistics.median(times["float32"])
        for name in VARIANTS:
            median = statistics.median(times[name])
            print(f"{args.size}px {args.model} {case}: {name:26s} {median:.3f} s/step, {base / median:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=28)
    parser.add_argument("--way", type=int, default=60)
    parser.add_argument("--classes", type=int, default=440)
    parser.add_argument("--model", default="conv4")
    parser.add_argument("--options", default="{}", help="model options as JSON")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--pretrain", action="store_true")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.profile:
        profile_training(args.size, args.steps, args.way)
    compare_variants(args)


if __name__ == "__main__":
    main()
