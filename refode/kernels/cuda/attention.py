"""CUDA kernels of ``attention`` (see :mod:`refode.kernels.reference.attention`).

Simple kernels, one thread per output element (or per score row for the softmax),
each summing serially in float64. ``qkv`` holds the three projections side by side
as (B, L, 3D); head ``h`` of part ``s`` is ``qkv[..., s*D + h*dh : s*D + (h+1)*dh]``.
"""
import math

import numpy as np

from . import blocks_for, cuda_module, require_gpu
from ._io import copy_back, inputs, scratch

cuda = cuda_module()

#: index of each projection in the stacked ``weights`` / ``biases``.
Q, K, V, O = 0, 1, 2, 3


@cuda.jit
def _project_kernel(x, weights, biases, first, has_bias, y):
    """``y[r, m] = x[r] . weights[first + m // D, m % D]`` (+ bias); ``x`` (R, D), ``y`` (R, nD)."""
    k = cuda.grid(1)
    d = x.shape[1]
    if k < y.size:
        r = k // y.shape[1]
        m = k % y.shape[1]
        s = first + m // d
        o = m % d
        acc = 0.0
        for i in range(d):
            acc += x[r, i] * weights[s, o, i]
        y[r, m] = acc + biases[s, o] if has_bias else acc


@cuda.jit
def _input_grad_kernel(dy, weights, first, dx):
    """``dx[r, i] = sum_m dy[r, m] * weights[first + m // D, m % D, i]``."""
    k = cuda.grid(1)
    d = dx.shape[1]
    if k < dx.size:
        r = k // d
        i = k % d
        acc = 0.0
        for m in range(dy.shape[1]):
            acc += dy[r, m] * weights[first + m // d, m % d, i]
        dx[r, i] = acc


@cuda.jit
def _weight_grad_kernel(dy, x, first, dweights, dbiases, has_bias):
    """``dweights[first + m // D, m % D, i] = sum_r dy[r, m] x[r, i]``, and the bias sums."""
    k = cuda.grid(1)
    d = x.shape[1]
    if k < dy.shape[1] * d:
        m = k // d
        i = k % d
        acc = 0.0
        for r in range(x.shape[0]):
            acc += dy[r, m] * x[r, i]
        dweights[first + m // d, m % d, i] = acc
        if has_bias and i == 0:
            b = 0.0
            for r in range(x.shape[0]):
                b += dy[r, m]
            dbiases[first + m // d, m % d] = b


@cuda.jit
def _scores_kernel(qkv, scale, s):
    """``s[b, h, i, j] = (scale * q[b, i, h]) . k[b, j, h]``."""
    k = cuda.grid(1)
    n_batch, heads, length, _ = s.shape
    if k < s.size:
        j = k % length
        i = (k // length) % length
        h = (k // (length * length)) % heads
        b = k // (length * length * heads)
        d = qkv.shape[2] // 3
        dh = d // heads
        acc = 0.0
        for e in range(h * dh, (h + 1) * dh):
            acc += (qkv[b, i, e] * scale) * qkv[b, j, d + e]
        s[b, h, i, j] = acc


@cuda.jit
def _softmax_kernel(s, mask, p):
    """One thread per score row: softmax over unmasked keys; all-masked rows give 0."""
    row = cuda.grid(1)
    n_batch, heads, length, _ = s.shape
    if row < n_batch * heads * length:
        i = row % length
        h = (row // length) % heads
        b = row // (length * heads)
        top = -math.inf
        for j in range(length):
            if mask[b, j] == 0 and s[b, h, i, j] > top:
                top = s[b, h, i, j]
        if top == -math.inf:
            top = 0.0
        total = 0.0
        for j in range(length):
            if mask[b, j] == 0:
                total += math.exp(s[b, h, i, j] - top)
        for j in range(length):
            keep = mask[b, j] == 0 and total != 0.0
            p[b, h, i, j] = math.exp(s[b, h, i, j] - top) / total if keep else 0.0


@cuda.jit
def _context_kernel(p, qkv, ctx):
    """``ctx[b, i, c] = sum_j p[b, h, i, j] v[b, j, c]`` with ``h = c // dh``."""
    k = cuda.grid(1)
    n_batch, length, d = ctx.shape
    if k < ctx.size:
        c = k % d
        i = (k // d) % length
        b = k // (d * length)
        h = c // (d // p.shape[1])
        acc = 0.0
        for j in range(length):
            acc += p[b, h, i, j] * qkv[b, j, 2 * d + c]
        ctx[b, i, c] = acc


@cuda.jit
def _dscores_kernel(p, dctx, qkv, ds):
    """Row by row: ``dp = dctx . v``, then ``ds = p * (dp - sum(dp * p))``."""
    row = cuda.grid(1)
    n_batch, heads, length, _ = p.shape
    if row < n_batch * heads * length:
        i = row % length
        h = (row // length) % heads
        b = row // (length * heads)
        d = dctx.shape[2]
        dh = d // heads
        inner = 0.0
        for j in range(length):
            dp = 0.0
            for e in range(h * dh, (h + 1) * dh):
                dp += dctx[b, i, e] * qkv[b, j, 2 * d + e]
            ds[b, h, i, j] = dp
            inner += dp * p[b, h, i, j]
        for j in range(length):
            ds[b, h, i, j] = p[b, h, i, j] * (ds[b, h, i, j] - inner)


@cuda.jit
def _dqkv_kernel(p, ds, dctx, qkv, scale, dqkv):
    """Gradients of q (``scale ds k``), k (``scale ds^T q``) and v (``p^T dctx``) side by side."""
    k = cuda.grid(1)
    n_batch, length, d3 = dqkv.shape
    if k < dqkv.size:
        m = k % d3
        l = (k // d3) % length  # noqa: E741
        b = k // (d3 * length)
        d = d3 // 3
        part = m // d
        c = m % d
        h = c // (d // p.shape[1])
        acc = 0.0
        for j in range(length):
            if part == Q:
                acc += ds[b, h, l, j] * qkv[b, j, d + c]
            elif part == K:
                acc += ds[b, h, j, l] * qkv[b, j, c]
            else:
                acc += p[b, h, j, l] * dctx[b, j, c]
        dqkv[b, l, m] = acc * scale if part != V else acc


def _biases(biases):
    return (scratch(cuda, 1, 1), False) if biases is None else (inputs(cuda, biases)[0], True)


def _forward(d_x, d_w, d_b, has_bias, mask, heads):
    n_batch, length, d = d_x.shape
    rows = n_batch * length
    qkv = scratch(cuda, n_batch, length, 3 * d)
    _project_kernel[blocks_for(qkv.size)](d_x.reshape(rows, d), d_w, d_b, Q, has_bias,
                                         qkv.reshape(rows, 3 * d))
    s = scratch(cuda, n_batch, heads, length, length)
    p = scratch(cuda, n_batch, heads, length, length)
    scale = 1.0 / math.sqrt(d // heads)
    keep = np.zeros((n_batch, length), np.uint8) if mask is None else mask.astype(np.uint8)
    _scores_kernel[blocks_for(s.size)](qkv, scale, s)
    _softmax_kernel[blocks_for(rows * heads)](s, inputs(cuda, keep)[0], p)
    ctx = scratch(cuda, n_batch, length, d)
    _context_kernel[blocks_for(ctx.size)](p, qkv, ctx)
    return qkv, p, ctx, scale


def attention(x, weights, biases, mask, heads, out):
    """Host driver; arguments as :func:`refode.kernels.reference.attention.attention`."""
    require_gpu(cuda)
    d_x, d_w, d_out = inputs(cuda, x, weights, out)
    d_b, has_bias = _biases(biases)
    _, _, ctx, _ = _forward(d_x, d_w, d_b, has_bias, mask, heads)
    rows, d = x.shape[0] * x.shape[1], x.shape[2]
    _project_kernel[blocks_for(out.size)](ctx.reshape(rows, d), d_w, d_b, O, has_bias,
                                         d_out.reshape(rows, d))
    copy_back([(out, d_out)])


def attention_vjp(x, weights, biases, mask, heads, dout, dx, dweights, dbiases):
    """Host driver; arguments as :func:`refode.kernels.reference.attention.attention_vjp`."""
    require_gpu(cuda)
    d_x, d_w, d_dout, d_dx, d_dw = inputs(cuda, x, weights, dout, dx, dweights)
    d_b, has_bias = _biases(biases)
    d_db = inputs(cuda, dbiases)[0] if has_bias else d_b
    qkv, p, ctx, scale = _forward(d_x, d_w, d_b, has_bias, mask, heads)
    n_batch, length, d = x.shape
    rows = n_batch * length
    dctx = scratch(cuda, n_batch, length, d)
    _input_grad_kernel[blocks_for(dctx.size)](d_dout.reshape(rows, d), d_w, O,
                                              dctx.reshape(rows, d))
    ds = scratch(cuda, *p.shape)
    _dscores_kernel[blocks_for(rows * heads)](p, dctx, qkv, ds)
    dqkv = scratch(cuda, n_batch, length, 3 * d)
    _dqkv_kernel[blocks_for(dqkv.size)](p, ds, dctx, qkv, scale, dqkv)
    _weight_grad_kernel[blocks_for(3 * d * d)](dqkv.reshape(rows, 3 * d), d_x.reshape(rows, d),
                                              Q, d_dw, d_db, has_bias)
    _weight_grad_kernel[blocks_for(d * d)](d_dout.reshape(rows, d), ctx.reshape(rows, d),
                                          O, d_dw, d_db, has_bias)
    _input_grad_kernel[blocks_for(rows * d)](dqkv.reshape(rows, 3 * d), d_w, Q,
                                             d_dx.reshape(rows, d))
    copy_back([(dx, d_dx), (dweights, d_dw)] + ([(dbiases, d_db)] if has_bias else []))
