"""``metahyper run SUITE --jobs N [--devices cuda:0,cuda:1]``: a suite's runs side by side here.

A pool of ``N`` slots, slot ``i`` pinned to device ``devices[i % len(devices)]`` (default:
every visible GPU, else the CPU). Each unfinished run becomes one child process
(``python -m metahyper.launch.worker``) in the next free slot, with ``threads`` CPU threads
(default: this machine's cores split evenly between the slots, so CPU jobs do not
oversubscribe) set through ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` and ``torch.set_num_threads``.
CPU results depend on the thread count (reductions run in another order), so a ``--jobs``
run equals a sequential run with the same ``--threads``, byte for byte.

Each child writes ``OUT/runs/<run>/run.log`` (appended to on a rerun). The pool shows one line
per run (redrawn in place on a terminal; in a log, a line per event and the running runs' lines
every ``every`` seconds): waiting, the stage with its iteration, rate and ETA
(``metahyper.launch.status``), done, or failed with its log. A failed run does not stop the
others. Ctrl-C (or SIGTERM) is passed on to the children as SIGTERM, which every worker turns
into an interrupt whatever signal dispositions and mask it inherited (a pool started with SIGINT
ignored, as ``cmd &`` in a script does, still stops them: ``metahyper.launch.worker``); they stop
at once, keeping their last checkpoints, and rerunning the command resumes what is unfinished.
Children run in their own session (a terminal's Ctrl-C reaches only the pool) and, on Linux,
get SIGTERM if the pool's process dies (``worker.end_with_parent``). When every run has ended
the pool builds the report from whatever finished.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

import torch

from metahyper.config import ConfigError
from metahyper.interrupts import stop_signals
from metahyper.launch.status import current, duration, read_json, run_status
from metahyper.launch.worker import POOL_PID_ENV
from metahyper.pipeline.report import rebuild_report
from metahyper.pipeline.runs import Plan, is_done, write_suite_files
from metahyper.pipeline.shared_pretraining import pretraining_siblings
from metahyper.pipeline.stage_files import FAILED, STAGES, stage_dir
from metahyper.pipeline.stages import resolve_device
from metahyper.progress import LOGGER

LOG_NAME = "run.log"
STOP_GRACE_S = 30.0  # how long interrupted children get to exit before they are killed


def visible_devices(suite_device: str) -> list[str]:
    """The default ``--devices``: every visible GPU for ``device: auto`` (else the CPU), or
    the suite's own device."""
    if suite_device != "auto":
        return [str(resolve_device(suite_device))]
    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] or ["cpu"]


def parse_devices(text: str) -> list[str]:
    """``--devices cuda:0,cuda:1`` -> the devices, each checked to exist here (``ConfigError``
    naming the flag otherwise)."""
    names = [name.strip() for name in text.split(",")]
    if not all(names):
        raise ConfigError(f"--devices {text!r}: give device names separated by commas, e.g. cuda:0,cuda:1")
    devices = []
    for name in names:
        try:
            devices.append(str(resolve_device(name)))
        except ConfigError as error:
            raise ConfigError(f"--devices {text!r}: {error}") from None
    repeated = sorted({d for d in devices if devices.count(d) > 1})
    if repeated:
        raise ConfigError(f"--devices {text!r} names {repeated[0]} twice; give each device once and use --jobs for "
                          "several jobs per device")
    return devices


@dataclass
class Child:
    """One run's process in a slot of the pool."""

    run: str
    slot: int
    device: str
    log: Path
    process: subprocess.Popen
    started: float = field(default_factory=time.monotonic)
    started_at: float = field(default_factory=time.time)  # wall clock, to compare with file times
    ended: float | None = None

    @property
    def status(self) -> int | None:
        return self.process.poll()

    def error(self, out: Path) -> str:
        """Why it failed: the error a stage recorded while it ran, else its log's last line."""
        for stage in STAGES:
            path = stage_dir(out, self.run, stage) / FAILED
            failed = read_json(path) if path.is_file() and path.stat().st_mtime >= self.started_at else None
            if failed is not None:
                return failed.get("error", "").rstrip(".")
        text = self.log.read_text(encoding="utf-8", errors="replace") if self.log.is_file() else ""
        lines = text.strip().splitlines()
        return lines[-1].rstrip(".") if lines else ""


def start_child(out: Path, run: str, slot: int, device: str, threads: int, imports: tuple[str, ...]) -> Child:
    """Start ``run``'s worker process (module docstring), its output appended to its log."""
    log = out / "runs" / run / LOG_NAME
    command = [sys.executable, "-m", "metahyper.launch.worker", str(out), run, "--device", device,
               "--threads", str(threads), "--log", str(log)]
    command += [item for module in imports for item in ("--import", module)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "PYTHONUNBUFFERED": "1",
           POOL_PID_ENV: str(os.getpid())}
    with open(log, "a", encoding="utf-8") as handle:
        handle.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} run {run} on {device}, {threads} thread(s) ===\n")
        handle.flush()
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=handle, stderr=subprocess.STDOUT, env=env,
                                   start_new_session=True)
    return Child(run, slot, device, log, process)


