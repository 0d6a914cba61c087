"""Numba CPU kernel of ``combine`` (see :func:`refode.kernels.reference.combine.combine`)."""
import numba
import numpy as np

from ... import config

#: columns handled by one parallel task; large enough to amortise the task, small
#: enough that the float64 accumulator stays in L1 cache.
CHUNK = 2048


@numba.njit(**config.njit_options(parallel=True))
def combine(indptr, indices, data, src, out):
    """Sparse row combination ``out[j] = sum_q data[q] * src[indices[q]]``.

    Parallel over column chunks: each task writes a disjoint slice of ``out`` and
    sums in the stored order, so results are bitwise those of the NumPy definition
    for any thread count.

    Parameters
    ----------
    indptr : (n_out + 1,) int64
    indices : (nnz,) int64
    data : (nnz,) float64
    src : (n_src, P) float32 or float64, C-contiguous
    out : (n_out, P) same dtype, C-contiguous; overwritten
    """
    n_out = out.shape[0]
    width = src.shape[1]
    n_chunks = (width + CHUNK - 1) // CHUNK
    for c in numba.prange(n_chunks):
        lo = c * CHUNK
        hi = min(width, lo + CHUNK)
        acc = np.empty(hi - lo, dtype=np.float64)
        for j in range(n_out):
            acc[:] = 0.0
            for q in range(indptr[j], indptr[j + 1]):
                w = data[q]
                row = indices[q]
                for p in range(lo, hi):
                    acc[p - lo] += w * src[row, p]
            for p in range(lo, hi):
                out[j, p] = acc[p - lo]
