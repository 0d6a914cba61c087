"""Tiled shared-memory matrix multiply on CUDA: the GEMM of dense, conv2d and attention.

One kernel computes a *batch* of products ``C_z = alpha A_z B_z`` (``z`` over a 3-D grid's
third axis) on matrices laid out in flat device arrays by strides, so that transposes,
row-major operands and the per-head slices of attention's stacked ``qkv`` are all views
of one kernel (no copies). Element ``(i, l)`` of ``A_z`` is
``a[offset + (z // heads) * s_batch + (z % heads) * s_head + i * s_row + l * s_col]``;
a :class:`View` holds those five numbers.

Each block of ``T x T`` threads owns one ``T x T`` tile of ``C_z``; it walks the inner
dimension one tile at a time, loading a tile of ``A_z`` and one of ``B_z`` into shared
memory (zeros past the edges; both tiles in the block's dynamic shared memory, see
:func:`refode.kernels.cuda.launch_blocks`), synchronising, and adding the ``T`` products
of its element in order. Every element of ``C`` is summed by one thread in increasing
inner index, in the inputs' dtype (float32 for float32 inputs, as NumPy's ``a @ b``; no
float64 accumulation), then multiplied by ``alpha`` once: deterministic, no atomics.
The result differs from BLAS's by the summation order (and, on a GPU, fused
multiply-adds; see :mod:`refode.kernels.cuda`).

The tile side is :data:`TILE` (a block of ``TILE**2`` threads, independent of
``config.CUDA_THREADS_PER_BLOCK``, which sizes the one-dimensional kernels); it is read
at each call, and a kernel is compiled once per side and dtype, so tests patch it to
sides that do not divide their shapes.
"""
from typing import NamedTuple

import numpy as np

from . import copy_back, moved, specialise

__all__ = ["TILE", "View", "batched", "matmul"]

#: tile side: 16 x 16 threads a block, two 16 x 16 shared tiles (4 KiB in float64).
TILE = 16

#: bound by :func:`refode.kernels.cuda.specialise` when the kernels compile
#: (the numba.cuda module and compile-time constants).
cuda = T = DTYPE = None


class View(NamedTuple):
    """Strides (in elements) of a batch of matrices in a flat array (see the module docstring)."""

    offset: int
    s_batch: int
    s_head: int
    s_row: int
    s_col: int

    def transposed(self):
        """The same elements read as the transposed matrices."""
        return self._replace(s_row=self.s_col, s_col=self.s_row)


def _gemm_kernel(a, av, b, bv, c, cv, m, n, inner, heads, alpha):
    """``C_z = alpha A_z B_z`` for ``z = blockIdx.z``; ``A_z`` is (m, inner), ``B_z`` (inner, n).

    ``av``, ``bv`` and ``cv`` are :class:`View` tuples; ``T`` (the tile side) and ``DTYPE``
    (the accumulator's dtype) are compile-time constants (see :func:`_compiled`).
    """
    tiles = cuda.shared.array(0, DTYPE)  # the tile of A (T T entries), then the tile of B
    tx = cuda.threadIdx.x
    ty = cuda.threadIdx.y
    i = cuda.blockIdx.y * T + ty
    j = cuda.blockIdx.x * T + tx
    zb = cuda.blockIdx.z // heads
    zh = cuda.blockIdx.z % heads
    a0 = av[0] + zb * av[1] + zh * av[2]
    b0 = bv[0] + zb * bv[1] + zh * bv[2]
    acc = DTYPE(0)
    for t in range((inner + T - 1) // T):
        la = t * T + tx  # this thread loads A_z[i, la] and B_z[lb, j]
        lb = t * T + ty
        in_a = i < m and la < inner
        in_b = lb < inner and j < n
        tiles[ty * T + tx] = a[a0 + i * av[3] + la * av[4]] if in_a else DTYPE(0)
        tiles[T * T + ty * T + tx] = b[b0 + lb * bv[3] + j * bv[4]] if in_b else DTYPE(0)
        cuda.syncthreads()
        for q in range(T):
            acc += tiles[ty * T + q] * tiles[T * T + q * T + tx]
        cuda.syncthreads()
    if i < m and j < n:
        c[cv[0] + zb * cv[1] + zh * cv[2] + i * cv[3] + j * cv[4]] = acc * DTYPE(alpha)


def _compiled(side, dtype):
    """The GEMM kernel for tiles of ``side`` and accumulator ``dtype`` (compiled once each)."""
    from numba import from_dtype

    return specialise([_gemm_kernel], T=side, DTYPE=from_dtype(np.dtype(dtype)))


def _flat(a):
    """A C-contiguous (host or device) array as 1-D, without copying."""
    return a.reshape(a.size)


def batched(a, av, b, bv, c, cv, shape, alpha=1.0):
    """``C_z = alpha A_z B_z`` for ``z < batch * heads`` on flat arrays (host or device).

    Parameters
    ----------
    a, b : C-contiguous arrays of one float dtype, read through ``av`` and ``bv``
    av, bv, cv : View
        Where ``A_z`` (m, inner), ``B_z`` (inner, n) and ``C_z`` (m, n) lie.
    c : C-contiguous array of that dtype; the elements of every ``C_z`` are overwritten
    shape : (batch, heads, m, n, inner)
    alpha : float
        Applied once to each sum, in the dtype (``1.0`` is exact).
    """
    batch, heads, m, n, inner = shape
    if batch * heads * m * n == 0:
        return
    args = [a, b, c]
    on = moved(args)
    side = TILE
    dtype = np.result_type(a.dtype, b.dtype)
    kernel = _compiled(side, dtype).gemm_kernel
    blocks = ((n + side - 1) // side, (m + side - 1) // side, batch * heads)
    fa, fb, fc = (_flat(x) for x in on)
    shared = 2 * side * side * dtype.itemsize
    kernel[blocks, (side, side), 0, shared](fa, tuple(av), fb, tuple(bv), fc, tuple(cv), m, n,
                                            inner, heads, float(alpha))
    copy_back(args, on, 1)


def _view(x, transpose):
    """The :class:`View` of 2-D C-contiguous ``x`` (read transposed if ``transpose``)."""
    view = View(0, 0, 0, x.shape[1], 1)
    return view.transposed() if transpose else view


def matmul(a, b, out, ta=False, tb=False):
    """``out = op(a) @ op(b)`` for 2-D C-contiguous arrays, ``op`` transposing where asked.

    Parameters
    ----------
    a : (M, K), or (K, M) with ``ta``
    b : (K, N), or (N, K) with ``tb``
    out : (M, N) of the inputs' dtype; overwritten
    ta, tb : bool
    """
    m, n = out.shape
    inner = a.shape[0] if ta else a.shape[1]
    batched(a, _view(a, ta), b, _view(b, tb), out, _view(out, False), (1, 1, m, n, inner))
