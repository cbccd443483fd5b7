"""CPU seconds of the few-shot baseline heads: the old per-episode solvers vs the batched ones.

    python benchmarks/speed/baselines.py [--episodes 64] [--shots 1,5] [--repeats 3] [--json out.json]

A fixed set of 20-way episodes (15 queries per class) on synthetic 64-dimensional features (the
size of Conv4's features; class means N(0, 1), within-class noise N(0, 1.5^2), ReLU-ed like conv
features: about 60% 1-shot accuracy, near the Omniglot suite's) is classified by each head of ``metahyper.meta.baselines``, given the features (feature
extraction is the same in both and left out):

* old: one episode at a time, as before batching; logistic regression in float64 by
  ``torch.optim.LBFGS`` (strong-Wolfe line search, gradient tolerance 1e-9, 1000 iterations),
  the solver the package used until the batched one replaced it;
* new: ``--batch-tasks`` episodes per call (the suites' ``evaluation.batch_tasks``), logistic
  regression by the batched float32 L-BFGS.

Each head's per-episode accuracies are compared between old and new (the number of episodes
that differ is printed). One torch thread and the process CPU-time clock, as the other speed
benchmarks: quote the ratios. Methods take turns within every repeat, after one untimed warm-up
call each; the median is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor

from metahyper.meta.baselines import centroid_logits, linear_head_logits, logistic_objective, logistic_regression_logits

WAY, QUERY, DIM, NOISE = 20, 15, 64, 1.5
Head = Callable[[Tensor, Tensor, Tensor, int], Tensor]


def make_episodes(n: int, shot: int, seed: int = 0) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """n episodes: support features [n, WAY*shot, DIM], labels, query features [n, WAY*QUERY, DIM], labels."""
    gen = torch.Generator().manual_seed(seed)
    means = torch.randn(n, WAY, DIM, generator=gen)

    def draw(per_class: int) -> tuple[Tensor, Tensor]:
        labels = torch.arange(WAY).repeat_interleave(per_class).expand(n, -1).contiguous()
        noise = NOISE * torch.randn(n, WAY * per_class, DIM, generator=gen)
        return torch.relu(torch.gather(means, 1, labels[..., None].expand(-1, -1, DIM)) + noise), labels

    (sx, sy), (qx, qy) = draw(shot), draw(QUERY)
    return sx, sy, qx, qy


def legacy_logistic_logits(support_f: Tensor, support_y: Tensor, query_f: Tensor, way: int) -> Tensor:
    """The package's former solver, one episode: float64 ``torch.optim.LBFGS`` on normalised features."""
    x = F.normalize(support_f.double(), dim=-1)
    weight = x.new_zeros(way, x.shape[1], requires_grad=True)
    bias = x.new_zeros(way, requires_grad=True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=1000, tolerance_grad=1e-9,
                                  tolerance_change=1e-14, history_size=20, line_search_fn="strong_wolfe")

    def closure() -> Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = logistic_objective(weight, bias, x, support_y, 1.0)
        loss.backward()
        return loss

    with torch.enable_grad():
        optimizer.step(closure)
    return (F.normalize(query_f.double(), dim=-1) @ weight.detach().T + bias.detach()).float()


def per_episode(head: Head) -> Head:
    """Run ``head`` one episode at a time over stacked episodes."""
    return lambda sx, sy, qx, way: torch.stack([head(*task, way) for task in zip(sx, sy, qx)])


def in_batches(head: Head, size: int) -> Head:
    """Run ``head`` on ``size`` stacked episodes per call."""
    return lambda sx, sy, qx, way: torch.cat([head(sx[i:i + size], sy[i:i + size], qx[i:i + size], way)
                                              for i in range(0, len(sx), size)])


def methods(batch_tasks: int) -> dict[str, tuple[Head, Head]]:
    """Head name -> (old, new)."""
    return {"nearest_centroid": (per_episode(centroid_logits), in_batches(centroid_logits, batch_tasks)),
            "linear_head": (per_episode(linear_head_logits), in_batches(linear_head_logits, batch_tasks)),
            "logistic_regression": (per_episode(legacy_logistic_logits),
                                    in_batches(logistic_regression_logits, batch_tasks))}


def measure(old: Head, new: Head, episodes: tuple[Tensor, ...], repeats: int) -> dict[str, float]:
    """Median CPU seconds of old and new (taking turns), and how many episodes' accuracies differ."""
    sx, sy, qx, qy = episodes
    times: dict[str, list[float]] = {"old": [], "new": []}
    accuracy = {name: (head(sx[:2], sy[:2], qx[:2], WAY)) for name, head in (("old", old), ("new", new))}  # warm-up
    for _ in range(repeats):
        for name, head in (("old", old), ("new", new)):
            start = time.process_time()
            logits = head(sx, sy, qx, WAY)
            times[name].append(time.process_time() - start)
            accuracy[name] = (logits.argmax(dim=-1) == qy).double().mean(dim=-1)
    old_s, new_s = statistics.median(times["old"]), statistics.median(times["new"])
    return {"old_s": old_s, "new_s": new_s, "speedup": old_s / new_s,
            "episodes_differing": int((accuracy["old"] != accuracy["new"]).sum()),
            "old_mean": float(accuracy["old"].mean()), "new_mean": float(accuracy["new"].mean())}


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--episodes", type=int, default=64, help="episodes per shot setting")
    parser.add_argument("--shots", default="1,5", help="comma-separated shots")
    parser.add_argument("--batch-tasks", type=int, default=16, help="episodes per batched call")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    if args.episodes < 1 or args.batch_tasks < 1 or args.repeats < 1 or args.threads < 1:
        parser.error("--episodes, --batch-tasks, --repeats and --threads must be >= 1")
    try:
        args.shots = [int(s) for s in args.shots.split(",")]
    except ValueError:
        parser.error(f"--shots must be comma-separated integers, got {args.shots!r}")
    return args


def main() -> None:
    args = parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    print(f"{WAY}-way, {QUERY} queries, {args.episodes} episodes, CPU seconds (median of {args.repeats})")
    print(f"{'head':<20} {'shot':>4} {'old s':>8} {'new s':>8} {'speedup':>8} {'differ':>6} {'old acc':>8} {'new acc':>8}")
    for shot in args.shots:
        episodes = make_episodes(args.episodes, shot)
        for name, (old, new) in methods(args.batch_tasks).items():
            row = {"head": name, "shot": shot, **measure(old, new, episodes, args.repeats)}
            rows.append(row)
            print(f"{name:<20} {shot:>4} {row['old_s']:>8.3f} {row['new_s']:>8.3f} {row['speedup']:>7.1f}x "
                  f"{row['episodes_differing']:>6} {100 * row['old_mean']:>8.2f} {100 * row['new_mean']:>8.2f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(rows, handle, indent=1)


if __name__ == "__main__":
    main()
