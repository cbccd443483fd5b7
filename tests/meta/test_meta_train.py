"""Meta-training loop: resume after SIGKILL, atomic checkpoints, non-finite loss, lr schedule."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from maml_toys import FakeSampler, TinyHyperNet, to_float

from metahyper.checkpoint import CheckpointError, load_checkpoint
from metahyper.meta.maml import MamlConfig
from metahyper.meta.metrics_log import MetricsLog
from metahyper.meta.train import MetaTrainConfig, NonFiniteLossError, lr_factor, meta_train

SCRIPT = Path(__file__).parent / "meta_train_script.py"
# How long a child process may take to start (import torch) and train a few tiny iterations. Not a
# speed check: only a guard against a hang, generous because a loaded 2-core machine has needed
# more than two minutes for it.
PROCESS_LIMIT_S = 600
CFG = MetaTrainConfig(
    iterations=4, meta_batch=2, checkpoint_every=2, diagnostics_every=2, maml=MamlConfig(inner_steps=1, inner_lr=0.1)
)


def _script(run_dir: Path, *args: str) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(run_dir), *args], env=env)


def _finish(proc: subprocess.Popen) -> None:
    assert proc.wait(timeout=PROCESS_LIMIT_S) == 0


def test_killed_run_resumes_bit_identically(tmp_path):
    unbroken, killed = tmp_path / "unbroken", tmp_path / "killed"
    reference = _script(unbroken)
    victim = _script(killed, "--hang-at", "8")
    deadline = time.monotonic() + PROCESS_LIMIT_S
    while not (killed / "hanging").exists():
        assert victim.poll() is None and time.monotonic() < deadline, "the run to kill ended early"
        time.sleep(0.05)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert load_checkpoint(killed / "checkpoint.pt")["iteration"] == 6
    assert [r["iteration"] for r in MetricsLog(killed / "metrics.jsonl").read()][-1] == 8
    _finish(_script(killed, "--resume"))
    _finish(reference)
    final, expected = load_checkpoint(killed / "checkpoint.pt"), load_checkpoint(unbroken / "checkpoint.pt")
    assert final["iteration"] == expected["iteration"] == 12
    for name, tensor in expected["model"].items():
        assert torch.equal(final["model"][name], tensor), name
    assert str(final["optimizer"]) == str(expected["optimizer"]) and final["scheduler"] == expected["scheduler"]
    assert MetricsLog(killed / "metrics.jsonl").read() == MetricsLog(unbroken / "metrics.jsonl").read()


def _train(run_dir: Path, cfg: MetaTrainConfig = CFG, transform=None, **kw):
    torch.manual_seed(0)
    model = TinyHyperNet().double()
    transform = transform or (lambda x, generator: to_float(x))
    return model, meta_train(model, FakeSampler(seed=1), transform, cfg, run_dir, progress=False, **kw)


def test_crash_during_checkpoint_write_keeps_previous(tmp_path, monkeypatch):
    real_save, calls = torch.save, []

    def save_then_crash(obj, handle):
        calls.append(1)
        if len(calls) == 2:
            handle.write(b"partial checkpoint")
            raise OSError("disk full")
        real_save(obj, handle)

    monkeypatch.setattr(torch, "save", save_then_crash)
    with pytest.raises(OSError, match="disk full"):
        _train(tmp_path)
    assert load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "metrics.jsonl"]


def test_non_finite_loss_names_iteration_and_keeps_checkpoint(tmp_path):
    calls = []

    def poisoned(x, generator):
        calls.append(1)
        return to_float(x) * (float("nan") if len(calls) == 5 else 1.0)  # iteration 3's support

    with pytest.raises(NonFiniteLossError, match="iteration 3 .*last good checkpoint"):
        _train(tmp_path, transform=poisoned)
    state = load_checkpoint(tmp_path / "checkpoint.pt")
    assert state["iteration"] == 2 and all(torch.isfinite(t).all() for t in state["model"].values())
    assert [r["iteration"] for r in MetricsLog(tmp_path / "metrics.jsonl").read()] == [1, 2]


def test_non_finite_loss_before_the_first_checkpoint_says_none_exists(tmp_path):
    def poisoned(x, generator):
        return to_float(x) * float("nan")  # iteration 1

    with pytest.raises(NonFiniteLossError, match="iteration 1 .*No checkpoint of this run exists yet") as error:
        _train(tmp_path, transform=poisoned)
    assert "last good checkpoint" not in str(error.value)
    assert not (tmp_path / "checkpoint.pt").exists()


def test_resume_prints_the_iteration_and_the_checkpoint(tmp_path, capsys):
    _train(tmp_path, MetaTrainConfig(**{**CFG.__dict__, "iterations": 2}))
    _train(tmp_path, resume=True, force=True, name="meta-train of toy")  # 4 iterations now: another hash
    expected = f"resuming meta-train of toy from iteration 2 (checkpoint {tmp_path / 'checkpoint.pt'})"
    assert expected in capsys.readouterr().err


def test_rerunning_a_finished_run_says_it_is_finished(tmp_path, capsys):
    _train(tmp_path)
    capsys.readouterr()
    _, record = _train(tmp_path, resume=True)  # a README example run a second time
    err = capsys.readouterr().err
    checkpoint = tmp_path / "checkpoint.pt"
    assert f"meta-training is already finished (iteration 4/4, checkpoint {checkpoint}); nothing to do" in err
    assert "resuming" not in err and record["iteration"] == 4


def test_resume_refuses_other_config_unless_forced(tmp_path):
    _train(tmp_path)
    with pytest.raises(FileExistsError, match="resume=True"):
        _train(tmp_path)
    longer = MetaTrainConfig(**{**CFG.__dict__, "iterations": 6})
    with pytest.raises(CheckpointError, match="force=True"):
        _train(tmp_path, longer, resume=True)
    _, record = _train(tmp_path, longer, resume=True, force=True)
    assert record["iteration"] == 6 and load_checkpoint(tmp_path / "checkpoint.pt")["iteration"] == 6


def test_log_records_diagnostics(tmp_path):
    _train(tmp_path)
    records = MetricsLog(tmp_path / "metrics.jsonl").read()
    assert [r["iteration"] for r in records] == [1, 2, 3, 4]
    assert "movement" not in records[0] and set(records[1]["norm_grad_ratio"]) == {"hypernet", "classifier"}
    assert {"param/emb1", "param/classifier.weight"} <= set(records[1]["movement"])
    # ||W|| of every weight at the start of the inner loop: the layers the inner loop adapts
    # (classifier) and those it leaves (stem, batch norm) alike
    norms = records[1]["weight_norm"]
    assert {"param/stem.weight", "param/bn0.weight", "param/classifier.weight"} <= set(norms)
    assert "weight_norm" not in records[0] and all(v > 0 for v in norms.values())


def test_lr_schedule_halves_every_period_down_to_floor():
    factor = lr_factor(MetaTrainConfig())
    assert [factor(i) for i in (0, 999, 1000, 2999, 3000, 4000, 10**6)] == [1, 1, 0.5, 0.25, 0.125, 0.1, 0.1]
    with pytest.raises(ValueError, match="min_lr"):
        MetaTrainConfig(min_lr=0.01)
