"""Signals that stop a run: SIGINT and SIGTERM end it as an interrupt, never in the middle of a write.

* ``stop_signals(force)``: while in the block, SIGTERM raises ``KeyboardInterrupt`` like Ctrl-C
  does, so a process stopped by ``kill``, a launcher or a dying pool unwinds as an interrupt
  (exit status 130, stages left "stopped" and resumable) instead of vanishing. SIGINT keeps
  Python's own handler, and a signal the process was started with ignored (SIGINT under
  ``cmd &`` from a script) stays ignored, except with ``force``, which a pool's worker process
  uses: it must stop on the pool's signal whatever dispositions and signal mask it inherited,
  so ``force`` makes both signals interrupt and unblocks them (``metahyper.launch.worker``).
* ``deferred_interrupts()``: SIGINT and SIGTERM arriving inside the block are held and delivered
  again when it ends, so a write (``metahyper.atomic``, ``torch.save`` included, whose C++
  writer would turn a ``KeyboardInterrupt`` raised in its callback into a ``RuntimeError``)
  is never cut short: the interrupt is raised after it, as an interrupt.

Signal handlers belong to the main thread: in any other thread both context managers do nothing.
"""

from __future__ import annotations

import signal
import threading
from contextlib import contextmanager
from typing import Any, Iterator

STOPS = (signal.SIGINT, signal.SIGTERM)


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


@contextmanager
def stop_signals(force: bool = False) -> Iterator[None]:
    """SIGTERM (unless ignored; with ``force`` also SIGINT, both unblocked) raises
    ``KeyboardInterrupt`` in the block (module docstring); the previous handlers come back after it."""
    if not _main_thread():
        yield
        return
    if force:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
    wanted = STOPS if force else [s for s in (signal.SIGTERM,) if signal.getsignal(s) is not signal.SIG_IGN]
    previous = {signum: signal.signal(signum, _interrupt) for signum in wanted}
    try:
        yield
    finally:
        _restore(previous)


@contextmanager
def deferred_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM during the block and deliver them again after it (module docstring).
    A signal whose handler was ``SIG_IGN`` stays ignored."""
    if not _main_thread():
        yield
        return
    received: list[int] = []
    previous: dict[int, Any] = {}
    for signum in STOPS:
        if signal.getsignal(signum) is not signal.SIG_IGN:
            previous[signum] = signal.signal(signum, lambda number, frame: received.append(number))
    try:
        yield
    finally:
        _restore(previous)
        for signum in dict.fromkeys(received):
            signal.raise_signal(signum)


def _restore(previous: dict[int, Any]) -> None:
    for signum, handler in previous.items():
        signal.signal(signum, signal.SIG_DFL if handler is None else handler)
