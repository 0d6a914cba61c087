"""ContinuousTagger (docs/format.md section 7), functional JAX.

``params``: nested dict of refode's names (``params["ode"]["attn_weights"]`` ...);
``cfg``: the file's JSON ``config``.
"""
import math

import jax
import jax.numpy as jnp
import numpy as np

from .common import at, cross_entropy, integrate

#: wavelength base of the sinusoidal positions (format.md 5.7).
POSITION_BASE = 10000.0


def positions(length, width, dtype):
    """Sinusoidal positions, float64 (NumPy), then rounded to ``dtype``."""
    p = np.arange(length, dtype=np.float64)[:, None]
    pair = (np.arange(width) // 2 * 2).astype(np.float64)
    angle = p / POSITION_BASE ** (pair / width)
    out = np.where(np.arange(width) % 2 == 0, np.sin(angle), np.cos(angle))
    return jnp.asarray(out.astype(dtype))


def layer_norm(x, gamma, beta, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return gamma * (x - mu) / jnp.sqrt(var + eps) + beta


def attention(u, w, bias, heads, padded):
    """Multi-head self-attention with key padding mask (format.md 5.6)."""
    b, length, d = u.shape
    dh = d // heads

    def proj(i, x):
        y = x @ w[i].T
        return y if bias is None else y + bias[i]

    def split(x):
        return x.reshape(b, length, heads, dh).transpose(0, 2, 1, 3)

    q, k, v = (split(proj(i, u)) for i in range(3))
    s = q @ k.transpose(0, 1, 3, 2) / math.sqrt(dh)
    if padded is not None:
        keep = ~padded[:, None, None, :]
        s = jnp.where(keep, s, jnp.finfo(s.dtype).min)
        a = jax.nn.softmax(s, axis=-1) * keep
    else:
        a = jax.nn.softmax(s, axis=-1)
    ctx = (a @ v).transpose(0, 2, 1, 3).reshape(b, length, d)
    return proj(3, ctx)


def encoder_rate(ode, cfg, pad):
    """The encoder rate ``(x, support) -> (dx/dt, None)`` of the ODE-block (7.2): weights
    ``ode`` (name -> (K, ...)) at the stage's support; ``pad`` (B, L) bool or None zeroes
    the rate at padded positions."""
    eps, heads = float(cfg["ln_eps"]), cfg["heads"]

    def rate(x, support):
        th = {name: at(c, support) for name, c in ode.items()}
        u = layer_norm(x, th["ln1_gamma"], th["ln1_beta"], eps)
        a = attention(u, th["attn_weights"], th.get("attn_biases"), heads, pad)
        z = x + a if cfg["rate"] == "paper" else x
        v = layer_norm(z, th["ln2_gamma"], th["ln2_beta"], eps)
        f = jax.nn.elu(v @ th["mlp_w1"].T + th["mlp_b1"]) @ th["mlp_w2"].T + th["mlp_b2"]
        r = a + f
        return (r if pad is None else jnp.where(pad[..., None], 0.0, r)), None

    return rate


def encode(params, e, padded, cfg):
    """Logits ``(B, L, n_tags)`` from the embedded input ``e`` (7.1 steps 2-4)."""
    ode = params["ode"]
    pad = padded if bool(np.asarray(padded).any()) else None
    rate = encoder_rate(ode, cfg, pad)

    h, _ = integrate(rate, e, cfg["basis"], cfg["n_basis"], cfg["scheme"], cfg["n_steps"],
                     tuple(cfg["interval"]))
    y = layer_norm(h, params["norm"]["gamma"], params["norm"]["beta"], float(cfg["ln_eps"]))
    return y @ params["head"]["weight"].T + params["head"]["bias"]


def embed(params, ids):
    """``e = E[ids] + P`` (5.7)."""
    E = params["embed"]["weight"]
    return E[ids] + positions(ids.shape[1], E.shape[1], E.dtype)


def forward(params, ids, cfg):
    """Logits ``(B, L, n_tags)`` of token ids ``(B, L)``."""
    ids = jnp.asarray(ids)
    return encode(params, embed(params, ids), ids == cfg["padding_id"], cfg)


def loss_and_grads(params, ids, tags, cfg):
    """``(loss, logits, d loss / d params, d loss / d e)``."""
    ids = jnp.asarray(ids)
    padded = ids == cfg["padding_id"]

    def from_params(p):
        logits = encode(p, embed(p, ids), padded, cfg)
        return cross_entropy(logits, tags), logits

    def from_embedded(e):
        return cross_entropy(encode(params, e, padded, cfg), tags)

    (loss, logits), gp = jax.value_and_grad(from_params, has_aux=True)(params)
    ge = jax.grad(from_embedded)(embed(params, ids))
    return loss, logits, gp, ge
