"""One run of a suite folder in its own process: what every launcher starts, once per run.

``run_one(out, run)`` does the run's unfinished stages in ``out`` from the run's own config
(``OUT/runs/<run>/config.yaml``, written by the launcher before it starts any process), on
``device`` with ``threads`` CPU threads (default: ``metahyper.threads.process_threads``), and
builds no report (the launcher builds one when every run is done). Stages are locked while they
run (``metahyper.pipeline.runs``), so the processes of one suite folder never work on the same stage.

``python -m metahyper.launch.worker OUT RUN [--device D] [--threads N] [--log FILE]
[--import MODULE]`` is the local pool's child process; its exit status is the command's
(0 done, 2 a user error such as a held stage, 1 a non-finite loss or a crash, 130 interrupted).
SIGTERM and SIGINT stop it as an interrupt whatever signal dispositions and mask it inherited
(``metahyper.interrupts.stop_signals(force=True)``): a pool started from a script with SIGINT
ignored still stops its workers. Like ``python -m metahyper.cli``, it does not import a suite's
modules from the working directory (``metahyper.plugins.drop_working_directory``).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from pathlib import Path

import torch

from metahyper.allocator import keep_freed_memory
from metahyper.exits import guarded
from metahyper.interrupts import stop_signals
from metahyper.pipeline.runs import run_suite
from metahyper.plugins import drop_working_directory, import_user_code
from metahyper.progress import use_cli_logging
from metahyper.suite.config import load_suite
from metahyper.threads import process_threads

POOL_PID_ENV = "METAHYPER_POOL_PID"  # set by the local pool: the pid this process must not outlive


def end_with_parent() -> None:
    """Linux: SIGTERM to this process when the pool that started it dies (``POOL_PID_ENV``), so
    no orphaned run keeps its device; exits at once if the pool has died already."""
    pool = os.environ.get(POOL_PID_ENV)
    if pool is None or not sys.platform.startswith("linux"):
        return
    ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    if os.getppid() != int(pool):
        raise SystemExit(f"metahyper worker: the pool (pid {pool}) that started this run has ended")


def run_one(out: str | os.PathLike, run: str, *, device: str | None = None, threads: int | None = None,
            imports: tuple[str, ...] = (), log_file: Path | None = None) -> None:
    """Every unfinished stage of ``run`` in the suite folder ``out`` (module docstring);
    ``imports`` are a user's modules (``--import``); ``log_file`` is named by a failed stage."""
    use_cli_logging()
    import_user_code(imports)
    torch.set_num_threads(threads or process_threads())  # a SLURM job without --cpus: what its cgroup allows
    keep_freed_memory()
    suite = load_suite(Path(out) / "runs" / run / "config.yaml")
    run_suite(suite, out, runs=[run], device=device, report=False, progress=False, log_file=log_file)


def main(argv: list[str] | None = None) -> int:
    """The child process of ``metahyper run --jobs``; returns its exit status."""
    parser = argparse.ArgumentParser(prog="metahyper worker", description="Run one run of a suite folder.")
    parser.add_argument("out", type=Path, help="the suite folder (written by the launcher)")
    parser.add_argument("run", help="the run's name (a folder in OUT/runs)")
    parser.add_argument("--device", help="the device (default: the suite's)")
    parser.add_argument("--threads", type=int, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--log", type=Path, help="this process's log file, named when a stage fails")
    parser.add_argument("--import", dest="imports", action="append", default=[], metavar="MODULE")
    args = parser.parse_args(argv)
    drop_working_directory()
    end_with_parent()

    def work() -> int:
        run_one(args.out, args.run, device=args.device, threads=args.threads, imports=tuple(args.imports),
                log_file=args.log)
        return 0

    with stop_signals(force=True):  # the pool's SIGTERM stops it, whatever it inherited
        return guarded(parser.prog, work)


if __name__ == "__main__":
    sys.exit(main())
