"""Hypernetworks that generate conv kernels, and the conv modules that use them.

* ``ConvHyperNet`` + ``HyperConv2d`` (Babu et al.): kernel = conv2d(embedding, filter).
* ``StaticLinearHyperNet`` + ``StaticHyperConv2d`` (Ha et al., static hypernetwork): one
  two-layer linear hypernetwork turns one embedding z per 16x16 kernel block into that block.
* ``BayesianHyperNet`` + ``BayesianHyperConv2d`` (Ukai et al.): a bias-free MLP per layer turns
  a noise sample z from a prior into the whole kernel (implicit weight posterior).

Every generated conv is a ``GeneratedConv2d``: its ``forward`` computes the kernel ONCE per
call (``kernel()``) and convolves the whole batch with it, never per image. A shared
hypernetwork is registered once on the model (``model.hypernets``) and each conv keeps a plain,
unregistered reference to it, so ``named_parameters`` lists it once and
``torch.func.functional_call`` swapping ``hypernets.<key>.*`` reaches every conv that uses it.
Modules declare the roles of their own parameters in ``param_roles`` (see ``Backbone``).
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from metahyper.models.roles import ParamRole

PRIORS = ("uniform01", "uniform11", "normal", "abs_normal")
INITS = ("balanced", "legacy")


def _same_padding_pairs(k: int) -> int:
    """Valid (output position, tap) pairs of a 1-D size-k 'same' conv over a size-k input."""
    return k * k - (k // 2) * (k // 2 + 1)


class GeneratedConv2d(nn.Module):
    """A bias-free conv whose [C_out, C_in, kh, kw] kernel is computed by ``kernel()``.

    Built from the ``nn.Conv2d`` it replaces (same channels, kernel size, stride, padding).
    ``kernel_recorder``, when set (by ``record_kernels``), receives each generated kernel.
    """

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        if conv.bias is not None or conv.groups != 1 or conv.dilation != (1, 1):
            raise ValueError("only bias-free, ungrouped, undilated convs can be generated")
        self.in_channels, self.out_channels = conv.in_channels, conv.out_channels
        self.kernel_size, self.stride, self.padding = conv.kernel_size, conv.stride, conv.padding
        self.kernel_recorder: Callable[[Tensor], None] | None = None

    def kernel(self) -> Tensor:
        """The current kernel [C_out, C_in, kh, kw] (differentiable in the hypernet inputs)."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """[B, C_in, H, W] -> [B, C_out, H', W'] with one kernel for the whole batch."""
        weight = self.kernel()
        if self.kernel_recorder is not None:
            self.kernel_recorder(weight)
        return F.conv2d(x, weight, None, self.stride, self.padding)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}")


class EmbeddedConv2d(GeneratedConv2d):
    """A generated conv whose kernel is ``hypernet`` applied to a learned ``embedding``.

    ``hypernet`` (possibly shared by several convs) is referenced, not registered: the model
    registers it under ``hypernets.<hypernet_key>``. The embedding can be frozen (compression).
    """

    param_roles = {"embedding": ParamRole.EMBEDDING}

    def __init__(self, conv: nn.Conv2d, hypernet: nn.Module, hypernet_key: str):
        super().__init__(conv)
        object.__setattr__(self, "hypernet", hypernet)
        self.hypernet_key = hypernet_key
        self.embedding = nn.Parameter(self.draw_embedding(None))

    def draw_embedding(self, generator: torch.Generator | None) -> Tensor:
        """A fresh embedding from the init distribution (on the CPU, float32)."""
        raise NotImplementedError

    def freeze_embedding(self, generator: torch.Generator) -> None:
        """Replace the embedding by a fresh draw from ``generator`` that is neither trained nor
        saved (a non-persistent buffer): the compressed model rebuilds it from the seed."""
        old = self.embedding
        del self.embedding
        self.register_buffer("embedding", self.draw_embedding(generator).to(old), persistent=False)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, hypernet={self.hypernet_key!r}"


def factor_stds(in_channels: int, d: int, kernel_size: int, init: str) -> tuple[float, float]:
    """(embedding std, filter std) of a Babu conv hypernetwork under ``init``.

    Both schemes give the kernel W = conv2d(E, H) the same variance, the He value
    2 / (C_in k k) averaged over kernel positions: Var(E) Var(H) = 2 / (C_in d p^2), p = number
    of valid (position, tap) pairs of a 1-D 'same' conv of size k (7 for k=3). They differ in how
    that product is split, which decides how far W moves when only E is adapted (dW = H * dE, so
    the step of W through E scales with ||H||^2):

    * ``balanced`` (default): Var(E) = Var(H) = sqrt(2 / (C_in d p^2)), equal factors;
    * ``legacy``: E ~ N(0, 1) and all of the scale in a tiny H (std ~0.003 for 64 channels);
      the kernels barely move through E, and gradient descent, which nearly conserves
      ||E||^2 - ||H||^2, keeps it so through training (kept for the ablation).

    Measured at init (float64, one 5-way 5-shot batch of 32x32 noise images, ``adapt`` 5 SGD
    steps at lr 0.01 on embeddings + classifier, the same seed for both models), mean over the
    generated convs of ||W_after - W_before|| divided by that of the plain backbone's matching
    convs: hyper_conv4 1.54x balanced vs 0.0051x legacy; hyper_wrn (depth 10, width 1) 1.53x
    (1.43-1.61 per conv) vs 0.013x (0.005-0.019). With the same seed both schemes draw the same
    normals, so their kernels are identical at init: only the split of the scale differs.
    """
    if init not in INITS:
        raise ValueError(f"hypernetwork option init must be one of {INITS}, got {init!r}")
    product = 2.0 / (in_channels * d * _same_padding_pairs(kernel_size) ** 2)
    if init == "legacy":
        return 1.0, math.sqrt(product)
    return product ** 0.25, product ** 0.25


class ConvHyperNet(nn.Module):
    """Babu et al.'s conv hypernetwork: filter H [C_in, d, k, k] (+ optional bias [C_in]).

    ``forward(E)`` maps an embedding E [C_out, d, k, k] to the kernel
    W = conv2d(E, H, padding=k//2) of shape [C_out, C_in, k, k]. The paper uses no bias (its
    Table 1: bias hurts); ``bias=True`` exists for that ablation. ``init`` ('balanced' or
    'legacy', see ``factor_stds``) sets the std of H and ``embedding_std``, the std of the
    embeddings that the convs using this hypernetwork draw.
    """

    param_roles = {"filter": ParamRole.HYPERNET, "bias": ParamRole.HYPERNET}

    def __init__(self, in_channels: int, d: int, kernel_size: int = 3, bias: bool = False, init: str = "balanced"):
        super().__init__()
        if not isinstance(d, int) or d < 1:
            raise ValueError(f"hypernetwork option d (embedding depth) must be a positive integer, got {d!r}")
        self.embedding_std, std = factor_stds(in_channels, d, kernel_size, init)
        self.d, self.kernel_size, self.init = d, kernel_size, init
        self.filter = nn.Parameter(torch.randn(in_channels, d, kernel_size, kernel_size) * std)
        self.bias = nn.Parameter(torch.zeros(in_channels)) if bias else None

    def forward(self, embedding: Tensor) -> Tensor:
        """[C_out, d, k, k] embedding -> [C_out, C_in, k, k] kernel."""
        return F.conv2d(embedding, self.filter, self.bias, padding=self.kernel_size // 2)


class HyperConv2d(EmbeddedConv2d):
    """A conv whose kernel is ``hypernet(embedding)`` (a ``ConvHyperNet``); embedding
    E [C_out, d, k, k] ~ N(0, hypernet.embedding_std^2)."""

    def __init__(self, conv: nn.Conv2d, hypernet: ConvHyperNet, hypernet_key: str):
        if hypernet.filter.shape[0] != conv.in_channels or conv.kernel_size != (hypernet.kernel_size,) * 2:
            raise ValueError(f"hypernetwork {hypernet_key!r} makes [*, {hypernet.filter.shape[0]}, "
                             f"{hypernet.kernel_size}, {hypernet.kernel_size}] kernels, not {tuple(conv.weight.shape)}")
        super().__init__(conv, hypernet, hypernet_key)

    def draw_embedding(self, generator: torch.Generator | None) -> Tensor:
        kh, kw = self.kernel_size
        return torch.randn(self.out_channels, self.hypernet.d, kh, kw, generator=generator) * self.hypernet.embedding_std

    def kernel(self) -> Tensor:
        return self.hypernet(self.embedding)


class StaticLinearHyperNet(nn.Module):
    """Ha et al.'s static hypernetwork: z [N_z] -> one [out_block, in_block, k, k] kernel block.

    a_i = W_i z + B_i (i = 1..in_block; W_i [d, N_z], B_i [d]), K_i = W_out a_i + B_out
    (W_out [out_block*k*k, d], B_out [out_block*k*k]); K_i is the slice of input channel i.
    Parameters: in_block*d*(N_z + 1) + out_block*k*k*(d + 1), e.g. 4,240 for Ha's MNIST
    hypernetwork (N_z = d = 4, 16x16 blocks, k = 7). Init: W_i ~ N(0, 1/N_z),
    W_out ~ N(0, 2/(in_block*k*k*d)), biases 0, so Var(K) = 2 Var(z) / (in_block*k*k).
    Measured at init (the setting of ``factor_stds``, ha_conv4 vs conv4, 32x32): adapting only
    the embeddings moves the kernels 0.08-0.09x as far as conv4's plain weights, a milder form
    of the imbalance that ``factor_stds``' legacy scheme has; this init is left as Ha et al.'s.
    """

    param_roles = {name: ParamRole.HYPERNET for name in ("w_in", "b_in", "w_out", "b_out")}

    def __init__(self, z_dim: int = 64, d: int | None = None, in_block: int = 16, out_block: int = 16,
                 kernel_size: int = 3):
        super().__init__()
        d = z_dim if d is None else d
        if z_dim < 1 or d < 1:
            raise ValueError(f"static hypernetwork options z_dim and d must be >= 1, got {z_dim}, {d}")
        self.z_dim, self.in_block, self.out_block, self.kernel_size = z_dim, in_block, out_block, kernel_size
        fan = out_block * kernel_size * kernel_size
        self.w_in = nn.Parameter(torch.randn(in_block, d, z_dim) / math.sqrt(z_dim))
        self.b_in = nn.Parameter(torch.zeros(in_block, d))
        self.w_out = nn.Parameter(torch.randn(fan, d) * math.sqrt(2.0 / (in_block * kernel_size ** 2 * d)))
        self.b_out = nn.Parameter(torch.zeros(fan))

    def forward(self, z: Tensor) -> Tensor:
        """[n, N_z] embeddings -> [n, out_block, in_block, k, k] kernel blocks."""
        a = torch.einsum("idz,nz->nid", self.w_in, z) + self.b_in
        blocks = a @ self.w_out.t() + self.b_out
        k = self.kernel_size
        return blocks.view(-1, self.in_block, self.out_block, k, k).transpose(1, 2)


class StaticHyperConv2d(EmbeddedConv2d):
    """A conv tiled from (C_out/out_block) x (C_in/in_block) hypernetwork blocks, one z each.

    embedding: [C_out/out_block, C_in/in_block, N_z]. A 1x1 conv takes the centre tap of its
    generated blocks. z ~ N(0, in_block*k*k / (C_in*kh*kw)) gives He variance (see
    ``StaticLinearHyperNet``).
    """

    def __init__(self, conv: nn.Conv2d, hypernet: StaticLinearHyperNet, hypernet_key: str):
        hn = hypernet
        if conv.in_channels % hn.in_block or conv.out_channels % hn.out_block or conv.kernel_size[0] not in (
                1, hn.kernel_size) or conv.kernel_size[0] != conv.kernel_size[1]:
            raise ValueError(f"static hypernetwork {hypernet_key!r} cannot tile a {tuple(conv.weight.shape)} kernel")
        super().__init__(conv, hypernet, hypernet_key)

    def draw_embedding(self, generator: torch.Generator | None) -> Tensor:
        hn, (kh, kw) = self.hypernet, self.kernel_size
        std = math.sqrt(hn.in_block * hn.kernel_size ** 2 / (self.in_channels * kh * kw))
        shape = (self.out_channels // hn.out_block, self.in_channels // hn.in_block, hn.z_dim)
        return torch.randn(shape, generator=generator) * std

    def kernel(self) -> Tensor:
        n_out, n_in, z_dim = self.embedding.shape
        hn, k = self.hypernet, self.hypernet.kernel_size
        blocks = hn(self.embedding.reshape(-1, z_dim)).reshape(n_out, n_in, hn.out_block, hn.in_block, k, k)
        weight = blocks.transpose(1, 2).reshape(self.out_channels, self.in_channels, k, k)
        if self.kernel_size[0] == 1 and k != 1:
            weight = weight[:, :, k // 2: k // 2 + 1, k // 2: k // 2 + 1]
        return weight


def sample_prior(prior: str, shape: tuple[int, ...], generator: torch.Generator | None = None,
                 device: torch.device | None = None, dtype: torch.dtype | None = None) -> Tensor:
    """Noise from ``prior``: 'uniform01' U(0,1), 'uniform11' U(-1,1), 'normal' N(0,1),
    'abs_normal' |N(0,1)|. Draws on ``generator``'s device (the CPU by default), then moves."""
    if prior not in PRIORS:
        raise ValueError(f"prior must be one of {PRIORS}, got {prior!r}")
    gen_device = generator.device if generator is not None else "cpu"
    if prior.startswith("uniform"):
        z = torch.rand(shape, generator=generator, device=gen_device)
        z = z * 2 - 1 if prior == "uniform11" else z
    else:
        z = torch.randn(shape, generator=generator, device=gen_device)
        z = z.abs() if prior == "abs_normal" else z
    return z.to(device=device, dtype=dtype)


