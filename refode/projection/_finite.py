"""A parallel, allocation-free finiteness check for large coefficient arrays.

``np.all(np.isfinite(x))`` allocates a boolean array as large as ``x`` and runs on
one thread; on a 16 x 10M coefficient array it costs about as much as the change
of basis itself. This check reads ``x`` once in parallel chunks.
"""
import numba
import numpy as np

from .. import config

#: elements checked by one parallel task.
CHUNK = 1 << 16
#: arrays smaller than this are checked with NumPy (no compilation needed).
MIN_SIZE = 1 << 20


@numba.njit(**config.njit_options(parallel=True))
def _chunks_finite(flat, flags):
    """``flags[c] = True`` iff chunk ``c`` of ``flat`` holds only finite values.

    ``v - v`` is 0 for finite ``v`` and NaN for NaN or Inf; counting the entries
    where it is not 0 is an integer reduction, which LLVM vectorises without
    fastmath (a floating-point sum would be one serial chain of additions). Each
    task writes its own flag: the result does not depend on the thread count.
    """
    for c in numba.prange(flags.size):
        lo = c * CHUNK
        hi = min(flat.size, lo + CHUNK)
        chunk = flat[lo:hi]  # a view indexed from 0: no wraparound test, the loop vectorises
        bad = 0
        for i in range(chunk.size):
            v = chunk[i]
            bad += (v - v) != 0
        flags[c] = bad == 0


def all_finite(arr):
    """True iff every entry of the float32/float64 array ``arr`` is finite."""
    if arr.size < MIN_SIZE or not arr.flags.c_contiguous:
        return bool(np.all(np.isfinite(arr)))
    flat = arr.reshape(-1)
    flags = np.empty((flat.size + CHUNK - 1) // CHUNK, dtype=np.bool_)
    _chunks_finite(flat, flags)
    return bool(flags.all())
