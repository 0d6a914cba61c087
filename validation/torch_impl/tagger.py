"""ContinuousTagger (docs/format.md section 7) as an nn.Module, with autograd.

State-dict keys equal refode's names except the final layer norm (``norm.weight``,
``norm.bias`` for ``norm.gamma``, ``norm.beta``); the ODE-block's arrays ``ode.*`` keep
refode's names and layouts (leading basis axis ``K``).
"""
import math

import torch
import torch.nn.functional as F
from torch import nn

from .common import RungeKutta, at, torch_dtype

#: wavelength base of the sinusoidal positions (format.md 5.7).
POSITION_BASE = 10000.0


def positions(length, width, dtype):
    """``P[p, j]``: sin for even ``j``, cos for odd ``j``; float64, then rounded to dtype."""
    p = torch.arange(length, dtype=torch.float64)[:, None]
    pair = (torch.arange(width) // 2 * 2).to(torch.float64)
    angle = p / POSITION_BASE ** (pair / width)
    even = (torch.arange(width) % 2 == 0)[None, :]
    return torch.where(even, torch.sin(angle), torch.cos(angle)).to(dtype)


def attention(u, w, bias, heads, padded):
    """Multi-head self-attention with key padding mask (format.md 5.6)."""
    b, length, d = u.shape
    dh = d // heads

    def proj(i, x):
        return F.linear(x, w[i], None if bias is None else bias[i])

    def split(x):
        return x.reshape(b, length, heads, dh).transpose(1, 2)

    q, k, v = (split(proj(i, u)) for i in range(3))
    s = (q @ k.transpose(-1, -2)) / math.sqrt(dh)
    if padded is not None:
        keep = ~padded[:, None, None, :]
        s = s.masked_fill(~keep, torch.finfo(s.dtype).min)
        a = torch.softmax(s, dim=-1) * keep
    else:
        a = torch.softmax(s, dim=-1)
    ctx = (a @ v).transpose(1, 2).reshape(b, length, d)
    return proj(3, ctx)


class EncoderBlock(nn.Module):
    """The ODE-block ``dx/dt = R(theta(t), x)`` with the encoder rate of format.md 7.2."""

    NAMES = ("ln1_gamma", "ln1_beta", "ln2_gamma", "ln2_beta", "mlp_b2", "attn_weights",
             "mlp_w1", "mlp_b1", "mlp_w2")

    def __init__(self, width, heads, ffn, basis, n_basis, interval, scheme, n_steps,
                 rate, attention_bias, ln_eps, dtype):
        super().__init__()
        k, d, f = n_basis, width, ffn
        shapes = {"ln1_gamma": (k, d), "ln1_beta": (k, d), "ln2_gamma": (k, d),
                  "ln2_beta": (k, d), "mlp_b2": (k, d), "attn_weights": (k, 4, d, d),
                  "mlp_w1": (k, f, d), "mlp_b1": (k, f), "mlp_w2": (k, d, f)}
        if attention_bias:
            shapes["attn_biases"] = (k, 4, d)
        for name, shape in shapes.items():
            self.register_parameter(name, nn.Parameter(torch.zeros(shape, dtype=dtype)))
        self.heads, self.kind, self.eps = heads, rate, ln_eps
        self.attention_bias = attention_bias
        self.rk = RungeKutta(basis, n_basis, scheme, n_steps, interval)
        self.padded = None

    def rate(self, x, support, record):
        th = {name: at(p, support) for name, p in self.named_parameters()}
        d = x.shape[-1]
        u = F.layer_norm(x, (d,), th["ln1_gamma"], th["ln1_beta"], self.eps)
        a = attention(u, th["attn_weights"], th.get("attn_biases"), self.heads, self.padded)
        z = x + a if self.kind == "paper" else x
        v = F.layer_norm(z, (d,), th["ln2_gamma"], th["ln2_beta"], self.eps)
        f = F.linear(F.elu(F.linear(v, th["mlp_w1"], th["mlp_b1"])), th["mlp_w2"], th["mlp_b2"])
        r = a + f
        return r if self.padded is None else r.masked_fill(self.padded[..., None], 0.0)

    def forward(self, x, padded):
        self.padded = padded if padded is not None and bool(padded.any()) else None
        try:
            return self.rk.integrate(self.rate, x)[0]
        finally:
            self.padded = None


class TorchTagger(nn.Module):
    """The ContinuousTagger of format.md section 7; arguments are the keys of its ``config``.

    Parameters
    ----------
    vocab_size, n_tags, width, heads, ffn : int
    basis : str, n_basis : int, interval : (t0, t1), scheme : str, n_steps : int
    padding_id : int
    rate : {"paper", "pre_ln"}
    attention_bias : bool
    ln_eps : float
    dtype : torch dtype or name, default float64

    Attributes
    ----------
    embedded : tensor ``(B, L, D)``, the last forward's ``e = E[ids] + P`` (its ``.grad``
        after ``backward()`` is golden's ``gradients/inputs/embedded``)
    """

    def __init__(self, vocab_size, n_tags, width, heads, ffn, basis, n_basis, interval,
                 scheme, n_steps, padding_id, rate="paper", attention_bias=False,
                 ln_eps=1e-5, dtype=torch.float64):
        super().__init__()
        dt = torch_dtype(dtype)
        self.embed = nn.Embedding(vocab_size, width, dtype=dt)
        self.ode = EncoderBlock(width, heads, ffn, basis, n_basis, tuple(interval), scheme,
                                n_steps, rate, attention_bias, float(ln_eps), dt)
        self.norm = nn.LayerNorm(width, eps=float(ln_eps), dtype=dt)
        self.head = nn.Linear(width, n_tags, dtype=dt)
        self.padding_id = padding_id
        self.embedded = None

    def forward(self, ids):
        """Logits ``(B, L, n_tags)`` of token ids ``(B, L)`` (int64 tensor)."""
        padded = ids == self.padding_id
        e = self.embed(ids) + positions(ids.shape[1], self.embed.embedding_dim,
                                        self.embed.weight.dtype)
        if e.requires_grad:
            e.retain_grad()
        self.embedded = e
        return self.head(self.norm(self.ode(e, padded)))