class BayesianHyperNet(nn.Module):
    """Ukai et al.: z [z_dim] -> Linear(z_dim, h_dim) -> act -> Linear(h_dim, numel) -> kernel.

    No biases. The first layer is He-initialised; the last one 10x smaller (std / 10) than He
    init, so early weight samples stay close together.
    """

    param_roles = {"hidden": ParamRole.HYPERNET, "out": ParamRole.HYPERNET}

    def __init__(self, z_dim: int, h_dim: int, shape: tuple[int, ...], activation: str = "relu"):
        super().__init__()
        if z_dim < 1 or h_dim < 1:
            raise ValueError(f"Bayesian hypernetwork options z_dim and h_dim must be >= 1, got {z_dim}, {h_dim}")
        if activation not in ("relu", "leaky_relu"):
            raise ValueError(f"Bayesian hypernetwork option activation must be 'relu' or 'leaky_relu', got {activation!r}")
        self.shape, self.activation = tuple(shape), activation
        self.hidden = nn.Parameter(torch.randn(h_dim, z_dim) * math.sqrt(2.0 / z_dim))
        self.out = nn.Parameter(torch.randn(math.prod(shape), h_dim) * math.sqrt(2.0 / h_dim) / 10)

    def forward(self, z: Tensor) -> Tensor:
        """[z_dim] noise -> kernel of ``shape``."""
        h = F.linear(z, self.hidden)
        h = F.relu(h) if self.activation == "relu" else F.leaky_relu(h, 0.01)
        return F.linear(h, self.out).view(self.shape)


