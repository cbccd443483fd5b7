"""Reading TensorBoard event files back with TensorBoard's own reader, and the scalars a JSONL
metrics file should turn into, for the tests of ``logging.tensorboard``."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

needs_tensorboard = pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None,
    reason="tensorboard is not installed (pip install 'metahyper[tensorboard]'); the event files cannot be read")


def read_events(folder: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(step, value)] of every event file in ``folder``, as TensorBoard shows them
    (``EventAccumulator``: files in order, restarts purging the steps they replace)."""
    from tensorboard.backend.event_processing.event_accumulator import SCALARS, EventAccumulator

    accumulator = EventAccumulator(str(folder), size_guidance={SCALARS: 0})  # 0: keep every event
    accumulator.Reload()
    return {tag: [(event.step, event.value) for event in accumulator.Scalars(tag)]
            for tag in accumulator.Tags()["scalars"]}


def expected_scalars(jsonl: Path) -> dict[str, list[tuple[int, float]]]:
    """tag -> [(iteration, value)] written by hand from the JSONL lines: ``<kind>/<key>`` for each
    number (kind ``train`` when a record has none), ``<kind>/<key>/<name>`` inside a mapping."""
    found: dict[str, list[tuple[int, float]]] = {}
    for line in jsonl.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        kind, step = record.get("kind", "train"), record["iteration"]
        for key, value in record.items():
            items = value.items() if isinstance(value, dict) else [(None, value)]
            for name, number in items:
                if key in ("iteration", "kind") or isinstance(number, (str, bool)):
                    continue
                tag = f"{kind}/{key}" if name is None else f"{kind}/{key}/{name}"
                found.setdefault(tag, []).append((step, number))
    return found


def assert_mirrors(folder: Path, jsonl: Path) -> dict[str, list[tuple[int, float]]]:
    """The event files in ``folder`` hold exactly the JSONL's scalars (float32 precision);
    returns them."""
    events, expected = read_events(folder), expected_scalars(jsonl)
    assert sorted(events) == sorted(expected)
    for tag, points in expected.items():
        assert [step for step, _ in events[tag]] == [step for step, _ in points], tag
        assert [value for _, value in events[tag]] == pytest.approx([v for _, v in points], rel=1e-6, abs=1e-30), tag
    return events
