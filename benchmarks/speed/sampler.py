"""Episode sampling speed: metahyper's EpisodeSampler vs learn2learn's TaskDataset vs a memcpy floor.

5-way 5-shot 15-query episodes (100 images of 3x84x84 uint8, 2.1 MB) from an in-memory store of
64 classes x 600 images (775 MiB), as in MiniImageNet's train split. All figures come from one
run on the same store:
  * ours: ``EpisodeSampler.sample(1)`` (and variants: reused buffer, meta-batch of 4, + float)
  * learn2learn: ``TaskDataset(MetaDataset(TensorDataset(images, labels)),
    [NWays(5), KShots(20), LoadData, RemapLabels]).sample()`` on the same uint8 tensor
  * floor: bytes per episode / bandwidth of a same-size memcpy (``dst.copy_(src)``, cache-warm),
    and a colder one that copies 2.1 MB blocks from random places in the store.
  * on ``--device`` (the training device), meta-batches of 4 made ready for the model: sampled
    on the CPU, moved, then transformed there (to float, random flip from a CPU generator,
    normalise); and the same from a store resident on the device (``ImageStore.to``), gathered
    there. Each call ends with a device synchronisation.
Each rate is the median of ``--repeats`` timed runs, with one torch thread unless ``--threads``.
Usage:
    python benchmarks/speed/sampler.py [--quick] [--threads N] [--repeats R] [--device cuda]
        [--per-class 600] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from typing import Callable

import torch

from metahyper.data import EpisodeSampler, ImageStore, transforms

WAY, SHOT, QUERY, CLASSES, SIDE, META_BATCH = 5, 5, 15, 64, 84, 4


def rate(fn: Callable[[], object], calls: int, repeats: int, per_call: int = 1) -> float:
    """Median episodes per second of ``fn`` (``per_call`` episodes each) over ``repeats`` runs."""
    fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        runs.append(calls * per_call / (time.perf_counter() - start))
    return statistics.median(runs)


def make_store(per_class: int) -> ImageStore:
    generator = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (CLASSES * per_class, 3, SIDE, SIDE), dtype=torch.uint8, generator=generator)
    labels = torch.arange(CLASSES).repeat_interleave(per_class)
    return ImageStore(images, labels, [f"class{k}" for k in range(CLASSES)], "benchmark")


def ours(store: ImageStore, calls: int, repeats: int) -> dict[str, float]:
    plain = EpisodeSampler(store, WAY, SHOT, QUERY, seed=0)
    reused = EpisodeSampler(store, WAY, SHOT, QUERY, seed=0, reuse_buffer=True)
    return {
        "metahyper sample(1)": rate(lambda: plain.sample(1), calls, repeats),
        "metahyper sample(1), reuse_buffer": rate(lambda: reused.sample(1), calls, repeats),
        "metahyper sample(4) (meta-batch), per episode": rate(lambda: plain.sample(4), calls // 4, repeats, 4),
        "metahyper sample(1) + to_float": rate(
            lambda: plain.sample(1).map_images(transforms.to_float), calls, repeats),
        "metahyper episode indices only": rate(lambda: plain.episode_rows(plain.next_index), calls, repeats),
    }


def on_device(store: ImageStore, device: torch.device, calls: int, repeats: int) -> dict[str, float]:
    """Episodes/s of meta-batches made ready on ``device``: moved then transformed, or gathered there."""
    ready = transforms.Compose([transforms.ToFloat(), transforms.RandomHFlip(),
                                transforms.Normalize([0.5] * 3, [0.25] * 3)])
    generator = torch.Generator().manual_seed(0)
    samplers = {"moved": EpisodeSampler(store, WAY, SHOT, QUERY, seed=0),
                "resident": EpisodeSampler(store.to(device), WAY, SHOT, QUERY, seed=0)}

    def step(sampler: EpisodeSampler) -> None:
        sampler.sample(META_BATCH).to(device).map_images(lambda x: ready(x, generator))
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    return {
        f"sample({META_BATCH}) -> {device.type} + transform there, per episode":
            rate(lambda: step(samplers["moved"]), calls // META_BATCH, repeats, META_BATCH),
        f"store on {device.type}: sample({META_BATCH}) + transform, per episode":
            rate(lambda: step(samplers["resident"]), calls // META_BATCH, repeats, META_BATCH),
    }


def learn2learn_rate(store: ImageStore, calls: int, repeats: int) -> float | None:
    try:
        import learn2learn as l2l
    except ImportError:
        return None
    dataset = torch.utils.data.TensorDataset(store.images, store.labels)
    per_class = len(store) // CLASSES
    labels_to_indices = {k: list(range(k * per_class, (k + 1) * per_class)) for k in range(CLASSES)}
    meta = l2l.data.MetaDataset(dataset, labels_to_indices=labels_to_indices)
    taskset = l2l.data.TaskDataset(meta, task_transforms=[
        l2l.data.transforms.NWays(meta, WAY), l2l.data.transforms.KShots(meta, SHOT + QUERY),
        l2l.data.transforms.LoadData(meta), l2l.data.transforms.RemapLabels(meta)], num_tasks=-1)
    return rate(taskset.sample, calls, repeats)


def floors(store: ImageStore, calls: int, repeats: int) -> dict[str, float]:
    """Episodes/s if an episode cost only a memcpy of its bytes."""
    nbytes = WAY * (SHOT + QUERY) * store.images[0].numel()
    src, dst = torch.empty(nbytes, dtype=torch.uint8).fill_(1), torch.empty(nbytes, dtype=torch.uint8)
    flat = store.images.view(-1)
    starts = torch.randint(0, flat.numel() - nbytes, (calls + 1,), generator=torch.Generator().manual_seed(1))
    position = iter(starts.tolist() * (repeats + 1))
    return {
        "floor: same-size memcpy (cache-warm)": rate(lambda: dst.copy_(src), calls, repeats),
        "floor: memcpy from random store blocks": rate(
            lambda: dst.copy_(flat[(p := next(position)) : p + nbytes]), calls, repeats),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer timed calls (a smoke test)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch intra-op threads (default 1: a 2 MB gather gains little from threads, and "
                             "multi-threaded timings on a shared machine measure contention)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu",
                        help="where the model trains: the meta-batch rows are timed up to there")
    parser.add_argument("--per-class", type=int, default=600, help="images per class in the store (64 classes)")
    parser.add_argument("--json", help="also write the rates (episodes/s) to this file")
    args = parser.parse_args()
    if args.per_class < SHOT + QUERY:
        parser.error(f"--per-class must be >= shot+query = {SHOT + QUERY}, got {args.per_class}")
    torch.set_num_threads(args.threads)
    calls = 100 if args.quick else 1000
    repeats = 3 if args.quick else args.repeats
    store = make_store(args.per_class)
    results = ours(store, calls, repeats) | on_device(store, torch.device(args.device), calls, repeats)
    theirs = learn2learn_rate(store, max(calls // 20, 10), repeats)
    floor = floors(store, calls, repeats)
    print(f"5-way {SHOT}-shot {QUERY}-query, {CLASSES}x{args.per_class} images 3x{SIDE}x{SIDE} uint8, "
          f"torch threads {torch.get_num_threads()}, device {args.device}")
    warm = floor["floor: same-size memcpy (cache-warm)"]
    print(f"{'':48s} {'episodes/s':>11s} {'ms/ep':>7s} {'x l2l':>7s} {'floor/this':>10s}")
    rows = {**results, **({"learn2learn TaskDataset.sample()": theirs} if theirs else {}), **floor}
    for name, value in rows.items():
        vs_l2l = f"{value / theirs:7.1f}" if theirs else "    n/a"
        print(f"{name:48s} {value:11.1f} {1000 / value:7.3f} {vs_l2l} {warm / value:10.2f}")
    if theirs is None:
        print("learn2learn not installed: no peer figure (bash scripts/install_learn2learn.sh)")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"args": vars(args), "episodes_per_second": rows}, handle, indent=1)


if __name__ == "__main__":
    main()
