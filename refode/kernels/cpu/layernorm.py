"""Numba CPU kernels of ``layernorm`` (see :mod:`refode.kernels.reference.layernorm`).

The public functions view the input as rows (M, D). Rows are normalised in parallel
(one task a row); the parameter gradients are reduced in parallel over columns, each
column summing its rows in order. Bitwise identical for any thread count; float64
accumulators. CUDA has its own block-per-row kernels
(refode/kernels/cuda/layernorm.py).
"""
import math

from ...constants import LN_EPS as EPS
from .._compile import Runner, rows

__all__ = ["layernorm", "layernorm_vjp"]


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
    return mu, 1.0 / math.sqrt(sq / d + eps)


def _forward_row(x, gamma, beta, eps, y, r):
    """Task ``r``: row ``r`` of ``y``."""
    mu, rstd = _row_stats(x, r, eps)
    for j in range(x.shape[1]):
        y[r, j] = gamma[j] * ((x[r, j] - mu) * rstd) + beta[j]


def _dx_row(x, gamma, dy, eps, dx, mean, rstd, r):
    """Task ``r``: row ``r`` of ``dx``; also stores the row's mean and rstd for the column pass."""
    d = x.shape[1]
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


def _param_column(x, dy, mean, rstd, dgamma, dbeta, j):
    """Task ``j``: ``dgamma[j]`` and ``dbeta[j]``, rows summed in order."""
    sg = 0.0
    sb = 0.0
    for r in range(x.shape[0]):
        sg += dy[r, j] * ((x[r, j] - mean[r]) * rstd[r])
        sb += dy[r, j]
    dgamma[j] = sg
    dbeta[j] = sb


BODIES = (_row_stats, _forward_row, _dx_row, _param_column)


def drivers(run):
    """The kernels of :data:`__all__`, running the bodies with ``run``."""

    def layernorm(x, gamma, beta, y, eps=EPS):
        """Arguments as :func:`refode.kernels.reference.layernorm.layernorm` (C-contiguous)."""
        x2 = rows(x)
        run("forward_row", x2.shape[0], x2, gamma, beta, eps, rows(y))

    def layernorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
        """Arguments as :func:`refode.kernels.reference.layernorm.layernorm_vjp` (C-contiguous)."""
        x2, dy2 = rows(x), rows(dy)
        mean, rstd = run.empty(x2.shape[0]), run.empty(x2.shape[0])
        run("dx_row", x2.shape[0], x2, gamma, dy2, eps, rows(dx), mean, rstd, n_out=3)
        run("param_column", x2.shape[1], x2, dy2, mean, rstd, dgamma, dbeta, n_out=2)

    return layernorm, layernorm_vjp


layernorm, layernorm_vjp = drivers(Runner(BODIES))
