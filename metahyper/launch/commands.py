"""The launch options of ``metahyper run`` and the ``metahyper status`` command.

``--jobs``/``--devices`` start the local pool (``local.py``), ``--launcher slurm`` with its
resource options submits SLURM jobs (``slurm.py``); ``--threads`` sets the CPU threads of each
process on every suite command. Bad values and combinations fail with a ``ConfigError`` naming
the option (exit status 2) before any data is loaded (``check_options``). Only ``argparse`` and
the config errors are imported at module level: ``metahyper --help`` stays fast.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path
from typing import Any, Callable

from metahyper.config import ConfigError
from metahyper.threads import process_threads

SLURM_FLAGS = {"partition": "--partition", "gpus": "--gpus", "cpus": "--cpus", "mem_gb": "--mem",
               "time_min": "--time"}  # SlurmConfig field -> option


def bounded(flag: str, kind: Callable[[str], Any], least: float, strict: bool = False) -> Callable[[str], Any]:
    """An argparse type: ``kind`` of the text, ``>= least`` (``> least`` when ``strict``)."""
    bound = f"> {least}" if strict else f">= {least}"

    def convert(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or value < least or (strict and value == least):
            noun = "an integer" if kind is int else "a number"
            raise argparse.ArgumentTypeError(f"{flag} must be {noun} {bound}, got {text!r}")
        return value

    return convert


def add_threads_option(parser: argparse.ArgumentParser) -> None:
    """``--threads`` (every suite command)."""
    parser.add_argument("--threads", type=bounded("--threads", int, 1), metavar="N",
                        help="CPU threads of each process (default: $OMP_NUM_THREADS, else the CPUs this process "
                             "may use, from its affinity mask and cgroup CPU quota, split between --jobs or "
                             "torchrun's local processes); CPU results depend on the thread count")


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--jobs``, ``--devices``, ``--launcher`` and the SLURM resources (``metahyper run``)."""
    group = parser.add_argument_group("several runs at once (docs/scale.md)")
    group.add_argument("--jobs", type=bounded("--jobs", int, 1), metavar="N",
                       help="run N of the suite's runs at once on this machine, one process per run (default: "
                            "one after another in this process; with --launcher slurm: array tasks at once)")
    group.add_argument("--devices", metavar="LIST",
                       help="with --jobs: the devices the jobs take in turn, e.g. cuda:0,cuda:1 (default: every "
                            "visible GPU, else the CPU)")
    group.add_argument("--launcher", choices=("local", "slurm"),
                       help="local (default): processes on this machine; slurm: one SLURM job per run through "
                            "submitit (pip install 'metahyper[slurm]'), then a report job")
    group.add_argument("--partition", help="slurm: the partition (default: launcher.slurm.partition)")
    group.add_argument("--gpus", type=bounded("--gpus", int, 0), metavar="N", help="slurm: GPUs per job (default 1)")
    group.add_argument("--cpus", type=bounded("--cpus", int, 1), metavar="N",
                       help="slurm: CPUs per job, also its threads")
    group.add_argument("--mem", dest="mem_gb", type=bounded("--mem", float, 0, strict=True), metavar="GB",
                       help="slurm: memory per job in GB")
    group.add_argument("--time", dest="time_min", type=bounded("--time", int, 1), metavar="MINUTES",
                       help="slurm: time limit per job; a job that reaches it is requeued and resumes (default 1440)")


def launching(args: argparse.Namespace) -> bool:
    """Whether the command asks for a launcher (else the runs go one after another in-process)."""
    return any(getattr(args, name, None) is not None for name in ("jobs", "devices", "launcher"))


