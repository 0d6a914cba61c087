"""Fixed sinusoidal positional encodings: the meaning of the ``positions`` kernels.

Scalar C-library ``pow``/``sin``/``cos`` (Python's :mod:`math`), as the compiled kernels
call: NumPy's vectorised ``sin`` may use other (SIMD) implementations, 1 ulp apart on
some processors.
"""
import math

import numpy as np

__all__ = ["positions"]

#: the base of the wavelengths in "Attention is all you need" (Vaswani et al. 2017).
POSITION_BASE = 10000.0


def angles(length, width):
    """(L, D) float64 angles ``pos / BASE ** (2 i / D)`` with ``i = j // 2`` for column ``j``."""
    return np.array([[float(p) / math.pow(POSITION_BASE, float(j // 2 * 2) / width)
                      for j in range(width)] for p in range(length)], dtype=np.float64)


def positions(out):
    """Sinusoidal positional encodings: ``sin`` of the angle on even columns, ``cos`` on odd.

    Parameters
    ----------
    out : (L, D) float32 or float64; overwritten with
        ``out[p, 2i] = sin(p / 10000^(2i/D))``, ``out[p, 2i+1] = cos(p / 10000^(2i/D))``
    """
    a = angles(*out.shape)
    for (p, j), angle in np.ndenumerate(a):
        out[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)
