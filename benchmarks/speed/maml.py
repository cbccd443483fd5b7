"""Seconds per MAML meta-iteration: metahyper (loop, vmap, grouped) vs learn2learn vs higher vs a floor.

    python benchmarks/speed/maml.py [--quick] [--device cpu|cuda] [--json out.json] [--record choice.json]

Same tasks and seeds for every method: 5-way 1-shot, 15 queries per class, meta-batch 4, 5 inner
steps (lr 0.01), first and second order. One meta-iteration = adapt to every task and accumulate
the meta-gradient (the outer optimiser step, identical for all, is left out). Each time is
reported as a ratio to a floor (the same number of plain forward+backward passes of metahyper's
model over the same images: per task ``steps`` on the support set and one on the queries), to
the fastest peer on the same model (learn2learn, higher), and to the fastest peer on its own
model ("learn2learn, own model", "higher, own model": ``_peer_models.py``, with nn.BatchNorm2d;
Conv4 and ResNet-12 only). Peers adapt every parameter, so metahyper runs like for like (``all
roles``); for hyper models the role-split default is shown too, and the peers are skipped (they
cannot clone/patch convs that reference a shared hypernetwork). ``--resnet12-widths`` runs
ResNet-12 (metahyper's, the hyper variant and the peers' own) at reduced widths, labelled in the
model column. ``--record FILE`` writes the device kind's ``backend: auto`` choice from the like-
for-like rows into FILE (``metahyper/meta/backend_choice.py``). Missing models or peers are
skipped with a note.
"""

from __future__ import annotations

import argparse
import json
import shlex
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from _peer_models import FULL_WIDTHS, importable, own_models

from metahyper.atomic import write_text_atomic
from metahyper.data.episodes import TaskBatch
from metahyper.meta.backend_choice import BENCHMARK_LABELS as LIKE_FOR_LIKE
from metahyper.meta.backend_choice import CHOICE_FILE, choose_backend, recorded
from metahyper.meta.maml import MamlConfig, meta_backward
from metahyper.meta.peers import higher_maml, learn2learn_maml
from metahyper.models.backbones import ResNet12
from metahyper.models.hyperize import hyperize
from metahyper.models.norm import norm_statistics
from metahyper.models.roles import ParamRole

WAY, SHOT, QUERY, TASKS, STEPS, LR = 5, 1, 15, 4, 5, 0.01
FULL = [("conv4", 84), ("conv4", 32), ("resnet12", 84), ("hyper_resnet12", 84)]
QUICK = [("conv4", 32), ("conv4", 84), ("hyper_conv4", 84)]
ALL_ROLES = tuple(r.value for r in ParamRole)
PEERS, OWN_PEERS = ("learn2learn", "higher"), ("learn2learn, own model", "higher, own model")
Step = Callable[[torch.nn.Module, TaskBatch, bool], None]


@dataclass(frozen=True)
class Row:
    model: str
    size: int
    order: str
    method: str
    seconds: float
    vs_peer: float | None  # over the fastest peer on the same model
    vs_own_peer: float | None  # over the fastest peer on its own model
    vs_floor: float


@dataclass(frozen=True)
class OwnModelStep:
    """A peer meta-training its own model (``_peer_models.py``) on the same tasks; the model
    ``time_methods`` passes (metahyper's) is not used."""

    model: torch.nn.Module
    run: Callable[..., object]  # learn2learn_maml or higher_maml

    def __call__(self, _model: torch.nn.Module, batch: TaskBatch, first_order: bool) -> None:
        self.run(self.model, batch, STEPS, LR, first_order)


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
    for name, step in (("learn2learn", learn2learn_step), ("higher", higher_step)):
        if importable(name):
            peers[name] = step
        else:
            print(f"note: {name} is not installed; skipped")
    return peers


def own_model_steps(name: str, size: int, widths: tuple[int, ...], device: str) -> dict[str, Step]:
    """Each peer on its own model of the backbone ``name`` (none for other backbones)."""
    runs = {"learn2learn, own model": learn2learn_maml, "higher, own model": higher_maml}
    torch.manual_seed(0)
    models = own_models(name, size, WAY, widths)
    return {peer: OwnModelStep(model.to(device), runs[peer]) for peer, model in models.items()}


def time_methods(methods: dict[str, Step], model, batch: TaskBatch, first_order: bool, args) -> dict[str, float]:
    """Median seconds per call of each method; methods take turns within every repeat, so a
    change of machine load hits all of them alike. ``args.clock``: ``wall`` or ``cpu``
    (process CPU time: steadier on a shared machine with ``--threads 1``)."""
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    times: dict[str, list[float]] = {name: [] for name in methods}
    for i in range(args.warmup + args.repeats):
        for name, step in methods.items():
            getattr(step, "model", model).zero_grad(set_to_none=True)
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
    methods = {"floor": floor_step} | {m: metahyper_step(b, ALL_ROLES) for m, b in LIKE_FOR_LIKE.items()}
    if not hyper:
        return methods | available_peers()
    methods |= {f"{m} (roles)": metahyper_step(b, None) for m, b in LIKE_FOR_LIKE.items()}
    print("note: peers skipped on hyper models: learn2learn's clone() and higher's monkeypatch do not follow"
          " the generated convs' references to the shared hypernetworks (an unused-parameter error and an"
          " AttributeError); ratios to the floor only")
    return methods


