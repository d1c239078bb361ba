"""The peer of benchmarks/peer.py: the thesis's four models and Algorithm 1's training step written the way a
PyTorch user would write them: eager mode, `torch.nn` modules (nn.Linear, nn.GRU, nn.LSTM, nn.LayerNorm), the
B x (C - 1) attacked copies pushed through the model as one batch, `torch.autograd.grad` for the inner steps and
`torch.optim.AdamW` for the outer one.

Each model has the structure and the parameter count of its JAX original (src/advrepro/models/), and with the
same weights (`load_flax`) computes the same logits (tests/test_benchmark_peer.py):
- FF: the flattened sequence -> Linear-ReLU twice -> Linear.
- GRU, LSTM: a per-step Linear-ReLU encoder, nn.GRU / nn.LSTM over time, the last output -> Linear. Flax's cells
  sum the input and recurrent transforms under one bias per gate (the GRU's candidate gate keeps both, as
  PyTorch's); PyTorch's second bias of the other gates is held at zero (LSTM: `bias_ih` frozen; GRU: the
  reset and update parts of `bias_hh` get no gradient), so both train the same parameters.
- S4: the same DPLR S4 as models/s4.py, ported line by line (HiPPO-LegS initialisation, the Cauchy kernel at
  the roots of unity with its Woodbury correction, an inverse FFT for the length-L kernel, the causal
  convolution as a Toeplitz matmul up to L = 128 and by FFT beyond; prenorm residual blocks with LayerNorm,
  tanh-GELU, a Dense mixing layer; mean over time). Complex tensors and torch.fft carry the same FLOPs as the
  JAX version, with PyTorch's kernels.

Algorithm 1 (`alg1_step`), as src/advrepro/robust.py: per sample C - 1 copies, one per wrong class j, pushed K
signed-gradient steps up the margin Z_j - Z_y, each projected onto the epsilon-ball and [-1, 1]; then the mean
over samples of the maximum of the copies' cross-entropy, and AdamW. Like the JAX step it does not attack the
copy j = y, whose margin is identically zero (it would never move).
"""
from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

LAMBDA_RE_MAX = -1e-4


class FF(nn.Module):
    def __init__(self, in_features: int, layer: int, n_classes: int):
        super().__init__()
        self.hidden = nn.ModuleList([nn.Linear(in_features, layer), nn.Linear(layer, layer)])
        self.out = nn.Linear(layer, n_classes)

    def forward(self, x):
        x = x.flatten(1)
        for lin in self.hidden:
            x = F.relu(lin(x))
        return self.out(x)


class RNN(nn.Module):
    def __init__(self, features: int, layer: int, hidden: int, n_classes: int, cell: str):
        super().__init__()
        self.cell = cell
        self.encoder = nn.Linear(features, layer)
        self.rnn = (nn.GRU if cell == "gru" else nn.LSTM)(layer, hidden, batch_first=True)
        self.out = nn.Linear(hidden, n_classes)
        with torch.no_grad():
            if cell == "lstm":   # one bias per gate: bias_hh (forget gate at 1, as the JAX cell), bias_ih zero
                self.rnn.bias_ih_l0.zero_()
                self.rnn.bias_ih_l0.requires_grad_(False)
                self.rnn.bias_hh_l0.zero_()
                self.rnn.bias_hh_l0[hidden:2 * hidden] = 1.0
            else:                # GRU: the reset and update gates' recurrent biases duplicate the input ones
                self.rnn.bias_hh_l0[:2 * hidden] = 0.0
                mask = torch.ones(3 * hidden)
                mask[:2 * hidden] = 0.0
                self.rnn.bias_hh_l0.register_hook(lambda g, mask=mask: g * mask)
        self.frozen = 2 * hidden if cell == "gru" else 0  # trainable elements held at zero by the hook

    def forward(self, x):
        h, _ = self.rnn(F.relu(self.encoder(x)))
        return self.out(h[:, -1])


# ---- S4 ------------------------------------------------------------------------------------------------------


def dplr_hippo(N: int):
    """(Lambda, P~, B~) of the HiPPO-LegS matrix in its diagonal-plus-low-rank form (models/s4.py)."""
    p = np.sqrt(1.0 + 2.0 * np.arange(N))
    A = -(np.tril(p[:, None] * p[None, :]) - np.diag(np.arange(N)))
    P, B = np.sqrt(np.arange(N) + 0.5), np.sqrt(2.0 * np.arange(N) + 1.0)
    S = A + P[:, None] * P[None, :]
    diag = np.diagonal(S)
    Lambda_im, V = np.linalg.eigh(-1j * (S - np.diag(diag)))
    Vh = V.conj().T
    return diag.mean() + 1j * Lambda_im, Vh @ P, Vh @ B


