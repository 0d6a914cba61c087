"""Piecewise-polynomial families on equal pieces: constant, DG linear, FEM hats."""
from fractions import Fraction

import numpy as np

from ..errors import BasisError
from ._base import Basis, register


@register
class PiecewiseConstant(Basis):
    """``K`` indicator functions of equal pieces; piece ``k`` is ``[k/K, (k+1)/K)``.

    ``phi_k(t) = 1`` on piece ``k`` and 0 elsewhere; ``t = t1`` belongs to the last
    piece. With Euler and ``N = K`` steps the ODE-block is a ResNet of ``K`` blocks.
    """

    family = "piecewise_constant"
    degree = 0

    def _check_n(self, n):
        pass  # every n >= 1 is valid

    def _unit_breakpoints(self):
        return [Fraction(k, self.n) for k in range(self.n + 1)]

    def _eval_piece(self, piece, xi):
        out = np.zeros((xi.size, self.n))
        out[:, piece] = 1.0
        return out

    def nodes(self):
        return [(Fraction(2 * k + 1, 2 * self.n), "right") for k in range(self.n)]

    def refine(self):
        fine = PiecewiseConstant(2 * self.n, self.interval)
        return fine, np.repeat(np.eye(self.n), 2, axis=0)
