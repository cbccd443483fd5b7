"""One network pass for T tasks, each with its own weights: grouped convolutions (docs/architecture.md section 8).

Layout: the tasks sit side by side in the channel axis. Images [T, B, C, H, W] become
[B, T*C, H, W] (``group_images``: task t owns channels t*C .. (t+1)*C-1), every activation is
[B, T*C', ...] and the logits come out as [B, T*K] (``ungroup`` -> [T, B, K]). Inside
``grouped_layers(model, tasks, stacked)`` each layer with parameters runs all tasks in one call:

* ``nn.Conv2d`` and every ``GeneratedConv2d``: the per-task kernels [T, C_out, C_in, k, k] become
  one convolution with ``groups = T`` (weight [T*C_out, C_in, k, k]); a generated conv makes its
  T kernels with one ``torch.func.vmap`` over its own ``kernel()``;
* ``MetaBatchNorm2d``: batch statistics per task and channel (the T*C channels are normalised
  apart, so no task sees another task's statistics), in ``batch`` mode and in the inductive
  ``rows`` mode. It runs ``F.batch_norm`` unless ``double_backward`` says the pass will be
  differentiated twice (second-order inner steps) or ``norm_statistics(..., fused=False)`` is in
  force: then plain tensor ops, because
  ``F.batch_norm``'s double backward is the slower one on CPU (measured on [75, 256, 42, 42]
  float32, one thread: forward + backward 0.58 s fused vs 1.09 s plain; forward + double
  backward 3.52 s fused vs 2.46 s plain);
* ``nn.Linear`` (the classifier): per-task heads in one batched matmul.

Parameters named in ``stacked`` are passed (by ``torch.func.functional_call``) as [T, *shape],
one slice per task; every other parameter is shared by all tasks and used as it is (a conv with
only shared weights runs ungrouped over the [B*T, C, H, W] view). Parameter-free layers that act
per channel (activations, poolings, identity) run unchanged; any other layer (a parameter owner
of another type, dropout, an unknown leaf) is refused by name before the first pass, because it
cannot be split per task. The forward code of containers (blocks, ``features``) is trusted to
be per-channel (residual sums, spatial means), as every backbone in ``backbones.py`` is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from functools import partial

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.models.hyperconv import GeneratedConv2d
from metahyper.models.norm import MetaBatchNorm2d, normalise_by_rows

PER_CHANNEL_LEAVES = (nn.ReLU, nn.LeakyReLU, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid, nn.Tanh, nn.Identity,
                      nn.MaxPool2d, nn.AvgPool2d, nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)


def group_images(x: Tensor) -> Tensor:
    """[T, B, C, H, W] -> [B, T*C, H, W]."""
    tasks, batch, channels = x.shape[:3]
    return x.transpose(0, 1).reshape(batch, tasks * channels, *x.shape[3:])


def ungroup(y: Tensor, tasks: int) -> Tensor:
    """[B, T*K] -> [T, B, K] (a view)."""
    return y.view(y.shape[0], tasks, -1).transpose(0, 1)


def _per_task(tensor: Tensor, stacked: bool, tasks: int) -> Tensor:
    """[T, *shape]: the stacked tensor itself, or a shared one repeated (a view)."""
    return tensor if stacked else tensor.expand(tasks, *tensor.shape)


def _conv(module: nn.Module, x: Tensor, tasks: int, weight: Tensor, bias: Tensor | None,
          stacked: tuple[bool, bool]) -> Tensor:
    """``module``'s convolution of grouped ``x`` with (``weight``, ``bias``) stacked or shared."""
    dilation, groups = getattr(module, "dilation", 1), getattr(module, "groups", 1)
    if not any(stacked):
        y = F.conv2d(x.reshape(x.shape[0] * tasks, -1, *x.shape[2:]), weight, bias, module.stride, module.padding,
                     dilation, groups)
        return y.view(x.shape[0], -1, *y.shape[2:])
    weight = _per_task(weight, stacked[0], tasks).flatten(0, 1)
    bias = None if bias is None else _per_task(bias, stacked[1], tasks).flatten()
    return F.conv2d(x, weight, bias, module.stride, module.padding, dilation, groups * tasks)


