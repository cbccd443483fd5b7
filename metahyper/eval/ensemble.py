"""Seed ensembles: the per-query probabilities of a model's training seeds averaged, scored as a row.

Design (issue 26): an ensemble spans runs (one per seed) that finish at different times, each
in its own evaluate stage, so it is combined when the report is built, from what each stage
stored, rather than by evaluating several checkpoints together:

* with ``evaluation.seed_ensemble: true`` the evaluate stage wraps every predictor in a
  ``ProbabilityRecorder`` and writes ``evaluate/probabilities.npz`` beside ``results.json``:
  for record i of that file, ``probabilities_<i>`` (float16 [episodes, queries, way], the
  softmax of its logits: ~1e-3 relative rounding, which can only flip a query whose two best
  averaged classes lie that close) and ``labels_<i>`` (int64 [episodes, queries]);
* ``seed_ensembles`` (called by ``metahyper.pipeline.report`` when it writes the report) groups the records
  of one model (the name every seed of a run reports under) on one episode set (same target,
  way, shot, BN mode and episode hash) over at least two seeds, averages their probabilities
  query by query, and scores the argmax per episode. The result is a record of its own, model
  ``<model>+seed_ensemble``, on the same fixed episodes, so the report pairs a hyper ensemble with
  the plain one. It has no single training seed: its ``seed`` is -1 and its config lists the
  members (``evaluation.ensemble_seeds``). Its CI is over episodes only (one ensemble).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from metahyper.atomic import atomic_write
from metahyper.data.episodes import EpisodeSet
from metahyper.meta.predictors import Predictor

PROBABILITIES = "probabilities.npz"
SUFFIX = "+seed_ensemble"
ENSEMBLE_SEED = -1  # an ensemble has no single training seed


class ProbabilityRecorder:
    """Keeps the softmax of every logits tensor the wrapped predictors return, and saves them per
    record (``probabilities.npz``); with ``enabled`` False it wraps and keeps nothing."""

    def __init__(self, enabled: bool = True) -> None:
        self.enabled = enabled
        self.kept: dict[str, list[Tensor]] = {}
        self.records: list[tuple[Tensor, Tensor]] = []  # (probabilities, query labels) per record, in order

    def wrap(self, name: str, predictor: Predictor) -> Predictor:
        """``predictor`` with the same results, its probabilities kept under ``name``."""
        kept = self.kept.setdefault(name, [])

        def keep(logits: Tensor) -> Tensor:
            kept.append(logits.detach().float().softmax(dim=-1).to(torch.float16).cpu())
            return logits

        batch_fn = None if predictor.batch_fn is None else lambda sx, sy, qx: keep(predictor.batch_fn(sx, sy, qx))
        return dataclasses.replace(predictor, fn=lambda sx, sy, qx: keep(predictor.fn(sx, sy, qx)[None])[0],
                                   batch_fn=batch_fn)

    def wrap_all(self, predictors: dict[str, Predictor]) -> dict[str, Predictor]:
        """Every predictor wrapped (``wrap``), or ``predictors`` as they are when not enabled."""
        self.kept = {}
        return {name: self.wrap(name, p) for name, p in predictors.items()} if self.enabled else predictors

    def keep(self, names: list[str], episodes: EpisodeSet) -> None:
        """Close the records of ``names`` (in the order their records are written) scored on ``episodes``:
        their probabilities [episodes, queries, way] with the episodes' query labels."""
        if self.enabled:
            labels = episodes.labels[:, episodes.way * episodes.shot:]
            self.records += [(torch.cat(self.kept[name]), labels) for name in names]

    def save(self, folder: Path) -> None:
        """Write record i's probabilities and query labels as ``probabilities_<i>``/``labels_<i>`` of
        ``folder/probabilities.npz`` (atomically); nothing when not enabled."""
        if not self.enabled:
            return
        arrays = {}
        for i, (p, y) in enumerate(self.records):
            if p.shape[:2] != y.shape:
                raise ValueError(f"record {i}: probabilities {tuple(p.shape)} do not fit labels {tuple(y.shape)}")
            arrays[f"probabilities_{i}"], arrays[f"labels_{i}"] = p.numpy(), y.numpy()
        with atomic_write(folder / PROBABILITIES, "wb") as file:
            np.savez_compressed(file, **arrays)


def _members(folders: list[Path]) -> tuple[list[tuple[dict, np.ndarray, np.ndarray]], list[str]]:
    """(record, probabilities, labels) of every record stored with probabilities, and notes on folders
    whose files do not fit."""
    members, notes = [], []
    for folder in folders:
        if not (folder / PROBABILITIES).is_file():
            continue
        records = json.loads((folder / "results.json").read_text(encoding="utf-8"))
        with np.load(folder / PROBABILITIES, allow_pickle=False) as stored:
            expected = {f"{kind}_{i}" for i in range(len(records)) for kind in ("probabilities", "labels")}
            if set(stored.files) != expected:
                notes.append(f"{folder / PROBABILITIES} does not hold one probability array per record of "
                             "results.json; its records are left out of the seed ensembles")
                continue
            members += [(r, stored[f"probabilities_{i}"], stored[f"labels_{i}"]) for i, r in enumerate(records)]
    return members, notes


def _cell(record: dict) -> tuple:
    return tuple(record[k] for k in ("model", "source", "target", "way", "shot", "bn_mode", "episodes_hash"))


def ensemble_record(group: list[tuple[dict, np.ndarray, np.ndarray]]) -> dict[str, Any]:
    """The record of the seed ensemble of ``group`` (records of one cell, distinct seeds, same labels)."""
    first, _, labels = group[0]
    mean = np.mean([p.astype(np.float64) for _, p, _ in group], axis=0)
    per_episode = (mean.argmax(axis=-1) == labels).mean(axis=-1)
    seeds = sorted(r["seed"] for r, _, _ in group)
    evaluation = {**first["config"].get("evaluation", {}), "ensemble_seeds": seeds,
                  "predictor": f"{first['config'].get('evaluation', {}).get('predictor', 'model')}{SUFFIX}"}
    return {**first, "model": first["model"] + SUFFIX, "per_episode": per_episode.tolist(), "seed": ENSEMBLE_SEED,
            "baseline": None if first.get("baseline") is None else first["baseline"] + SUFFIX,
            "config": {**first["config"], "evaluation": evaluation}}


def seed_ensembles(folders: list[Path]) -> tuple[list[dict[str, Any]], list[str]]:
    """Ensemble records (module docstring) from the evaluate folders ``folders``, and notes on what
    could not be combined."""
    members, notes = _members(folders)
    cells: dict[tuple, list[tuple[dict, np.ndarray, np.ndarray]]] = {}
    for member in members:
        cells.setdefault(_cell(member[0]), []).append(member)
    ensembles = []
    for cell, group in cells.items():
        seeds = [r["seed"] for r, _, _ in group]
        if len(group) < 2:
            continue
        if len(set(seeds)) != len(seeds) or any(not np.array_equal(y, group[0][2]) for _, _, y in group):
            notes.append(f"{cell[0]} on {cell[2]}: its seeds' stored records do not share one episode set with "
                         "distinct seeds; no seed ensemble")
            continue
        ensembles.append(ensemble_record(group))
    return ensembles, notes
