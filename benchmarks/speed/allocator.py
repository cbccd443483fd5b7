"""What keeping freed memory in the heap (``metahyper.allocator.keep_freed_memory``) buys a CPU
training step, and what it costs in resident memory (issue 26: the 56-pixel runs spent as much
CPU time in the kernel as in torch).

    metahyper bench allocator [--sizes 28,56,84] [--way 60] [--steps 10] [--repeats 2]
    (or: python benchmarks/speed/allocator.py ...)

Each measurement is a new process (the setting is process-wide) running the omniglot-minimal
ProtoNet step on random images (Conv4 in channels-last, 60-way 1-shot 5-query episodes at
``--size`` pixels, one torch thread): two warm-up steps, then ``--steps`` timed ones. Printed per
size and mode (glibc's ``default``, ``keep``): seconds per step (wall), CPU seconds per step in
user and kernel mode, minor page faults per step, the peak resident memory, and keep's speed-up
and memory ratio against default. The modes alternate ``--repeats`` times and each keeps its
fastest repeat. Run it on a quiet machine: a loaded one stretches the wall times.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

MODES = ("default", "keep")


def measure(size: int, way: int, steps: int, mode: str) -> dict[str, float]:
    """One process's figures (this script run with ``--child``)."""
    import torch
    import torch.nn.functional as F

    from metahyper.allocator import keep_freed_memory
    from metahyper.meta.methods import prototype_logits
    from metahyper.models import build_model
    from metahyper.models.compute import ComputeConfig

    if mode == "keep" and not keep_freed_memory():
        raise SystemExit("keep_freed_memory did nothing here (not glibc, or MALLOC_* / LD_PRELOAD set)")
    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = ComputeConfig(channels_last=True).apply(build_model("conv4", way, in_channels=1))
    images, labels = torch.randn(way * 6, 1, size, size), torch.arange(way)

    def step() -> None:
        model.zero_grad(set_to_none=True)
        logits = prototype_logits(model, images[:way], labels, images[way:])
        F.cross_entropy(logits, labels.repeat_interleave(5)).backward()

    for _ in range(2):
        step()
    before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
    for _ in range(steps):
        step()
    wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    return {"wall": wall / steps, "user": (after.ru_utime - before.ru_utime) / steps,
            "kernel": (after.ru_stime - before.ru_stime) / steps,
            "faults": (after.ru_minflt - before.ru_minflt) / steps, "peak_mb": after.ru_maxrss / 1024}


def in_new_process(size: int, way: int, steps: int, mode: str) -> dict[str, float]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    result = subprocess.run([sys.executable, __file__, "--child", mode, "--sizes", str(size), "--way", str(way),
                             "--steps", str(steps)], capture_output=True, text=True, check=True,
                            env={**environment, "OMP_NUM_THREADS": "1"})
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="28,56,84", help="image sides, comma-separated")
    parser.add_argument("--way", type=int, default=60)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--child", choices=MODES, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    if args.child:
        print(json.dumps(measure(sizes[0], args.way, args.steps, args.child)))
        return
    print("size | mode | s/step | user s/step | kernel s/step | faults/step | peak MB | speed-up | memory")
    for size in sizes:
        best: dict[str, dict[str, float]] = {}
        for repeat in range(args.repeats):
            for mode in MODES if repeat % 2 == 0 else MODES[::-1]:
                figures = in_new_process(size, args.way, args.steps, mode)
                if mode not in best or figures["wall"] < best[mode]["wall"]:
                    best[mode] = figures
        for mode in MODES:
            f, base = best[mode], best["default"]
            print(f"{size} | {mode} | {f['wall']:.3f} | {f['user']:.3f} | {f['kernel']:.3f} | {f['faults']:.0f} | "
                  f"{f['peak_mb']:.0f} | {base['wall'] / f['wall']:.2f}x | {f['peak_mb'] / base['peak_mb']:.2f}x")


if __name__ == "__main__":
    main()
