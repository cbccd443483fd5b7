"""Seconds per MAML meta-iteration: metahyper (loop, vmap) vs learn2learn vs higher vs a floor.

    python benchmarks/speed/maml.py [--quick] [--device cpu|cuda] [--json out.json]

Same model, tasks and seeds for every method: 5-way 1-shot, 15 queries per class, meta-batch 4,
5 inner steps (lr 0.01), first and second order. One meta-iteration = adapt to every task and
accumulate the meta-gradient (the outer optimiser step, identical for all, is left out). Each
time is reported as a ratio to the fastest peer (learn2learn, higher) and to a floor: the same
number of plain forward+backward passes over the same images (per task: ``steps`` on the
support set and one on the queries). Peers adapt every parameter, so metahyper runs like for
like (``all roles``); for hyper models the role-split default is shown too, and the peers are
skipped (they cannot clone/patch convs that reference a shared hypernetwork). Models come from
``metahyper.models.build_model``; missing models or peers are skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from metahyper.data.episodes import TaskBatch
from metahyper.meta.maml import MamlConfig, meta_backward
from metahyper.meta.peers import higher_maml, learn2learn_maml
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import ParamRole

WAY, SHOT, QUERY, TASKS, STEPS, LR = 5, 1, 15, 4, 5, 0.01
FULL = [("conv4", 84), ("conv4", 32), ("resnet12", 84), ("hyper_resnet12", 84)]
QUICK = [("conv4", 32), ("conv4", 84), ("hyper_conv4", 84)]
ALL_ROLES = tuple(r.value for r in ParamRole)
Step = Callable[[torch.nn.Module, TaskBatch, bool], None]


@dataclass(frozen=True)
class Row:
    model: str
    size: int
    order: str
    method: str
    seconds: float
    vs_peer: float | None
    vs_floor: float


def make_batch(size: int, device: torch.device, seed: int = 0) -> TaskBatch:
    """Random float images: support [T, W*S, 3, size, size], query [T, W*Q, 3, size, size]."""
    gen = torch.Generator().manual_seed(seed)
    support = torch.randn(TASKS, WAY * SHOT, 3, size, size, generator=gen)
    query = torch.randn(TASKS, WAY * QUERY, 3, size, size, generator=gen)
    labels = [torch.arange(WAY).repeat_interleave(n).expand(TASKS, -1).contiguous() for n in (SHOT, QUERY)]
    return TaskBatch(support.to(device), labels[0].to(device), query.to(device), labels[1].to(device))


def floor_step(model, batch: TaskBatch, first_order: bool) -> None:
    """The same number of plain forward+backward passes over the same images."""
    with norm_statistics(model, "batch"):
        for t in range(TASKS):
            for _ in range(STEPS):
                F.cross_entropy(model(batch.support_x[t]), batch.support_y[t]).backward()
            F.cross_entropy(model(batch.query_x[t]), batch.query_y[t]).backward()


def metahyper_step(backend: str, roles: tuple[str, ...] | None) -> Step:
    def step(model, batch: TaskBatch, first_order: bool) -> None:
        cfg = MamlConfig(inner_roles=roles, outer_roles=roles, inner_steps=STEPS, inner_lr=LR,
                         first_order=first_order, backend=backend)
        meta_backward(model, batch, cfg)

    return step


def learn2learn_step(model, batch: TaskBatch, first_order: bool) -> None:
    learn2learn_maml(model, batch, STEPS, LR, first_order)


def higher_step(model, batch: TaskBatch, first_order: bool) -> None:
    higher_maml(model, batch, STEPS, LR, first_order)


def available_peers() -> dict[str, Step]:
    """The peers that import here."""
    peers = {}
    for name, module, step in (("learn2learn", "learn2learn", learn2learn_step), ("higher", "higher", higher_step)):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                __import__(module)
        except ImportError:
            print(f"note: {name} is not installed; skipped")
            continue
        peers[name] = step
    return peers


def time_methods(methods: dict[str, Step], model, batch: TaskBatch, first_order: bool, args) -> dict[str, float]:
    """Median seconds per call of each method; methods take turns within every repeat, so a
    change of machine load hits all of them alike. ``args.clock``: ``wall`` or ``cpu``
    (process CPU time: steadier on a shared machine with ``--threads 1``)."""
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {name: [] for name in methods}
    for i in range(args.warmup + args.repeats):
        for name, step in methods.items():
            model.zero_grad(set_to_none=True)
            _sync(batch)
            start = clock()
            step(model, batch, first_order)
            _sync(batch)
            if i >= args.warmup:
                times[name].append(clock() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _sync(batch: TaskBatch) -> None:
    if batch.support_x.is_cuda:
        torch.cuda.synchronize()


def methods_for(model) -> dict[str, Step]:
    """metahyper's paths (like for like, plus the role split for hyper models) and the peers."""
    hyper = bool(model.params_by_role()[ParamRole.HYPERNET])
    methods = {"floor": floor_step, "metahyper loop": metahyper_step("loop", ALL_ROLES),
               "metahyper vmap": metahyper_step("vmap", ALL_ROLES)}
    if not hyper:
        return methods | available_peers()
    methods["metahyper loop (roles)"] = metahyper_step("loop", None)
    methods["metahyper vmap (roles)"] = metahyper_step("vmap", None)
    print("note: peers skipped on hyper models: learn2learn's clone() and higher's monkeypatch do not follow"
          " the generated convs' references to the shared hypernetworks (an unused-parameter error and an"
          " AttributeError); ratios to the floor only")
    return methods


