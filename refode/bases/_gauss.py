"""Gauss-Legendre rules on ``[-1, 1]`` for every size refode allows (cached).

``numpy.polynomial.legendre.leggauss`` finds the points as the eigenvalues of a dense
``n x n`` companion matrix: ``O(n^3)``, about two minutes at ``n = 4096`` (a Legendre
basis at the cap ``K = 4096`` needs 4096 points). That matrix is symmetric
tridiagonal (zero diagonal, off-diagonal ``k / sqrt(4 k^2 - 1)``), so from
:data:`TRIDIAGONAL_FROM` points on its eigenvalues are computed by the tridiagonal
solver (``O(n^2)``); the one Newton step and the weights are numpy's own formulas.
Smaller rules are numpy's, bit for bit.
"""
import functools

import numpy as np
import scipy.linalg
from numpy.polynomial import legendre as npleg

#: from this many points on, the tridiagonal eigenvalue solver is used.
TRIDIAGONAL_FROM = 128


@functools.lru_cache(maxsize=64)
def leggauss(n):
    """Points ``x`` (ascending) and weights ``w`` of the ``n``-point rule, read-only.

    Parameters
    ----------
    n : int >= 1

    Returns
    -------
    x, w : (n,) float64
    """
    if n < TRIDIAGONAL_FROM:
        x, w = npleg.leggauss(n)
    else:
        k = np.arange(1, n)
        x = scipy.linalg.eigvalsh_tridiagonal(np.zeros(n), k / np.sqrt(4.0 * k * k - 1.0))
        c = np.array([0] * n + [1])
        dy, df = npleg.legval(x, c), npleg.legval(x, npleg.legder(c))
        x -= dy / df                      # one Newton step, as numpy
        fm = npleg.legval(x, c[1:])
        fm /= np.abs(fm).max()
        df /= np.abs(df).max()
        w = 1 / (fm * df)
        w, x = (w + w[::-1]) / 2, (x - x[::-1]) / 2
        w *= 2.0 / w.sum()
    for a in (x, w):
        a.setflags(write=False)
    return x, w