class NoiseBank(nn.Module):
    """The noise of one weight sample, [groups, z_dim], shared by a Bayesian model's convs.

    ``current`` is set by the model for the duration of one forward pass (None otherwise).
    """

    def __init__(self, groups: int, z_dim: int, prior: str):
        super().__init__()
        if prior not in PRIORS:
            raise ValueError(f"Bayesian model option prior must be one of {PRIORS}, got {prior!r}")
        self.groups, self.z_dim, self.prior = groups, z_dim, prior
        self.current: Tensor | None = None

    def sample(self, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> Tensor:
        """One weight sample's noise [groups, z_dim] from the prior."""
        return sample_prior(self.prior, (self.groups, self.z_dim), generator, device, dtype)


class BayesianHyperConv2d(GeneratedConv2d):
    """A conv whose kernel is ``hypernet(noise.current[group])`` (its own hypernetwork)."""

    def __init__(self, conv: nn.Conv2d, noise: NoiseBank, group: int, h_dim: int, activation: str):
        super().__init__(conv)
        self.hypernet = BayesianHyperNet(noise.z_dim, h_dim, tuple(conv.weight.shape), activation)
        object.__setattr__(self, "noise", noise)
        self.group = group

    def kernel(self) -> Tensor:
        if self.noise.current is None:
            raise RuntimeError("a Bayesian conv's kernel exists only inside its model's forward pass")
        return self.hypernet(self.noise.current[self.group])
