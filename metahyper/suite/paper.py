"""Published numbers a report shows beside ours: a suite's ``paper:`` section.

A suite that reproduces a paper's table lists the paper's numbers (``PaperResult``) in its YAML,
not in code, so the numbers sit beside the settings they belong to and a user's suite can carry
its own. A number whose ``model`` names one of the suite's models is printed in that model's row
of the report's headline table ("84.91 ± 0.57 · paper 86.3"); any other (a method from the
literature, people) gets its own row, marked as the paper's. The section is kept out of every
config hash: stage configs never read it and result records drop it
(``metahyper.pipeline.stages.make_record``), so adding or correcting a number never invalidates a run.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

from metahyper.config import from_dict


@dataclass(frozen=True)
class PaperResult:
    """One published number: ``model`` (a run of the suite, or a name from the literature) on
    ``way``-way ``shot``-shot tasks, as ``accuracy`` or ``error`` in percent (exactly one; Lake
    et al. report error rates), from ``source`` (the citation, with the table). ``target``
    limits it to one of the suite's targets (default: every target evaluated at that way and
    shot); ``note`` says how the paper's setting differs from the suite's."""

    model: str
    way: int
    shot: int
    source: str
    accuracy: float | None = None
    error: float | None = None
    target: str | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if (self.accuracy is None) == (self.error is None):
            raise ValueError(f"{self.model}: give exactly one of accuracy and error (percent)")
        value = self.accuracy if self.accuracy is not None else self.error
        if not 0 <= value <= 100:
            raise ValueError(f"{self.model}: accuracy and error are percentages in [0, 100], got {value}")
        if self.way < 2 or self.shot < 1:
            raise ValueError(f"{self.model}: way must be >= 2 and shot >= 1, got {self.way}-way {self.shot}-shot")

    @property
    def percent(self) -> float:
        """The accuracy in percent (100 - error for an error rate)."""
        return self.accuracy if self.accuracy is not None else 100 - self.error

    def cell(self) -> str:
        """``"95.5"``, or ``"95.5 (error 4.5)"`` for a number published as an error rate."""
        return f"{self.percent:g}" if self.error is None else f"{self.percent:g} (error {self.error:g})"

    def fits(self, target: str, way: int, shot: int) -> bool:
        """Whether this number belongs in the column of ``target`` at ``way``/``shot``."""
        return (self.way, self.shot) == (way, shot) and self.target in (None, target)


def paper_results(items: Iterable[Any], where: str = "paper") -> list[PaperResult]:
    """``PaperResult`` s from dicts (a suite folder's ``suite.yaml``) or ``PaperResult`` s;
    errors name ``where`` and the entry."""
    return [item if isinstance(item, PaperResult) else from_dict(PaperResult, item, where=f"{where}[{i}]")
            for i, item in enumerate(items)]