def build(name: str, widths: tuple[int, ...]) -> tuple[torch.nn.Module, str]:
    """(metahyper's model ``name``, its label): ResNet-12 and its hyper variant at ``widths``."""
    from metahyper.models import build_model

    if name not in ("resnet12", "hyper_resnet12") or tuple(widths) == FULL_WIDTHS:
        return build_model(name, num_classes=WAY), name
    plain = ResNet12(WAY, widths=tuple(widths))
    label = f"{name} (widths {'-'.join(map(str, widths))})"
    return (plain if name == "resnet12" else hyperize(plain)), label


def run_setup(name: str, size: int, args: argparse.Namespace) -> list[Row]:
    """Time every method on one model and image size, first and second order."""
    torch.manual_seed(0)
    model, label = build(name, args.resnet12_widths)
    model = model.to(args.device)
    batch, rows = make_batch(size, torch.device(args.device)), []
    methods = methods_for(model) | own_model_steps(name, size, args.resnet12_widths, args.device)
    methods = {m: step for m, step in methods.items() if m not in args.skip}
    for order in args.orders:
        first_order = order == "first"
        times = time_methods(methods, model, batch, first_order, args)
        best_peer, best_own = (min((t for m, t in times.items() if m in names), default=None)
                               for names in (PEERS, OWN_PEERS))
        for method, seconds in times.items():
            rows.append(Row(label, size, order, method, seconds, best_peer and seconds / best_peer,
                            best_own and seconds / best_own, seconds / times["floor"]))
            print(_format(rows[-1]), flush=True)
    return rows


def _format(row: Row) -> str:
    peers = ("-" if r is None else f"{r:.2f}" for r in (row.vs_peer, row.vs_own_peer))
    cells = (row.model, row.size, row.order, row.method, f"{row.seconds:.4f}", *peers, f"{row.vs_floor:.2f}")
    return "| " + " | ".join(map(str, cells)) + " |"


def record(rows: list[Row], path: Path, args: argparse.Namespace) -> dict:
    """Write the device kind's ``backend: auto`` entry, chosen from the like-for-like rows, into
    ``path`` (started from the package's recorded choices when absent; other kinds are kept)."""
    setups: dict[tuple, dict[str, float]] = {}
    for row in rows:
        if row.method in LIKE_FOR_LIKE:
            setups.setdefault((row.model, row.size, row.order), {})[LIKE_FOR_LIKE[row.method]] = row.seconds
    timed = [{"model": m, "size": s, "order": o, "seconds": t} for (m, s, o), t in setups.items()]
    backend, why = choose_backend(timed)
    kind = torch.device(args.device).type
    measured = {"date_utc": time.strftime("%Y-%m-%d", time.gmtime()), "torch": torch.__version__,
                "device": torch.cuda.get_device_name() if kind == "cuda" else "cpu", "threads": torch.get_num_threads(),
                "clock": args.clock, "command": shlex.join(["python", "benchmarks/speed/maml.py", *sys.argv[1:]]),
                "rows": timed}
    entries = json.loads(path.read_text(encoding="utf-8")) if path.is_file() else dict(recorded(CHOICE_FILE))
    entries[kind] = {"backend": backend, "why": why, "measured": measured}
    write_text_atomic(path, json.dumps(entries, indent=1) + "\n")
    return entries[kind]


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
    parser.add_argument("--resnet12-widths", type=int, nargs=4, default=list(FULL_WIDTHS), metavar="W",
                        help="stage widths of ResNet-12 and its hyper variant (reduced widths are labelled)")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--record", type=Path, help="write the backend: auto choice of this device kind into this file")
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
    print("| model | size | order | method | s/iter | vs fastest peer | vs fastest peer, own model | vs floor |\n"
          "|---|---|---|---|---|---|---|---|")
    rows = []
    for name, size in setups:
        try:
            rows += run_setup(name, size, args)
        except (ImportError, KeyError, torch.OutOfMemoryError) as err:
            print(f"note: {name} at {size} skipped ({type(err).__name__}: {str(err)[:200]})")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump([row.__dict__ for row in rows], handle, indent=1)
    if args.record:
        entry = record(rows, args.record, args)
        print(f"backend: auto on {torch.device(args.device).type} -> {entry['backend']} ({entry['why']}); "
              f"recorded in {args.record}")


if __name__ == "__main__":
    main()
