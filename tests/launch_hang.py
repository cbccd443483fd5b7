"""Imported into a job with ``--import launch_hang`` (``RunJob``'s ``imports``): the meta-training
of run ``wrn10_1`` hangs at iteration 3 the first time it gets there, after the checkpoint of
iteration 2, writing its pid to the file ``$METAHYPER_TEST_HANG`` first, so that a test can
preempt the job exactly there. The next attempt (the file exists) runs normally."""

from __future__ import annotations

import os
import time
from pathlib import Path

from metahyper.meta import train

_real_step = train.train_step


def _step(run, sampler, transform, cfg, iteration):
    marker = Path(os.environ["METAHYPER_TEST_HANG"])
    if iteration == 3 and run.checkpoint.parent.parent.name == "wrn10_1" and not marker.exists():
        marker.write_text(str(os.getpid()))
        while True:  # until a signal ends the job
            time.sleep(0.05)
    return _real_step(run, sampler, transform, cfg, iteration)


train.train_step = _step
