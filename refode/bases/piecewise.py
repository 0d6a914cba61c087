"""Piecewise-polynomial families on equal pieces: constant, DG linear, FEM hats."""
from fractions import Fraction

import numpy as np

from ._base import Basis, invalid_n, register


def _scatter(n, columns, values):
    """``(m, n)`` values from the non-zero ``columns`` (every other function is 0)."""
    out = np.zeros((values.shape[0], n))
    out[:, columns] = values
    return out


def _hat_pair(xi):
    """``(m, 2)`` values ``1 - xi`` and ``xi`` of the two linear functions of a piece."""
    xi = np.asarray(xi, dtype=np.float64)
    return np.stack([1.0 - xi, xi], axis=1)


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
        return _scatter(self.n, *self._piece_support(piece, xi))

    def _piece_support(self, piece, xi):
        return np.array([piece]), np.ones((np.size(xi), 1))

    def nodes(self):
        return [(Fraction(2 * k + 1, 2 * self.n), "right") for k in range(self.n)]

    def refine(self):
        fine = PiecewiseConstant(2 * self.n, self.interval)
        return fine, np.repeat(np.eye(self.n), 2, axis=0)


@register
class PiecewiseLinear(Basis):
    """Discontinuous (DG) linear functions on ``n / 2`` equal elements (``n`` even).

    Interchange layout: on element ``e`` (``[e/E, (e+1)/E)`` with ``E = n / 2``)

    - ``phi_{2e}`` is ``1 - xi``: value 1 at the element's left end, 0 at its right end;
    - ``phi_{2e+1}`` is ``xi``: value 0 at the left end, 1 at the right end;

    with ``xi`` the local coordinate across the element, and both are zero on every
    other element. So ``theta[2e]`` and ``theta[2e+1]`` are the one-sided values of
    ``theta(t)`` at the left and right ends of element ``e``.
    """

    family = "piecewise_linear"
    degree = 1

    def _check_n(self, n):
        if n % 2:
            raise invalid_n(self.family, n, "an even n >= 2 (two functions per element)",
                            [k for k in (n - 1, n + 1) if k >= 2])

    @property
    def n_elements(self):
        return self.n // 2

    def _unit_breakpoints(self):
        return [Fraction(k, self.n_elements) for k in range(self.n_elements + 1)]

    def _eval_piece(self, piece, xi):
        return _scatter(self.n, *self._piece_support(piece, xi))

    def _piece_support(self, piece, xi):
        return np.array([2 * piece, 2 * piece + 1]), _hat_pair(xi)

    def nodes(self):
        out = []
        for e in range(self.n_elements):
            out.append((Fraction(e, self.n_elements), "right"))
            out.append((Fraction(e + 1, self.n_elements), "left"))
        return out

    def refine(self):
        """Split every element in two (``n -> 2n``); the midpoint value is the mean."""
        fine = PiecewiseLinear(2 * self.n, self.interval)
        element = np.array([[1.0, 0.0], [0.5, 0.5], [0.5, 0.5], [0.0, 1.0]])
        return fine, np.kron(np.eye(self.n_elements), element)


@register
class FemLinear(Basis):
    """Continuous hat functions on the ``n`` nodes ``k / (n - 1)`` (``n >= 2``).

    ``phi_k`` is 1 at node ``k``, 0 at the other nodes and linear on each of the
    ``n - 1`` equal elements, so ``theta[k]`` is ``theta`` at node ``k``.
    """

    family = "fem_linear"
    degree = 1

    def _check_n(self, n):
        if n < 2:
            raise invalid_n(self.family, n, "n >= 2 (one node at each end)", [2])

    def _unit_breakpoints(self):
        return [Fraction(k, self.n - 1) for k in range(self.n)]

    def _eval_piece(self, piece, xi):
        return _scatter(self.n, *self._piece_support(piece, xi))

    def _piece_support(self, piece, xi):
        return np.array([piece, piece + 1]), _hat_pair(xi)

    def nodes(self):
        return [(Fraction(k, self.n - 1), "right") for k in range(self.n)]

    def refine(self):
        """Add the element midpoints as nodes (``n -> 2n - 1``), valued by the mean."""
        fine = FemLinear(2 * self.n - 1, self.interval)
        r = np.zeros((fine.n, self.n))
        r[0::2] = np.eye(self.n)
        r[1::2, :-1] += 0.5 * np.eye(self.n - 1)
        r[1::2, 1:] += 0.5 * np.eye(self.n - 1)
        return fine, r