def _plain_conv(module: nn.Conv2d, tasks: int, stacked: frozenset[str], x: Tensor) -> Tensor:
    return _conv(module, x, tasks, module.weight, module.bias, ("weight" in stacked, "bias" in stacked))


class _KernelMaker(nn.Module):
    """``conv.kernel()`` as a module whose parameters (the conv's and its hypernetwork's) can be
    swapped per task by ``functional_call`` under ``vmap``."""

    def __init__(self, conv: GeneratedConv2d, owner_names: dict[nn.Module, str], stacked: frozenset[str]):
        super().__init__()
        self.conv = conv
        hypernet = getattr(conv, "hypernet", None)
        self.hypernet = hypernet if isinstance(hypernet, nn.Module) else None
        self.sources: dict[str, tuple[nn.Module, str]] = {}  # own name -> (owning module, leaf name)
        self.in_dims: dict[str, int | None] = {}
        for name, _ in self.named_parameters():
            path, _, leaf = name.rpartition(".")
            owner = self.get_submodule(path)
            self.sources[name] = (owner, leaf)
            self.in_dims[name] = 0 if f"{owner_names[owner]}{leaf}" in stacked else None
        self.stacked = any(dim == 0 for dim in self.in_dims.values())

    def forward(self) -> Tensor:
        return self.conv.kernel()

    def kernels(self) -> Tensor:
        """[T, C_out, C_in, k, k] from the tensors the module holds now (stacked ones [T, ...])."""
        current = {name: getattr(owner, leaf) for name, (owner, leaf) in self.sources.items()}
        generate = partial(torch.func.functional_call, self, args=())
        return torch.func.vmap(generate, in_dims=(self.in_dims,))(current)


def _generated_conv(module: GeneratedConv2d, tasks: int, maker: _KernelMaker, x: Tensor) -> Tensor:
    weight = maker.kernels() if maker.stacked else module.kernel()
    return _conv(module, x, tasks, weight, None, (maker.stacked, False))


def _batch_norm(module: MetaBatchNorm2d, tasks: int, stacked: frozenset[str], fused: bool, x: Tensor) -> Tensor:
    if module.stat_source != "batch":
        raise RuntimeError("grouped layers normalise with batch statistics only: run them inside "
                           "norm_statistics(model, 'batch') (running statistics cannot be kept per task)")
    weight = _per_task(module.weight, "weight" in stacked, tasks).flatten()
    bias = _per_task(module.bias, "bias" in stacked, tasks).flatten()
    if module.stat_rows is None and fused and module.stat_fused:
        return F.batch_norm(x, None, None, weight, bias, training=True, eps=module.eps)
    return normalise_by_rows(x, weight, bias, module.eps, module.stat_rows)[0]


def _linear(module: nn.Linear, tasks: int, stacked: frozenset[str], x: Tensor) -> Tensor:
    if x.dim() != 2:
        raise ValueError(f"grouped nn.Linear takes [B, T*features] inputs, got shape {tuple(x.shape)}")
    batch, x = x.shape[0], x.view(x.shape[0], tasks, -1)
    if not stacked:
        return F.linear(x, module.weight, module.bias).reshape(batch, -1)
    weight = _per_task(module.weight, "weight" in stacked, tasks).transpose(1, 2)  # [T, in, out]
    y = torch.bmm(x.transpose(0, 1), weight)  # [T, B, out]
    if module.bias is not None:
        y = y + _per_task(module.bias, "bias" in stacked, tasks)[:, None, :]
    return y.transpose(0, 1).reshape(batch, -1)


def _own(module: nn.Module) -> set[str]:
    """Leaf names of the parameters that ``module`` itself holds (not its children's)."""
    return {leaf for leaf, p in module._parameters.items() if p is not None}


