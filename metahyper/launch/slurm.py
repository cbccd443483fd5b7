"""``metahyper run SUITE --launcher slurm``: one SLURM job per run, through submitit.

The unfinished runs go out as one job array (``RunJob``: the run's pretrain -> meta-train ->
evaluate in the shared suite folder, ``metahyper.launch.worker.run_one``), then one report job
that depends on the array (``afterany``: it reports whatever finished; ``metahyper report OUT``
rebuilds it later). Resources come from the suite's ``launcher.slurm`` section
(``metahyper.suite.launcher.SlurmConfig``) with the command line's options on top; a job's CPU
threads are its ``cpus``. submitit writes the job scripts, pickles and logs into ``OUT/slurm/``;
``OUT/launch.json`` records the job ids for ``metahyper status``. The suite folder must be on a
file system that the compute nodes share.

Preemption and timeouts: submitit asks SLURM for a signal before the time limit
(``--signal=USR2@90``); on it, or on preemption, it calls ``RunJob.checkpoint``, which hands
submitit the same job to requeue (``submitit.helpers.DelayedSubmission``). The requeued job
resumes from the run's own checkpoints (pretraining per epoch, meta-training per checkpoint),
to the numbers of an unbroken run on CPU. submitit is an optional extra (``metahyper[slurm]``),
imported only here and only when asked for.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metahyper.atomic import write_text_atomic
from metahyper.config import ConfigError
from metahyper.launch.status import LAUNCH_FILE
from metahyper.launch.worker import run_one
from metahyper.outdir import shared_files_lock
from metahyper.pipeline.report import rebuild_report
from metahyper.pipeline.runs import Plan, now_utc, write_suite_files
from metahyper.progress import use_cli_logging
from metahyper.suite.launcher import SlurmConfig

EXTRA = "pip install 'metahyper[slurm]'"
SLURM_DIR = "slurm"
REPORT_TIME_MIN = 60


def require_submitit() -> Any:
    """The ``submitit`` module; ``ConfigError`` naming the extra to install when it is missing."""
    try:
        import submitit
    except ImportError as error:
        raise ConfigError(f"--launcher slurm needs the submitit package, which is not installed ({error}); "
                          f"install it with: {EXTRA}") from None
    return submitit


def check_cluster() -> None:
    """``sbatch`` and ``srun`` must be on PATH (a SLURM login node); ``ConfigError`` otherwise."""
    missing = [command for command in ("sbatch", "srun") if shutil.which(command) is None]
    if missing:
        raise ConfigError(f"--launcher slurm: {' and '.join(missing)} not found on PATH; submit from a SLURM login "
                          "node, or run the suite on this machine with --jobs")


class RunJob:
    """One run of a suite folder as a job (picklable: the folder, the run and how to run it)."""

    def __init__(self, out: str, run: str, threads: int | None = None, imports: tuple[str, ...] = ()):
        self.out, self.run, self.threads, self.imports = out, run, threads, imports

    def __call__(self) -> str:
        from submitit import JobEnvironment

        log = JobEnvironment().paths.stderr  # where this job's errors go, named by a failed stage
        run_one(self.out, self.run, threads=self.threads, imports=self.imports, log_file=log)
        return self.run

    def checkpoint(self, *args: Any, **kwargs: Any) -> Any:
        """Called by submitit on preemption or timeout: requeue this very job (it resumes)."""
        from submitit.helpers import DelayedSubmission

        return DelayedSubmission(self, *args, **kwargs)


class ReportJob:
    """Builds a suite folder's report (the job that runs after the runs' array)."""

    def __init__(self, out: str):
        self.out = out

    def __call__(self) -> list[str]:
        use_cli_logging()
        return [str(path) for path in rebuild_report(self.out)]


@dataclass
class Submission:
    """The submitted jobs (submitit ``Job`` objects): one per run, and the report job (None
    when the cluster has no dependencies, e.g. submitit's ``local`` executor)."""

    jobs: dict[str, Any]
    report: Any | None


def make_executor(out: Path, cluster: str, cfg: SlurmConfig, **parameters: Any) -> Any:
    """A submitit executor writing into ``OUT/slurm`` with ``parameters`` (None: unset)."""
    submitit = require_submitit()
    if cluster == "slurm":
        check_cluster()
    executor = submitit.AutoExecutor(folder=str(out / SLURM_DIR), cluster=cluster,
                                     slurm_max_num_timeout=cfg.max_timeouts)
    executor.update_parameters(slurm_partition=cfg.partition, slurm_additional_parameters=dict(cfg.options) or None,
                               **parameters)
    return executor


def submit_suite(plan: Plan, cfg: SlurmConfig, *, imports: tuple[str, ...] = (), whole: bool = True,
                 cluster: str = "slurm") -> Submission:
    """Submit ``plan``'s unfinished runs as a job array and, on SLURM, the report job after it
    (module docstring); ``cluster="local"`` runs the jobs with submitit's local executor."""
    out, suite, runs = plan.ws.out, plan.ws.suite, plan.unfinished()
    gpus = cfg.gpus if cfg.gpus is not None else (0 if suite.device == "cpu" else 1)
    executor = make_executor(out, cluster, cfg, name=f"metahyper-{suite.name}", timeout_min=cfg.time_min,
                             mem_gb=cfg.mem_gb, cpus_per_task=cfg.cpus, gpus_per_node=gpus or None,
                             slurm_array_parallelism=cfg.max_parallel or len(runs))
    write_suite_files(plan, whole=whole)
    with executor.batch():
        submitted = [executor.submit(RunJob(str(out), run, cfg.cpus, imports)) for run in runs]
    jobs = dict(zip(runs, submitted))
    report = None
    if cluster == "slurm" and "evaluate" in plan.stages:
        array = submitted[0].job_id.split("_")[0]
        report_executor = make_executor(out, cluster, cfg, name=f"metahyper-{suite.name}-report",
                                        timeout_min=REPORT_TIME_MIN, cpus_per_task=1,
                                        slurm_dependency=f"afterany:{array}")
        report = report_executor.submit(ReportJob(str(out)))
    record = {"launcher": cluster, "submitted_at": now_utc(), "logs": str(out / SLURM_DIR),
              "jobs": {run: job.job_id for run, job in jobs.items()}, "report_job": report and report.job_id}
    with shared_files_lock(out):
        write_text_atomic(out / LAUNCH_FILE, json.dumps(record, indent=2) + "\n")
    return Submission(jobs, report)
