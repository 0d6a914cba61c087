"""Numba CPU kernels of ``attention`` (see :mod:`refode.kernels.reference.attention`).

The projections and the per-head products are batched GEMMs (``np.matmul`` on
stacked arrays), each one call outside any parallel region; the masked softmax and
its VJP are Numba kernels parallel over score rows (each row written by one task,
summed in order in float64) (CUDA has its own block-per-row softmax kernels); the GEMMs and
NumPy reshapes are not shared (BLAS is only called outside parallel loops). Bitwise
identical for any number of Numba threads. GEMMs run in the input dtype.
"""
import math

import numpy as np

from .._compile import Runner, rows
from ..reference.attention import K, O, Q, V, merge_heads, split_heads

__all__ = ["attention", "attention_vjp"]


def _softmax_row(scores, mask, per_batch, p, row):
    """Task ``row``: ``p[row] = softmax(scores[row])`` over the keys that ``mask[row //
    per_batch]`` keeps (0 if none), on score rows (B H L, L). Each exponential is
    computed once, into a float64 row."""
    b = row // per_batch
    top = -math.inf
    for j in range(scores.shape[1]):
        if not mask[b, j] and scores[row, j] > top:
            top = scores[row, j]
    if top == -math.inf:
        top = 0.0
    e = np.zeros(scores.shape[1], dtype=np.float64)
    total = 0.0
    for j in range(scores.shape[1]):
        if not mask[b, j]:
            e[j] = math.exp(np.float64(scores[row, j]) - top)
            total += e[j]
    for j in range(scores.shape[1]):
        if mask[b, j] or total == 0.0:
            p[row, j] = 0.0
        else:
            p[row, j] = e[j] / total


def _softmax_vjp_row(p, dp, ds, row):
    """Task ``row``: ``ds = p * (dp - sum(dp * p))`` on score row ``row`` (rows (B H L, L))."""
    inner = 0.0
    for j in range(p.shape[1]):
        inner += np.float64(dp[row, j]) * p[row, j]
    for j in range(p.shape[1]):
        ds[row, j] = p[row, j] * (dp[row, j] - inner)


BODIES = (_softmax_row, _softmax_vjp_row)
_run = Runner(BODIES)


def _split(t, heads):
    """(B, L, D) -> (B, H, L, D/H), contiguous."""
    return np.ascontiguousarray(split_heads(t, heads))


def _mask(mask, x):
    return np.zeros(x.shape[:2], dtype=np.bool_) if mask is None else mask


def _projections(x, weights, biases, heads):
    """``q``, ``k``, ``v`` (B, H, L, D/H) and the score scale, from one GEMM."""
    d = x.shape[-1]
    qkv = x @ weights[:O].reshape(3 * d, d).T  # one GEMM for the three projections
    if biases is not None:
        qkv += biases[:O].reshape(-1)
    q, k, v = (_split(qkv[..., i * d:(i + 1) * d], heads) for i in (Q, K, V))
    return q, k, v, x.dtype.type(1.0 / np.sqrt(d // heads))


def _forward(x, weights, biases, mask, heads, probs=None, saved=None):
    """``q, k, v, p, ctx, scale``; the attention weights ``p`` written into ``probs``
    (if given), or read from ``saved`` (if given) instead of being computed."""
    q, k, v, scale = _projections(x, weights, biases, heads)
    if saved is not None:
        p = saved
    else:
        scores = (q * scale) @ k.transpose(0, 1, 3, 2)
        p = np.empty_like(scores) if probs is None else probs
        _run("softmax_row", p.size // p.shape[-1], rows(scores), _mask(mask, x),
             heads * x.shape[1], rows(p))
    return q, k, v, p, merge_heads(p @ v), scale


def attention(x, weights, biases, mask, heads, out, probs=None):
    """Arguments as :func:`refode.kernels.reference.attention.attention`."""
    *_, ctx, _ = _forward(x, weights, biases, mask, heads, probs=probs)
    out[...] = ctx @ weights[O].T
    if biases is not None:
        out += biases[O]


def attention_vjp(x, weights, biases, mask, heads, dout, dx, dweights, dbiases, probs=None):
    """Arguments as :func:`refode.kernels.reference.attention.attention_vjp`."""
    d = x.shape[-1]
    q, k, v, p, ctx, scale = _forward(x, weights, biases, mask, heads, saved=probs)
    dctx = _split(dout @ weights[O], heads)
    ds = np.empty_like(p)
    dp = dctx @ v.transpose(0, 1, 3, 2)
    _run("softmax_vjp_row", p.size // p.shape[-1], rows(p), rows(dp), rows(ds))
    dqkv = np.concatenate(
        [merge_heads(scale * (ds @ k)), merge_heads(scale * (ds.transpose(0, 1, 3, 2) @ q)),
         merge_heads(p.transpose(0, 1, 3, 2) @ dctx)], axis=-1).reshape(-1, 3 * d)
    x2 = x.reshape(-1, d)
    dweights[:O] = (dqkv.T @ x2).reshape(3, d, d)
    dweights[O] = dout.reshape(-1, d).T @ ctx.reshape(-1, d)
    if dbiases is not None:
        dbiases[:O] = dqkv.sum(axis=0).reshape(3, d)
        dbiases[O] = dout.reshape(-1, d).sum(axis=0)
    dx[...] = (dqkv @ weights[:O].reshape(3 * d, d)).reshape(x.shape)
