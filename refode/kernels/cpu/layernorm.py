"""Numba CPU kernels of ``layernorm`` (see :mod:`refode.kernels.reference.layernorm`).

The public functions view the input as rows (M, D) and call the kernels: rows are
normalised in parallel; the parameter gradients are reduced in parallel over
columns, each column summing its rows in order. Bitwise identical for any thread
count; float64 accumulators.
"""
import numba
import numpy as np

from ... import config

from ...constants import LN_EPS as EPS


@numba.njit(**config.njit_options())
def _row_stats(x, r, eps):
    """Mean and ``1 / sqrt(var + eps)`` (biased variance, two passes) of row ``r``."""
    d = x.shape[1]
    mu = 0.0
    for j in range(d):
        mu += x[r, j]
    mu /= d
    sq = 0.0
    for j in range(d):
        sq += (x[r, j] - mu) ** 2
    return mu, 1.0 / np.sqrt(sq / d + eps)


@numba.njit(**config.njit_options(parallel=True))
def _forward_kernel(x, gamma, beta, eps, y):
    for r in numba.prange(x.shape[0]):
        mu, rstd = _row_stats(x, r, eps)
        for j in range(x.shape[1]):
            y[r, j] = gamma[j] * ((x[r, j] - mu) * rstd) + beta[j]


@numba.njit(**config.njit_options(parallel=True))
def _dx_kernel(x, gamma, dy, eps, dx, mean, rstd):
    """Rows of ``dx``; also stores each row's mean and rstd for the column pass."""
    d = x.shape[1]
    for r in numba.prange(x.shape[0]):
        mu, rs = _row_stats(x, r, eps)
        mean[r] = mu
        rstd[r] = rs
        sum_g = 0.0
        sum_gx = 0.0
        for j in range(d):
            g = dy[r, j] * gamma[j]
            sum_g += g
            sum_gx += g * ((x[r, j] - mu) * rs)
        for j in range(d):
            g = dy[r, j] * gamma[j]
            dx[r, j] = rs * (g - sum_g / d - ((x[r, j] - mu) * rs) * (sum_gx / d))


@numba.njit(**config.njit_options(parallel=True))
def _param_kernel(x, dy, mean, rstd, dgamma, dbeta):
    for j in numba.prange(x.shape[1]):
        sg = 0.0
        sb = 0.0
        for r in range(x.shape[0]):
            sg += dy[r, j] * ((x[r, j] - mean[r]) * rstd[r])
            sb += dy[r, j]
        dgamma[j] = sg
        dbeta[j] = sb


def _rows(a):
    return a.reshape(-1, a.shape[-1])


def layernorm(x, gamma, beta, y, eps=EPS):
    """Arguments as :func:`refode.kernels.reference.layernorm.layernorm` (C-contiguous)."""
    _forward_kernel(_rows(x), gamma, beta, eps, _rows(y))


def layernorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """Arguments as :func:`refode.kernels.reference.layernorm.layernorm_vjp` (C-contiguous)."""
    x2 = _rows(x)
    mean = np.empty(x2.shape[0])
    rstd = np.empty(x2.shape[0])
    _dx_kernel(x2, gamma, _rows(dy), eps, _rows(dx), mean, rstd)
    _param_kernel(x2, _rows(dy), mean, rstd, dgamma, dbeta)
