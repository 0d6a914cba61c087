"""Numba CPU kernels of ``embedding`` (see :mod:`refode.kernels.reference.embedding`).

The lookup is parallel over positions; the scatter-add VJP is parallel over column
chunks of ``dweight``, each task adding the positions in row-major order, so the
result is bitwise that of the sequential definition for any thread count.
"""
import numba

from ... import config

#: columns of ``dweight`` handled by one parallel task of the VJP.
CHUNK = 64


@numba.njit(**config.njit_options(parallel=True))
def _lookup_kernel(ids, weight, out):
    for r in numba.prange(ids.shape[0]):
        out[r, :] = weight[ids[r], :]


@numba.njit(**config.njit_options(parallel=True))
def _scatter_kernel(ids, dout, dweight):
    width = dweight.shape[1]
    for c in numba.prange((width + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(width, lo + CHUNK)
        dweight[:, lo:hi] = 0.0
        for r in range(ids.shape[0]):
            for j in range(lo, hi):
                dweight[ids[r], j] += dout[r, j]


def embedding(ids, weight, out):
    """Arguments as :func:`refode.kernels.reference.embedding.embedding` (C-contiguous)."""
    _lookup_kernel(ids.reshape(-1), weight, out.reshape(-1, weight.shape[1]))


def embedding_vjp(ids, dout, dweight):
    """Arguments as :func:`refode.kernels.reference.embedding.embedding_vjp` (C-contiguous)."""
    _scatter_kernel(ids.reshape(-1), dout.reshape(-1, dweight.shape[1]), dweight)