class S4Layer(nn.Module):
    """H independent S4 channels of N complex states: u [B, L, H] -> [B, L, H]."""

    def __init__(self, H: int, N: int):
        super().__init__()
        Lambda, P, B = dplr_hippo(N)
        pair = lambda z: torch.tensor(np.stack([z.real, z.imag], -1), dtype=torch.float32).repeat(H, 1, 1)
        self.Lambda_re = nn.Parameter(torch.tensor(Lambda.real, dtype=torch.float32).repeat(H, 1))
        self.Lambda_im = nn.Parameter(torch.tensor(Lambda.imag, dtype=torch.float32).repeat(H, 1))
        self.P = nn.Parameter(pair(P))
        self.B = nn.Parameter(pair(B))
        self.C = nn.Parameter(torch.randn(H, N, 2) * 0.5 ** 0.5)
        self.D = nn.Parameter(torch.randn(H))
        self.log_step = nn.Parameter(torch.empty(H).uniform_(math.log(1e-3), math.log(1e-1)))

    def kernel(self, L: int):
        """[H, L] real convolution kernels (models/s4.py's kernel_DPLR, all channels at once)."""
        Lambda = torch.clamp(self.Lambda_re, max=LAMBDA_RE_MAX) + 1j * self.Lambda_im       # [H, N]
        P, B, C = (torch.view_as_complex(t.contiguous()) for t in (self.P, self.B, self.C))
        step = torch.exp(self.log_step)[:, None, None]                                     # [H, 1, 1]
        z = torch.exp(-2j * math.pi * torch.arange(L) / L)                                 # [L]
        cauchy = 1.0 / ((2.0 / step) * (1.0 - z)[None, :, None] - Lambda[:, None, :] * (1.0 + z)[None, :, None])
        v = torch.stack([C.conj() * B, C.conj() * P, P.conj() * B, P.conj() * P], -1)     # [H, N, 4]
        r = cauchy @ v                                                                     # [H, L, 4]
        r00, r01, r10, r11 = r.unbind(-1)
        zz = (1.0 + z)[None, :]
        at_roots = 2.0 * (r00 - zz * r01 * r10 / (1.0 + zz * r11))
        return torch.fft.ifft(at_roots, n=L).real

    def forward(self, u):
        L = u.shape[1]
        K = self.kernel(L)
        ut = u.transpose(1, 2)                                                             # [B, H, L]
        if L <= 128:
            lag = torch.arange(L)[:, None] - torch.arange(L)[None, :]
            toeplitz = torch.where(lag >= 0, K[:, lag.clamp(min=0)], torch.zeros(()))      # [H, L out, L in]
            y = torch.einsum("bhj,hkj->bhk", ut, toeplitz)
        else:
            y = torch.fft.irfft(torch.fft.rfft(ut, 2 * L) * torch.fft.rfft(K, 2 * L), 2 * L)[..., :L]
        return (y + self.D[:, None] * ut).transpose(1, 2)


