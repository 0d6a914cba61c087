"""CUDA kernels of ``attention`` (see :mod:`refode.kernels.reference.attention`).

Every product is the tiled shared-memory GEMM of :mod:`._gemm`, in the input dtype as
on the CPU: the projections as single GEMMs over the (B L) rows, the per-head products
(scores, context, and in the VJP ``dp``, ``dq``, ``dk``, ``dv``) as one batched launch each
over the ``B x H`` (batch, head) pairs, reading and writing the heads in place through
strides (no split/merge copies). ``qkv`` holds the three projections side by side as
(B, L, 3D); head ``h`` of part ``s`` is ``qkv[..., s*D + h*dh : s*D + (h+1)*dh]``. The
masked softmax and its VJP are block reductions (:mod:`._reduce`), one block per score
row, in float64 as on the CPU; the biases are the ``dense`` bodies. Deterministic.
"""
import math

import numpy as np
from numba import float64

from ..cpu import attention as host
from ..cpu import dense
from . import Runner, on_device
from ._gemm import View, batched
from ._reduce import run_blocks, tree_max, tree_sum

__all__ = host.__all__

#: bound by :func:`refode.kernels.cuda.specialise` when the kernels compile
#: (the numba.cuda module and compile-time constants).
cuda = TPB = None
Q, K, V, O = host.Q, host.K, host.V, host.O


def _softmax_kernel(scores, masked, mask, per_batch, p):
    """Block ``row``: ``p[row] = softmax(scores[row])`` over the keys that ``mask[row //
    per_batch]`` keeps (0 if none; every key when ``masked`` is 0, and ``mask`` is not
    read), on score rows (B H L, L)."""
    buf = cuda.shared.array(0, float64)
    row, tid = cuda.blockIdx.x, cuda.threadIdx.x
    b = row // per_batch
    top = -math.inf
    for j in range(tid, scores.shape[1], TPB):
        if (masked == 0 or not mask[b, j]) and scores[row, j] > top:
            top = np.float64(scores[row, j])
    buf[tid] = top
    top = tree_max(buf, tid)
    if top == -math.inf:
        top = 0.0
    acc = 0.0
    for j in range(tid, scores.shape[1], TPB):
        if masked == 0 or not mask[b, j]:
            acc += math.exp(np.float64(scores[row, j]) - top)
    buf[tid] = acc
    total = tree_sum(buf, tid)
    for j in range(tid, scores.shape[1], TPB):
        if (masked != 0 and mask[b, j]) or total == 0.0:
            p[row, j] = 0.0
        else:
            p[row, j] = math.exp(np.float64(scores[row, j]) - top) / total


def _softmax_vjp_kernel(p, dp, ds):
    """Block ``row``: ``ds = p * (dp - sum(dp * p))`` on score row ``row``."""
    buf = cuda.shared.array(0, float64)
    row, tid = cuda.blockIdx.x, cuda.threadIdx.x
    acc = 0.0
    for j in range(tid, p.shape[1], TPB):
        acc += np.float64(dp[row, j]) * p[row, j]
    buf[tid] = acc
    inner = tree_sum(buf, tid)
    for j in range(tid, p.shape[1], TPB):
        ds[row, j] = p[row, j] * (dp[row, j] - inner)


_FUNCTIONS = (_softmax_kernel, _softmax_vjp_kernel)
_run = Runner(dense.BODIES)


class _Layout:
    """Where the heads of the (B, L, 3D) ``qkv``, a (B, L, D) array and the (B, H, L, L)
    scores lie, as :class:`~._gemm.View` tuples; ``shape(m, n, inner)`` for a batched GEMM."""

    def __init__(self, shape, heads):
        self.n_batch, self.length, self.d = shape
        self.heads, self.dh = heads, self.d // heads
        length, d, dh = self.length, self.d, self.dh
        self.scores = View(0, heads * length * length, length * length, length, 1)
        self.ctx = View(0, length * d, dh, d, 1)
        self._qkv = length * 3 * d

    def part(self, which):
        """Heads of part ``which`` (Q, K or V) of ``qkv``, as (L, dh) matrices."""
        return View(which * self.d, self._qkv, self.dh, 3 * self.d, 1)

    def shape(self, m, n, inner):
        """The ``shape`` of :func:`~._gemm.batched` for (m, inner) @ (inner, n) per head."""
        return self.n_batch, self.heads, m, n, inner


def _into(buffer, *shape, dtype):
    """Where to compute an intermediate the caller wants in ``buffer``: ``buffer`` itself
    if it is a device array, else a new device array (copied to ``buffer`` afterwards)."""
    if buffer is not None and on_device(buffer):
        return buffer
    return _run.empty(*shape, dtype=dtype)


def _hand_back(result, buffer):
    """Copy ``result`` into the host ``buffer`` (nothing to do for None or ``result``)."""
    if buffer is not None and buffer is not result:
        result.copy_to_host(buffer)


