"""The classification trainer: schedule, regularisation groups, SWA (a whole run on every device), resume."""

from __future__ import annotations

import json

import pytest
import torch
from tb_events import assert_mirrors, needs_tensorboard

from metahyper.checkpoint import load_checkpoint
from metahyper.classify import ClassifyConfig, build_optimizer, param_groups, train_classifier
from metahyper.classify.train import METRICS_NAME, SWA_MODEL_NAME
from metahyper.meta.metrics_log import MetricsLog
from metahyper.models import ParamRole
from metahyper.train.supervised import training_loss

from .conftest import fast_config, tiny_model


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_paper_schedule_lr_at_each_milestone():
    optimizer, scheduler, _ = build_optimizer(tiny_model("wrn"), ClassifyConfig())
    lrs = {}
    for epoch in range(1, 201):  # the lr used during epoch e, then the end-of-epoch step
        lrs[epoch] = optimizer.param_groups[0]["lr"]
        scheduler.step()
    expected = {1: 0.1, 60: 0.1, 61: 0.02, 120: 0.02, 121: 0.004, 160: 0.004, 161: 0.0008, 200: 0.0008}
    for epoch, lr in expected.items():
        assert lrs[epoch] == pytest.approx(lr, rel=1e-12), epoch
    assert [group["lr"] for group in optimizer.param_groups] == pytest.approx([0.0008] * 2, rel=1e-12)


def test_trainer_logs_the_schedule(stores, tmp_path):
    cfg = fast_config(epochs=4, milestones=(1, 2, 3))
    train_classifier(tiny_model("wrn"), *stores, cfg, tmp_path)
    records = MetricsLog(tmp_path / METRICS_NAME).read()
    lrs = [r["lr"] for r in records if r["kind"] == "train"]
    assert lrs == pytest.approx([0.1, 0.02, 0.004, 0.0008], rel=1e-12)
    assert [r["iteration"] for r in records if r["kind"] == "val"] == [1, 2, 3, 4]


@needs_tensorboard
def test_trainer_mirrors_its_metrics_into_tensorboard(stores, tmp_path):
    train_classifier(tiny_model("wrn"), *stores, fast_config(epochs=2), tmp_path, tensorboard=True)
    events = assert_mirrors(tmp_path / "tb", tmp_path / METRICS_NAME)
    assert [step for step, _ in events["val/accuracy"]] == [1, 2] and "train/lr" in events


def _names(model, groups):
    ids = {id(p): name for name, p in model.named_parameters()}
    return {group["name"]: ({ids[id(p)] for p in group["params"]}, group["weight_decay"]) for group in groups}


def test_weight_decay_groups_plain_and_hyper():
    cfg = ClassifyConfig()
    plain = tiny_model("wrn")
    plain_groups = _names(plain, param_groups(plain, cfg.weight_decay))
    assert {role: decay for role, (_, decay) in plain_groups.items()} == {"body": 5e-4, "classifier": 5e-4}
    hyper = tiny_model("hyper_wrn")
    groups = _names(hyper, param_groups(hyper, cfg.weight_decay))
    assert {role: decay for role, (_, decay) in groups.items()} == {
        "embedding": 0.0, "hypernet": 0.0, "body": 5e-4, "classifier": 5e-4}
    roles = hyper.params_by_role()
    for role in ParamRole:
        assert groups[role.value][0] == set(roles[role])
    assert sum(len(names) for names, _ in groups.values()) == len(list(hyper.parameters()))


def test_weight_decay_step_reaches_exactly_the_decayed_groups():
    """With zero data gradients one SGD step shrinks decayed parameters by (1 - lr * wd) and
    leaves embeddings and hypernetworks where they are."""
    model, cfg = tiny_model("hyper_wrn"), ClassifyConfig()
    optimizer, _, _ = build_optimizer(model, cfg)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    optimizer.step()
    role_of = {name: role for role, params in model.params_by_role().items() for name in params}
    for name, p in model.named_parameters():
        if role_of[name] in (ParamRole.EMBEDDING, ParamRole.HYPERNET):
            assert torch.equal(p, before[name]), name
        else:
            torch.testing.assert_close(p, before[name] * (1 - cfg.lr * cfg.weight_decay))


