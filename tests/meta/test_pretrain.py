"""Supervised pretraining: learns, is determined by its seed, resumes per epoch, resets the head."""

from __future__ import annotations

import logging

import pytest
import torch
from maml_toys import TinyConvNet, to_float

from metahyper.checkpoint import load_checkpoint
from metahyper.meta import pretrain as pretrain_module
from metahyper.meta.pretrain import PretrainConfig, pretrain
from metahyper.models import build_model, output_norm_penalty
from metahyper.models.roles import ParamRole

CFG = PretrainConfig(epochs=3, batch_size=16, optimizer="adam", lr=0.02, weight_decay=1e-4, seed=7)


def _store(classes=(10, 20, 30, 40), per_class=12, size=6):
    gen = torch.Generator().manual_seed(0)
    means = torch.randint(40, 216, (len(classes), 3, 1, 1), generator=gen)
    noise = torch.randint(-30, 31, (len(classes), per_class, 3, size, size), generator=gen)
    images = (means[:, None] + noise).clamp(0, 255).to(torch.uint8).flatten(0, 1)
    return images, torch.tensor(classes).repeat_interleave(per_class)


def _flip(x, generator):
    flip = (torch.rand(len(x), generator=generator) < 0.5).view(-1, 1, 1, 1)
    return torch.where(flip, to_float(x, torch.float32).flip(-1), to_float(x, torch.float32))


def _run(cfg=CFG, run_dir=None, **kw):
    torch.manual_seed(1)
    model = TinyConvNet(way=64)
    history = pretrain(model, *_store(), _flip, cfg, run_dir, progress=False, **kw)
    return model, history


def test_pretraining_learns_and_resets_head():
    model, history = _run(PretrainConfig(**{**CFG.__dict__, "epochs": 8}))
    assert history[-1]["loss"] < history[0]["loss"] and history[-1]["accuracy"] > 0.5
    assert model.classifier.out_features == 5


def test_pretraining_status_lines_count_epochs(caplog):
    with caplog.at_level(logging.INFO, logger="metahyper"):
        _run()  # progress=False: plain status lines; 3 epochs, every one a reporting step
    assert [m.split(": ")[1].split(",")[0] for m in caplog.messages] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert not any("iteration" in m for m in caplog.messages)


def test_the_head_has_one_output_per_training_class_while_pretraining(monkeypatch):
    widths = []
    real_epoch = pretrain_module.train_epoch

    def spy(model, *args):
        widths.append(model.classifier.out_features)
        return real_epoch(model, *args)

    monkeypatch.setattr(pretrain_module, "train_epoch", spy)
    model, _ = _run()  # 4 training classes (10, 20, 30, 40); the episodes are 5-way
    assert widths == [4, 4, 4] and model.classifier.out_features == 5


def test_rerunning_a_finished_pretraining_says_it_is_finished(tmp_path, capsys):
    _run(run_dir=tmp_path)
    capsys.readouterr()
    _run(run_dir=tmp_path, resume=True)
    err = capsys.readouterr().err
    assert f"pretraining is already finished (epoch 3/3, checkpoint {tmp_path / 'pretrain_checkpoint.pt'})" in err
    assert "resuming" not in err


def test_seed_determines_the_run_and_global_rng_is_untouched():
    state = torch.get_rng_state()
    first, history = _run()
    torch.set_rng_state(state)
    second, again = _run()
    assert history == again
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))
    _, other = _run(PretrainConfig(**{**CFG.__dict__, "seed": 8}))
    assert other != history


