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

from ..bases import Basis
from ..bases._gauss import leggauss
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
    """Sorted union of both bases' unit breakpoints (tuple of exact fractions).

    Both lists are sorted already: one merge (linear in the number of breakpoints).
    """
    a, b = basis_a.unit_breakpoints, basis_b.unit_breakpoints
    if a == b:
        return tuple(a)
    out, i, j = [], 0, 0
    while i < len(a) or j < len(b):
        if j == len(b) or (i < len(a) and a[i] < b[j]):
            value, i = a[i], i + 1
        elif i == len(a) or b[j] < a[i]:
            value, j = b[j], j + 1
        else:   # equal
            value, i, j = a[i], i + 1, j + 1
        out.append(value)
    return tuple(out)


def check_same_interval(basis_a, basis_b, name_a="a", name_b="b"):
    """Raise :class:`BasisError` unless both bases live on the same interval."""
    if basis_a.interval != basis_b.interval:
        raise BasisError(
            f"`{name_a}` is on the interval {basis_a.interval} but `{name_b}` is on "
            f"{basis_b.interval}; build both bases on the same interval, e.g. "
            f"refode.basis({basis_b.family!r}, {basis_b.n}, interval={basis_a.interval})"
        )


def _pieces_of(basis, edges):
    """The piece of ``basis`` holding each subinterval ``[edges[j], edges[j + 1]]`` of a
    refinement ``edges`` of its breakpoints (exact, one merge walk)."""
    breaks, pieces, p = basis.unit_breakpoints, [], 0
    for hi in edges[1:]:
        while breaks[p + 1] < hi:
            p += 1
        pieces.append(p)
    return pieces


def _values_on(basis, piece, lo, hi, nodes):
    """The functions of ``basis`` that can be non-zero on the unit subinterval
    ``[lo, hi]`` (exact) of ``piece`` and their values at ``nodes`` in ``(0, 1)`` across
    it: ``(columns (q,), values (len(nodes), q))`` (:meth:`refode.Basis._piece_support`)."""
    edges = basis.unit_breakpoints
    left, right = edges[piece], edges[piece + 1]
    xi_lo = 0.0 if lo == left else float((lo - left) / (right - left))
    xi_hi = 1.0 if hi == right else float((hi - left) / (right - left))
    return basis._piece_support(piece, xi_lo + (xi_hi - xi_lo) * nodes)


@functools.lru_cache(maxsize=256)
def _mass_cached(basis_a, basis_b):
    """Sum over the subintervals of the Gauss rule's products, each added only into the
    block of the functions that can be non-zero there (``O(K)`` work for the piecewise
    families, not a dense ``K x K`` addition per subinterval). Every entry receives its
    contributions in subinterval order (``np.add.at`` is unbuffered and ordered)."""
    g, w = leggauss(gauss_points(basis_a, basis_b))
    nodes, weights = 0.5 * (g + 1.0), 0.5 * w  # the rule on [0, 1]
    out = np.zeros((basis_a.n, basis_b.n))
    edges = union_breakpoints(basis_a, basis_b)
    rows, cols, values = [], [], []
    for lo, hi, pa, pb in zip(edges[:-1], edges[1:], _pieces_of(basis_a, edges),
                              _pieces_of(basis_b, edges)):
        ca, va = _values_on(basis_a, pa, lo, hi, nodes)
        cb, vb = _values_on(basis_b, pb, lo, hi, nodes)
        block = (va * (weights * float(hi - lo))[:, None]).T @ vb
        if ca.size == basis_a.n and cb.size == basis_b.n:
            out += block   # global bases: one dense block
        else:
            rows.append(np.repeat(ca, cb.size))
            cols.append(np.tile(cb, ca.size))
            values.append(block.ravel())
    if values:
        np.add.at(out, (np.concatenate(rows), np.concatenate(cols)), np.concatenate(values))
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