def stop_children(children: list[Child], grace_s: float = STOP_GRACE_S) -> None:
    """SIGTERM to every running child (they stop keeping their checkpoints), SIGKILL after ``grace_s``."""
    running = [c for c in children if c.status is None]
    for child in running:
        child.process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + grace_s
    for child in running:
        try:
            child.process.wait(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.process.kill()
            child.process.wait()


class Display:
    """One status line per run: redrawn in place on a terminal every ``refresh`` s, else
    logged every ``every`` s."""

    def __init__(self, stream: TextIO, every: float, refresh: float = 1.0):
        self.stream, self.every, self.refresh = stream, every, refresh
        self.live = stream.isatty()
        self.drawn, self.last, self.lines = 0, time.monotonic(), []

    def _clear(self) -> None:
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F\x1b[J")  # up to the block's first line, clear to the end
            self.drawn = 0

    def _draw(self) -> None:
        self.stream.write("".join(f"{line}\n" for line in self.lines))
        self.drawn = len(self.lines)
        self.stream.flush()

    def event(self, text: str) -> None:
        """A line that stays (a run started, ended or failed)."""
        if self.live:
            self._clear()
            self.stream.write(f"{text}\n")
            self._draw()
        else:
            LOGGER.info(text)

    def due(self) -> bool:
        """Whether ``show`` would print now (the lines cost a look at every running stage)."""
        return time.monotonic() - self.last >= (self.refresh if self.live else self.every)

    def show(self, lines: list[str], running: list[str]) -> None:
        """The current lines (``running``: those of the running runs, which a log gets)."""
        self.lines, self.last = lines, time.monotonic()
        if self.live:
            self._clear()
            self._draw()
        else:
            for line in running:
                LOGGER.info(line)


@dataclass
class PoolResult:
    """What the pool did: the runs that failed (with why) and the report files it wrote."""

    failed: dict[str, str]
    report: list[Path]


class Pool:
    """The slots, the queue of runs and the children (module docstring)."""

    def __init__(self, plan: Plan, devices: list[str], jobs: int, threads: int, imports: tuple[str, ...],
                 display: Display):
        self.out, self.name, self.suite = plan.ws.out, plan.ws.suite.name, plan.ws.suite
        self.slots = [devices[i % len(devices)] for i in range(jobs)]
        self.threads, self.imports, self.display = threads, imports, display
        self.runs = plan.unfinished()
        self.queue, self.children, self.failed = list(self.runs), [], {}

    def line(self, run: str) -> str:
        """A run's status line."""
        child = next((c for c in reversed(self.children) if c.run == run), None)
        if child is None:
            state = "waiting"
        elif child.ended is None:
            state = current(run_status(self.out, run))
            state = "finishing" if state == "done" else state
        elif run in self.failed:
            state = f"FAILED (exit status {child.status}); log: {child.log}"
        else:
            state = f"done in {duration(child.ended - child.started)}"
        width = max(len(r) for r in self.runs)
        return f"[{self.name}] {run:<{width}} {child.device if child else '':<7} {state}"

    def startable(self, run: str) -> bool:
        """Whether ``run`` may start: not while a run sharing its pretraining
        (``metahyper.pipeline.shared_pretraining``) is running and has not finished that stage,
        so the shared pretraining is done once and then linked."""
        siblings = set(pretraining_siblings(self.suite, run))
        return not any(c.ended is None and c.run in siblings and not is_done(self.suite, self.out, c.run, "pretrain")
                       for c in self.children)

    def fill(self) -> None:
        """Start queued runs in the free slots (the first queued run that may start)."""
        busy = {c.slot for c in self.children if c.ended is None}
        for slot, device in enumerate(self.slots):
            ready = [run for run in self.queue if self.startable(run)]
            if slot not in busy and ready:
                self.queue.remove(ready[0])
                child = start_child(self.out, ready[0], slot, device, self.threads, self.imports)
                self.children.append(child)
                self.display.event(f"[{self.name}] {child.run}: started on {device} ({self.threads} thread(s)); "
                                   f"log: {child.log}")

    def reap(self) -> None:
        """Note the children that ended."""
        for child in self.children:
            if child.ended is None and child.status is not None:
                child.ended = time.monotonic()
                if child.status == 0:
                    self.display.event(self.line(child.run))
                else:
                    self.failed[child.run] = f"exit status {child.status}: {child.error(self.out)}; log: {child.log}"
                    self.display.event(f"[{self.name}] {child.run}: FAILED ({self.failed[child.run]})")

    def run(self, poll_s: float = 0.2) -> None:
        """Until every run has ended."""
        while self.queue or any(c.ended is None for c in self.children):
            self.fill()
            time.sleep(poll_s)
            self.reap()
            if self.display.due():
                running = [c.run for c in self.children if c.ended is None]
                self.display.show([self.line(r) for r in self.runs], [self.line(r) for r in running])


def run_pool(plan: Plan, *, jobs: int, devices: list[str], threads: int, imports: tuple[str, ...] = (),
             whole: bool = True, every: float = 30.0, stream: TextIO | None = None) -> PoolResult:
    """Run ``plan``'s unfinished runs in a pool (module docstring), then build the report.
    ``whole``: the plan covers the whole suite (its ``suite.yaml`` is rewritten)."""
    write_suite_files(plan, whole=whole)
    pool = Pool(plan, devices, jobs, threads, imports, Display(stream or sys.stderr, every))
    with stop_signals():  # SIGTERM too stops the children
        try:
            pool.run()
        except KeyboardInterrupt:
            stop_children(pool.children)
            raise
    return PoolResult(pool.failed, _report(plan))


def _report(plan: Plan) -> list[Path]:
    """The suite folder's report, when its stages include evaluate and a run finished it."""
    if "evaluate" not in plan.stages:
        return []
    try:
        return rebuild_report(plan.ws.out)
    except ConfigError as error:
        LOGGER.info(f"[{plan.ws.suite.name}] no report: {error}")
        return []
