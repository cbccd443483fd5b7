"""Evaluation statistics and reports.

``stats``: mean with a t-based 95% CI, paired comparisons with a bootstrap CI, formatting.
``records``: the result record reports are built from. ``plots``, ``movement``, ``figure4``: the
paper's figures from meta-training metrics. ``headline``: the table in the paper's layout and the
accuracy-vs-shots figure (with the published numbers of ``metahyper.suite.paper``); ``settings``: the
settings summary; ``suite_info``: title, made-with line, data and provenance; ``sections``: the
tables below the headline; ``seeds``: across-seed summaries. ``report``: report.md, results.csv,
results.json and the figures.
"""

from metahyper.eval.stats import (
    CI_FORMULA,
    EvalResult,
    PairedResult,
    format_interval,
    format_p,
    format_pm,
    mean_ci,
    paired_comparison,
)

__all__ = [
    "CI_FORMULA",
    "EvalResult",
    "PairedResult",
    "format_interval",
    "format_p",
    "format_pm",
    "mean_ci",
    "paired_comparison",
]
