"""The ``metahyper`` command: run benchmark suites, single stages, reports, data summaries, benchmarks.

    metahyper run [SUITE [RUN]] [--out DIR] [--jobs N | --launcher slurm] [KEY=VALUE ...]
                                                           pretrain -> meta-train -> evaluate -> report
    metahyper pretrain|meta-train|evaluate SUITE [RUN] [--out DIR] [KEY=VALUE ...]
    metahyper report DIR [--out DEST]                      rebuild DIR's report from its run folders
    metahyper status DIR                                   every run's stages: done, running, failed, ...
    metahyper data DATASET [--root PATH] [--split S]       print a summary of one split
    metahyper data fetch DATASET [--root PATH] [--mirror URL]  download, verify and place a data set
    metahyper bench NAME [ARGS ...]                        run benchmarks/speed/NAME.py
    metahyper list models|datasets|suites                  what build_model, load_store, run accept

SUITE is a built-in suite's name (``benchmarks/suites/``) or a YAML path (a run folder's
``config.yaml`` is a one-run suite); RUN names one of its runs (needed by the stage commands
when it has several; ``run`` does every run without it). RUN is positional, not an option,
because ``torchrun`` would take ``--run`` for its own ``--run-path``. Overrides are described in
``metahyper.suite.config``; options and overrides may come in any order. ``--jobs``, ``--devices``,
``--launcher`` and ``status`` are ``metahyper.launch``. Bad configs, unknown keys, bad values,
missing data paths, unwritable output folders, missing devices and bad launch options exit with
status 2 and a message naming them, before any work; so do damaged checkpoints and data files,
and a stage that another process is working on.
"""

from __future__ import annotations

import argparse
import sys

from metahyper._version import __version__
from metahyper.cli.common import USAGE, Formatter
from metahyper.cli.data import add_data_command
from metahyper.cli.report import add_report_command
from metahyper.cli.suite import epilog, add_suite_commands, cmd_suite
from metahyper.cli.tools import add_tool_commands
from metahyper.exits import guarded
from metahyper.launch import commands as launch_commands
from metahyper.plugins import import_user_code
from metahyper.progress import use_cli_logging

__all__ = ["USAGE", "build_parser", "main", "parse_args"]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    parser = argparse.ArgumentParser(prog="metahyper", formatter_class=Formatter,
                                     description="Meta-learning benchmarks with hypernetwork-generated ResNets.",
                                     epilog=epilog())
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_suite_commands(commands)
    add_report_command(commands)
    launch_commands.add_status_command(commands, USAGE["status"])
    add_data_command(commands)
    add_tool_commands(commands)
    return parser


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The parsed command line; a suite command takes its options and KEY=VALUE arguments in any
    order (``run smoke --out DIR meta_train.iterations=40``), which argparse's plain parsing
    refuses for a ``nargs="*"`` positional that an option interrupts."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args, extra = build_parser().parse_known_args(argv)
    if not extra:
        return args
    if args.handler is not cmd_suite:
        args.parser.error(f"unrecognized arguments: {' '.join(extra)}")
    command = args.command
    args = args.parser.parse_intermixed_args(argv[argv.index(command) + 1:])
    args.command = command
    return args


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``metahyper`` console script; returns the exit status."""
    args = parse_args(argv)
    use_cli_logging()

    def command() -> int:
        import_user_code(getattr(args, "imports", ()))
        return args.handler(args)

    usage = f"{USAGE[args.command]}  (metahyper {args.command} --help: every option)"
    return guarded(args.parser.prog, command, usage)
