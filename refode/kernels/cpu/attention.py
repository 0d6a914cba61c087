"""Numba CPU kernels of ``attention`` (see :mod:`refode.kernels.reference.attention`).

The projections are one GEMM over the ``B L`` rows and the per-head products batched
GEMMs (``np.matmul`` on stacked arrays) that read and write the heads in place (views
of the (B, L, 3 D) projections and their cotangents, whose matrices have unit column
stride), each one call outside any parallel region. The masked softmax and its VJP are
Numba kernels parallel over score rows (each row written by one task, summed in order
in float64); the softmax's exponentials are one call of NumPy's vectorised ``exp``
between two such loops. CUDA has its own block-per-row softmax kernels; the GEMMs and
NumPy reshapes are not shared (BLAS is only called outside parallel loops). Bitwise
identical for any number of Numba threads. GEMMs run in the input dtype.
"""
import math

import numpy as np

from .._compile import Runner, rows
from ..reference.attention import K, O, Q, V, merge_heads, split_heads

__all__ = ["attention", "attention_vjp"]


def _shifted_row(scores, mask, per_batch, t, row):
    """Task ``row``: ``t[row] = scores[row] - max`` (float64) over the keys that ``mask[row //
    per_batch]`` keeps, ``-inf`` at the masked ones (the max is 0 if none is kept); on score
    rows (B H L, L)."""
    b = row // per_batch
    s, keep_not, t_row = scores[row], mask[b], t[row]
    top = -math.inf
    for j in range(s.size):
        if not keep_not[j] and s[j] > top:
            top = s[j]
    if top == -math.inf:
        top = 0.0
    for j in range(s.size):
        t_row[j] = -math.inf if keep_not[j] else np.float64(s[j]) - top


def _normalised_row(e, mask, per_batch, p, row):
    """Task ``row``: ``p[row] = e[row] / sum(e[row])`` (summed in order in float64; 0 at masked
    keys and in rows without any kept key), ``e`` the exponentials of :func:`_shifted_row`."""
    b = row // per_batch
    e_row, keep_not, p_row = e[row], mask[b], p[row]
    total = 0.0
    for j in range(e_row.size):
        total += e_row[j]  # exp(-inf) = +0 at masked keys: the sum of the kept ones
    for j in range(e_row.size):
        p_row[j] = 0.0 if (keep_not[j] or total == 0.0) else e_row[j] / total


def _softmax(scores, mask, per_batch, p):
    """``p = softmax(scores)`` row by row over the kept keys (rows (B H L, L)): the shift by the
    row maximum and the normalisation are parallel Numba loops, the exponentials one call
    of NumPy's vectorised ``exp`` (libm's scalar ``exp`` in Numba cost 2x the whole softmax)."""
    t = np.empty(scores.shape, dtype=np.float64)
    _run("shifted_row", scores.shape[0], scores, mask, per_batch, t)
    np.exp(t, out=t)
    _run("normalised_row", scores.shape[0], t, mask, per_batch, p)


def _softmax_vjp_row(p, dp, ds, row):
    """Task ``row``: ``ds = p * (dp - sum(dp * p))`` on score row ``row`` (rows (B H L, L))."""
    inner = 0.0
    for j in range(p.shape[1]):
        inner += np.float64(dp[row, j]) * p[row, j]
    for j in range(p.shape[1]):
        ds[row, j] = p[row, j] * (dp[row, j] - inner)


BODIES = (_shifted_row, _normalised_row, _softmax_vjp_row)
_run = Runner(BODIES)


def _mask(mask, x):
    return np.zeros(x.shape[:2], dtype=np.bool_) if mask is None else mask


def _rows_product(a, b, out):
    """``out (..., n) = a (..., k) @ b (k, n)``: one GEMM over all rows, written into ``out``
    in place (through a temporary if ``out`` is not C-contiguous)."""
    a2 = a.reshape(-1, a.shape[-1])
    if out.flags.c_contiguous:
        np.matmul(a2, b, out=out.reshape(-1, out.shape[-1]))
    else:
        out[...] = (a2 @ b).reshape(out.shape)


