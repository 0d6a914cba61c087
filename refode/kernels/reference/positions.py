"""Fixed sinusoidal positional encodings: the meaning of the ``positions`` kernels."""
import numpy as np

#: the base of the wavelengths in "Attention is all you need" (Vaswani et al. 2017).
POSITION_BASE = 10000.0


def angles(length, width):
    """(L, D) float64 angles ``pos / BASE ** (2 i / D)`` with ``i = j // 2`` for column ``j``."""
    pos = np.arange(length, dtype=np.float64)[:, None]
    pair = (np.arange(width) // 2 * 2).astype(np.float64)
    return pos / POSITION_BASE ** (pair / width)


def positions(out):
    """Sinusoidal positional encodings: ``sin`` of the angle on even columns, ``cos`` on odd.

    Parameters
    ----------
    out : (L, D) float32 or float64; overwritten with
        ``out[p, 2i] = sin(p / 10000^(2i/D))``, ``out[p, 2i+1] = cos(p / 10000^(2i/D))``
    """
    a = angles(*out.shape)
    out[:, 0::2] = np.sin(a[:, 0::2])
    out[:, 1::2] = np.cos(a[:, 1::2])
