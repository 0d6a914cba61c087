"""Numba CPU kernel of ``combine`` (see :func:`refode.kernels.reference.combine.combine`).

The body :func:`_chunk` computes columns ``lo .. hi`` of one output row into a float64
accumulator, summing the stored entries in their order. The CPU runs it for every row
of a column chunk in one parallel task (``CHUNK`` columns, so the inner loop is a long
contiguous one); CUDA runs the same arithmetic with one thread per output element and
a register accumulator. Each output element is written by one task: bitwise the NumPy
definition for any thread count.
"""
import numba
import numpy as np

from ... import config
from .._compile import bodies, cpu_jit

__all__ = ["combine"]

#: columns handled by one parallel task; large enough to amortise the task, small
#: enough that the float64 accumulator stays in L1 cache.
CHUNK = 2048


def _chunk(indptr, indices, data, src, out, acc, j, lo, hi):
    """``out[j, lo:hi] = sum_q data[q] src[indices[q], lo:hi]``, accumulated in ``acc``."""
    size = hi - lo
    for p in range(size):
        acc[p] = 0.0
    for q in range(indptr[j], indptr[j + 1]):
        w = data[q]
        src_row = src[indices[q], lo:hi]  # views indexed from 0: no wraparound test, so
        for p in range(size):             # the loop vectorises
            acc[p] += w * src_row[p]
    out_row = out[j, lo:hi]
    for p in range(size):
        out_row[p] = acc[p]


BODIES = (_chunk,)
_chunk_jit = bodies(cpu_jit, *BODIES).chunk


@numba.njit(**config.njit_options(parallel=True))
def _combine(indptr, indices, data, src, out):
    width = src.shape[1]
    for c in numba.prange((width + CHUNK - 1) // CHUNK):
        lo = c * CHUNK
        hi = min(width, lo + CHUNK)
        acc = np.empty(hi - lo, dtype=np.float64)
        for j in range(out.shape[0]):
            _chunk_jit(indptr, indices, data, src, out, acc, j, lo, hi)


def combine(indptr, indices, data, src, out):
    """Arguments as :func:`refode.kernels.reference.combine.combine` (C-contiguous arrays)."""
    _combine(indptr, indices, data, src, out)
