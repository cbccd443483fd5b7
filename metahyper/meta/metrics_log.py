"""Metrics as JSON lines: one record per line, appended as training goes; optionally mirrored
into TensorBoard event files.

After a resume, ``truncate_after(iteration)`` drops the records a killed run wrote after its
last checkpoint (and a torn last line), so the file reads as if the run had never stopped.

The JSONL file is the source of truth. With ``tensorboard=True`` every record appended is also
written, as scalars, to event files in ``tb/`` beside the JSONL file (``TensorBoardSink``); on a
start or resume (``truncate_after``) the sink replaces the event files by one that replays the
records the JSONL file kept, so the event files show exactly what the JSONL holds, also when
TensorBoard logging is turned on or off between a run and its resume.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from metahyper.atomic import write_text_atomic
from metahyper.config import ConfigError
from metahyper.files import disk_full, write_failed

TENSORBOARD_DIR = "tb"
META_TRAIN_LOG = "metrics.jsonl"  # the meta-training loop's log in its run folder (metahyper.meta.train)
PRETRAIN_LOG = "pretrain_metrics.jsonl"  # pretraining's (metahyper.meta.pretrain)


@dataclass(frozen=True)
class LoggingConfig:
    """Where a suite's metrics go besides the JSONL files (a suite's ``logging`` section).

    ``tensorboard``: mirror them into TensorBoard event files (``tb/`` beside each JSONL file;
    needs ``pip install 'metahyper[tensorboard]'``). Never part of a run's config hash, so
    turning it on or off does not redo or refuse finished and resumable runs.
    """

    tensorboard: bool = False

    def check(self) -> None:
        """Raise ``ConfigError`` (before any work) when a sink it asks for cannot be used."""
        if self.tensorboard:
            require_tensorboard()


def require_tensorboard() -> type:
    """``torch.utils.tensorboard.SummaryWriter``; ``ConfigError`` naming the extra to install
    when the ``tensorboard`` package is missing."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError as error:
        raise ConfigError(f"TensorBoard logging (logging.tensorboard: true, --tensorboard) needs the tensorboard "
                          f"package, which is not installed ({error}); install it with: "
                          "pip install 'metahyper[tensorboard]'") from None
    return SummaryWriter


def scalars(record: Mapping[str, Any]) -> tuple[int, dict[str, float]]:
    """(step, tag -> value) of a record: its ``iteration`` is the step; every other number is a
    scalar tagged ``<kind>/<key>`` (``kind`` defaults to ``train``; nested mappings such as
    ``movement`` add ``/<key>`` levels). Strings (``kind``, ``split``) and booleans are left out."""
    if "iteration" not in record:
        raise ValueError(f"a metrics record needs an 'iteration' (its TensorBoard step), got keys {sorted(record)}")
    found: dict[str, float] = {}

    def add(prefix: str, value: Any) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                add(f"{prefix}/{key}", item)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            found[prefix] = float(value)

    kind = record.get("kind", "train")
    for key, value in record.items():
        if key not in ("iteration", "kind"):
            add(f"{kind}/{key}", value)
    return int(record["iteration"]), found


class TensorBoardSink:
    """Writes metrics records as scalars to TensorBoard event files in ``folder``, flushed as
    each record arrives (a killed run's event file holds what its JSONL file holds)."""

    def __init__(self, folder: str | os.PathLike):
        self.folder = Path(folder)
        self._summary_writer = require_tensorboard()
        self._writer: Any = None

    def restart(self, records: list[dict[str, Any]]) -> None:
        """Replace the folder's event files by a new one that holds ``records``. It starts with
        a restart marker at step 0 (``purge_step=0``), so a TensorBoard that had read the old
        files drops what it showed from them."""
        self.close()
        for old in self.folder.glob("events.out.tfevents.*"):
            old.unlink()
        self._writer = self._summary_writer(str(self.folder), purge_step=0)
        for record in records:
            self._write(record)
        self._writer.flush()

    def add(self, record: Mapping[str, Any]) -> None:
        """Write one record (opening an event file first if none is open) and flush it."""
        if self._writer is None:
            self._writer = self._summary_writer(str(self.folder))
        self._write(record)
        self._writer.flush()

    def _write(self, record: Mapping[str, Any]) -> None:
        step, values = scalars(record)
        for tag, value in values.items():
            self._writer.add_scalar(tag, value, step)

    def close(self) -> None:
        """Flush and close the open event file, if any."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def last_record(path: str | os.PathLike, tail_bytes: int = 1 << 16) -> dict[str, Any] | None:
    """The last complete record of a JSONL file, read from its end (cheap on a long log; for
    status lines while a run appends), or None when there is none."""
    try:
        with open(path, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - tail_bytes))
            tail = handle.read()
    except OSError:
        return None
    for line in reversed(tail.splitlines()):
        try:
            record = json.loads(line)
        except ValueError:  # a torn last line, or the cut first one
            continue
        if isinstance(record, dict):
            return record
    return None


class MetricsLog:
    """Appends records to ``path`` (a ``.jsonl`` file); does nothing when ``enabled`` is false.
    ``tensorboard=True`` mirrors the records into ``tb/`` beside ``path`` (``TensorBoardSink``;
    ``ConfigError`` here when the ``tensorboard`` package is missing)."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True, tensorboard: bool = False):
        self.path = Path(path)
        self.enabled = enabled
        self.sink = TensorBoardSink(self.path.parent / TENSORBOARD_DIR) if enabled and tensorboard else None

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one JSON line (non-finite floats are refused: strict JSON) and
        to the TensorBoard sink, if any."""
        if not self.enabled:
            return
        line = json.dumps(dict(record), allow_nan=False) + "\n"
        if self.sink is not None:  # first: a record it refuses (no iteration) reaches neither file
            self.sink.add(record)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self.path.open("a", encoding="utf-8") as handle:
                handle.write(line)
        except OSError as error:  # a torn line is skipped by ``read``; a full disk is named
            if disk_full(error):
                raise write_failed(self.path, error) from None
            raise

    def read(self) -> list[dict[str, Any]]:
        """All complete records (a torn last line is skipped)."""
        if not self.path.exists():
            return []
        records = []
        for line in self.path.read_text(encoding="utf-8").splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                continue
        return records

    def truncate_after(self, iteration: int) -> None:
        """Keep only records whose ``iteration`` is <= ``iteration`` (atomic rewrite); the
        TensorBoard sink restarts from the kept records."""
        if not self.enabled:
            return
        kept = [r for r in self.read() if r.get("iteration", 0) <= iteration]
        if self.path.exists():
            write_text_atomic(self.path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept))
        if self.sink is not None:
            self.sink.restart(kept)

    def close(self) -> None:
        """Close the TensorBoard sink's event file (the JSONL file is never held open)."""
        if self.sink is not None:
            self.sink.close()
