"""Numba CPU kernel of ``positions`` (see :mod:`refode.kernels.reference.positions`).

The row body :func:`_row` and the driver are shared with the CUDA backend; rows run
in parallel.
"""
import math

from .._compile import Runner
from ..reference.positions import POSITION_BASE

__all__ = ["positions"]


def _row(out, p):
    """Task ``p``: row ``p`` of the encodings (``sin`` on even columns, ``cos`` on odd)."""
    width = out.shape[1]
    for j in range(width):
        angle = float(p) / POSITION_BASE ** (float(j // 2 * 2) / width)
        out[p, j] = math.sin(angle) if j % 2 == 0 else math.cos(angle)


BODIES = (_row,)


def drivers(run):
    """The kernels of :data:`__all__`, running the bodies with ``run``."""

    def positions(out):
        """Sinusoidal encodings; arguments as the reference ``positions``."""
        run("row", out.shape[0], out)

    return (positions,)


(positions,) = drivers(Runner(BODIES))
