"""Forward+backward time of hyper models over their plain backbones, in one run.

For each backbone: the plain model, HyperResNet variant 1 and variant 2 (Babu et al., d = C_in),
and variant 1 exported back to a plain model (``export_plain``). One training step is
``model(x).logsumexp(1).mean().backward()`` in train mode (batch statistics in BN). The models
are timed interleaved (plain, v1, v2, exported, plain, v1, ...) after one warm-up step each;
each figure is the median over ``--repeats``, and every ratio divides by the plain model's median
from the same run. Goals: <= 1.25x for variants 1 and 2 at 84x84 on the CPU; 1.00x exported.
Usage:
    python benchmarks/speed/models.py [--quick] [--batch 64] [--size 84] [--threads N]
        [--backbones resnet12,wrn28_4] [--repeats 5] [--clock wall|cpu] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time

import torch

from metahyper.models import build_model, export_plain, hyperize


CLOCKS = {"wall": time.perf_counter, "cpu": time.process_time}


def step_time(model: torch.nn.Module, x: torch.Tensor, clock=time.perf_counter) -> float:
    """Seconds for one forward+backward pass on ``clock``."""
    model.zero_grad(set_to_none=True)
    start = clock()
    model(x).logsumexp(dim=1).mean().backward()
    if x.is_cuda:
        torch.cuda.synchronize()
    return clock() - start


def variants(backbone: str, device: torch.device) -> dict[str, torch.nn.Module]:
    plain = build_model(backbone, 5)
    v1 = hyperize(plain, variant=1)
    models = {"plain": plain, "hyper v1": v1, "hyper v2": hyperize(plain, variant=2), "v1 exported": export_plain(v1)}
    return {name: m.to(device).train() for name, m in models.items()}


def time_backbone(backbone: str, batch: int, size: int, repeats: int, device: torch.device,
                  clock=time.perf_counter) -> dict[str, float]:
    """Median seconds per step of each variant, timed interleaved."""
    models = variants(backbone, device)
    x = torch.randn(batch, 3, size, size, device=device)
    times: dict[str, list[float]] = {name: [] for name in models}
    for name, model in models.items():
        step_time(model, x)  # warm-up
    for _ in range(repeats):
        for name, model in models.items():
            times[name].append(step_time(model, x, clock))
    return {name: statistics.median(t) for name, t in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="batch 16, 3 repeats")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=84)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--backbones", default="resnet12,wrn28_4,resnet18,conv4")
    parser.add_argument("--clock", choices=sorted(CLOCKS), default="wall",
                        help="cpu = process CPU time: steadier on a shared machine (CPU device only)")
    parser.add_argument("--json", default=None, help="also write the figures to this file")
    args = parser.parse_args()
    if args.quick:
        args.batch, args.repeats = min(args.batch, 16), min(args.repeats, 3)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    print(f"device {device} ({platform.processor() or platform.machine()}), threads {torch.get_num_threads()}, "
          f"batch {args.batch}, {args.size}x{args.size}, median of {args.repeats}, {args.clock} clock, "
          f"torch {torch.__version__}")
    print(f"{'backbone':<10} {'plain s':>8} {'v1':>7} {'v2':>7} {'exported':>9}")
    results = {}
    for backbone in args.backbones.split(","):
        medians = time_backbone(backbone, args.batch, args.size, args.repeats, device, CLOCKS[args.clock])
        ratios = {name: t / medians["plain"] for name, t in medians.items()}
        results[backbone] = {"seconds": medians, "ratio_to_plain": ratios}
        print(f"{backbone:<10} {medians['plain']:8.3f} {ratios['hyper v1']:6.2f}x {ratios['hyper v2']:6.2f}x "
              f"{ratios['v1 exported']:8.2f}x", flush=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"args": vars(args), "results": results}, f, indent=2)


if __name__ == "__main__":
    main()
