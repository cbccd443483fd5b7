"""Which process this is: the rank and world size of the default ``torch.distributed`` group.

A leaf module, so that the data layer (``metahyper.data.loader``: each rank draws its share of a
meta-batch) and the meta layer (``metahyper.meta.distributed``: gradient averaging) read the
same answer without ``data`` importing ``meta`` (docs/architecture.md section 3, layers).
"""

from __future__ import annotations

import torch.distributed as dist


def world() -> tuple[int, int]:
    """(rank, world size) of the default process group, or (0, 1) when there is none."""
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1