def run_setup(name: str, size: int, args: argparse.Namespace) -> list[Row]:
    """Time every method on one model and image size, first and second order."""
    from metahyper.models import build_model

    torch.manual_seed(0)
    model = build_model(name, num_classes=WAY).to(args.device)
    batch, rows = make_batch(size, torch.device(args.device)), []
    methods = {m: step for m, step in methods_for(model).items() if m not in args.skip}
    for order in args.orders:
        first_order = order == "first"
        times = time_methods(methods, model, batch, first_order, args)
        peers = [t for m, t in times.items() if m in ("learn2learn", "higher")]
        best_peer = min(peers) if peers else None
        for method, seconds in times.items():
            vs_peer = None if best_peer is None else seconds / best_peer
            rows.append(Row(name, size, order, method, seconds, vs_peer, seconds / times["floor"]))
            print(_format(rows[-1]), flush=True)
    return rows


def _format(row: Row) -> str:
    peer = "-" if row.vs_peer is None else f"{row.vs_peer:.2f}"
    cells = (row.model, row.size, row.order, row.method, f"{row.seconds:.4f}", peer, f"{row.vs_floor:.2f}")
    return "| " + " | ".join(map(str, cells)) + " |"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="Conv4 32/84 and HyperConv4 84 only, fewer repeats")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--models", nargs="*", help="name:size pairs, e.g. conv4:84 resnet12:84")
    parser.add_argument("--warmup", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--clock", choices=("wall", "cpu"), default="wall", help="wall time or process CPU time")
    parser.add_argument("--orders", nargs="+", choices=("first", "second"), default=["first", "second"])
    parser.add_argument("--skip", nargs="*", default=[], help='methods to leave out, e.g. "metahyper vmap"')
    parser.add_argument("--json", help="also write the rows to this JSON file")
    args = parser.parse_args()
    if "floor" in args.skip:
        parser.error("--skip: the floor is the reference of every ratio and cannot be skipped")
    args.warmup = args.warmup if args.warmup is not None else 1
    args.repeats = args.repeats if args.repeats is not None else (2 if args.quick else 5)
    return args


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    setups = QUICK if args.quick else FULL
    if args.models:
        setups = [(m.split(":")[0], int(m.split(":")[1])) for m in args.models]
    print(f"device {args.device}, torch {torch.__version__}, {torch.get_num_threads()} threads, {args.clock} clock; "
          f"{WAY}-way {SHOT}-shot, {QUERY} queries, meta-batch {TASKS}, {STEPS} inner steps")
    print("| model | size | order | method | s/iter | vs fastest peer | vs floor |\n|---|---|---|---|---|---|---|")
    rows = []
    for name, size in setups:
        try:
            rows += run_setup(name, size, args)
        except (ImportError, KeyError, torch.OutOfMemoryError) as err:
            print(f"note: {name} at {size} skipped ({type(err).__name__}: {str(err)[:200]})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump([row.__dict__ for row in rows], handle, indent=1)


if __name__ == "__main__":
    main()
