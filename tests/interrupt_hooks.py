"""Imported into a ``metahyper`` process with ``--import interrupt_hooks``: it signals itself at one
deterministic point of a run of the reduced smoke suite, the first time it gets there, so that a test can check
what an interrupt there leaves and that a rerun resumes to the same numbers.

``$METAHYPER_TEST_INTERRUPT`` is ``POINT:SIGNAL:MARKER``; the process writes its pid to the file
``MARKER`` first, and does nothing once that file exists (the rerun). POINT is

* ``validation``: during the validation of the first validation point (iteration 2 of the
  reduced smoke suite, which also writes the checkpoint of iteration 2);
* ``save``: inside ``torch.save`` of meta-training's checkpoint of iteration 2, from the file
  object torch's C++ writer writes to (as a Ctrl-C that arrives mid-write does).

Against the code before issue 28, ``validation`` left the checkpoint of iteration 2 without its
validation point for good, and ``save`` exited 1 with torch's ``RuntimeError`` and a failed.json.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import torch

from metahyper.pipeline import stages

POINT, SIGNAL, MARKER = os.environ["METAHYPER_TEST_INTERRUPT"].split(":", 2)
SIGNUM = getattr(signal, SIGNAL)


def _first_time() -> bool:
    """True once: the marker is written then."""
    if Path(MARKER).exists():
        return False
    Path(MARKER).write_text(str(os.getpid()))
    return True


def _signal_self() -> None:
    os.kill(os.getpid(), SIGNUM)
    time.sleep(1)  # the handler runs at the next bytecode; this sleep is where it interrupts


_real_evaluate = stages.evaluate


def _evaluate(*args, **kwargs):
    if POINT == "validation" and _first_time():
        _signal_self()
    return _real_evaluate(*args, **kwargs)


class _InterruptingFile:
    """The checkpoint's temporary file, signalling the process at torch's second write to it: an
    interrupt there surfaces, unless deferred, as torch's ``RuntimeError`` (its C++ writer finds
    the file shorter than it wrote), the exception chained to the ``KeyboardInterrupt``."""

    def __init__(self, handle):
        self._handle, self._writes = handle, 0

    def write(self, data):
        self._writes += 1
        if self._writes == 2:
            os.kill(os.getpid(), SIGNUM)
        return self._handle.write(data)

    def __getattr__(self, name):
        return getattr(self._handle, name)


_real_save = torch.save


def _save(obj, f, *args, **kwargs):
    # meta-training's checkpoint of iteration 2 (the reduced suite pretrains for one epoch)
    if POINT == "save" and obj.get("iteration") == 2 and obj.get("optimizer") is not None and _first_time():
        f = _InterruptingFile(f)
    return _real_save(obj, f, *args, **kwargs)


stages.evaluate = _evaluate
torch.save = _save
