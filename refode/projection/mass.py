"""Exact mass (Gram) matrices between two bases on the same interval.

``mass(a, b)[i, j] = integral_{t0}^{t1} phi^a_i(t) phi^b_j(t) dt``. The integral is
taken piece by piece over the union of both bases' breakpoints (exact fractions),
with a Gauss-Legendre rule exact for the product degree on each subinterval; each
basis is evaluated on the piece the subinterval lies in, never by a float lookup.
This is what makes piecewise-constant 16 -> 6 projection the exact overlap average
(the original code integrated on cells that did not line up with the breakpoints).
"""
import functools
import math

import numpy as np
from numpy.polynomial import legendre as npleg

from ..bases import Basis
from ..errors import BasisError


def gauss_points(basis_a, basis_b):
    """Gauss-Legendre points per subinterval that integrate ``phi^a_i phi^b_j`` exactly.

    ``ceil((deg_a + deg_b + 1) / 2)`` for polynomial bases (exact for the product
    degree); a non-polynomial basis (``degree = None``) adds its
    :meth:`~refode.Basis.quadrature_points` instead of a degree.
    """
    degree, extra = 0, 0
    for b in (basis_a, basis_b):
        if b.degree is None:
            extra += b.quadrature_points()
        else:
            degree += b.degree
    return max(1, math.ceil((degree + 1) / 2)) + extra


def union_breakpoints(basis_a, basis_b):
    """Sorted union of both bases' unit breakpoints (tuple of exact fractions)."""
    return tuple(sorted(set(basis_a.unit_breakpoints) | set(basis_b.unit_breakpoints)))


def check_same_interval(basis_a, basis_b, name_a="a", name_b="b"):
    """Raise :class:`BasisError` unless both bases live on the same interval."""
    if basis_a.interval != basis_b.interval:
        raise BasisError(
            f"`{name_a}` is on the interval {basis_a.interval} but `{name_b}` is on "
            f"{basis_b.interval}; build both bases on the same interval, e.g. "
            f"refode.basis({basis_b.family!r}, {basis_b.n}, interval={basis_a.interval})"
        )


def _values_on(basis, lo, hi, nodes):
    """Values of all functions of ``basis`` at ``nodes`` in ``(0, 1)`` across the
    unit subinterval ``[lo, hi]`` (exact), shape ``(len(nodes), basis.n)``."""
    piece = basis.piece_at((lo + hi) / 2)
    edges = basis.unit_breakpoints
    width = edges[piece + 1] - edges[piece]
    xi_lo = float((lo - edges[piece]) / width)
    xi_hi = float((hi - edges[piece]) / width)
    return basis._eval_piece(piece, xi_lo + (xi_hi - xi_lo) * nodes)


@functools.lru_cache(maxsize=256)
def _mass_cached(basis_a, basis_b):
    g, w = npleg.leggauss(gauss_points(basis_a, basis_b))
    nodes, weights = 0.5 * (g + 1.0), 0.5 * w  # the rule on [0, 1]
    out = np.zeros((basis_a.n, basis_b.n))
    edges = union_breakpoints(basis_a, basis_b)
    for lo, hi in zip(edges[:-1], edges[1:]):
        va = _values_on(basis_a, lo, hi, nodes)
        vb = _values_on(basis_b, lo, hi, nodes)
        out += (va * (weights * float(hi - lo))[:, None]).T @ vb
    out *= basis_a.length
    out.setflags(write=False)
    return out


def mass(a, b=None):
    """Cross Gram matrix ``M[i, j] = integral phi^a_i(t) phi^b_j(t) dt`` over ``[t0, t1]``.

    Parameters
    ----------
    a : Basis
    b : Basis, optional
        Defaults to ``a`` (the mass matrix of ``a``). Must be on the same interval.

    Returns
    -------
    (a.n, b.n) float64, read-only
        Cached per pair of bases; copy it before modifying.
    """
    b = a if b is None else b
    for name, x in (("a", a), ("b", b)):
        if not isinstance(x, Basis):
            raise BasisError(f"`{name}` must be a refode.Basis, got {type(x).__name__}: "
                             "build one with refode.basis(family, n)")
    check_same_interval(a, b)
    return _mass_cached(a, b)


__all__ = ["mass", "gauss_points", "union_breakpoints", "check_same_interval"]
