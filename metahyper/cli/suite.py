"""``metahyper run|pretrain|meta-train|evaluate``: their options (the work is ``metahyper.cli.suite_run``,
imported only when such a command runs, so ``--help`` loads no torch)."""

from __future__ import annotations

import argparse
import textwrap
from pathlib import Path

from metahyper.cli.common import USAGE, WHOLE_SUITE_KINDS, Formatter, import_option
from metahyper.config import load_yaml
from metahyper.launch import commands as launch_commands
from metahyper.resources import MIRROR_ENV, SUITES_DIR, known_suites

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


def cmd_suite(args: argparse.Namespace) -> int:
    """run / pretrain / meta-train / evaluate (``metahyper.cli.suite_run.run_command``)."""
    from metahyper.cli.suite_run import run_command

    return run_command(args)
