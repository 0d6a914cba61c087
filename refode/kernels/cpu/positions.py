"""Numba CPU kernel of ``positions`` (see :mod:`refode.kernels.reference.positions`)."""
import numba
import numpy as np

from ... import config

#: the base of the wavelengths in "Attention is all you need" (Vaswani et al. 2017).
POSITION_BASE = 10000.0


@numba.njit(**config.njit_options(parallel=True))
def positions(out):
    """Sinusoidal encodings, parallel over positions; arguments as the reference ``positions``."""
    length, width = out.shape
    for p in numba.prange(length):
        for j in range(width):
            angle = np.float64(p) / POSITION_BASE ** (np.float64(j // 2 * 2) / width)
            out[p, j] = np.sin(angle) if j % 2 == 0 else np.cos(angle)
