"""Numba CPU kernels of ``batchnorm`` (see :mod:`refode.kernels.reference.batchnorm`).

Parallel over channels: each task reads one channel, sums it serially in a fixed
order (float64 accumulators) and writes only that channel's slices, so results are
bitwise identical for any thread count.
"""
import numba
import numpy as np

from ... import config

from ...constants import BN_EPS as EPS


@numba.njit(**config.njit_options())
def _channel_sum(a, c):
    total = 0.0
    for i in range(a.shape[0]):
        for h in range(a.shape[2]):
            for w in range(a.shape[3]):
                total += a[i, c, h, w]
    return total


@numba.njit(**config.njit_options())
def _channel_stats(x, c):
    """Mean and biased variance (two passes) of channel ``c``, and the count."""
    n = x.shape[0] * x.shape[2] * x.shape[3]
    mu = _channel_sum(x, c) / n
    sq = 0.0
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                sq += (x[i, c, h, w] - mu) ** 2
    return mu, sq / n, n


@numba.njit(**config.njit_options())
def _channel_sums(x, dy, c, mu, inv):
    """``sum(dy)`` and ``sum(dy * xhat)`` over channel ``c``."""
    sum_dy = 0.0
    sum_dy_xhat = 0.0
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                sum_dy += dy[i, c, h, w]
                sum_dy_xhat += dy[i, c, h, w] * ((x[i, c, h, w] - mu) * inv)
    return sum_dy, sum_dy_xhat


@numba.njit(**config.njit_options())
def _affine(x, c, scale, mu, shift, y):
    """``y[:, c] = scale * (x[:, c] - mu) + shift``."""
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                y[i, c, h, w] = scale * (x[i, c, h, w] - mu) + shift


@numba.njit(**config.njit_options(parallel=True))
def batchnorm(x, gamma, beta, y, mean, var, eps=EPS):
    """Training form; arguments as :func:`refode.kernels.reference.batchnorm.batchnorm`."""
    for c in numba.prange(x.shape[1]):
        mu, var_b, n = _channel_stats(x, c)
        inv = 1.0 / np.sqrt(var_b + eps)
        _affine(x, c, gamma[c] * inv, mu, beta[c], y)
        mean[c] = mu
        var[c] = var_b * (n / (n - 1))


@numba.njit(**config.njit_options(parallel=True))
def batchnorm_eval(x, gamma, beta, mean, var, y, eps=EPS):
    """Evaluation form; arguments as :func:`refode.kernels.reference.batchnorm.batchnorm_eval`."""
    for c in numba.prange(x.shape[1]):
        inv = 1.0 / np.sqrt(np.float64(var[c]) + eps)
        _affine(x, c, gamma[c] * inv, np.float64(mean[c]), beta[c], y)


@numba.njit(**config.njit_options(parallel=True))
def batchnorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """VJP of the training form; arguments as the reference ``batchnorm_vjp``."""
    for c in numba.prange(x.shape[1]):
        mu, var_b, n = _channel_stats(x, c)
        inv = 1.0 / np.sqrt(var_b + eps)
        sum_dy, sum_dy_xhat = _channel_sums(x, dy, c, mu, inv)
        scale = gamma[c] * inv / n
        for i in range(x.shape[0]):
            for h in range(x.shape[2]):
                for w in range(x.shape[3]):
                    xhat = (x[i, c, h, w] - mu) * inv
                    dx[i, c, h, w] = scale * (n * dy[i, c, h, w] - sum_dy - xhat * sum_dy_xhat)
        dgamma[c] = sum_dy_xhat
        dbeta[c] = sum_dy


@numba.njit(**config.njit_options(parallel=True))
def batchnorm_eval_vjp(x, gamma, mean, var, dy, dx, dgamma, dbeta, dmean, dvar, eps=EPS):
    """VJP of the evaluation form; arguments as the reference ``batchnorm_eval_vjp``."""
    for c in numba.prange(x.shape[1]):
        inv = 1.0 / np.sqrt(np.float64(var[c]) + eps)
        sum_dy, sum_dy_xhat = _channel_sums(x, dy, c, np.float64(mean[c]), inv)
        _affine(dy, c, gamma[c] * inv, 0.0, 0.0, dx)
        dgamma[c] = sum_dy_xhat
        dbeta[c] = sum_dy
        dmean[c] = -gamma[c] * inv * sum_dy
        dvar[c] = -0.5 * gamma[c] * inv * inv * sum_dy_xhat
