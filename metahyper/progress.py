"""Status lines through the stdlib ``logging`` module (logger ``"metahyper"``).

On a terminal the training loops and the evaluate stage draw tqdm bars; in a batch job's log
(stderr not a terminal) they emit a plain line instead, at most every ``seconds`` (30) unless
``every`` steps have passed, and at the last step: stage, what runs (run folder; for evaluation
the run, target and shot), step/total in its unit (iteration, epoch, episode), loss, last
validation accuracy, rate and ETA. The library only emits records (INFO); the ``metahyper`` command
installs a handler (``use_cli_logging``), so users of the package silence or redirect them with
``logging.getLogger("metahyper")`` as usual.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable

from tqdm import tqdm

LOGGER = logging.getLogger("metahyper")


class StatusLines:
    """Periodic one-line progress reports of a loop from ``initial`` to ``total`` steps, each step
    one ``unit`` (``iteration``, ``epoch``, ``episode``)."""

    def __init__(self, stage: str, run: str, total: int, initial: int = 0, seconds: float = 30.0,
                 every: int | None = None, clock: Callable[[], float] = time.monotonic, unit: str = "iteration"):
        self.stage, self.run, self.total, self.initial, self.unit = stage, run, total, initial, unit
        self.seconds, self.every, self.clock = seconds, every or max(1, total // 10), clock
        self.started = self.last = clock()

    def rate_text(self, rate: float) -> str:
        """``2.31 it/s`` for iterations, ``3.10 episodes/s``, or ``42.0 s/epoch`` below one a second."""
        if self.unit == "iteration":
            return f"{rate:.2f} it/s"
        return f"{rate:.2f} {self.unit}s/s" if rate >= 1 or rate <= 0 else f"{1 / rate:.1f} s/{self.unit}"

    def line(self, iteration: int, loss: float | None, val_accuracy: float | None) -> str:
        """The text of one report (rate over the iterations done since the start)."""
        elapsed = max(self.clock() - self.started, 1e-9)
        rate = (iteration - self.initial) / elapsed
        eta = (self.total - iteration) / rate if rate > 0 else float("nan")
        parts = [f"{self.stage} {self.run}: {self.unit} {iteration}/{self.total}"]
        if loss is not None:
            parts.append(f"loss {loss:.4f}")
        if val_accuracy is not None:
            parts.append(f"val acc {val_accuracy:.4f}")
        parts.append(self.rate_text(rate))
        parts.append(f"ETA {time.strftime('%H:%M:%S', time.gmtime(eta))}" if eta == eta else "ETA ?")
        return ", ".join(parts)

    def update(self, iteration: int, loss: float | None = None, val_accuracy: float | None = None) -> None:
        """Log a line when ``seconds`` have passed, every ``every`` iterations, and at the end."""
        now = self.clock()
        if now - self.last >= self.seconds or iteration % self.every == 0 or iteration == self.total:
            self.last = now
            LOGGER.info(self.line(iteration, loss, val_accuracy))


def status_lines(show_bar: bool, stage: str, run: str, total: int, initial: int,
                 unit: str = "iteration") -> StatusLines | None:
    """Plain status lines when no bar is drawn (``show_bar`` False), else None."""
    return None if show_bar else StatusLines(stage, run, total, initial, unit=unit)


class _TqdmHandler(logging.Handler):
    """Writes records with ``tqdm.write`` so they do not break a progress bar."""

    def emit(self, record: logging.LogRecord) -> None:
        tqdm.write(self.format(record), file=sys.stderr)


def use_cli_logging() -> None:
    """The command's handler: INFO and above of logger ``metahyper`` on stderr (once)."""
    if not LOGGER.handlers:
        LOGGER.addHandler(_TqdmHandler())
        LOGGER.setLevel(logging.INFO)
