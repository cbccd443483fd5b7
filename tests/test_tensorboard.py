"""``logging.tensorboard`` / ``--tensorboard``: the JSONL metrics mirrored into TensorBoard event
files (read back with TensorBoard's own ``EventAccumulator``), resumes, the config hashes it
must leave alone, and the error when the ``tensorboard`` package is missing."""

from __future__ import annotations

import sys
from types import SimpleNamespace

import pytest
from cli_run import run_cli
from tb_events import assert_mirrors, needs_tensorboard, read_events
from tiny_suites import SMOKE

from metahyper.classify.suite import run_classify_suite
from metahyper.config import ConfigError, config_hash, to_dict
from metahyper.meta import train
from metahyper.meta.metrics_log import MetricsLog
from metahyper.pipeline.runs import STAGES, run_suite
from metahyper.pipeline.stages import make_record, stage_config
from metahyper.suite.config import load_suite

EXTRA = "pip install 'metahyper[tensorboard]'"


def _main(capsys, *argv: str) -> tuple[int, str]:
    """(exit status, stderr) of ``metahyper argv``."""
    status, _, err = run_cli(capsys, *argv)
    return status, err


def _record(iteration: int, loss: float) -> dict:
    record = {"kind": "train", "iteration": iteration, "loss": loss, "lr": 0.5}
    if iteration % 2 == 0:
        record["movement"] = {"generated/layer1.0.conv1": loss / 4, "embedding": 2.0}
    return record


@needs_tensorboard
def test_a_resume_replaces_the_records_the_jsonl_dropped(tmp_path):
    path = tmp_path / "metrics.jsonl"
    killed = MetricsLog(path, tensorboard=True)
    killed.truncate_after(0)
    for i in range(1, 6):
        killed.append(_record(i, float(i)))
        if i % 2 == 0:
            killed.append({"kind": "val", "iteration": i, "split": "val", "accuracy": i / 8})
    killed.close()  # a kill after iteration 5; its last checkpoint was at iteration 3
    resumed = MetricsLog(path, tensorboard=True)
    resumed.truncate_after(3)
    for i in range(4, 7):
        resumed.append(_record(i, i + 0.5))
    resumed.close()
    events = assert_mirrors(tmp_path / "tb", path)
    assert events["train/loss"] == [(1, 1.0), (2, 2.0), (3, 3.0), (4, 4.5), (5, 5.5), (6, 6.5)]
    assert events["train/movement/generated/layer1.0.conv1"] == [(2, 0.5), (4, 1.125), (6, 1.625)]
    assert events["val/accuracy"] == [(2, 0.25)]  # iteration 4's came after the checkpoint
    assert len(list((tmp_path / "tb").iterdir())) == 1


@needs_tensorboard
def test_a_record_without_an_iteration_reaches_neither_file(tmp_path):
    log = MetricsLog(tmp_path / "metrics.jsonl", tensorboard=True)
    with pytest.raises(ValueError, match="'iteration'"):
        log.append({"loss": 1.0})
    log.close()
    assert not (tmp_path / "metrics.jsonl").exists() and read_events(tmp_path / "tb") == {}


def test_the_setting_leaves_every_stage_hash_and_result_config_alone():
    off, on = load_suite("smoke", SMOKE), load_suite("smoke", [*SMOKE, "logging.tensorboard=true"])
    assert on.logging.tensorboard and to_dict(on) != to_dict(off)
    for run in off.runs:
        for stage in STAGES:
            assert config_hash(stage_config(on, run, stage)) == config_hash(stage_config(off, run, stage))
    result = SimpleNamespace(per_episode=(0.5, 0.75), metadata={"way": 5, "shot": 1, "bn_mode": "transductive",
                                                                "episodes_hash": "e"})
    records = [make_record(suite, "wrn10_1", "wrn10_1", "target", result) for suite in (off, on)]
    assert config_hash(records[0].config) == config_hash(records[1].config)  # results.csv's config_hash


@needs_tensorboard
def test_turned_on_and_off_between_stages_and_on_at_a_resume(tmp_path, capsys, monkeypatch):
    out, run = tmp_path / "out", "hyper_wrn10_1"
    status, err = _main(capsys, "pretrain", "smoke", run, "--tensorboard", "--out", str(out), *SMOKE)
    assert status == 0, err
    pretrain = out / "runs" / run / "pretrain"
    assert {"train/loss", "train/lr"} <= set(assert_mirrors(pretrain / "tb", pretrain / "pretrain_metrics.jsonl"))
    real_step = train.train_step

    def killed_at_three(run_, sampler, transform, cfg, iteration):
        if iteration == 3:
            raise KeyboardInterrupt
        return real_step(run_, sampler, transform, cfg, iteration)

    monkeypatch.setattr(train, "train_step", killed_at_three)
    with pytest.raises(KeyboardInterrupt):  # off: the finished pretraining is kept, not refused
        run_suite(load_suite("smoke", SMOKE), out, runs=[run], stages=["pretrain", "meta_train"], progress=False)
    folder = out / "runs" / run / "meta_train"
    assert not (folder / "tb").exists()
    monkeypatch.setattr(train, "train_step", real_step)
    status, err = _main(capsys, "meta-train", "smoke", run, "--out", str(out), "--tensorboard", *SMOKE)
    assert status == 0 and "resuming meta-train of hyper_wrn10_1 from iteration 2" in err
    events = assert_mirrors(folder / "tb", folder / "metrics.jsonl")
    assert [step for step, _ in events["train/loss"]] == [1, 2, 3, 4]
    assert [step for step, _ in events["val/accuracy"]] == [2, 4]
    assert any(tag.startswith("train/movement/generated/") for tag in events)
    assert "train/norm_grad_ratio/hypernet" in events


@pytest.mark.parametrize("asked", [["--tensorboard"], ["logging.tensorboard=true"]])
def test_missing_tensorboard_exits_2_naming_the_extra_before_any_work(capsys, tmp_path, monkeypatch, asked):
    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # its import now fails
    status, err = _main(capsys, "run", "smoke", *asked, "--out", str(tmp_path / "out"), *SMOKE)
    assert status == 2 and EXTRA in err and "metahyper run: error:" in err
    assert not (tmp_path / "out").exists()
    with pytest.raises(ConfigError, match=r"metahyper\[tensorboard\]"):
        MetricsLog(tmp_path / "metrics.jsonl", tensorboard=True)
    suite = {"name": "c", "data": {"dataset": "synthetic"}, "seeds": [0],
             "models": [{"label": "wrn", "model": "wrn", "options": {"depth": 10, "width": 1}}],
             "logging": {"tensorboard": True}}
    with pytest.raises(ConfigError, match=r"metahyper\[tensorboard\]"):
        run_classify_suite(suite, tmp_path / "classify")
    assert not (tmp_path / "classify").exists()
