"""LSTM, layer-norm LSTM and HyperLSTM steps against hand-written float64 reference steps.

The references follow Ha, Dai & Le (2016) Section 3.2 gate by gate, per batch row, with the
HyperLSTM's weight matrices built explicitly as ``diag(d^y(z)) W^y`` (their Eq. 7 before the
memory-efficient rewrite), so they check both the equations and the row-scaling form.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

from metahyper.lm.cells import LN_EPS, HyperLSTMCell, LSTMCell
from metahyper.lm.model import CharLM
from metahyper.models.roles import ParamRole

X, H, HH, NZ, B = 3, 5, 4, 2, 2
GATES = "igfo"


def sigmoid(v):
    return 1.0 / (1.0 + torch.exp(-v))


def ln_ref(a, gain, bias):
    """Layer norm written out: (a - mean) / sqrt(biased variance + eps) * gain + bias."""
    mean = sum(a) / len(a)
    var = sum((v - mean) ** 2 for v in a) / len(a)
    return (a - mean) / torch.sqrt(var + LN_EPS) * gain + bias


def lstm_ref(cell: LSTMCell, x, h, c, preact=None):
    """One LSTM step for one row; ``preact(k)`` overrides the gate pre-activation (HyperLSTM)."""
    n = cell.hidden_size
    a = {}
    for k, y in enumerate(GATES):
        rows = slice(k * n, (k + 1) * n)
        value = preact(k) if preact else cell.weight_x[rows] @ x + cell.weight_h[rows] @ h + cell.bias[rows]
        a[y] = ln_ref(value, cell.ln_gain[k], cell.ln_bias[k]) if cell.use_layer_norm else value
    c_new = sigmoid(a["f"]) * c + sigmoid(a["i"]) * torch.tanh(a["g"])
    c_out = ln_ref(c_new, cell.ln_c_gain, cell.ln_c_bias) if cell.use_layer_norm else c_new
    return sigmoid(a["o"]) * torch.tanh(c_out), c_new


def hyper_ref(cell: HyperLSTMCell, x, h, c, hhat, chat):
    """One HyperLSTM step for one row, with explicit effective matrices diag(d) W."""
    hhat_new, chat_new = lstm_ref(cell.hyper, torch.cat([x, h]), hhat, chat)  # Eq. 10
    main = cell.main

    def preact(k):
        rows = slice(k * H, (k + 1) * H)
        z_h = cell.z_weight[0, k] @ hhat_new + cell.z_bias[0, k]  # Eq. 11
        z_x = cell.z_weight[1, k] @ hhat_new + cell.z_bias[1, k]
        z_b = cell.z_weight[2, k] @ hhat_new
        w_h = torch.diag(cell.d_weight[0, k] @ z_h) @ main.weight_h[rows]  # W_h(z_h)
        w_x = torch.diag(cell.d_weight[1, k] @ z_x) @ main.weight_x[rows]
        return w_h @ h + w_x @ x + cell.d_weight[2, k] @ z_b + main.bias[rows]

    h_new, c_new = lstm_ref(main, x, h, c, preact)
    return h_new, c_new, hhat_new, chat_new


def randomise(module: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """float64 and every parameter random, so no init value hides a wrong term."""
    module = module.double()
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen, dtype=torch.float64) * 0.7)
    return module.eval()


def random_state(gen, *sizes):
    return tuple(torch.randn(B, n, generator=gen, dtype=torch.float64) for n in sizes)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_lstm_step_matches_reference(layer_norm):
    cell = randomise(LSTMCell(X, H, layer_norm=layer_norm))
    gen = torch.Generator().manual_seed(1)
    (x,), (h, c) = random_state(gen, X), random_state(gen, H, H)
    h_new, (_, c_new) = cell.step(cell.project_input(x), (h, c))
    for b in range(B):
        h_ref, c_ref = lstm_ref(cell, x[b], h[b], c[b])
        torch.testing.assert_close(h_new[b], h_ref, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(c_new[b], c_ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("layer_norm", [False, True])
def test_hyper_step_matches_explicit_matrix_reference(layer_norm):
    cell = randomise(HyperLSTMCell(X, H, HH, NZ, layer_norm=layer_norm))
    gen = torch.Generator().manual_seed(2)
    (x,), state = random_state(gen, X), random_state(gen, H, H, HH, HH)
    h_new, new_state = cell.step(cell.project_input(x), state)
    assert torch.equal(h_new, new_state[0])
    for b in range(B):
        expected = hyper_ref(cell, x[b], *(s[b] for s in state))
        for got, want in zip(new_state, expected):
            torch.testing.assert_close(got[b], want, rtol=1e-12, atol=1e-12)


def test_initial_scaling_vectors_and_projections_follow_the_appendix():
    torch.manual_seed(0)
    cell = HyperLSTMCell(X, H, HH, NZ)
    assert torch.equal(cell.z_weight[:2], torch.zeros(2, 4, NZ, HH)) and torch.equal(cell.z_bias, torch.ones(2, 4, NZ))
    assert 0.005 < cell.z_weight[2].std() < 0.02
    assert torch.allclose(cell.d_weight[:2], torch.full((2, 4, H, NZ), 0.1 / NZ)) and not cell.d_weight[2].any()
    x, state = torch.randn(B, X), cell.initial_state(B, torch.zeros(1))
    _, _, d = cell.step_with_scales(cell.project_input(x), state)
    torch.testing.assert_close(d[:2], torch.full((2, 4, B, H), 0.1))  # scaling vectors start at 0.1
    assert not d[2].any() and not cell.main.bias.any() and not cell.hyper.bias.any()
    for w in (cell.main.weight_h, cell.hyper.weight_h):
        n = w.shape[1]
        for k in range(4):
            block = w[k * n:(k + 1) * n]
            torch.testing.assert_close(block @ block.t(), torch.eye(n), atol=1e-5, rtol=0)


class _Stepper(torch.nn.Module):
    """Wraps a cell so ``functional_call`` runs project_input + step in one forward."""

    def __init__(self, cell):
        super().__init__()
        self.cell = cell

    def forward(self, x, state):
        h, new_state = self.cell.step(self.cell.project_input(x), state)
        return torch.cat([h, *new_state[1:]], dim=-1)


@pytest.mark.parametrize("hyper", [False, True])
def test_gradcheck_of_a_step(hyper):
    cell = randomise(HyperLSTMCell(X, H, HH, NZ) if hyper else LSTMCell(X, H, layer_norm=True))
    wrapper, names = _Stepper(cell), [f"cell.{n}" for n, _ in cell.named_parameters()]
    gen = torch.Generator().manual_seed(3)
    (x,), state = random_state(gen, X), random_state(gen, *([H, H, HH, HH] if hyper else [H, H]))

    def step(x, *params):
        return functional_call(wrapper, dict(zip(names, params)), (x, state))

    inputs = (x.requires_grad_(), *(p.detach().clone().requires_grad_() for p in cell.parameters()))
    assert torch.autograd.gradcheck(step, inputs, eps=1e-6, atol=1e-6)


def test_functional_call_matches_the_module_and_roles_split_hyper_from_main():
    torch.manual_seed(0)
    model = CharLM(7, "hyper_lstm", hidden_size=H, input_size=X, hyper_size=HH, embedding_size=NZ, layers=2)
    tokens = torch.randint(0, 7, (4, B))
    params = {n: p.detach() * 1.5 for n, p in model.named_parameters()}
    expected = CharLM(7, "hyper_lstm", hidden_size=H, input_size=X, hyper_size=HH, embedding_size=NZ, layers=2)
    expected.load_state_dict(params)
    model.eval(), expected.eval()  # no dropout masks
    torch.testing.assert_close(functional_call(model, params, (tokens,))[0], expected(tokens)[0])
    roles = {n: model.param_role(n) for n in params}
    hyper = sorted(n for n, r in roles.items() if r is ParamRole.HYPERNET)
    assert hyper and all(".hyper." in n or n.split(".")[2] in ("z_weight", "z_bias", "d_weight") for n in hyper)
    assert roles["cells.0.main.weight_h"] is ParamRole.BODY and roles["cells.1.main.ln_gain"] is ParamRole.BODY
    assert roles["classifier.weight"] is ParamRole.CLASSIFIER and roles["embedding.weight"] is ParamRole.BODY


def test_recurrent_dropout_only_in_training_and_only_on_the_candidate():
    torch.manual_seed(0)
    cell = LSTMCell(X, H, recurrent_dropout=0.5).double()
    x, state = torch.randn(B, X, dtype=torch.float64), cell.initial_state(B, torch.zeros(1, dtype=torch.float64))
    cell.eval()
    h_eval, (_, c_eval) = cell.step(cell.project_input(x), state)
    cell.train()
    h_train, (_, c_train) = cell.step(cell.project_input(x), state, torch.Generator().manual_seed(0))
    # From a zero state c_t = sigmoid(i) * drop(tanh(g)): every entry is kept x2 or dropped.
    ratio = c_train / c_eval
    assert torch.all(((ratio - 2.0).abs() < 1e-9) | (c_train == 0))
    assert (c_train == 0).any() and (ratio - 2.0).abs().lt(1e-9).any()
    assert not torch.equal(h_eval, h_train)