def _grouped_forward(module: nn.Module, tasks: int, leaves: frozenset[str], maker: Callable[[], _KernelMaker],
                     double_backward: bool) -> Callable[[Tensor], Tensor] | None:
    """``module``'s grouped forward (``leaves``: its stacked parameters); None when it has none."""
    kind = type(module)
    if kind.forward is nn.Conv2d.forward and module.padding_mode == "zeros":
        return partial(_plain_conv, module, tasks, leaves)
    if isinstance(module, GeneratedConv2d) and kind.forward is GeneratedConv2d.forward:
        return partial(_generated_conv, module, tasks, maker())
    if isinstance(module, MetaBatchNorm2d) and kind.forward is MetaBatchNorm2d.forward:
        return partial(_batch_norm, module, tasks, leaves, not double_backward)
    if kind.forward is nn.Linear.forward:
        return partial(_linear, module, tasks, leaves)
    return None


def _forwards(model: nn.Module, tasks: int, stacked: frozenset[str], double_backward: bool
              ) -> dict[nn.Module, Callable[[Tensor], Tensor]]:
    """module -> its grouped forward; raises a ValueError naming the first layer that has none."""
    owner_names = {module: f"{name}." if name else "" for name, module in model.named_modules()}
    for name in sorted(stacked - {f"{owner_names[m]}{leaf}" for m in owner_names for leaf in _own(m)}):
        raise ValueError(f"grouped layers: {type(model).__name__} has no parameter {name!r}")
    hypernets = {getattr(m, "hypernet", None) for m in model.modules() if isinstance(m, GeneratedConv2d)}
    forwards = {}
    for module, prefix in owner_names.items():
        name = prefix[:-1] or type(model).__name__
        if getattr(module, "kernel_recorder", None) is not None:
            raise ValueError(f"grouped layers: conv {name!r} records its kernels (record_kernels), which the "
                             "grouped pass cannot do per task")
        leaves = frozenset(leaf for leaf in _own(module) if f"{prefix}{leaf}" in stacked)
        maker = partial(_KernelMaker, module, owner_names, stacked)
        forward = _grouped_forward(module, tasks, leaves, maker, double_backward)
        if forward is not None:
            forwards[module] = forward
        elif module not in hypernets and (_own(module) or not (any(True for _ in module.children())
                                                               or isinstance(module, PER_CHANNEL_LEAVES))):
            what = "its own parameters" if _own(module) else "a layer"
            raise ValueError(f"the grouped backend cannot run {name!r} ({type(module).__name__}: {what}) per task; "
                             "it runs nn.Conv2d (zero padding), generated convs, MetaBatchNorm2d, nn.Linear and "
                             f"parameter-free {', '.join(c.__name__ for c in PER_CHANNEL_LEAVES)}; use backend "
                             "'loop' for this model")
    return forwards


@contextmanager
def grouped_layers(model: nn.Module, tasks: int, stacked: Iterable[str], double_backward: bool = False
                   ) -> Iterator[None]:
    """Within the block, ``model`` runs ``tasks`` tasks per pass on grouped inputs (module docstring).

    ``stacked``: names (as in ``named_parameters()``) of the parameters that will be passed per
    task, [T, *shape]. ``double_backward``: the passes will be differentiated twice (picks the
    batch norm formulation, module docstring). Raises a ValueError naming the layer when the
    model has one that cannot be run per task; the modules are restored on exit, also when the
    block raises.
    """
    if isinstance(tasks, bool) or not isinstance(tasks, int) or tasks < 1:
        raise ValueError(f"grouped layers: tasks must be an int >= 1, got {tasks!r}")
    forwards = _forwards(model, tasks, frozenset(stacked), double_backward)
    for module, forward in forwards.items():
        module.__dict__["forward"] = forward
    try:
        yield
    finally:
        for module in forwards:
            del module.__dict__["forward"]
