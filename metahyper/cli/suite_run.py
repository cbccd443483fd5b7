"""The work of ``metahyper run|pretrain|meta-train|evaluate``: load the suite, then run its stages
in this process, through a launcher, or as a suite without stages."""

from __future__ import annotations

import argparse
import importlib
import os
from pathlib import Path

import torch

from metahyper.allocator import keep_freed_memory
from metahyper.cli.common import WHOLE_SUITE_KINDS
from metahyper.config import ConfigError, load_yaml
from metahyper.launch import commands as launch_commands
from metahyper.pipeline import runs
from metahyper.suite.config import SuiteConfig, load_suite, suite_path
from metahyper.suite.data_paths import data_specs
from metahyper.threads import process_threads


def split_suite_args(args: list[str]) -> tuple[str, str | None, list[str]]:
    """(suite, run, overrides): items with ``=`` are overrides, the others SUITE then RUN."""
    names = [a for a in args if "=" not in a]
    if len(names) > 2:
        raise ConfigError(f"expected SUITE RUN and KEY=VALUE overrides, got {names}")
    names += [None] * (2 - len(names))
    return names[0] or "smoke", names[1], [a for a in args if "=" in a]


def default_out(ref: str, suite: SuiteConfig) -> Path:
    """The suite folder a run folder's ``config.yaml`` belongs to, else ``runs/<suite name>``."""
    path = suite_path(ref).resolve()
    if path.name == "config.yaml" and path.parent.parent.name == "runs":
        if (path.parents[2] / "suite.yaml").is_file():
            return path.parents[2]
    return Path("runs") / suite.name


def world_size() -> int:
    """Processes launched together (``torchrun`` sets WORLD_SIZE)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def run_command(args: argparse.Namespace) -> int:
    """run / pretrain / meta-train / evaluate."""
    if world_size() > 1 and args.command != "meta-train":
        raise ConfigError(f"`metahyper {args.command}` runs on one process; only `metahyper meta-train` runs "
                          "under torchrun (pretrain and evaluate first/after on one process)")
    launch_commands.check_options(args)
    ref, run, overrides = split_suite_args(args.args)
    overrides += ["logging.tensorboard=true"] if args.tensorboard else []
    launching = launch_commands.launching(args)
    if not launching:  # with a launcher: each job's threads and heap
        torch.set_num_threads(args.threads or process_threads(int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))
        keep_freed_memory()
    if args.download:
        fetch_suite_data(ref, overrides, args.mirror)
    kind = load_yaml(suite_path(ref)).get("kind")
    if kind in WHOLE_SUITE_KINDS:
        return run_whole_suite(args, ref, overrides, kind)
    suite = load_suite(ref, overrides)
    out = args.out or default_out(ref, suite)
    selected = None if run is None else [run]
    if args.command != "run" and run is None:
        if len(suite.run_groups()) > 1:
            raise ConfigError(f"suite {suite.name!r} has runs {', '.join(suite.run_groups())}: name one after the "
                              "suite")
        selected = [suite.run_groups()[0]]
    if launching:
        return launch_commands.launch(args, suite, Path(out), selected)
    stages = runs.STAGES if args.command == "run" else (args.command.replace("-", "_"),)
    with distributed(args.command == "meta-train"):
        written = runs.run_suite(suite, out, runs=selected, stages=stages)
    if written:
        print(f"report: {Path(out) / 'report.md'}")
    return 0


def run_whole_suite(args: argparse.Namespace, ref: str, overrides: list[str], kind: str) -> int:
    """``metahyper run`` of a suite without stages (``WHOLE_SUITE_KINDS``: classification,
    character language models); its module is imported only when such a suite is run."""
    what, module_name, loader, runner = WHOLE_SUITE_KINDS[kind]
    if args.command != "run":
        raise ConfigError(f"{ref} is a {what} suite: it has no stages; use `metahyper run {ref}`")
    if launch_commands.launching(args):
        raise ConfigError(f"{ref} is a {what} suite: --jobs, --devices and --launcher run the runs of meta-learning "
                          f"suites; run it with `metahyper run {ref}`")
    module = importlib.import_module(module_name)
    path = suite_path(ref)
    suite = getattr(module, loader)(path, overrides)
    out = args.out or Path("runs") / suite.name
    getattr(module, runner)(suite, out, where=str(path))
    print(f"report: {Path(out) / 'report.md'}")
    return 0


class distributed:
    """Initialise (and tear down) the torchrun process group when one is asked for."""

    def __init__(self, wanted: bool):
        self.active = wanted and world_size() > 1

    def __enter__(self) -> None:
        if self.active:
            import torch.distributed as dist

            if torch.cuda.is_available():
                torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
            dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")

    def __exit__(self, *exc: object) -> None:
        if self.active:
            import torch.distributed as dist

            dist.destroy_process_group()


def fetch_suite_data(ref: str, overrides: list[str], mirror: str | None) -> None:
    """``--download``: fetch what each data root of the suite lacks (``metahyper.data.fetch``)."""
    from metahyper.classify.suite import load_classify_suite
    from metahyper.data.fetch import FetchError, fetch_for_spec

    if load_yaml(suite_path(ref)).get("kind") == "classify":
        suite = load_classify_suite(suite_path(ref), overrides)
        specs = {"data": suite.data}
    else:
        suite = load_suite(ref, overrides)
        specs = data_specs(suite)
    for where, spec in specs.items():
        try:
            fetch_for_spec(spec.dataset, spec.root, spec.options, mirror)
        except (FetchError, OSError) as error:
            raise ConfigError(f"suite {suite.name!r}: {where}: {error}") from None