def _projections(x, weights, biases, qkv=None):
    """The projections ``[q | k | v]`` (B, L, 3 D), biases added, by one GEMM over the
    ``B L`` rows, into ``qkv`` (a new array if None)."""
    d = x.shape[-1]
    if qkv is None:
        qkv = np.empty(x.shape[:2] + (3 * d,), dtype=x.dtype)
    _rows_product(x, weights[:O].reshape(3 * d, d).T, qkv)
    if biases is not None:
        qkv += biases[:O].reshape(-1)
    return qkv


def _heads(qkv, heads):
    """``q``, ``k``, ``v`` (B, H, L, D/H) from the projections (B, L, 3 D): views, whose
    (L, D/H) matrices have unit column stride, so the batched GEMMs read them in place."""
    d = qkv.shape[-1] // 3
    return [split_heads(qkv[..., i * d:(i + 1) * d], heads) for i in (Q, K, V)]


def _forward(x, weights, biases, mask, heads, probs=None, qkv=None, ctx=None, saved=False):
    """``q, k, v, p, ctx, scale``. Without ``saved`` the attention weights ``p``, the
    projections and the context are computed, into ``probs``, ``qkv`` and ``ctx`` where
    given; with ``saved`` each of them given is read instead of computed."""
    if not (saved and qkv is not None):
        qkv = _projections(x, weights, biases, qkv)
    q, k, v = _heads(qkv, heads)
    scale = x.dtype.type(1.0 / np.sqrt(x.shape[-1] // heads))
    if saved and probs is not None:
        p = probs
    else:
        scores = (q * scale) @ k.transpose(0, 1, 3, 2)
        p = np.empty_like(scores) if probs is None else probs
        _softmax(rows(scores), _mask(mask, x), heads * x.shape[1], rows(p))
    if not (saved and ctx is not None):
        context = merge_heads(p @ v)
        if ctx is None:
            ctx = context
        else:
            ctx[...] = context
    return q, k, v, p, ctx, scale


def attention(x, weights, biases, mask, heads, out, probs=None, qkv=None, ctx=None):
    """Arguments as :func:`refode.kernels.reference.attention.attention`."""
    *_, ctx, _ = _forward(x, weights, biases, mask, heads, probs, qkv, ctx)
    _rows_product(ctx, weights[O].T, out)
    if biases is not None:
        out += biases[O]


def attention_vjp(x, weights, biases, mask, heads, dout, dx, dweights, dbiases, probs=None,
                  qkv=None, ctx=None):
    """Arguments as :func:`refode.kernels.reference.attention.attention_vjp`."""
    d = x.shape[-1]
    q, k, v, p, ctx, scale = _forward(x, weights, biases, mask, heads, probs, qkv, ctx,
                                      saved=True)
    dctx = split_heads((dout.reshape(-1, d) @ weights[O]).reshape(x.shape), heads)  # a view
    ds = np.empty_like(p)
    dp = dctx @ v.transpose(0, 1, 3, 2)
    _run("softmax_vjp_row", p.size // p.shape[-1], rows(p), rows(dp), rows(ds))
    # the cotangents of q, k, v, each scaled (q, k) and merged into its third of dqkv in
    # one pass
    dqkv = np.empty(x.shape[:2] + (3 * d,), dtype=x.dtype)
    parts = _heads(dqkv, heads)
    np.multiply(ds @ k, scale, out=parts[Q])
    np.multiply(ds.transpose(0, 1, 3, 2) @ q, scale, out=parts[K])
    np.matmul(p.transpose(0, 1, 3, 2), dctx, out=parts[V])
    dqkv = dqkv.reshape(-1, 3 * d)
    x2 = x.reshape(-1, d)
    dweights[:O] = (dqkv.T @ x2).reshape(3, d, d)
    dweights[O] = dout.reshape(-1, d).T @ ctx.reshape(-1, d)
    if dbiases is not None:
        dbiases[:O] = dqkv.sum(axis=0).reshape(3, d)
        dbiases[O] = dout.reshape(-1, d).sum(axis=0)
    dx[...] = (dqkv @ weights[:O].reshape(3 * d, d)).reshape(x.shape)
