"""The trigonometric family ``fourier`` (integer frequencies on the unit coordinate)."""
from fractions import Fraction

import numpy as np

from ._base import Basis, invalid_n, register

#: Gauss points per unit of the highest frequency: Gauss-Legendre integrates
#: ``exp(2 pi i M x)`` on [0, 1] to round-off once it has more than about
#: ``e pi M / 4 + 10`` points; 3 per frequency (for each factor) leaves a margin.
POINTS_PER_FREQUENCY = 3
#: Gauss points added to every trigonometric factor whatever its frequency.
EXTRA_POINTS = 12


@register
class Fourier(Basis):
    """``[1, cos(2 pi x), sin(2 pi x), cos(4 pi x), sin(4 pi x), ...]``, ``n`` odd.

    ``x = (t - t0) / (t1 - t0)`` is the unit coordinate; the frequencies are the
    integers ``1 .. (n - 1) / 2``, each with its cosine then its sine. The family
    is not polynomial (``degree = None``): mass matrices use
    :meth:`quadrature_points`. Refinement adds the next frequency pair (``n -> n + 2``).
    """

    family = "fourier"
    degree = None

    def _check_n(self, n):
        if n % 2 == 0:
            raise invalid_n(self.family, n, "an odd n (the constant plus cos/sin pairs)",
                            [n - 1, n + 1])

    @property
    def max_frequency(self):
        return (self.n - 1) // 2

    def _unit_breakpoints(self):
        return [Fraction(0), Fraction(1)]

    def _eval_piece(self, piece, xi):
        x = np.asarray(xi, dtype=np.float64)
        out = np.empty((x.size, self.n))
        out[:, 0] = 1.0
        for m in range(1, self.max_frequency + 1):
            out[:, 2 * m - 1] = np.cos(2.0 * np.pi * m * x)
            out[:, 2 * m] = np.sin(2.0 * np.pi * m * x)
        return out

    def nodes(self):
        """``n`` equispaced points ``k / n`` (unisolvent for odd ``n``)."""
        return [(Fraction(k, self.n), "right") for k in range(self.n)]

    def quadrature_points(self):
        return POINTS_PER_FREQUENCY * self.max_frequency + EXTRA_POINTS

    def refine(self):
        fine = Fourier(self.n + 2, self.interval)
        return fine, np.eye(self.n + 2, self.n)
