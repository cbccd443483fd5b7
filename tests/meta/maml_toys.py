"""Tiny test-local MetaModels, a keyed fake episode sampler and helpers for the MAML tests."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.data.episodes import TaskBatch
from metahyper.models.norm import MetaBatchNorm2d
from metahyper.models.roles import MetaModel, ParamRole, Params


class TinyConvNet(MetaModel):
    """Plain: conv(bias) -> BN -> ReLU -> conv -> BN -> ReLU -> mean pool -> linear."""

    def __init__(self, way: int = 3, channels: int = 3, width: int = 4):
        super().__init__()
        self.conv1 = nn.Conv2d(channels, width, 3, padding=1)
        self.bn1 = MetaBatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1, bias=False)
        self.bn2 = MetaBatchNorm2d(width)
        self.classifier = nn.Linear(width, way)

    def features(self, x: Tensor) -> Tensor:
        x = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(x))).mean(dim=(2, 3))


class TinyHyperNet(MetaModel):
    """A plain stem (BODY) and two 3x3 convs generated as conv2d(E_i, H, padding=1) (Babu)."""

    def __init__(self, way: int = 3, channels: int = 3, width: int = 4):
        super().__init__()
        self.stem = nn.Conv2d(channels, width, 3, padding=1, bias=False)
        self.bn0 = MetaBatchNorm2d(width)
        self.emb1 = nn.Parameter(torch.randn(width, width, 3, 3) * 0.3)
        self.emb2 = nn.Parameter(torch.randn(width, width, 3, 3) * 0.3)
        self.hyper = nn.Parameter(torch.randn(width, width, 3, 3) * 0.3)
        self.bn1 = MetaBatchNorm2d(width)
        self.bn2 = MetaBatchNorm2d(width)
        self.classifier = nn.Linear(width, way)

    def param_role(self, name: str) -> ParamRole:
        if name.startswith("emb"):
            return ParamRole.EMBEDDING
        if name.startswith("hyper"):
            return ParamRole.HYPERNET
        return super().param_role(name)

    def kernels(self) -> Params:
        return {f"conv{i}": F.conv2d(e, self.hyper, padding=1) for i, e in ((1, self.emb1), (2, self.emb2))}

    def features(self, x: Tensor) -> Tensor:
        w = self.kernels()
        x = F.relu(self.bn0(self.stem(x)))
        x = F.relu(self.bn1(F.conv2d(x, w["conv1"], padding=1)))
        return F.relu(self.bn2(F.conv2d(x, w["conv2"], padding=1))).mean(dim=(2, 3))


class FakeSampler:
    """uint8 episodes from a generator keyed on (seed, step); rank r gets its slice of the batch."""

    def __init__(self, seed: int = 0, way: int = 3, shot: int = 2, query: int = 3, channels: int = 3, size: int = 6):
        self.seed, self.way, self.shot, self.query = seed, way, shot, query
        self.image = (channels, size, size)

    def sample_for(self, step: int, rank: int, world_size: int, tasks: int) -> TaskBatch:
        gen = torch.Generator().manual_seed(self.seed * 1_000_003 + step)
        support = self._split(gen, tasks, self.shot)
        query = self._split(gen, tasks, self.query)
        per_rank = tasks // world_size
        part = slice(rank * per_rank, (rank + 1) * per_rank)
        return TaskBatch(support[0][part], support[1][part], query[0][part], query[1][part])

    def _split(self, gen: torch.Generator, tasks: int, per_class: int) -> tuple[Tensor, Tensor]:
        labels = torch.arange(self.way).repeat_interleave(per_class)
        base = torch.randint(0, 256, (tasks, self.way, 1, *self.image), generator=gen)
        noise = torch.randint(-40, 41, (tasks, self.way, per_class, *self.image), generator=gen)
        images = (base + noise).clamp(0, 255).to(torch.uint8).flatten(1, 2)
        return images, labels.expand(tasks, -1).clone()


def to_float(x: Tensor, dtype: torch.dtype = torch.float64) -> Tensor:
    """The test transform: uint8 -> float in [-1, 1]."""
    return x.to(dtype) / 127.5 - 1.0


def float_batch(batch: TaskBatch, dtype: torch.dtype = torch.float64) -> TaskBatch:
    return TaskBatch(to_float(batch.support_x, dtype), batch.support_y, to_float(batch.query_x, dtype), batch.query_y)


def make_batch(seed: int = 0, tasks: int = 3, dtype: torch.dtype = torch.float64, **kw) -> TaskBatch:
    return float_batch(FakeSampler(seed, **kw).sample_for(0, 0, 1, tasks), dtype)


def grads_of(model: nn.Module) -> dict[str, Tensor | None]:
    return {n: None if p.grad is None else p.grad.clone() for n, p in model.named_parameters()}