def test_interrupted_run_resumes_to_identical_weights(tmp_path, monkeypatch):
    unbroken, _ = _run(run_dir=tmp_path / "unbroken")
    real_epoch, calls = pretrain_module.train_epoch, []

    def crash_in_epoch_two(*args):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_epoch(*args)

    monkeypatch.setattr(pretrain_module, "train_epoch", crash_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        _run(run_dir=tmp_path / "broken")
    monkeypatch.setattr(pretrain_module, "train_epoch", real_epoch)
    with pytest.raises(FileExistsError, match="resume=True"):
        _run(run_dir=tmp_path / "broken")
    resumed, history = _run(run_dir=tmp_path / "broken", resume=True)
    assert [r["epoch"] for r in history] == [2, 3]
    for name, tensor in unbroken.state_dict().items():
        assert torch.equal(resumed.state_dict()[name], tensor), name
    saved = load_checkpoint(tmp_path / "broken" / "pretrained.pt")
    assert saved["model"]["classifier.weight"].shape == (5, 4) and saved["iteration"] == 3


@pytest.mark.parametrize("penalty", [0.0, 0.05])
def test_embeddings_and_hypernets_are_never_decayed(monkeypatch, penalty):
    """One step of pretraining's optimiser with all gradients 0: SGD without momentum moves a
    parameter only by its decay, p -> p * (1 - lr * wd); embeddings and hypernetworks must stay
    where they are whatever the output-norm penalty (the shared policy)."""
    torch.manual_seed(0)
    model = build_model("hyper_conv4", num_classes=4)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    monkeypatch.setattr(pretrain_module, "train_epoch", _zero_gradient_step)
    cfg = PretrainConfig(**{**CFG.__dict__, "output_norm_penalty": penalty, "epochs": 1, "optimizer": "sgd",
                            "momentum": 0.0, "lr": 0.5, "weight_decay": 0.1})
    pretrain(model, *_store(size=16), _flip, cfg, progress=False)
    role_of = {name: role for role, params in model.params_by_role().items() for name in params}
    for name, p in model.named_parameters():
        if role_of[name] in (ParamRole.EMBEDDING, ParamRole.HYPERNET):
            assert torch.equal(p, before[name]), name
        elif not name.startswith("classifier"):  # the head is re-initialised at the end
            torch.testing.assert_close(p, before[name] * (1 - 0.5 * 0.1), rtol=0, atol=1e-7)


def _zero_gradient_step(model, optimizer, *args):
    """A stand-in epoch: every gradient 0, so an SGD step moves a parameter only by its decay."""
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    return {"loss": 0.0, "accuracy": 0.0}


def test_hyper_models_use_output_norm_penalty():
    cfg = PretrainConfig(**{**CFG.__dict__, "output_norm_penalty": 0.05, "epochs": 1})
    images, labels = _store(size=16)
    losses = []
    for penalty in (0.0, 0.05):
        torch.manual_seed(0)
        model = build_model("hyper_conv4", num_classes=4)
        first_batch = PretrainConfig(**{**cfg.__dict__, "output_norm_penalty": penalty, "batch_size": 64})
        losses.append(pretrain(model, images, labels, _flip, first_batch, progress=False)[0]["loss"])
    expected = output_norm_penalty(build_model("hyper_conv4", num_classes=4), 0.05).item()
    assert losses[1] - losses[0] == pytest.approx(expected, rel=0.05)


def test_zero_epochs_saves_the_initial_body_with_a_fresh_head(tmp_path):
    """``epochs: 0`` (no pretraining) leaves every body weight at its seeded initial value and
    saves that model with a ``way``-output head."""
    torch.manual_seed(1)
    initial = {n: p.detach().clone() for n, p in TinyConvNet(way=64).named_parameters()}
    model, history = _run(PretrainConfig(**{**CFG.__dict__, "epochs": 0}), tmp_path, way=5)
    assert history == [] and model.classifier.out_features == 5
    saved = load_checkpoint(tmp_path / pretrain_module.PRETRAINED_NAME)["model"]
    for name, value in initial.items():
        if not name.startswith("classifier"):
            assert torch.equal(saved[name], value), name


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [({"optimizer": "rmsprop"}, "optimizer"), ({"batch_size": 0}, "batch_size"), ({"lr": 0}, "lr > 0"),
     ({"epochs": -1}, "epochs must be >= 0")],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PretrainConfig(**kwargs)


def test_store_errors_name_the_argument():
    images, labels = _store()
    with pytest.raises(ValueError, match="images must be"):
        pretrain(TinyConvNet(), images.float(), labels, _flip, CFG)
    with pytest.raises(ValueError, match="labels must be"):
        pretrain(TinyConvNet(), images, labels[:-1], _flip, CFG)
