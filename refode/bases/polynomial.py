"""Global polynomial families: ``poly_linear``, ``legendre``, ``chebyshev``."""
from fractions import Fraction

import numpy as np
from numpy.polynomial import legendre as npleg

from ..errors import BasisError
from ._base import Basis, register


def _gauss_nodes(n):
    """The ``n`` Gauss-Legendre points mapped to unit coordinates, as exact fractions
    of their float64 values (so that exact and float evaluation agree)."""
    x, _ = npleg.leggauss(n)
    return [(Fraction(float((v + 1.0) / 2.0)), "right") for v in x]


@register
class Legendre(Basis):
    """Legendre polynomials orthonormal on ``[t0, t1]``: ``phi_k = sqrt((2k+1)/L) P_k(2x-1)``.

    The mass matrix is the identity. Refinement adds one degree (p-refinement).
    """

    family = "legendre"

    def _check_n(self, n):
        pass  # every n >= 1 is valid (degree n - 1)

    @property
    def degree(self):
        return self.n - 1

    def _unit_breakpoints(self):
        return [Fraction(0), Fraction(1)]

    def _eval_piece(self, piece, xi):
        s = 2.0 * np.asarray(xi, dtype=np.float64) - 1.0
        vander = npleg.legvander(s, self.n - 1)
        scale = np.sqrt((2.0 * np.arange(self.n) + 1.0) / self.length)
        return vander * scale

    def nodes(self):
        return _gauss_nodes(self.n)

    def refine(self):
        fine = Legendre(self.n + 1, self.interval)
        return fine, np.eye(self.n + 1, self.n)
