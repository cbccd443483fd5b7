"""Bits per character, truncated-BPTT training, resume, sampling and the language-model suite."""

from __future__ import annotations

import json
import math

import pytest
import torch
import torch.nn.functional as F
from cli_run import run_cli
from tb_events import assert_mirrors, needs_tensorboard

from metahyper import cli
from metahyper.lm.data import Corpus
from metahyper.lm.model import CharLM
from metahyper.lm.sample import generate
from metahyper.lm.train import LMConfig, stream_bpc, train_lm

VOCAB = tuple("abcdefg")


def corpus(n: int = 3000, seed: int = 0) -> Corpus:
    """A learnable stream: 'abcdefg' repeated with every tenth symbol random."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.arange(n) % len(VOCAB)
    noisy = torch.rand(n, generator=gen) < 0.1
    ids[noisy] = torch.randint(0, len(VOCAB), (int(noisy.sum()),), generator=gen)
    return Corpus("toy", VOCAB, ids[: n * 8 // 10], ids[n * 8 // 10: n * 9 // 10], ids[n * 9 // 10:])


def tiny(cell: str = "hyper_lstm", vocab: int = len(VOCAB)) -> CharLM:
    torch.manual_seed(0)
    return CharLM(vocab, cell, hidden_size=8, input_size=4, hyper_size=4, embedding_size=2)


@pytest.mark.parametrize("vocab", [7, 50, 205])
def test_uniform_model_scores_log2_vocab(vocab):
    model = tiny("lstm", vocab)
    with torch.no_grad():
        model.classifier.weight.zero_(), model.classifier.bias.zero_()
    stream = torch.randint(0, vocab, (1001,), generator=torch.Generator().manual_seed(0))
    for batch in (1, 3, 16):
        assert stream_bpc(model, stream, batch, seq_len=7) == pytest.approx(math.log2(vocab), rel=1e-6)


def test_stream_bpc_carries_state_within_each_piece():
    """Hand reference: each of the pieces read one character at a time from a zero state."""
    model = tiny().eval()
    stream = torch.randint(0, 7, (23,), generator=torch.Generator().manual_seed(1))
    pieces, n = 3, 22  # 22 predictions in pieces of ceil(22/3) = 8, 8, 6
    total = 0.0
    with torch.no_grad():
        for start in range(0, n, 8):
            state = None
            for t in range(start, min(start + 8, n)):
                logits, state = model(stream[t:t + 1].view(1, 1), state)
                total += F.cross_entropy(logits[0], stream[t + 1:t + 2]).item()
    assert stream_bpc(model, stream, pieces, seq_len=3) == pytest.approx(total / n / math.log(2), rel=1e-6)


def test_training_learns_and_resume_continues_with_the_same_numbers(tmp_path):
    data = corpus()
    cfg = LMConfig(steps=30, seq_len=10, batch_size=8, eval_every=10, eval_batch_size=4, log_every=5,
                   checkpoint_every=10, seed=3)
    straight = tiny()
    result = train_lm(straight, data, cfg, tmp_path / "straight", progress=False)
    assert result.test_bpc < math.log2(len(VOCAB)) - 0.3  # learnt the cycle beyond uniform
    interrupted = tiny()
    train_lm(interrupted, data, LMConfig(**{**cfg.__dict__, "steps": 20}), tmp_path / "resumed",
             config_hash="same", progress=False)
    resumed = tiny()
    again = train_lm(resumed, data, cfg, tmp_path / "resumed", resume=True, config_hash="same", progress=False)
    straight_state = torch.load(tmp_path / "straight" / "checkpoint.pt", weights_only=True)["model"]
    resumed_state = torch.load(tmp_path / "resumed" / "checkpoint.pt", weights_only=True)["model"]
    for name, value in straight_state.items():
        assert torch.equal(value, resumed_state[name]), name
    assert again.test_bpc == result.test_bpc
    records = [json.loads(line) for line in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    assert [r["iteration"] for r in records if r["kind"] == "val"] == [10, 20, 30]


@needs_tensorboard
def test_training_mirrors_its_metrics_into_tensorboard(tmp_path):
    cfg = LMConfig(steps=10, seq_len=10, batch_size=8, eval_every=5, eval_batch_size=4, log_every=5,
                   checkpoint_every=10)
    train_lm(tiny(), corpus(), cfg, tmp_path, progress=False, tensorboard=True)
    events = assert_mirrors(tmp_path / "tb", tmp_path / "metrics.jsonl")
    assert [step for step, _ in events["val/bpc"]] == [5, 10] and [s for s, _ in events["train/bpc"]] == [5, 10]


def test_generate_reports_weight_changes_only_for_a_hyperlstm():
    model = tiny()
    ids, changes = generate(model, [0, 1], 12, seed=0)
    assert changes == [0.0] * 12  # at initialisation every scaling vector is the constant 0.1
    with torch.no_grad():
        model.cells[0].z_weight.normal_(generator=torch.Generator().manual_seed(0))
    ids, changes = generate(model, [0, 1], 12, seed=0)
    assert len(ids) == 12 and len(changes) == 12 and min(changes) > 0
    assert generate(model, [0, 1], 12, seed=0) == (ids, changes)
    assert generate(tiny("ln_lstm"), [0], 5)[1] is None


def test_weight_change_equals_the_explicit_matrix_difference():
    """Hand reference: || diag(d_t) W - diag(d_{t-1}) W ||_F over gates and both kinds."""
    model = tiny().eval()  # as generate runs it: no dropout
    cell = model.cells[0]
    with torch.no_grad():
        cell.z_weight.normal_(generator=torch.Generator().manual_seed(1))
    ids, changes = generate(model, [2], 1, seed=0)
    state, scales = model.initial_state(1), []
    with torch.no_grad():
        for token in (2, ids[0]):
            x_part = cell.project_input(model.embedding(torch.tensor([token])))
            _, state[0], d = cell.step_with_scales(x_part, state[0])
            scales.append(d[:, :, 0])
        total = 0.0
        for k in range(4):
            rows = slice(k * 8, (k + 1) * 8)
            for kind, weight in ((0, cell.main.weight_h), (1, cell.main.weight_x)):
                before = torch.diag(scales[0][kind, k]) @ weight[rows]
                after = torch.diag(scales[1][kind, k]) @ weight[rows]
                total += float(((after - before) ** 2).sum())
    assert changes[0] == pytest.approx(math.sqrt(total), rel=1e-5)


SUITE = """\
kind: language_model
name: lm-smoke
data: {{dataset: text, root: {root}, options: {{file: tiny.txt, split: [0.8, 0.1, 0.1]}}}}
seeds: [0, 1]
device: cpu
train: {{steps: 3, seq_len: 8, batch_size: 4, eval_every: 3, eval_batch_size: 4, log_every: 1, checkpoint_every: 3}}
models:
  - {{label: LSTM, cell: lstm, options: {{hidden_size: 8, input_size: 4}}}}
  - {{label: HyperLSTM, cell: hyper_lstm, options: {{hidden_size: 8, input_size: 4, hyper_size: 4, embedding_size: 2}}}}