class S4Block(nn.Module):
    def __init__(self, layer: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(layer, eps=1e-6)
        self.s4 = S4Layer(layer, hidden)
        self.mix = nn.Linear(layer, layer)

    def forward(self, x):
        return x + self.mix(F.gelu(self.s4(self.norm(x)), approximate="tanh"))


class S4(nn.Module):
    def __init__(self, features: int, layer: int, hidden: int, n_classes: int, n_layers: int = 2):
        super().__init__()
        self.encoder = nn.Linear(features, layer)
        self.blocks = nn.ModuleList([S4Block(layer, hidden) for _ in range(n_layers)])
        self.out = nn.Linear(layer, n_classes)

    def forward(self, x):
        x = self.encoder(x)
        for block in self.blocks:
            x = block(x)
        return self.out(x.mean(1))


SSM_NAMES = ("Lambda_re", "Lambda_im", "P", "B", "log_step")


def build(model: str, seq_len: int, features: int, layer: int, hidden: int, n_classes: int,
          s4_layers: int = 2) -> nn.Module:
    """The PyTorch model of params.yaml's `model` section, on sequences [B, seq_len, features]."""
    if model == "ff":
        return FF(seq_len * features, layer, n_classes)
    if model in ("gru", "lstm"):
        return RNN(features, layer, hidden, n_classes, model)
    if model == "s4":
        return S4(features, layer, hidden, n_classes, s4_layers)
    raise ValueError(f"no PyTorch peer of model {model!r}")


def parameter_count(module: nn.Module) -> int:
    """Trainable elements (the GRU's recurrent reset/update biases, held at zero, left out)."""
    n = sum(p.numel() for p in module.parameters() if p.requires_grad)
    return n - sum(getattr(m, "frozen", 0) for m in module.modules())


def optimizer(module: nn.Module, lr: float, weight_decay: float, ssm_lr: float) -> torch.optim.Optimizer:
    """AdamW, the S4 state-space parameters in their own group without weight decay (as train.optimizer; the
    cosine schedule is left out: it costs nothing per step)."""
    ssm = [p for n, p in module.named_parameters() if n.rsplit(".", 1)[-1] in SSM_NAMES and p.requires_grad]
    ids = {id(p) for p in ssm}
    regular = [p for p in module.parameters() if p.requires_grad and id(p) not in ids]
    groups = [{"params": regular, "weight_decay": weight_decay}]
    if ssm:
        groups.append({"params": ssm, "weight_decay": 0.0, "lr": ssm_lr})
    return torch.optim.AdamW(groups, lr=lr)


def plain_step(model, opt, x, y) -> float:
    model.train()
    opt.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    opt.step()
    return loss.detach()


def alg1_step(model, opt, x, y, n_classes: int, epsilon: float, K: int, stepsize: float):
    """One Algorithm 1 step: the inner maximization over the B x (C - 1) copies, one towards each wrong class
    (evaluation mode), then the outer AdamW step on the worst copy's cross-entropy per sample."""
    b, c = x.shape[0], n_classes - 1
    shape = x.shape[1:]
    x0 = x.unsqueeze(1).expand(b, c, *shape).reshape(b * c, *shape)
    j = torch.arange(c)[None, :]
    target = (j + (j >= y[:, None]).long()).reshape(-1, 1)   # copy t of a sample pushed towards its t-th wrong class
    true = y.repeat_interleave(c)[:, None]
    model.eval()
    xs = x0
    for _ in range(K):
        xs = xs.detach().requires_grad_(True)
        z = model(xs)
        margin = (z.gather(1, target) - z.gather(1, true)).sum()
        (grad,) = torch.autograd.grad(margin, xs)
        with torch.no_grad():
            xs = torch.clamp(torch.minimum(torch.maximum(xs + stepsize * grad.sign(), x0 - epsilon), x0 + epsilon),
                             -1.0, 1.0)
    xs = xs.detach()
    model.train()
    opt.zero_grad(set_to_none=True)
    with torch.no_grad():
        clean = model(x)                                   # the accuracy the history reports
    ce = F.cross_entropy(model(xs), true[:, 0], reduction="none").view(b, c)
    loss = ce.max(1).values.mean()
    loss.backward()
    opt.step()
    return loss.detach(), clean


# ---- the JAX weights in the PyTorch models -------------------------------------------------------------------


def _t(a) -> torch.Tensor:
    return torch.tensor(np.asarray(a), dtype=torch.float32)


def _linear(lin: nn.Linear, p: dict) -> None:
    lin.weight.copy_(_t(p["kernel"]).T)
    if lin.bias is not None:
        lin.bias.copy_(_t(p["bias"]))


@torch.no_grad()
def load_flax(module: nn.Module, params: dict) -> nn.Module:
    """Copy a JAX model's Flax params (models/ff.py, rnn.py, s4.py) into its PyTorch peer."""
    if isinstance(module, FF):
        for i, lin in enumerate([*module.hidden, module.out]):
            _linear(lin, params[f"Dense_{i}"])
    elif isinstance(module, RNN):
        _linear(module.encoder, params["Dense_0"])
        _linear(module.out, params["Dense_1"])
        rnn = module.rnn
        if module.cell == "lstm":
            cell = params["LSTMCell_0"]
            rnn.weight_ih_l0.copy_(_t(cell["input"]["kernel"]).T)
            rnn.weight_hh_l0.copy_(_t(cell["hidden"]["kernel"]).T)
            rnn.bias_hh_l0.copy_(_t(cell["hidden"]["bias"]))
            rnn.bias_ih_l0.zero_()
        else:
            cell = params["GRUCell_0"]
            rnn.weight_ih_l0.copy_(torch.cat([_t(cell[g]["kernel"]).T for g in ("ir", "iz", "in")]))
            rnn.weight_hh_l0.copy_(torch.cat([_t(cell[g]["kernel"]).T for g in ("hr", "hz", "hn")]))
            rnn.bias_ih_l0.copy_(torch.cat([_t(cell[g]["bias"]) for g in ("ir", "iz", "in")]))
            rnn.bias_hh_l0.copy_(torch.cat([torch.zeros(2 * module.rnn.hidden_size), _t(cell["hn"]["bias"])]))
    elif isinstance(module, S4):
        _linear(module.encoder, params["Dense_0"])
        _linear(module.out, params["Dense_1"])
        for i, block in enumerate(module.blocks):
            p = params[f"S4Block_{i}"]
            block.norm.weight.copy_(_t(p["LayerNorm_0"]["scale"]))
            block.norm.bias.copy_(_t(p["LayerNorm_0"]["bias"]))
            _linear(block.mix, p["Dense_0"])
            for name in ("Lambda_re", "Lambda_im", "P", "B", "C", "D", "log_step"):
                getattr(block.s4, name).copy_(_t(p["s4"][name]))
    else:
        raise TypeError(f"no Flax layout for {type(module).__name__}")
    return module
