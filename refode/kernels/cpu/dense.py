"""Numba CPU kernels of ``dense`` (see :mod:`refode.kernels.reference.dense`).

The products are single BLAS GEMMs called from Python (outside any parallel
region); Numba only adds the bias and sums the bias cotangent, in a fixed order,
so the results are bitwise those of the NumPy definition for any thread count.
"""
import numba
import numpy as np

from ... import config


@numba.njit(**config.njit_options(parallel=True))
def _add_bias(b, out):
    """``out[m] += b`` for every row ``m``; parallel over rows (disjoint writes)."""
    for m in numba.prange(out.shape[0]):
        for o in range(out.shape[1]):
            out[m, o] += b[o]


@numba.njit(**config.njit_options(parallel=False))
def _sum_rows(g, db):
    """``db = sum_m g[m]``, rows added in order (as the NumPy definition does)."""
    db[:] = 0
    for m in range(g.shape[0]):
        for o in range(g.shape[1]):
            db[o] += g[m, o]


def dense(x, w, b, out):
    """``out = x @ w.T + b``.

    Parameters
    ----------
    x : (M, n_in) float32 or float64
    w : (n_out, n_in) same dtype
    b : (n_out,) same dtype, or None
    out : (M, n_out) same dtype, C-contiguous; overwritten
    """
    np.matmul(x, w.T, out=out)
    if b is not None:
        _add_bias(b, out)


def dense_vjp(x, w, g, dx, dw, db):
    """Cotangents of ``x``, ``w`` and ``b`` of :func:`dense` for the output cotangent ``g``.

    Parameters
    ----------
    x : (M, n_in)
    w : (n_out, n_in)
    g : (M, n_out), C-contiguous
    dx : (M, n_in); overwritten with ``g @ w``
    dw : (n_out, n_in); overwritten with ``g.T @ x``
    db : (n_out,) or None; overwritten with the column sums of ``g``
    """
    np.matmul(g, w, out=dx)
    np.matmul(g.T, x, out=dw)
    if db is not None:
        _sum_rows(g, db)