def _forward(x2, weights, biases, mask, heads, shape, probs=None, qkv=None, ctx=None,
             saved=False):
    """``qkv`` (B, L, 3D), the attention weights ``p`` and the context (B, L, D) on the
    device. Without ``saved`` they are computed and written into ``probs``, ``qkv`` and
    ``ctx`` where given (host or device); with ``saved`` each of them given is read
    instead of computed."""
    n_batch, length, d = shape
    at = _Layout(shape, heads)
    if saved and qkv is not None:
        qkv_d = _run.to_device(qkv)
    else:
        qkv_d = _into(qkv, n_batch, length, 3 * d, dtype=x2.dtype)
        _run.matmul(x2, weights[:O].reshape(3 * d, d), qkv_d.reshape(-1, 3 * d), tb=True)
        if biases is not None:
            _run("add_bias", x2.shape[0], biases[:O].reshape(3 * d), qkv_d.reshape(-1, 3 * d))
        _hand_back(qkv_d, qkv)
    if saved and probs is not None:
        p = _run.to_device(probs)
    else:
        s = _run.empty(n_batch, heads, length, length, dtype=x2.dtype)
        p = _into(probs, n_batch, heads, length, length, dtype=x2.dtype)
        batched(qkv_d, at.part(Q), qkv_d, at.part(K).transposed(), s, at.scores,
                at.shape(length, length, at.dh), 1.0 / math.sqrt(at.dh))
        masked = mask is not None
        if not masked:  # never read: a placeholder, allocated on the device (no transfer)
            mask = _run.empty(1, 1, dtype=np.bool_)
        run_blocks(_FUNCTIONS, "softmax_kernel", s.size // length, s.reshape(-1, length),
                   int(masked), mask, heads * length, p.reshape(-1, length))
        _hand_back(p, probs)
    if saved and ctx is not None:
        ctx_d = _run.to_device(ctx)
    else:
        ctx_d = _into(ctx, n_batch, length, d, dtype=x2.dtype)
        batched(p, at.scores, qkv_d, at.part(V), ctx_d, at.ctx, at.shape(length, at.dh, length))
        _hand_back(ctx_d, ctx)
    return qkv_d, p, ctx_d


def _device(*arrays):
    """Device copies of the host arrays among ``arrays`` (None and device arrays pass)."""
    return [None if a is None else _run.to_device(a) for a in arrays]


def attention(x, weights, biases, mask, heads, out, probs=None, qkv=None, ctx=None):
    """Arguments as :func:`refode.kernels.reference.attention.attention`; host or device arrays."""
    d = x.shape[2]
    x2, weights, biases, mask = _device(x.reshape(-1, d), weights, biases, mask)
    *_, ctx_d = _forward(x2, weights, biases, mask, heads, x.shape, probs, qkv, ctx)
    _run.matmul(ctx_d.reshape(-1, d), weights[O], out.reshape(-1, d), tb=True)
    if biases is not None:
        _run("add_bias", x2.shape[0], biases[O], out.reshape(-1, d))


def attention_vjp(x, weights, biases, mask, heads, dout, dx, dweights, dbiases, probs=None,
                  qkv=None, ctx=None):
    """Arguments as :func:`refode.kernels.reference.attention.attention_vjp`."""
    d = x.shape[2]
    x2, weights, biases, mask, dout2 = _device(x.reshape(-1, d), weights, biases, mask,
                                               dout.reshape(-1, d))
    qkv, p, ctx = _forward(x2, weights, biases, mask, heads, x.shape, probs, qkv, ctx,
                           saved=True)
    at, length, scale = _Layout(x.shape, heads), x.shape[1], 1.0 / math.sqrt(d // heads)
    dctx = _run.empty(*x.shape, dtype=x2.dtype)
    _run.matmul(dout2, weights[O], dctx.reshape(-1, d))
    dp, ds = _run.empty(*p.shape, dtype=x2.dtype), _run.empty(*p.shape, dtype=x2.dtype)
    batched(dctx, at.ctx, qkv, at.part(V).transposed(), dp, at.scores,
            at.shape(length, length, at.dh))
    run_blocks(_FUNCTIONS, "softmax_vjp_kernel", p.size // length, p.reshape(-1, length),
               dp.reshape(-1, length), ds.reshape(-1, length))
    dqkv = _run.empty(*qkv.shape, dtype=x2.dtype)
    heads_lxd = at.shape(length, at.dh, length)
    batched(ds, at.scores, qkv, at.part(K), dqkv, at.part(Q), heads_lxd, scale)
    batched(ds, at.scores.transposed(), qkv, at.part(Q), dqkv, at.part(K), heads_lxd, scale)
    batched(p, at.scores.transposed(), dctx, at.ctx, dqkv, at.part(V), heads_lxd)
    dqkv2 = dqkv.reshape(-1, 3 * d)
    _run.matmul(dqkv2, x2, dweights[:O].reshape(3 * d, d), ta=True)
    _run.matmul(dout2, ctx.reshape(-1, d), dweights[O], ta=True)
    if dbiases is not None:
        _run("sum_column", 3 * d, dqkv2, 1, dbiases[:O].reshape(3 * d))
        _run("sum_column", d, dout2, 1, dbiases[O])
    _run.matmul(dqkv2, weights[:O].reshape(3 * d, d), dx.reshape(-1, d))