def check_options(args: argparse.Namespace) -> None:
    """Refuse options that do not go together, missing packages and devices, before any work."""
    given = [flag for name, flag in SLURM_FLAGS.items() if getattr(args, name, None) is not None]
    launcher = getattr(args, "launcher", None)
    if given and launcher != "slurm":
        raise ConfigError(f"{given[0]} is an option of --launcher slurm")
    if launcher == "slurm":
        if args.devices is not None:
            raise ConfigError("--devices is for jobs on this machine; SLURM jobs get their GPUs from --gpus")
        if args.threads is not None:
            raise ConfigError("--threads: a SLURM job's threads are its --cpus")
        from metahyper.launch.slurm import require_submitit

        require_submitit()
    elif getattr(args, "devices", None) is not None:
        from metahyper.launch.local import parse_devices

        parse_devices(args.devices)


def launch(args: argparse.Namespace, suite: Any, out: Path, selected: list[str] | None) -> int:
    """Run or submit ``selected`` runs (None: all) of ``suite`` into ``out``; the exit status."""
    from metahyper.pipeline.runs import plan_suite

    # the checks run on the CPU: the launching process takes no GPU from its jobs
    plan = plan_suite(suite, out, runs=selected, device="cpu")
    if args.launcher == "slurm":
        return submit(args, plan, selected is None)
    return pool(args, plan, selected is None)


def pool(args: argparse.Namespace, plan: Any, whole: bool) -> int:
    """``--jobs``: the local pool; prints the report's path and the failed runs."""
    from metahyper.launch.local import parse_devices, run_pool, visible_devices

    devices = parse_devices(args.devices) if args.devices else visible_devices(plan.ws.suite.device)
    jobs = args.jobs or len(devices)
    result = run_pool(plan, jobs=jobs, devices=devices, threads=args.threads or process_threads(jobs),
                      imports=tuple(args.imports), whole=whole)
    if result.report:
        print(f"report: {plan.ws.out / 'report.md'}")
    if not result.failed:
        return 0
    print(f"metahyper run: {len(result.failed)} run(s) failed:", file=sys.stderr)
    for run, why in result.failed.items():
        print(f"  {run}: {why}", file=sys.stderr)
    print("run the same command again to resume the unfinished runs", file=sys.stderr)
    return 1


def submit(args: argparse.Namespace, plan: Any, whole: bool) -> int:
    """``--launcher slurm``: submit the unfinished runs and the report job; prints the job ids."""
    from metahyper.launch.slurm import submit_suite
    from metahyper.pipeline.report import rebuild_report

    flags = {name: getattr(args, name) for name in SLURM_FLAGS if getattr(args, name) is not None}
    if args.jobs is not None:
        flags["max_parallel"] = args.jobs
    cfg = dataclasses.replace(plan.ws.suite.launcher.slurm, **flags)
    out = plan.ws.out
    if not plan.unfinished():
        print(f"every stage is finished in {out}; nothing to submit")
        if "evaluate" in plan.stages:
            rebuild_report(out)
            print(f"report: {out / 'report.md'}")
        return 0
    submission = submit_suite(plan, cfg, imports=tuple(args.imports), whole=whole)
    for run, job in submission.jobs.items():
        print(f"{run}: SLURM job {job.job_id}")
    if submission.report is not None:
        print(f"report: SLURM job {submission.report.job_id} writes {out / 'report.md'} when the runs end")
    print(f"logs: {out / 'slurm'}; progress: metahyper status {out}")
    return 0


def add_status_command(commands: Any, usage: str) -> None:
    """``metahyper status OUT``."""
    sub = commands.add_parser("status", help="every run's stages in a suite folder: done, running (iteration, rate, "
                              "ETA, holder), failed, not started", usage=usage,
                              description="Show every run's stages in a suite folder, read from the folder alone.")
    sub.add_argument("out", type=Path, metavar="OUT", help="a folder written by `metahyper run`")
    sub.set_defaults(handler=cmd_status, parser=sub)


def cmd_status(args: argparse.Namespace) -> int:
    """status: print the suite folder's status; exit status 2 when a finished stage is damaged
    (``metahyper.pipeline.manifest``), each named on stderr."""
    from metahyper.launch.status import status_text

    damaged: list[str] = []
    print(status_text(args.out, damaged))
    for detail in damaged:
        print(f"metahyper status: error: {detail}", file=sys.stderr)
    return 2 if damaged else 0