def test_output_penalty_reaches_exactly_embeddings_and_hypernets(stores):
    model = tiny_model("hyper_wrn")
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    y = torch.arange(4)

    def grads(penalty: float):
        loss, _ = training_loss(model, x, y, penalty, None)
        return dict(zip([n for n, _ in model.named_parameters()], torch.autograd.grad(loss, list(model.parameters()))))

    with_penalty, without = grads(1.0), grads(0.0)
    role_of = {name: role for role, params in model.params_by_role().items() for name in params}
    for name, role in role_of.items():
        moved = (with_penalty[name] - without[name]).abs().max().item()
        if role in (ParamRole.EMBEDDING, ParamRole.HYPERNET):
            assert moved > 1e-6, name
        else:
            assert moved < 1e-6, name


def test_plain_model_has_no_penalty():
    model = tiny_model("wrn")
    x, y = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(2)), torch.arange(4)
    loss, out = training_loss(model, x, y, 1.0, None)
    torch.testing.assert_close(loss, torch.nn.functional.cross_entropy(out, y))


def test_swa_is_the_average_of_the_epoch_end_weights(stores, tmp_path, device):
    cfg = fast_config(epochs=4, swa=True, swa_start=2, swa_lr=0.05, swa_anneal_epochs=1)
    snapshots = []

    def keep(epoch, model):
        if epoch >= cfg.swa_start:
            snapshots.append({name: p.detach().clone().cpu() for name, p in model.named_parameters()})

    result = train_classifier(tiny_model("hyper_wrn").to(device), *stores, cfg, tmp_path, on_epoch=keep)
    averaged = load_checkpoint(tmp_path / SWA_MODEL_NAME)["model"]
    assert len(snapshots) == 3 and result.swa_accuracy is not None
    for name in snapshots[0]:
        hand = sum(s[name] for s in snapshots) / len(snapshots)
        torch.testing.assert_close(averaged[name], hand, rtol=1e-5, atol=1e-6)
    lrs = [r["lr"] for r in MetricsLog(tmp_path / METRICS_NAME).read() if r["kind"] == "train"]
    assert lrs[:2] == pytest.approx([0.1, 0.02]) and lrs[2:] == pytest.approx([0.05, 0.05])


def _final_state(stores, run_dir, stop_at=None, seed=0):
    def stop(epoch, model):
        if epoch == stop_at:
            raise KeyboardInterrupt

    model = tiny_model("hyper_wrn", seed=seed)
    cfg = fast_config(swa=True, swa_start=2, swa_anneal_epochs=1)
    try:
        train_classifier(model, *stores, cfg, run_dir, resume=True, on_epoch=stop)
    except KeyboardInterrupt:
        return None
    return model.state_dict()


def test_resume_is_bit_identical(stores, tmp_path):
    unbroken = _final_state(stores, tmp_path / "a")
    assert _final_state(stores, tmp_path / "b", stop_at=2) is None
    resumed = _final_state(stores, tmp_path / "b", seed=123)  # another init: the checkpoint must restore it
    for name, value in unbroken.items():
        assert torch.equal(resumed[name], value), name
    swa_a, swa_b = (load_checkpoint(tmp_path / d / SWA_MODEL_NAME)["model"] for d in "ab")
    assert all(torch.equal(swa_a[k], swa_b[k]) for k in swa_a)
    logs = [MetricsLog(tmp_path / d / METRICS_NAME).read() for d in "ab"]
    assert logs[0] == logs[1]
    results = [json.loads((tmp_path / d / "result.json").read_text()) for d in "ab"]
    assert results[0] == results[1]


def test_config_validation_names_the_field():
    with pytest.raises(ValueError, match="milestones"):
        ClassifyConfig(milestones=(120, 60))
    with pytest.raises(ValueError, match="swa_start"):
        ClassifyConfig(epochs=10, swa=True, swa_start=11)


def test_head_must_match_the_classes(stores, tmp_path):
    with pytest.raises(ValueError, match="10 classes"):
        train_classifier(tiny_model("wrn").__class__(num_classes=5, depth=10, width=1), *stores, fast_config(), tmp_path)
