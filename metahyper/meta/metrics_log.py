"""Metrics as JSON lines: one record per line, appended as training goes.

After a resume, ``truncate_after(iteration)`` drops the records a killed run wrote after its
last checkpoint (and a torn last line), so the file reads as if the run had never stopped.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from metahyper.atomic import write_text_atomic


class MetricsLog:
    """Appends records to ``path`` (a ``.jsonl`` file); does nothing when ``enabled`` is false."""

    def __init__(self, path: str | os.PathLike, enabled: bool = True):
        self.path = Path(path)
        self.enabled = enabled

    def append(self, record: Mapping[str, Any]) -> None:
        """Write ``record`` as one JSON line (non-finite floats are refused: strict JSON)."""
        if not self.enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(dict(record), allow_nan=False) + "\n")

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
        """Keep only records whose ``iteration`` is <= ``iteration`` (atomic rewrite)."""
        if not self.enabled or not self.path.exists():
            return
        kept = [r for r in self.read() if r.get("iteration", 0) <= iteration]
        write_text_atomic(self.path, "".join(json.dumps(r, allow_nan=False) + "\n" for r in kept))
