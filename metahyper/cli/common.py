"""What the ``metahyper`` commands share: their one-line usages, the suite kinds without stages, the help
layout and ``--import``."""

from __future__ import annotations

import argparse

from metahyper.resources import SPEED_DIR


def benchmark_names() -> list[str]:
    """The speed benchmarks ``metahyper bench`` runs: the scripts of ``benchmarks/speed/``."""
    return sorted(p.stem for p in SPEED_DIR.glob("*.py") if not p.stem.startswith("_"))


USAGE = {
    "run": "metahyper run [SUITE [RUN]] [KEY=VALUE ...] [--out DIR] [options]",
    **{stage: f"metahyper {stage} SUITE [RUN] [KEY=VALUE ...] [--out DIR] [options]"
       for stage in ("pretrain", "meta-train", "evaluate")},
    "report": "metahyper report RUN_DIR [--out DEST]",
    "status": "metahyper status OUT",
    "data": "metahyper data DATASET [--root PATH] [--split S] [options]  |  "
            "metahyper data fetch DATASET [--root PATH]",
    "bench": f"metahyper bench {{{','.join(benchmark_names())}}} [ARGS ...]",
    "list": "metahyper list {models,datasets,suites} [--import MODULE]",
}
"""Each command's one-line usage: argparse shows it in ``--help`` and its own errors, and a
configuration error prints it under the message (``metahyper.exits.guarded``)."""

WHOLE_SUITE_KINDS = {
    "classify": ("classification", "metahyper.classify.suite", "load_classify_suite", "run_classify_suite"),
    "language_model": ("language-model", "metahyper.lm.suite", "load_lm_suite", "run_lm_suite"),
}
"""Suite kinds that have no stages: ``kind -> (what it is, module, its loader, its runner)``."""


class Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout."""


def import_option(parser: argparse.ArgumentParser) -> None:
    """``--import MODULE`` (repeatable): a user's module with models, data sets or methods."""
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE",
                        help="import MODULE first, for the models, data sets or methods it registers (repeatable)")
