"""Slow, obviously-correct references: adaptive quadrature (scipy quad_vec) per subinterval.

They use only :meth:`Basis.evaluate` at float depths (no Gauss rules, no fractions):
interior points of each subinterval never sit on a breakpoint, so the value is the
one of the subinterval's piece.
"""
import functools

import numpy as np
from scipy.integrate import quad_vec

#: absolute tolerance asked of the adaptive quadrature.
QUAD_TOL = 1e-14


def float_breakpoints(a, b):
    """Sorted union of both bases' breakpoints as float depths."""
    return np.unique(np.concatenate([a.breakpoints, b.breakpoints]))


@functools.lru_cache(maxsize=None)
def brute_mass(a, b):
    """``int phi^a_i phi^b_j dt`` by adaptive quadrature, shape ``(a.n, b.n)`` (cached)."""
    def integrand(t):
        return np.outer(a.evaluate([t])[0], b.evaluate([t])[0])

    edges = float_breakpoints(a, b)
    total = np.zeros((a.n, b.n))
    for lo, hi in zip(edges[:-1], edges[1:]):
        total += quad_vec(integrand, lo, hi, epsabs=QUAD_TOL, epsrel=QUAD_TOL, limit=400)[0]
    return total


def brute_project(c, a, b):
    """L2 projection ``M_BB^{-1} M_BA c`` with brute-force mass matrices."""
    c2 = c.reshape(a.n, -1)
    return np.linalg.solve(brute_mass(b, b), brute_mass(b, a) @ c2).reshape((b.n,) + c.shape[1:])
