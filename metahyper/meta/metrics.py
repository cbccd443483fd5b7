"""The meta-learning diagnostics the paper plots (Babu et al., Figures 2 and 4; docs/architecture.md section 7).

* inner-loop movement: the norm of the change of each adapted tensor over the inner loop,
  averaged over the tasks of a meta-batch; for hyper models also of every *generated* kernel
  (``metahyper.models.hyperize.generated_kernels_from``), which is what the paper compares with
  the movement of plain weights;
* ``weight_norms``: ||W|| of every layer's weight (plain ``*.weight`` tensors and generated
  kernels) where the inner loop starts, keyed as the movement is; the report divides the movement
  by it (layers of different size become comparable), and a layer with a norm but no movement
  is one the inner loop does not adapt;
* ``||P|| / ||grad P||`` per parameter role after the outer backward.
"""

from __future__ import annotations

import torch
from torch import Tensor

from metahyper.models.hyperize import generated_kernels_from
from metahyper.models.roles import MetaModel, ParamRole, Params

@torch.no_grad()
def inner_movement(model: MetaModel, start: Params, adapted: Params | None) -> dict[str, float]:
    """Mean over tasks of ``||adapted - start||`` per name.

    start: name -> starting tensor [*shape]; adapted: name -> [T, *shape]. Keys are
    ``"param/<name>"`` and, for models with hypernetworks, ``"generated/<kernel name>"``.
    """
    if not adapted:
        return {}
    moved = {f"param/{n}": _mean_distance(adapted[n], start[n].detach()) for n in adapted}
    if not model.params_by_role()[ParamRole.HYPERNET]:
        return moved
    before = generated_kernels_from(model, {n: p.detach() for n, p in start.items()})
    tasks = next(iter(adapted.values())).shape[0]
    after = [generated_kernels_from(model, {n: p[t] for n, p in adapted.items()}) for t in range(tasks)]
    for name, kernel in before.items():
        moved[f"generated/{name}"] = _mean_distance(torch.stack([a[name] for a in after]), kernel)
    return moved


@torch.no_grad()
def weight_norms(model: MetaModel) -> dict[str, float]:
    """||W|| per layer of ``model`` as it is now (the start of the next inner loop):
    ``"param/<name>"`` for every parameter named ``*.weight`` and ``"generated/<kernel name>"``
    for every hypernetwork-generated kernel, the keys ``inner_movement`` uses."""
    norms = {f"param/{n}": p.norm().item() for n, p in model.named_parameters() if n.endswith(".weight")}
    if model.params_by_role()[ParamRole.HYPERNET]:
        norms |= {f"generated/{n}": w.norm().item() for n, w in generated_kernels_from(model, {}).items()}
    return norms


def _mean_distance(stacked: Tensor, reference: Tensor) -> float:
    """stacked [T, *shape], reference [*shape] -> mean_t ||stacked[t] - reference||."""
    return (stacked - reference).flatten(1).norm(dim=1).mean().item()


@torch.no_grad()
def norm_grad_ratios(model: MetaModel) -> dict[str, float]:
    """``||P|| / ||grad P||`` per role over the parameters that hold a non-zero gradient."""
    ratios = {}
    for role, group in model.params_by_role().items():
        with_grad = [p for p in group.values() if p.grad is not None]
        if not with_grad:
            continue
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in with_grad])
        if grad_norm > 0:
            ratios[role.value] = (torch.nn.utils.get_total_norm(with_grad) / grad_norm).item()
    return ratios
