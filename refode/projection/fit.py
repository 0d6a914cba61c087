"""Least-squares fit of point samples onto a basis (stateful layers, e.g. batch norm).

Definition
----------
Given samples ``(t_i, y_i)``, ``i = 0..m-1``, the design matrix is
``Phi[i, k] = phi_k(t_i)``. Basis functions that receive no sample (all-zero
columns of ``Phi``) are *inactive* and keep their ``previous`` coefficients
(zeros if there is none). The active coefficients ``c_a`` minimise
``sum_i |Phi_a[i] c_a - y_i|^2``; when that has several minimisers (rank-deficient
``Phi_a``), the one closest to ``previous`` (Euclidean norm, per trailing entry)
is taken. When ``Phi_a`` is well conditioned the normal equations are solved by
Cholesky, so that one sample of weight 1 per piecewise-constant function returns
that sample bitwise (Euler with ``N = K`` is then per-layer batch norm).
"""
import numbers
from fractions import Fraction

import numpy as np
import scipy.linalg

from .. import _validate
from ..bases import SIDES
from ..errors import RefodeError, ShapeError
from ._operator import resolve_one

#: largest condition number of the normal matrix ``Phi_a^T Phi_a`` solved by
#: Cholesky (condition of ``Phi_a`` up to 1e5); beyond it, ``lstsq`` is used.
MAX_NORMAL_CONDITION = 1e10


def _is_exact_point(p):
    return (isinstance(p, tuple) and len(p) == 2
            and isinstance(p[0], (Fraction, numbers.Integral)) and p[1] in SIDES)


def design_matrix(points, basis):
    """``Phi[i, k] = phi_k(point_i)``, shape ``(m, basis.n)``.

    ``points`` is a sequence of exact ``(position, side)`` pairs (unit coordinates,
    :class:`~fractions.Fraction`, as produced by the integrator's stage grid) or a
    1-D array of float depths ``t`` in ``[t0, t1]`` (right-continuous).
    """
    if isinstance(points, (list, tuple)) and points and all(_is_exact_point(p) for p in points):
        return np.array([basis.evaluate_at(x, side) for x, side in points])
    if isinstance(points, (list, tuple)) and any(isinstance(p, tuple) for p in points):
        raise RefodeError(
            "`points` mixes exact and float entries or has a malformed pair: pass either "
            "(Fraction position, 'right'|'left') pairs or float depths only"
        )
    try:
        t = _validate.as_array(np.asarray(points, dtype=np.float64), "points")
    except (TypeError, ValueError) as exc:
        if isinstance(exc, RefodeError):
            raise
        raise RefodeError(
            f"`points` must be (Fraction position, side) pairs or float depths, got {points!r}"
        ) from None
    if t.ndim != 1:
        raise ShapeError(f"`points` must be one-dimensional, got shape {t.shape}")
    return basis.evaluate(t)


def _solve_active(phi, y, prev):
    """Least-squares ``c`` for ``phi c ~ y`` closest to ``prev`` (all float64 2-D)."""
    normal = phi.T @ phi
    if np.linalg.cond(normal) <= MAX_NORMAL_CONDITION:
        try:
            factor = scipy.linalg.cho_factor(normal)
            return scipy.linalg.cho_solve(factor, phi.T @ y)
        except np.linalg.LinAlgError:
            pass
    delta, *_ = np.linalg.lstsq(phi, y - phi @ prev, rcond=None)
    return prev + delta


def fit(points, values, basis, previous=None):
    """Least-squares fit of samples ``(t_i, y_i)`` onto ``basis`` (see the module docstring).

    Parameters
    ----------
    points : sequence of (Fraction, str) pairs, or (m,) float array
        Exact unit positions with their side, or float depths in ``[t0, t1]``.
    values : (m, *S) float32 or float64
        The samples ``y_i``.
    basis : Basis or tuple
        Target basis (a ``(family, n)`` tuple lives on ``(0, 1)``).
    previous : (basis.n, *S) array, optional
        Coefficients kept by unsampled functions and used as the reference point when
        the fit is not unique; zeros if omitted.

    Returns
    -------
    (basis.n, *S) array of the dtype of ``values``
    """
    b = resolve_one(basis)
    y = _validate.as_array(values, "values")
    phi = design_matrix(points, b)
    _validate.leading(y, phi.shape[0], "values", what="point in `points`")
    trailing = y.shape[1:]
    if previous is None:
        prev = np.zeros((b.n, *trailing))
    else:
        prev = _validate.leading(_validate.as_array(previous, "previous"), b.n, "previous")
        if prev.shape[1:] != trailing:
            raise ShapeError(
                f"`previous` has shape {prev.shape} but must be ({b.n}, *{trailing}) to match "
                "`values`: pass the coefficients the fit updates"
            )
    prev2 = prev.reshape(b.n, -1).astype(np.float64)
    out = prev2.copy()
    active = np.flatnonzero(np.any(phi != 0.0, axis=0))
    if active.size:
        out[active] = _solve_active(phi[:, active], y.reshape(y.shape[0], -1).astype(np.float64),
                                    prev2[active])
    return out.reshape((b.n, *trailing)).astype(y.dtype, copy=False)


__all__ = ["fit", "design_matrix"]
