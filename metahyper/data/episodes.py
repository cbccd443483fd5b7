"""Episode types and episodic task samplers."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class TaskBatch:
    """T tasks of ``way`` classes each; labels are 0..way-1 within every task.

    support_x: [T, way*shot, C, H, W]   support_y: [T, way*shot] (int64)
    query_x:   [T, way*query, C, H, W]  query_y:   [T, way*query] (int64)
    Images are uint8 straight from the sampler, float after ``metahyper.data.transforms``.
    """

    support_x: Tensor
    support_y: Tensor
    query_x: Tensor
    query_y: Tensor
