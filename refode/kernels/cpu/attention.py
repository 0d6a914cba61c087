"""Numba CPU kernels of ``attention`` (see :mod:`refode.kernels.reference.attention`).

The projections and the per-head products are batched GEMMs (``np.matmul`` on
stacked arrays), each one call outside any parallel region; the masked softmax and
its VJP are Numba kernels parallel over score rows (each row written by one task,
summed in order in float64), whose row bodies the CUDA backend shares; the GEMMs and
NumPy reshapes are not shared (BLAS is only called outside parallel loops). Bitwise
identical for any number of Numba threads. GEMMs run in the input dtype.
"""
import math

import numpy as np

from .._compile import Runner

__all__ = ["attention", "attention_vjp"]

#: index of each projection in the stacked ``weights`` / ``biases``.
Q, K, V, O = 0, 1, 2, 3


def _softmax_row(scores, mask, p, row):
    """Task ``row``: ``p[b, h, i] = softmax(scores[b, h, i])`` over unmasked keys (0 if none)."""
    n_batch, heads, length, _ = scores.shape
    b = row // (heads * length)
    h = (row // length) % heads
    i = row % length
    top = -math.inf
    for j in range(length):
        if not mask[b, j] and scores[b, h, i, j] > top:
            top = scores[b, h, i, j]
    if top == -math.inf:
        top = 0.0
    total = 0.0
    for j in range(length):
        if not mask[b, j]:
            total += math.exp(np.float64(scores[b, h, i, j]) - top)
    for j in range(length):
        if mask[b, j] or total == 0.0:
            p[b, h, i, j] = 0.0
        else:
            p[b, h, i, j] = math.exp(np.float64(scores[b, h, i, j]) - top) / total


def _softmax_vjp_row(p, dp, ds, row):
    """Task ``row``: ``ds = p * (dp - sum(dp * p))`` on score row ``row``."""
    n_batch, heads, length, _ = p.shape
    b = row // (heads * length)
    h = (row // length) % heads
    i = row % length
    inner = 0.0
    for j in range(length):
        inner += np.float64(dp[b, h, i, j]) * p[b, h, i, j]
    for j in range(length):
        ds[b, h, i, j] = p[b, h, i, j] * (dp[b, h, i, j] - inner)


BODIES = (_softmax_row, _softmax_vjp_row)
_run = Runner(BODIES)


def _split(t, heads):
    """(B, L, D) -> (B, H, L, D/H), contiguous."""
    b, length, d = t.shape
    return np.ascontiguousarray(t.reshape(b, length, heads, d // heads).transpose(0, 2, 1, 3))


def _merge(t):
    """(B, H, L, D/H) -> (B, L, D)."""
    b, h, length, dh = t.shape
    return t.transpose(0, 2, 1, 3).reshape(b, length, h * dh)


def _mask(mask, x):
    return np.zeros(x.shape[:2], dtype=np.bool_) if mask is None else mask


def _forward(x, weights, biases, mask, heads):
    d = x.shape[-1]
    qkv = x @ weights[:O].reshape(3 * d, d).T  # one GEMM for the three projections
    if biases is not None:
        qkv += biases[:O].reshape(-1)
    q, k, v = (_split(qkv[..., i * d:(i + 1) * d], heads) for i in (Q, K, V))
    scale = x.dtype.type(1.0 / np.sqrt(d // heads))
    scores = (q * scale) @ k.transpose(0, 1, 3, 2)
    p = np.empty_like(scores)
    _run("softmax_row", p.size // p.shape[-1], scores, _mask(mask, x), p)
    return q, k, v, p, _merge(p @ v), scale


def attention(x, weights, biases, mask, heads, out):
    """Arguments as :func:`refode.kernels.reference.attention.attention`."""
    *_, ctx, _ = _forward(x, weights, biases, mask, heads)
    out[...] = ctx @ weights[O].T
    if biases is not None:
        out += biases[O]


def attention_vjp(x, weights, biases, mask, heads, dout, dx, dweights, dbiases):
    """Arguments as :func:`refode.kernels.reference.attention.attention_vjp`."""
    d = x.shape[-1]
    q, k, v, p, ctx, scale = _forward(x, weights, biases, mask, heads)
    dctx = _split(dout @ weights[O], heads)
    ds = np.empty_like(p)
    _run("softmax_vjp_row", p.size // p.shape[-1], p, dctx @ v.transpose(0, 1, 3, 2), ds)
    dqkv = np.concatenate(
        [_merge(scale * (ds @ k)), _merge(scale * (ds.transpose(0, 1, 3, 2) @ q)),
         _merge(p.transpose(0, 1, 3, 2) @ dctx)], axis=-1).reshape(-1, 3 * d)
    x2 = x.reshape(-1, d)
    dweights[:O] = (dqkv.T @ x2).reshape(3, d, d)
    dweights[O] = dout.reshape(-1, d).T @ ctx.reshape(-1, d)
    if dbiases is not None:
        dbiases[:O] = dqkv.sum(axis=0).reshape(3, d)
        dbiases[O] = dout.reshape(-1, d).sum(axis=0)
    dx[...] = (dqkv @ weights[:O].reshape(3 * d, d)).reshape(x.shape)
