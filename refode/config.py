"""Process-wide switches, read once from the environment at import time.

``REFODE_FASTMATH``
    ``1`` compiles the Numba CPU kernels with ``fastmath=True``. Off by default:
    fastmath lets LLVM reassociate sums, which breaks bitwise reproducibility
    against the NumPy reference definitions and across builds.
``REFODE_CACHE``
    ``1`` caches compiled kernels on disk (``cache=True``). Off by default: a
    stale cache next to an edited source file is a classic source of confusion,
    and the first compilation of every kernel is paid once per process anyway.
"""
import os

_TRUE = ("1", "true", "yes", "on")

#: fastmath flag handed to every ``numba.njit`` in refode (never hard-coded elsewhere).
FASTMATH = os.environ.get("REFODE_FASTMATH", "0").strip().lower() in _TRUE
#: on-disk cache flag handed to every ``numba.njit`` in refode.
CACHE = os.environ.get("REFODE_CACHE", "0").strip().lower() in _TRUE

#: default floating dtype of refode (float32 is supported where documented).
DEFAULT_DTYPE = "float64"

#: threads per block of the CUDA kernels (tests patch it to a small odd number).
CUDA_THREADS_PER_BLOCK = 256


def njit_options(parallel=False):
    """Keyword arguments for ``numba.njit`` following the switches above."""
    return {"fastmath": FASTMATH, "cache": CACHE, "parallel": parallel, "nogil": True}
