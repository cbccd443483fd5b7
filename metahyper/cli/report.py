"""``metahyper report``: rebuild a suite folder's report."""

from __future__ import annotations

import argparse
from pathlib import Path

from metahyper.cli.common import USAGE
from metahyper.config import ConfigError
from metahyper.outdir import check_writable


def add_report_command(commands: argparse._SubParsersAction) -> None:
    """``report RUN_DIR [--out DEST]``."""
    report = commands.add_parser("report", help="rebuild report.md/results.* and figures of a suite folder",
                                 description="Rebuild a suite folder's report from its run folders.",
                                 usage=USAGE["report"])
    report.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                        help="a folder written by `metahyper run` (or one of its runs/<run> folders)")
    report.add_argument("--out", type=Path, help="write the report here instead (e.g. for a suite folder on "
                        "read-only storage)")
    report.set_defaults(handler=cmd_report, parser=report)


def cmd_report(args: argparse.Namespace) -> int:
    """report: rebuild a suite folder's report."""
    from metahyper.pipeline.report import rebuild_report

    folder = args.run_dir
    if not folder.is_dir():
        raise ConfigError(f"{folder} is not a folder")
    if folder.resolve().parent.name == "runs" and (folder / "config.yaml").is_file():
        folder = folder.resolve().parents[1]  # one run's folder: report its suite folder
    dest = args.out or folder
    hint = "choose another folder" if args.out else "pass --out DEST to write the report elsewhere"
    check_writable(dest, "report folder", hint)
    for path in rebuild_report(folder, dest):
        print(path)
    return 0
