"""``metahyper run|pretrain|meta-train|evaluate``: a suite's runs and stages (and suites without stages)."""

from __future__ import annotations

import argparse
import importlib
import os
import textwrap
from pathlib import Path

from metahyper.cli.common import USAGE, Formatter, import_option
from metahyper.config import ConfigError, load_yaml
from metahyper.data.fetch import MIRROR_ENV
from metahyper.launch import commands as launch_commands
from metahyper.suites import SUITES_DIR, SuiteConfig, data_specs, known_suites, load_suite, suite_path

OVERRIDES_HELP = """\
overrides (KEY=VALUE, the value read as YAML):
  meta_train.iterations=50                   a run setting without "runs." applies to every run
  runs.hyper_wrn10_1.model.options.variant=2 one run, by name
  runs.0.seed=1                              one run, by position
  runs.*.pretrain.epochs=1                   every run
  data.root=/data/fc100                      where the source data lives
  targets.*.root=/data/miniimagenet          every target's data folder
  evaluation.shots=[1] evaluation.episodes=100 device=cpu
  evaluation.baselines={nearest_centroid: {}}  a mapping is set whole (keys cannot be added one by one)
"""


def epilog(stages_only: bool = False) -> str:
    """The shipped suites (only meta-learning ones for the stage commands) and the override forms."""
    names = [n for n in known_suites()
             if not stages_only or load_yaml(SUITES_DIR / f"{n}.yaml").get("kind") not in WHOLE_SUITE_KINDS]
    suites = textwrap.fill(f"suites: {', '.join(names)}", 100, subsequent_indent="  ", break_on_hyphens=False)
    return f"{suites}\n\n{OVERRIDES_HELP}"


def _suite_args(parser: argparse.ArgumentParser, whole: bool) -> None:
    if not whole:
        parser.add_argument("args", nargs="*", metavar="SUITE RUN KEY=VALUE",
                            help="a suite name or YAML file, the run (when the suite has several), overrides")
    else:
        parser.add_argument("args", nargs="*", metavar="SUITE [RUN] KEY=VALUE",
                            help="a suite name or YAML file (default: smoke), optionally one of its runs (default: "
                                 "all), then overrides")
    parser.add_argument("--out", type=Path, help="output folder (default: runs/<suite name>)")
    parser.add_argument("--download", action="store_true",
                        help="first fetch the suite's data that is missing from its data roots")
    parser.add_argument("--mirror", help=f"with --download: fetch from this URL prefix (or ${MIRROR_ENV})")
    parser.add_argument("--tensorboard", action="store_true",
                        help="also write the JSONL metrics as TensorBoard event files (tb/ beside each); "
                             "the same as logging.tensorboard=true; needs pip install 'metahyper[tensorboard]'")
    import_option(parser)
    launch_commands.add_threads_option(parser)
    if whole:
        launch_commands.add_run_options(parser)


def add_suite_commands(commands: argparse._SubParsersAction) -> None:
    """``run``, ``pretrain``, ``meta-train`` and ``evaluate``."""
    helps = {"run": "run a whole suite: every run's stages, then the report",
             "pretrain": "pretrain one run of a suite",
             "meta-train": "meta-train one run of a suite (from its pretrained model; torchrun-able)",
             "evaluate": "evaluate one meta-trained run of a suite, then rebuild the report"}
    for name, text in helps.items():
        sub = commands.add_parser(name, help=text, description=text, formatter_class=Formatter,
                                  epilog=epilog(stages_only=name != "run"), usage=USAGE[name])
        _suite_args(sub, whole=name == "run")
        sub.set_defaults(handler=cmd_suite, parser=sub)


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


def cmd_suite(args: argparse.Namespace) -> int:
    """run / pretrain / meta-train / evaluate."""
    from metahyper import runs  # imported here: `metahyper --help` stays fast

    if world_size() > 1 and args.command != "meta-train":
        raise ConfigError(f"`metahyper {args.command}` runs on one process; only `metahyper meta-train` runs "
                          "under torchrun (pretrain and evaluate first/after on one process)")
    launch_commands.check_options(args)
    ref, run, overrides = split_suite_args(args.args)
    overrides += ["logging.tensorboard=true"] if args.tensorboard else []
    launching = launch_commands.launching(args)
    if args.threads is not None and not launching:  # with a launcher: each job's threads
        import torch

        torch.set_num_threads(args.threads)
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


WHOLE_SUITE_KINDS = {
    "classify": ("classification", "metahyper.classify.suite", "load_classify_suite", "run_classify_suite"),
    "language_model": ("language-model", "metahyper.lm.suite", "load_lm_suite", "run_lm_suite"),
}
"""Suite kinds that have no stages: ``kind -> (what it is, module, its loader, its runner)``."""


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
            import torch
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
