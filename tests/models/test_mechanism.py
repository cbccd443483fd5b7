"""The adaptation mechanism of Babu et al.: kernels generated from adapted embeddings move.

Movement is computed by hand here (W = conv2d(E, H, padding=1) before and after ``adapt``),
not through the package's movement metric.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from metahyper.meta.maml import adapt
from metahyper.meta.pretrain import PretrainConfig, pretrain
from metahyper.models import build_model, generated_convs

LR, STEPS = 0.01, 5


def _pair(init: str):
    """(hyper_conv4 with ``init``, conv4) from the same seed, float64."""
    torch.manual_seed(0)
    hyper = build_model("hyper_conv4", 5, init=init).double()
    torch.manual_seed(0)
    return hyper, build_model("conv4", 5).double()


def _batch():
    gen = torch.Generator().manual_seed(1)
    return torch.randn(25, 3, 16, 16, generator=gen, dtype=torch.float64), torch.arange(5).repeat_interleave(5)


def _movement_ratios(init: str) -> list[float]:
    """Per generated conv: ||W_after - W_before|| of the hyper model / that of conv4's conv."""
    hyper, plain = _pair(init)
    x, y = _batch()
    adapted_hyper = adapt(hyper, x, y, STEPS, LR, create_graph=False)
    adapted_plain = adapt(plain, x, y, STEPS, LR, create_graph=False)
    ratios = []
    for path, conv in generated_convs(hyper).items():
        h = conv.hypernet.filter.detach()
        before = F.conv2d(conv.embedding.detach(), h, padding=1)
        after = F.conv2d(adapted_hyper[f"{path}.embedding"], h, padding=1)
        plain_moved = (adapted_plain[f"{path}.weight"] - plain.get_submodule(path).weight).norm()
        ratios.append(((after - before).norm() / plain_moved).item())
    return ratios


def test_generated_kernels_move_at_least_as_much_as_plain_weights():
    ratios = _movement_ratios("balanced")
    assert len(ratios) == 3 and min(ratios) >= 1.0


def test_legacy_init_barely_moves_its_kernels():
    assert max(_movement_ratios("legacy")) < 0.02


def test_both_inits_generate_the_same_he_scaled_kernels():
    balanced, _ = _pair("balanced")
    legacy, _ = _pair("legacy")
    product = 2 / (64 * 64 * 7 ** 2)  # Var(E) Var(H) for C_in = d = 64, 7 valid (position, tap) pairs
    for path, conv in generated_convs(balanced).items():
        other = legacy.get_submodule(path)
        w = F.conv2d(conv.embedding, conv.hypernet.filter, padding=1)
        torch.testing.assert_close(w, F.conv2d(other.embedding, other.hypernet.filter, padding=1))
        assert conv.embedding.std().item() == pytest.approx(product ** 0.25, rel=0.05)
        assert conv.hypernet.filter.std().item() == pytest.approx(product ** 0.25, rel=0.05)
        assert other.embedding.std().item() == pytest.approx(1.0, rel=0.05)
        # mean over kernel positions of Var(W) is the He value 2 / (C_in k k)
        assert w.var().item() == pytest.approx(2 / (64 * 9), rel=0.15)
    assert math.isclose(balanced.hypernets["stage0"].embedding_std, product ** 0.25)


def test_bad_init_is_refused_naming_the_option():
    with pytest.raises(ValueError, match="option init"):
        build_model("hyper_conv4", 5, init="he")


def _store():
    gen = torch.Generator().manual_seed(0)
    means = torch.randint(40, 216, (4, 3, 1, 1), generator=gen)
    noise = torch.randint(-30, 31, (4, 16, 3, 16, 16), generator=gen)
    return (means[:, None] + noise).clamp(0, 255).to(torch.uint8).flatten(0, 1), torch.arange(4).repeat_interleave(16)


def _relative_embedding_change(init: str) -> float:
    torch.manual_seed(0)
    model = build_model("hyper_conv4", 4, init=init)
    before = {p: c.embedding.detach().clone() for p, c in generated_convs(model).items()}
    cfg = PretrainConfig(epochs=2, batch_size=16, lr=0.05, output_norm_penalty=6.25e-5)
    pretrain(model, *_store(), lambda x, g: x.float() / 127.5 - 1, cfg, progress=False, way=4)
    moved = sum((c.embedding - before[p]).norm() ** 2 for p, c in generated_convs(model).items())
    return (moved / sum(e.norm() ** 2 for e in before.values())).sqrt().item()


def test_pretraining_trains_the_embeddings():
    # measured: 0.11 balanced vs 0.0026 legacy (2 epochs of SGD on 64 images)
    assert _relative_embedding_change("balanced") > 0.05
    assert _relative_embedding_change("legacy") < 0.01
