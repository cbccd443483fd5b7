"""The ``launcher:`` section of a suite: how ``--launcher slurm`` asks for its jobs.

It is part of ``SuiteConfig`` (so ``launcher.slurm.partition=gpu`` works as an override and
typos fail naming the key) and, like ``logging``, in no stage's config hash and no result
record: where a run ran does not change what it computes (``metahyper.pipeline.stages.stage_config``).
The command line's ``--partition``, ``--gpus``, ``--cpus``, ``--mem`` and ``--time`` replace
the section's values. This module is a leaf: ``metahyper.suite.config`` imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SlurmConfig:
    """One SLURM job per run (a job array), requeued on preemption and timeout.

    ``gpus`` per job (default: 1, or 0 when the suite's device is ``cpu``); ``cpus`` per job
    (also the job's CPU threads); ``mem_gb`` per job; ``time_min`` per job, after which the job
    is requeued (at most ``max_timeouts`` times; preemptions requeue without limit) and resumes
    from its checkpoint; ``max_parallel`` array tasks at once (default: all); ``options``: other
    ``sbatch`` options by their long name (``account``, ``qos``, ``constraint``, ...).
    """

    partition: str | None = None
    gpus: int | None = None
    cpus: int | None = None
    mem_gb: float | None = None
    time_min: int = 1440
    max_timeouts: int = 3
    max_parallel: int | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, least in (("gpus", 0), ("cpus", 1), ("time_min", 1), ("max_timeouts", 0), ("max_parallel", 1)):
            value = getattr(self, name)
            if value is not None and value < least:
                raise ValueError(f"{name} must be >= {least}, got {value}")
        if self.mem_gb is not None and self.mem_gb <= 0:
            raise ValueError(f"mem_gb must be > 0, got {self.mem_gb}")


@dataclass(frozen=True)
class LauncherConfig:
    """Launcher settings of a suite (only SLURM has any)."""

    slurm: SlurmConfig = field(default_factory=SlurmConfig)
