"""Checkpoints: round trip of every state (on every device), weights-only loading, config-hash guard."""

from __future__ import annotations

import os
import pickle
import random

import pytest
import torch
from torch import nn

from metahyper.checkpoint import (
    CheckpointError,
    load_checkpoint,
    restore_checkpoint,
    resume_checkpoint,
    save_checkpoint,
)


class Counter:
    def __init__(self):
        self.count = 0

    def state_dict(self):
        return {"count": torch.tensor(self.count)}

    def load_state_dict(self, state):
        self.count = int(state["count"])


def _objects(device: torch.device = torch.device("cpu")):
    model = nn.Linear(3, 2).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.StepLR(optimizer, 2)
    model(torch.ones(1, 3, device=device)).sum().backward()
    optimizer.step()
    scheduler.step()
    return model, optimizer, scheduler


def test_round_trip_restores_model_optimizer_scheduler_and_rng(tmp_path, device):
    model, optimizer, scheduler = _objects(device)
    generator, counter = torch.Generator().manual_seed(3), Counter()
    counter.count = 5
    torch.manual_seed(11)  # seeds the CUDA generators too
    save_checkpoint(tmp_path / "c.pt", iteration=7, config_hash="abc", model=model, optimizer=optimizer,
                    scheduler=scheduler, stateful={"gen": generator, "counter": counter})
    expected = [torch.rand(3, generator=generator), torch.rand(3), torch.rand(3, device=device)]
    for map_location in ("cpu", device):  # states read onto the device are moved back where they belong
        torch.manual_seed(12)
        fresh_model = nn.Linear(3, 2).to(device)
        fresh_opt = torch.optim.Adam(fresh_model.parameters(), lr=0.1)
        fresh_sched = torch.optim.lr_scheduler.StepLR(fresh_opt, 2)
        fresh_gen, fresh_counter = torch.Generator(), Counter()
        stateful = {"gen": fresh_gen, "counter": fresh_counter}
        state = load_checkpoint(tmp_path / "c.pt", config_hash="abc", map_location=map_location)
        iteration = restore_checkpoint(state, model=fresh_model, optimizer=fresh_opt, scheduler=fresh_sched,
                                       stateful=stateful)
        assert iteration == 7 and fresh_counter.count == 5
        draws = [torch.rand(3, generator=fresh_gen), torch.rand(3), torch.rand(3, device=device)]
        assert all(torch.equal(a, b) for a, b in zip(draws, expected))
        assert torch.equal(fresh_model.weight, model.weight) and fresh_sched.state_dict() == scheduler.state_dict()
        _assert_same_optimizer_state(fresh_opt, optimizer)
        assert fresh_opt.state_dict()["state"][0]["exp_avg"].device == model.weight.device


def _assert_same_optimizer_state(got: torch.optim.Optimizer, expected: torch.optim.Optimizer) -> None:
    """Equal groups and equal state values, wherever ``map_location`` put them (Adam keeps a
    loaded ``step`` on the device it was read onto)."""
    got_state, expected_state = got.state_dict(), expected.state_dict()
    assert got_state["param_groups"] == expected_state["param_groups"]
    assert got_state["state"].keys() == expected_state["state"].keys()
    for index, state in expected_state["state"].items():
        for key, value in state.items():
            assert torch.equal(got_state["state"][index][key].cpu(), value.cpu()), (index, key)


def test_guards(tmp_path):
    model, _, _ = _objects()
    save_checkpoint(tmp_path / "c.pt", iteration=1, config_hash="a" * 64, model=model)
    with pytest.raises(CheckpointError, match="config hash aaaaaaaaaaaa.*bbbbbbbbbbbb.*force=True"):
        load_checkpoint(tmp_path / "c.pt", config_hash="b" * 64)
    assert load_checkpoint(tmp_path / "c.pt", config_hash="b" * 64, force=True)["iteration"] == 1
    with pytest.raises(FileExistsError, match="resume=True"):
        resume_checkpoint(tmp_path / "c.pt", resume=False, force=False, config_hash="a" * 64, model=model)
    assert resume_checkpoint(tmp_path / "none.pt", resume=True, force=False, config_hash="a", model=model) == 0
    with pytest.raises(CheckpointError, match="no state for 'gen'"):
        restore_checkpoint(load_checkpoint(tmp_path / "c.pt"), model=model, stateful={"gen": torch.Generator()})
    torch.save({"weights": torch.ones(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not a metahyper checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")


class Payload:
    """Unpickling this would create the folder ``target``."""

    def __init__(self, target):
        self.target = str(target)

    def __reduce__(self):
        return os.mkdir, (self.target,)


def _damaged(folder, kind: str):
    """A real damaged or malicious file in ``folder`` named like a stage checkpoint."""
    model, _, _ = _objects()
    path = folder / "checkpoint.pt"
    save_checkpoint(path, iteration=1, config_hash="a", model=model)
    good = path.read_bytes()
    if kind == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif kind == "random":
        path.write_bytes(random.Random(0).randbytes(len(good)))
    elif kind == "payload":  # a zip checkpoint whose pickle carries a call
        torch.save({"format": 1, "payload": Payload(folder / "pwned")}, path)
    else:  # a bare pickle carrying a call
        path.write_bytes(pickle.dumps(Payload(folder / "pwned"), protocol=2))
    return path


@pytest.mark.parametrize("kind", ["truncated", "random", "payload", "bare-pickle"])
def test_damaged_or_malicious_checkpoint_is_named_and_never_run(tmp_path, kind):
    path = _damaged(tmp_path, kind)
    with pytest.raises(CheckpointError) as error:
        load_checkpoint(path)
    message = str(error.value)
    assert f"checkpoint {path} is damaged or not a metahyper checkpoint" in message
    assert f"Delete {tmp_path}" in message and "earlier stages are intact" in message
    assert "weights_only" not in message and "False" not in message
    assert not (tmp_path / "pwned").exists()
