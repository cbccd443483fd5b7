"""What MAML's ``backend: auto`` runs on each device kind, chosen from measured rows.

``backend_choice.json`` (next to this module, shipped in the wheel) maps a device kind (``cpu``,
``cuda``) to the chosen backend and the measurement it came from: date, command, torch version,
and the seconds per meta-iteration of each backend in each timed setup (model, image size,
order). ``benchmarks/speed/maml.py --record FILE`` writes the entry of the device it ran on;
``benchmarks/gpu_check.sh`` records the CUDA entry when a GPU is lent. A device kind without an
entry runs the loop and says so once (INFO on the logger ``metahyper``).

The rule (``choose_backend``): the loop is the reference; another backend replaces it only if it
was faster than the loop in every recorded setup, and of those the one with the least total time
wins. Every backend gives the loop's numbers (the float64 parity tests in tests/meta/), so the
choice changes speed and memory, not results beyond float rounding.
"""

from __future__ import annotations

import json
import logging
from functools import cache
from pathlib import Path

from metahyper.meta.backends import BACKENDS

CHOICE_FILE = Path(__file__).with_name("backend_choice.json")
CANDIDATES = tuple(b for b in BACKENDS if b != "auto")  # the loop first: the reference
# the method label each backend's rows carry in benchmarks/speed/maml.py (and the GPU check's summary)
BENCHMARK_LABELS = {f"metahyper {b}": b for b in CANDIDATES}
LOGGER = logging.getLogger("metahyper")
_UNRECORDED_SAID: set[str] = set()


def choose_backend(rows: list[dict]) -> tuple[str, str]:
    """(backend, why) from ``rows``, each ``{"seconds": {backend: seconds per meta-iteration}, ...}``
    of one timed setup (see the module docstring for the rule)."""
    timed = [row["seconds"] for row in rows if "loop" in row["seconds"]]
    if not timed:
        return "loop", "no row times the loop, which stays"
    faster = [b for b in CANDIDATES[1:] if all(b in t and t[b] < t["loop"] for t in timed)]
    if not faster:
        return "loop", f"no other backend beat the loop in all {len(timed)} timed setups"
    best = min(faster, key=lambda b: sum(t[b] for t in timed))
    return best, f"{best} beat the loop in all {len(timed)} timed setups and took the least total time"


@cache
def recorded(path: Path = CHOICE_FILE) -> dict[str, dict]:
    """device kind -> recorded entry (``{}`` when the file is absent); a ValueError names the file
    and the device kind of an entry whose backend is not one of ``CANDIDATES``."""
    if not path.is_file():
        return {}
    entries = json.loads(path.read_text(encoding="utf-8"))
    for device_type, entry in entries.items():
        if entry.get("backend") not in CANDIDATES:
            raise ValueError(f"{path}: entry {device_type!r} has backend {entry.get('backend')!r}, "
                             f"not one of {CANDIDATES}")
    return entries


def resolve_backend(backend: str, device_type: str = "cpu") -> str:
    """The backend to run: ``backend`` itself, or for ``auto`` the one recorded for ``device_type``
    (the loop when none is recorded)."""
    if backend not in BACKENDS:
        raise ValueError(f"MAML backend must be one of {BACKENDS}, got {backend!r}")
    if backend != "auto":
        return backend
    entry = recorded().get(device_type)
    if entry is not None:
        return entry["backend"]
    if device_type not in _UNRECORDED_SAID:
        _UNRECORDED_SAID.add(device_type)
        LOGGER.info("MAML backend auto on %s: no measured rows for this device kind in %s (benchmarks/gpu_check.sh "
                    "records the CUDA rows); running the loop", device_type, CHOICE_FILE.name)
    return "loop"
