"""Global polynomial families: ``poly_linear``, ``legendre``, ``chebyshev``."""
from fractions import Fraction

import numpy as np
from numpy.polynomial import chebyshev as npcheb
from numpy.polynomial import legendre as npleg

from ._base import Basis, invalid_n, register
from ._gauss import leggauss

#: the only size of the ``poly_linear`` family (``A0 + A1 t``).
POLY_LINEAR_N = 2


def _gauss_nodes(n):
    """The ``n`` Gauss-Legendre points mapped to unit coordinates, as exact fractions
    of their float64 values (so that exact and float evaluation agree)."""
    x, _ = leggauss(n)
    return [(Fraction(float((v + 1.0) / 2.0)), "right") for v in x]


def _chebyshev_nodes(n):
    """The ``n`` Chebyshev-Gauss points ``(1 + cos((2k+1) pi / 2n)) / 2``, ascending,
    as exact fractions of their float64 values."""
    k = np.arange(n)[::-1]
    x = 0.5 * (1.0 + np.cos((2 * k + 1) * np.pi / (2 * n)))
    return [(Fraction(float(v)), "right") for v in x]


class _GlobalPolynomial(Basis):
    """One piece, ``n`` polynomials of degrees ``0 .. n-1``; refinement adds a degree."""

    def _check_n(self, n):
        pass  # every n >= 1 is valid (degree n - 1)

    @property
    def degree(self):
        return self.n - 1

    def _unit_breakpoints(self):
        return [Fraction(0), Fraction(1)]

    def refine(self):
        fine = type(self)(self.n + 1, self.interval)
        return fine, np.eye(self.n + 1, self.n)


@register
class Legendre(_GlobalPolynomial):
    """Legendre polynomials orthonormal on ``[t0, t1]``: ``phi_k = sqrt((2k+1)/L) P_k(2x-1)``.

    The mass matrix is the identity. Refinement adds one degree (p-refinement).
    """

    family = "legendre"

    def _eval_piece(self, piece, xi):
        s = 2.0 * np.asarray(xi, dtype=np.float64) - 1.0
        vander = npleg.legvander(s, self.n - 1)
        scale = np.sqrt((2.0 * np.arange(self.n) + 1.0) / self.length)
        return vander * scale

    def nodes(self):
        return _gauss_nodes(self.n)


@register
class PolyLinear(Basis):
    """``theta(t) = A0 + A1 t`` with the *absolute* depth ``t``: ``phi_0 = 1``, ``phi_1 = t``.

    The original code's ``poly_linear`` family; ``n`` must be 2. It has no exact
    refinement (project onto ``legendre`` to add degrees).
    """

    family = "poly_linear"
    degree = 1
    refine_hint = (
        "; to add degrees, project onto the legendre family: "
        "refode.project(theta, basis, refode.basis('legendre', 3, basis.interval))"
    )

    def _check_n(self, n):
        if n != POLY_LINEAR_N:
            raise invalid_n(self.family, n, f"n = {POLY_LINEAR_N} (A0 + A1 t)", [POLY_LINEAR_N])

    def _unit_breakpoints(self):
        return [Fraction(0), Fraction(1)]

    def _eval_piece(self, piece, xi):
        t = self.t0 + np.asarray(xi, dtype=np.float64) * self.length
        return np.stack([np.ones_like(t), t], axis=1)

    def nodes(self):
        return [(Fraction(0), "right"), (Fraction(1), "left")]


@register
class Chebyshev(_GlobalPolynomial):
    """Chebyshev polynomials ``phi_k = T_k(2x - 1)``, ``k = 0..n-1`` (not normalised).

    ``x`` is the unit coordinate. Refinement adds one degree (p-refinement).
    """

    family = "chebyshev"

    def _eval_piece(self, piece, xi):
        s = 2.0 * np.asarray(xi, dtype=np.float64) - 1.0
        return npcheb.chebvander(s, self.n - 1)

    def nodes(self):
        return _chebyshev_nodes(self.n)
