"""The public API (``import metahyper``), self-describing checkpoints, ``metahyper list``,
``--version``, per-command help, and the plain status lines."""

from __future__ import annotations

import logging
import re
from pathlib import Path

import pytest
import torch
import yaml

import metahyper
from metahyper import cli
from metahyper.checkpoint import CheckpointError, save_checkpoint
from metahyper.progress import StatusLines

REPO = Path(__file__).resolve().parents[1]
SUITE_FILES = sorted((REPO / "benchmarks" / "suites").glob("*.yaml"))


def test_the_documented_names_are_importable_from_the_package():
    for name in ("build_model", "list_models", "load_store", "EpisodeSampler", "EpisodeDataset", "fixed_episodes",
                 "meta_train", "evaluate", "load_run", "load_model", "ImageStore", "TaskBatch", "__version__"):
        assert hasattr(metahyper, name), name
    assert (Path(metahyper.__file__).parent / "py.typed").is_file()
    assert re.search(r"attr: metahyper._version.__version__", (REPO / "setup.cfg").read_text())


def test_a_checkpoint_rebuilds_its_model_without_the_config(tmp_path):
    torch.manual_seed(0)
    model = metahyper.build_model("hyper_conv4", 5, in_channels=1, variant=2)
    save_checkpoint(tmp_path / "run/meta_train/checkpoint.pt", iteration=3, config_hash="x", model=model)
    raw = torch.load(tmp_path / "run/meta_train/checkpoint.pt", weights_only=True)
    assert raw["model_spec"] == {"name": "hyper_conv4", "num_classes": 5, "options": {"in_channels": 1, "variant": 2}}
    assert raw["version"] == metahyper.__version__
    loaded = metahyper.load_run(tmp_path / "run")
    assert type(loaded) is type(model) and not loaded.training
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), loaded.state_dict().values()))
    x = torch.rand(2, 1, 28, 28)
    assert torch.allclose(model.eval()(x), loaded(x))
    save_checkpoint(tmp_path / "plain.pt", iteration=0, config_hash="x", model=torch.nn.Linear(2, 2))
    with pytest.raises(CheckpointError, match="records no model recipe"):
        metahyper.load_model(tmp_path / "plain.pt")


def test_load_run_of_a_suite_folder_needs_the_run_name_when_there_are_several(tmp_path):
    for run in ("a", "b"):
        (tmp_path / "runs" / run).mkdir(parents=True)
    with pytest.raises(ValueError, match="holds runs a, b"):
        metahyper.load_run(tmp_path)
    with pytest.raises(FileNotFoundError, match="meta_train stage"):
        metahyper.load_run(tmp_path, run="a")


def _out(capsys, *argv: str) -> str:
    try:
        assert cli.main(list(argv)) == 0
    except SystemExit as exit_:
        assert exit_.code == 0
    return capsys.readouterr().out


def test_list_and_version(capsys):
    assert _out(capsys, "--version").strip() == f"metahyper {metahyper.__version__}"
    assert _out(capsys, "list", "models").split() == metahyper.list_models()
    assert "hyper_resnet12" in metahyper.list_models() and "omniglot" in metahyper.list_datasets()
    lines = _out(capsys, "list", "suites").splitlines()
    assert [line.split()[0] for line in lines] == [p.stem for p in SUITE_FILES]


def test_stage_help_lists_only_meta_learning_suites_and_no_help_prints_a_local_path(capsys):
    classify = {p.stem for p in SUITE_FILES if yaml.safe_load(p.read_text()).get("kind") == "classify"}
    assert classify
    for command in ("pretrain", "meta-train", "evaluate"):
        listed = set(re.findall(r"[\w.+-]+", _out(capsys, command, "--help").split("suites:")[1].split("overrides")[0]))
        assert listed and not listed & classify and "smoke" in listed
    assert classify <= set(re.findall(r"[\w.+-]+", _out(capsys, "run", "--help")))
    for command in ("run", "pretrain", "meta-train", "evaluate", "report", "data", "bench", "list"):
        assert str(REPO) not in _out(capsys, command, "--help")


def test_status_lines_report_progress_rate_and_eta(caplog):
    now = [100.0]
    lines = StatusLines("meta-train", "runs/x", total=100, initial=20, seconds=30, every=50, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="metahyper"):
        now[0] = 110.0
        lines.update(30, loss=1.5)  # 10 s, not a multiple of 50: quiet
        now[0] = 140.0
        lines.update(40, loss=1.25, val_accuracy=0.5)  # 40 s since the start: a line
        lines.update(50, loss=1.0)  # a multiple of 50: a line
    # 20 iterations in 40 s = 0.5 it/s; 60 left -> 120 s; then 30 in 40 s = 0.75 it/s, 50 left -> 66.7 s
    assert caplog.messages == [
        "meta-train runs/x: iteration 40/100, loss 1.2500, val acc 0.5000, 0.50 it/s, ETA 00:02:00",
        "meta-train runs/x: iteration 50/100, loss 1.0000, 0.75 it/s, ETA 00:01:06",
    ]


def test_status_lines_count_in_their_unit(caplog):
    now = [0.0]
    epochs = StatusLines("pretrain", "runs/x", total=6, seconds=30, every=1, clock=lambda: now[0], unit="epoch")
    episodes = StatusLines("evaluate", "conv4 on mnist", total=200, every=50, clock=lambda: now[0], unit="episode")
    with caplog.at_level(logging.INFO, logger="metahyper"):
        now[0] = 80.0
        epochs.update(2, loss=3.0)  # 2 epochs in 80 s: 40 s each, 4 left -> 160 s
        episodes.update(100)  # 100 episodes in 80 s: 1.25 per second, 100 left -> 80 s
    assert caplog.messages == ["pretrain runs/x: epoch 2/6, loss 3.0000, 40.0 s/epoch, ETA 00:02:40",
                               "evaluate conv4 on mnist: episode 100/200, 1.25 episodes/s, ETA 00:01:20"]
