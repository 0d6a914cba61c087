"""CUDA kernels of ``attention`` (see :mod:`refode.kernels.reference.attention`).

The projections are ``Runner.matmul`` GEMMs with the bias bodies of ``dense``; the
masked softmax and its VJP are the CPU module's row bodies. The per-head products
(which the CPU computes with batched BLAS calls that have no CUDA twin here) are the
bodies below, one thread per element, summing serially in float64. ``qkv`` holds the
three projections side by side as (B, L, 3D); head ``h`` of part ``s`` is
``qkv[..., s*D + h*dh : s*D + (h+1)*dh]``.
"""
import math

import numpy as np

from ..cpu import attention as host
from ..cpu import dense
from .._compile import rows
from . import Runner

__all__ = host.__all__
Q, K, V, O = host.Q, host.K, host.V, host.O


def _index(t, shape):
    """``(b, h, i, j)`` of flat index ``t`` into an array of 4-D ``shape``."""
    j = t % shape[3]
    i = (t // shape[3]) % shape[2]
    h = (t // (shape[3] * shape[2])) % shape[1]
    return t // (shape[3] * shape[2] * shape[1]), h, i, j


def _head_dot(a, qkv, part, scale, out, t):
    """Task ``t``: ``out[b, h, i, j] = (scale a[b, i, h]) . qkv[b, j, part, h]`` over the features
    of head ``h``: the scores (``a = qkv``, whose start is q; part K) and ``dp`` (dctx, part V)."""
    b, h, i, j = _index(t, out.shape)
    d = qkv.shape[2] // 3
    dh = d // out.shape[1]
    acc = 0.0
    for e in range(h * dh, (h + 1) * dh):
        acc += (a[b, i, e] * scale) * qkv[b, j, part * d + e]
    out[b, h, i, j] = acc


def _context(p, qkv, ctx, t):
    """Task ``t``: ``ctx[b, i, c] = sum_j p[b, h, i, j] v[b, j, c]`` with ``h = c // dh``."""
    n_batch, length, d = ctx.shape
    c = t % d
    i = (t // d) % length
    b = t // (d * length)
    h = c // (d // p.shape[1])
    acc = 0.0
    for j in range(length):
        acc += p[b, h, i, j] * qkv[b, j, 2 * d + c]
    ctx[b, i, c] = acc


def _dqkv(p, ds, dctx, qkv, scale, dqkv, t):
    """Task ``t``: gradients of q (``scale ds k``), k (``scale ds^T q``), v (``p^T dctx``)."""
    n_batch, length, d3 = dqkv.shape
    m = t % d3
    pos = (t // d3) % length
    b = t // (d3 * length)
    d = d3 // 3
    part = m // d
    c = m % d
    h = c // (d // p.shape[1])
    acc = 0.0
    for j in range(length):
        if part == Q:
            acc += ds[b, h, pos, j] * qkv[b, j, d + c]
        elif part == K:
            acc += ds[b, h, j, pos] * qkv[b, j, c]
        else:
            acc += p[b, h, j, pos] * dctx[b, j, c]
    dqkv[b, pos, m] = acc * scale if part != V else acc


_run = Runner(dense.BODIES + host.BODIES + (_index, _head_dot, _context, _dqkv))


def _forward(x2, weights, biases, mask, heads, shape):
    """``qkv`` (B, L, 3D), the attention weights ``p`` and the context (B, L, D) on the device."""
    n_batch, length, d = shape
    qkv = _run.empty(n_batch, length, 3 * d)
    _run.matmul(x2, weights[:O].reshape(3 * d, d), qkv.reshape(-1, 3 * d), tb=True)
    if biases is not None:
        _run("add_bias", x2.shape[0], biases[:O].reshape(3 * d), qkv.reshape(-1, 3 * d))
    s, p = _run.empty(n_batch, heads, length, length), _run.empty(n_batch, heads, length, length)
    _run("head_dot", s.size, qkv, qkv, K, 1.0 / math.sqrt(d // heads), s)
    if mask is None:
        mask = np.zeros((n_batch, length), dtype=np.bool_)
    _run("softmax_row", s.size // length, rows(s), mask, heads * length, rows(p))
    ctx = _run.empty(n_batch, length, d)
    _run("context", ctx.size, p, qkv, ctx)
    return qkv, p, ctx


def _device(*arrays):
    """Device copies of the host arrays among ``arrays`` (None and device arrays pass)."""
    return [None if a is None else _run.to_device(a) for a in arrays]


def attention(x, weights, biases, mask, heads, out):
    """Arguments as :func:`refode.kernels.reference.attention.attention`; host or device arrays."""
    d = x.shape[2]
    x2, weights, biases = _device(x.reshape(-1, d), weights, biases)
    *_, ctx = _forward(x2, weights, biases, mask, heads, x.shape)
    _run.matmul(ctx.reshape(-1, d), weights[O], out.reshape(-1, d), tb=True)
    if biases is not None:
        _run("add_bias", x2.shape[0], biases[O], out.reshape(-1, d))


def attention_vjp(x, weights, biases, mask, heads, dout, dx, dweights, dbiases):
    """Arguments as :func:`refode.kernels.reference.attention.attention_vjp`."""
    d = x.shape[2]
    x2, weights, biases, dout2 = _device(x.reshape(-1, d), weights, biases, dout.reshape(-1, d))
    qkv, p, ctx = _forward(x2, weights, biases, mask, heads, x.shape)
    dctx = _run.empty(*x.shape)
    _run.matmul(dout2, weights[O], dctx.reshape(-1, d))
    dp, ds = _run.empty(*p.shape), _run.empty(*p.shape)
    _run("head_dot", dp.size, dctx, qkv, V, 1.0, dp)
    _run("softmax_vjp_row", p.size // p.shape[3], rows(p), rows(dp), rows(ds))
    dqkv = _run.empty(*qkv.shape)
    _run("dqkv", dqkv.size, p, ds, dctx, qkv, 1.0 / math.sqrt(d // heads), dqkv)
    dqkv2 = dqkv.reshape(-1, 3 * d)
    _run.matmul(dqkv2, x2, dweights[:O].reshape(3 * d, d), ta=True)
    _run.matmul(dout2, ctx.reshape(-1, d), dweights[O], ta=True)
    if dbiases is not None:
        _run("sum_column", 3 * d, dqkv2, dbiases[:O].reshape(3 * d))
        _run("sum_column", d, dout2, dbiases[O])
    _run.matmul(dqkv2, weights[:O].reshape(3 * d, d), dx.reshape(-1, d))
