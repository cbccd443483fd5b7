"""World size 1 and 2 give the same meta-gradients and training steps, on every device (gloo: it
all-reduces CPU and CUDA tensors, and both ranks may share one GPU, which NCCL refuses)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from maml_toys import FakeSampler, TinyHyperNet, float_batch, to_float

from metahyper.checkpoint import load_checkpoint
from metahyper.meta.distributed import average_gradients
from metahyper.meta.maml import MamlConfig, meta_backward, outer_parameters
from metahyper.meta.train import MetaTrainConfig, meta_train

MAML = MamlConfig(inner_steps=2, inner_lr=0.1)
TRAIN = MetaTrainConfig(iterations=2, meta_batch=4, checkpoint_every=2, maml=MAML)


def _meta_gradients(rank: int, world_size: int, device: str) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    model = TinyHyperNet().double().to(device)
    batch = float_batch(FakeSampler(seed=3).sample_for(0, rank, world_size, TRAIN.meta_batch)).to(device)
    meta_backward(model, batch, MAML)
    average_gradients(outer_parameters(model, MAML))
    return {n: p.grad for n, p in model.named_parameters() if p.grad is not None}


def _train(run_dir: Path, device: str) -> None:
    torch.manual_seed(0)
    model = TinyHyperNet().double().to(device)
    meta_train(model, FakeSampler(seed=3), lambda x, g: to_float(x), TRAIN, run_dir, progress=False)


def _worker(rank: int, world_size: int, tmp: str, device: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{tmp}/rendezvous", rank=rank, world_size=world_size)
    try:
        grads = _meta_gradients(rank, world_size, device)
        if rank == 0:
            torch.save(grads, f"{tmp}/grads.pt")
        _train(Path(tmp) / "run", device)
        dist.barrier()  # nobody tears the group down while the other rank still uses it
    finally:
        dist.destroy_process_group()


@pytest.mark.skipif(not dist.is_available(), reason="torch.distributed is not available")
def test_world_size_two_matches_one(tmp_path, device):
    mp.spawn(_worker, args=(2, str(tmp_path), device.type), nprocs=2, join=True)
    single = _meta_gradients(0, 1, device.type)
    double = torch.load(tmp_path / "grads.pt", weights_only=True)
    assert single.keys() == double.keys() and "hyper" in single
    for name, grad in single.items():
        assert double[name].device == grad.device, name
        torch.testing.assert_close(double[name], grad, rtol=1e-10, atol=1e-13, msg=name)
    _train(tmp_path / "single", device.type)
    expected = load_checkpoint(tmp_path / "single" / "checkpoint.pt")["model"]
    got = load_checkpoint(tmp_path / "run" / "checkpoint.pt")["model"]
    for name, tensor in expected.items():
        torch.testing.assert_close(got[name], tensor, rtol=1e-10, atol=1e-13, msg=name)