sample: {{length: 40, prime: "Th", temperature: 1.0}}
"""


def test_language_model_suite_runs_from_the_command_line(tmp_path, capsys):
    (tmp_path / "tiny.txt").write_text("The quick brown fox jumps over the lazy dog. " * 60, encoding="utf-8")
    suite = tmp_path / "suite.yaml"
    suite.write_text(SUITE.format(root=tmp_path), encoding="utf-8")
    assert cli.main(["run", str(suite), "--out", str(tmp_path / "out")]) == 0
    report = (tmp_path / "out" / "report.md").read_text(encoding="utf-8")
    assert "| HyperLSTM | hyper_lstm |" in report and "weight_changes_HyperLSTM.png" in report
    assert (tmp_path / "out" / "weight_changes_HyperLSTM.png").stat().st_size > 0
    rows = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert len(rows) == 4 and all(row["test_bpc"] > 0 for row in rows)
    capsys.readouterr()
    status, _, err = run_cli(capsys, "run", str(suite),
                             "models=[{label: A, cell: lstm, options: {hidden_size: 8, width: 3}}]")
    assert status == 2 and "models[0].options.width" in err
    status, _, err = run_cli(capsys, "run", str(suite), f"data.root={tmp_path / 'missing'}")
    assert status == 2 and "data.root" in err


@pytest.mark.parametrize("name", ["lm-tinyshakespeare", "ha-ptb-char", "ha-enwik8"])
def test_shipped_language_model_suites_validate(name, tmp_path):
    from metahyper.lm.suite import load_lm_suite
    from metahyper.suite.config import suite_path

    suite = load_lm_suite(suite_path(name), [f"data.root={tmp_path}"])
    assert suite.kind == "language_model" and len(suite.models) >= 3
    assert {m.cell for m in suite.models} == {"lstm", "ln_lstm", "hyper_lstm"}
