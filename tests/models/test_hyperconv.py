"""Kernel generation of the three hypernetworks against independent hand-written references."""

import math

import pytest
import torch
from torch import nn

from metahyper.models import (
    ConvHyperNet,
    HaMnistNet,
    HyperConv2d,
    ParamRole,
    StaticHyperConv2d,
    StaticLinearHyperNet,
    build_model,
)
from metahyper.models.hyperconv import BayesianHyperNet, sample_prior


def conv_kernel_by_loops(E, H, bias=None):
    """W[o, i, p, q] = sum_{c,u,v} E[o, c, p+u-r, q+v-r] H[i, c, u, v] (+ b[i]), zero outside."""
    c_out, d, k, _ = E.shape
    c_in, r = H.shape[0], k // 2
    W = torch.zeros(c_out, c_in, k, k, dtype=E.dtype)
    for o in range(c_out):
        for i in range(c_in):
            for p in range(k):
                for q in range(k):
                    total = 0.0 if bias is None else bias[i]
                    for u in range(k):
                        for v in range(k):
                            a, b = p + u - r, q + v - r
                            if 0 <= a < k and 0 <= b < k:
                                total = total + (E[o, :, a, b] * H[i, :, u, v]).sum()
                    W[o, i, p, q] = total
    return W


@pytest.mark.parametrize("k, bias", [(1, False), (3, False), (3, True), (5, False)])
def test_generated_kernel_equals_hand_computed_convolution(k, bias):
    hypernet = ConvHyperNet(in_channels=3, d=2, kernel_size=k, bias=bias).double()
    layer = HyperConv2d(nn.Conv2d(3, 4, k, padding=k // 2, bias=False), hypernet, "h").double()
    with torch.no_grad():
        if bias:
            hypernet.bias.normal_()
    expected = conv_kernel_by_loops(layer.embedding.detach(), hypernet.filter.detach(),
                                    hypernet.bias.detach() if bias else None)
    assert layer.kernel().shape == (4, 3, k, k)
    torch.testing.assert_close(layer.kernel().detach(), expected)


def test_hyper_conv_applies_its_kernel_to_the_whole_batch():
    hypernet = ConvHyperNet(8, 8)
    layer = HyperConv2d(nn.Conv2d(8, 8, 3, stride=2, padding=1, bias=False), hypernet, "h")
    x = torch.randn(3, 8, 9, 9)
    torch.testing.assert_close(layer(x), nn.functional.conv2d(x, layer.kernel(), stride=2, padding=1))


def test_init_gives_he_variance():
    c = 128
    hypernet = ConvHyperNet(c, c)
    kernel = HyperConv2d(nn.Conv2d(c, c, 3, padding=1, bias=False), hypernet, "h").kernel()
    assert kernel.var().item() == pytest.approx(2 / (c * 9), rel=0.1)


def test_d_must_be_positive():
    with pytest.raises(ValueError, match="option d"):
        ConvHyperNet(8, 0)


@pytest.mark.parametrize("variant", [1, 2])
def test_gradients_reach_every_embedding_and_hypernet_parameter(variant):
    model = build_model("hyper_wrn", 5, depth=10, width=1, variant=variant)
    model(torch.randn(2, 3, 32, 32)).logsumexp(dim=1).sum().backward()
    groups = model.params_by_role()
    for role in (ParamRole.EMBEDDING, ParamRole.HYPERNET):
        assert groups[role]
        for name, param in groups[role].items():
            assert param.grad is not None and param.grad.abs().sum() > 0, name


def test_kernels_are_generated_once_per_forward_not_per_image():
    model = build_model("hyper_conv4", 5, variant=1)
    calls = []
    model.hypernets["stage0"].register_forward_hook(lambda *_: calls.append(1))
    model(torch.randn(16, 3, 32, 32))
    assert len(calls) == 3  # the stage's three 64x64 convs, each once, whatever the batch size


def test_static_hypernet_parameter_count_formula():
    # Ha et al.'s MNIST hypernetwork: W_i 16x4x4 + B_i 16x4 + W_out (16*7*7)x4 + B_out 16*7*7.
    assert 16 * 4 * 4 + 16 * 4 + 16 * 49 * 4 + 16 * 49 == 4240
    assert sum(p.numel() for p in StaticLinearHyperNet(4, 4, 16, 16, 7).parameters()) == 4240
    model = HaMnistNet()
    assert sum(p.numel() for p in model.hypernets.parameters()) == 4240
    assert model.stages[0][0].embedding.numel() == 4
    assert model(torch.randn(2, 1, 28, 28)).shape == (2, 10)


def test_static_kernel_tiles_blocks_made_by_the_two_linear_layers():
    hn = StaticLinearHyperNet(z_dim=3, d=2, in_block=2, out_block=2, kernel_size=3).double()
    for p in hn.parameters():
        nn.init.normal_(p)
    layer = StaticHyperConv2d(nn.Conv2d(4, 6, 3, padding=1, bias=False), hn, "s").double()
    z = layer.embedding.detach()
    assert z.shape == (3, 2, 3)  # (C_out / 2) x (C_in / 2) blocks, one z each
    W = layer.kernel().detach()
    for bo in range(3):
        for bi in range(2):
            for i in range(2):  # K_i = W_out (W_i z + B_i) + B_out is input channel i of the block
                a = hn.w_in[i].detach() @ z[bo, bi] + hn.b_in[i].detach()
                k_i = (hn.w_out.detach() @ a + hn.b_out.detach()).view(2, 3, 3)
                torch.testing.assert_close(W[2 * bo: 2 * bo + 2, 2 * bi + i], k_i)


def test_static_one_by_one_conv_takes_the_centre_tap():
    hn = StaticLinearHyperNet(z_dim=4, in_block=2, out_block=2, kernel_size=3)
    layer = StaticHyperConv2d(nn.Conv2d(2, 4, 1, bias=False), hn, "s")
    full = hn(layer.embedding.reshape(-1, 4)).reshape(2, 1, 2, 2, 3, 3).transpose(1, 2).reshape(4, 2, 3, 3)
    torch.testing.assert_close(layer.kernel(), full[:, :, 1:2, 1:2])


def test_static_conv_refuses_untileable_shapes():
    with pytest.raises(ValueError, match="cannot tile"):
        StaticHyperConv2d(nn.Conv2d(3, 16, 3, bias=False), StaticLinearHyperNet(), "s")


@pytest.mark.parametrize("prior, low, high", [("uniform01", 0, 1), ("uniform11", -1, 1), ("abs_normal", 0, math.inf)])
def test_priors_have_their_support(prior, low, high):
    z = sample_prior(prior, (1000,), torch.Generator().manual_seed(0))
    assert z.min() >= low and z.max() <= high
    assert sample_prior("normal", (1000,), torch.Generator().manual_seed(0)).min() < 0


def test_bayesian_last_layer_is_ten_times_smaller_than_he():
    hn = BayesianHyperNet(z_dim=8, h_dim=32, shape=(64, 64, 3, 3))
    assert hn.out.std().item() == pytest.approx(math.sqrt(2 / 32) / 10, rel=0.05)
    assert hn.hidden.std().item() == pytest.approx(math.sqrt(2 / 8), rel=0.3)
    assert not [n for n, _ in hn.named_parameters() if "bias" in n]


def test_bayesian_forward_draws_a_fresh_sample_and_is_reproducible():
    model = build_model("bayes_conv4", 5)
    x = torch.randn(4, 3, 32, 32)
    assert not torch.allclose(model(x), model(x))
    a = model(x, generator=torch.Generator().manual_seed(7))
    b = model(x, generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(a, b)


def test_bayesian_weight_sample_is_shared_by_the_batch():
    model = build_model("bayes_conv4", 5).eval()
    x = torch.randn(3, 3, 32, 32)
    noise = model.sample_noise(torch.Generator().manual_seed(1))
    together = model(x, noise=noise)
    one_by_one = torch.cat([model(x[i: i + 1], noise=noise) for i in range(3)])
    torch.testing.assert_close(together, one_by_one)


def test_model_averaging_is_the_mean_of_softmax_over_samples():
    model = build_model("bayes_conv4", 5, prior="normal").eval()
    x = torch.randn(3, 3, 32, 32)
    averaged = model.predict_averaged(x, 4, torch.Generator().manual_seed(3))
    generator = torch.Generator().manual_seed(3)
    by_hand = torch.stack([model(x, noise=model.sample_noise(generator)).softmax(-1) for _ in range(4)]).mean(0)
    torch.testing.assert_close(averaged, by_hand)
    torch.testing.assert_close(averaged.sum(-1), torch.ones(3))


@pytest.mark.parametrize("strategy, groups", [("all-in-one", 1), ("block-wise", 4)])
def test_bayesian_noise_strategies(strategy, groups):
    model = build_model("bayes_conv4", 5, strategy=strategy, z_dim=6)
    assert model.sample_noise().shape == (groups, 6)  # conv4: stem block + 3 blocks
    convs = [m for m in model.modules() if hasattr(m, "group")]
    assert len(convs) == 4 and {m.group for m in convs} == set(range(groups))


def test_bayesian_kernel_exists_only_inside_forward():
    model = build_model("bayes_conv4", 5)
    with pytest.raises(RuntimeError, match="forward pass"):
        model.stem[0].kernel()
