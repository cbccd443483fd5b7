"""Seed ensembles: the recorder keeps each predictor's probabilities without changing its logits,
and the report-time ensemble averages the seeds' probabilities query by query (a hand-made case
where the average disagrees with one member), refuses mismatched files, and pairs like any row."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from metahyper.data import EpisodeSet
from metahyper.eval.ensemble import PROBABILITIES, ProbabilityRecorder, seed_ensembles
from metahyper.meta.predictors import Predictor


def _record(model, seed, baseline=None):
    return {"model": model, "source": "s", "target": "t", "way": 2, "shot": 1, "bn_mode": "transductive",
            "per_episode": [0.5, 0.5], "episodes_hash": "h", "seed": seed, "baseline": baseline,
            "config": {"evaluation": {"predictor": "protonet"}}}


def _folder(tmp_path, name, records, probabilities, labels):
    folder = tmp_path / name / "evaluate"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text(json.dumps(records))
    arrays = {f"{kind}_{i}": a for i, (p, y) in enumerate(zip(probabilities, labels))
              for kind, a in (("probabilities", p), ("labels", y))}
    np.savez(folder / PROBABILITIES, **arrays)
    return folder


LABELS = np.array([[1, 0], [0, 1]])  # 2 episodes, 2 queries each


def test_the_ensemble_averages_probabilities_and_can_beat_each_member(tmp_path):
    # seed 0 is confident and wrong on episode 0's first query, seed 1 mildly right: the average is right
    p0 = np.array([[[0.9, 0.1], [0.6, 0.4]], [[0.7, 0.3], [0.45, 0.55]]], dtype=np.float16)
    p1 = np.array([[[0.05, 0.95], [0.8, 0.2]], [[0.4, 0.6], [0.6, 0.4]]], dtype=np.float16)
    folders = [_folder(tmp_path, f"r{s}", [_record("pn", s)], [p], [LABELS]) for s, p in ((0, p0), (1, p1))]
    records, notes = seed_ensembles(folders)
    assert notes == [] and len(records) == 1
    (ensemble,) = records
    # average: ep 0 q0 [0.475, 0.525] -> 1 right, q1 [0.7, 0.3] -> 0 right; ep 1 q0 [0.55, 0.45] -> 0 right,
    # q1 [0.525, 0.475] -> 0 wrong
    assert ensemble["per_episode"] == [1.0, 0.5]
    assert ensemble["model"] == "pn+seed_ensemble" and ensemble["seed"] == -1
    assert ensemble["config"]["evaluation"] == {"predictor": "protonet+seed_ensemble", "ensemble_seeds": [0, 1]}


def test_one_seed_makes_no_ensemble_and_mismatched_files_are_noted(tmp_path):
    p = np.full((2, 2, 2), 0.5, dtype=np.float16)
    lone = _folder(tmp_path, "lone", [_record("pn", 0)], [p], [LABELS])
    assert seed_ensembles([lone]) == ([], [])
    other = _folder(tmp_path, "other", [_record("pn", 1)], [p], [1 - LABELS])
    records, notes = seed_ensembles([lone, other])
    assert records == [] and "do not share one episode set" in notes[0]
    broken = _folder(tmp_path, "broken", [_record("pn", 2), _record("pn+x", 2)], [p], [LABELS])
    assert "one probability array per record" in seed_ensembles([broken])[1][0]


def test_hyper_ensembles_keep_their_pairing(tmp_path):
    p = np.full((2, 2, 2), 0.5, dtype=np.float16)
    folders = [_folder(tmp_path, f"r{s}", [_record("hyper_pn", s, baseline="pn")], [p], [LABELS]) for s in (0, 1)]
    (ensemble,), _ = seed_ensembles(folders)
    assert ensemble["baseline"] == "pn+seed_ensemble"


def test_the_recorder_keeps_softmax_probabilities_in_order_and_returns_the_logits_unchanged(tmp_path):
    calls = []

    def predict_tasks(sx, sy, qx):
        logits = torch.arange(len(sx) * 2 * 2, dtype=torch.float32).view(len(sx), 2, 2) + 10 * len(calls)
        calls.append(logits)
        return logits

    predictor = Predictor(lambda sx, sy, qx: predict_tasks(sx[None], sy[None], qx[None])[0], "p", "transductive",
                          batch_fn=predict_tasks)
    recorder = ProbabilityRecorder()
    wrapped = recorder.wrap_all({"m": predictor})["m"]
    x, y = torch.zeros(3, 2, 1, 2, 2), torch.zeros(3, 2, dtype=torch.long)
    assert torch.equal(wrapped.batch_fn(x, y, x), calls[-1]) and torch.equal(wrapped(x[0], y[0], x[0]), calls[-1][0])
    episodes = EpisodeSet(torch.zeros(4, 4, dtype=torch.long), torch.tensor([[0, 1, 1, 0]] * 4), 2, 1, 1, 0, "test",
                          "fp")
    recorder.keep(["m"], episodes)
    (probabilities, labels), = recorder.records
    expected = torch.cat([calls[0].softmax(-1), calls[1][:1].softmax(-1)]).half()
    assert torch.equal(probabilities, expected) and torch.equal(labels, torch.tensor([[1, 0]] * 4))
    recorder.save(tmp_path)
    with np.load(tmp_path / PROBABILITIES) as stored:
        assert set(stored.files) == {"probabilities_0", "labels_0"}
    disabled = ProbabilityRecorder(enabled=False)
    assert disabled.wrap_all({"m": predictor})["m"] is predictor
    disabled.save(tmp_path / "nothing")  # writes nothing
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(ValueError, match="do not fit labels"):
        bad = ProbabilityRecorder()
        bad.records = [(torch.zeros(2, 3, 2), torch.zeros(2, 2))]
        bad.save(tmp_path)
