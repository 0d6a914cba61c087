"""Numba CPU kernels of ``batchnorm`` (see :mod:`refode.kernels.reference.batchnorm`).

Parallel over channels: each task reads one channel, sums it serially in a fixed
order (float64 accumulators) and writes only that channel's slices, so results are
bitwise identical for any thread count. CUDA has its own block-per-channel kernels
(refode/kernels/cuda/batchnorm.py).
"""
import math

import numpy as np

from ...constants import BN_EPS as EPS
from .._compile import Runner

__all__ = ["batchnorm", "batchnorm_eval", "batchnorm_vjp", "batchnorm_eval_vjp"]


def _channel_stats(x, c):
    """Mean and biased variance (two passes) of channel ``c``, and the count."""
    n = x.shape[0] * x.shape[2] * x.shape[3]
    total = 0.0
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                total += x[i, c, h, w]
    mu = total / n
    sq = 0.0
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                sq += (x[i, c, h, w] - mu) ** 2
    return mu, sq / n, n


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


def _affine(x, c, scale, mu, shift, y):
    """``y[:, c] = scale * (x[:, c] - mu) + shift``."""
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                y[i, c, h, w] = scale * (x[i, c, h, w] - mu) + shift


def _train(x, gamma, beta, eps, y, mean, var, c):
    """Task ``c`` of the training form."""
    mu, var_b, n = _channel_stats(x, c)
    inv = 1.0 / math.sqrt(var_b + eps)
    _affine(x, c, gamma[c] * inv, mu, beta[c], y)
    mean[c] = mu
    var[c] = var_b * (n / (n - 1))


def _evaluate(x, gamma, beta, mean, var, eps, y, c):
    """Task ``c`` of the evaluation form."""
    inv = 1.0 / math.sqrt(np.float64(var[c]) + eps)
    _affine(x, c, gamma[c] * inv, np.float64(mean[c]), beta[c], y)


def _train_vjp(x, gamma, dy, eps, dx, dgamma, dbeta, c):
    """Task ``c`` of the VJP of the training form."""
    mu, var_b, n = _channel_stats(x, c)
    inv = 1.0 / math.sqrt(var_b + eps)
    sum_dy, sum_dy_xhat = _channel_sums(x, dy, c, mu, inv)
    scale = gamma[c] * inv / n
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                xhat = (x[i, c, h, w] - mu) * inv
                dx[i, c, h, w] = scale * (n * dy[i, c, h, w] - sum_dy - xhat * sum_dy_xhat)
    dgamma[c] = sum_dy_xhat
    dbeta[c] = sum_dy


def _evaluate_vjp(x, gamma, mean, var, dy, eps, dx, dgamma, dbeta, dmean, dvar, c):
    """Task ``c`` of the VJP of the evaluation form."""
    inv = 1.0 / math.sqrt(np.float64(var[c]) + eps)
    sum_dy, sum_dy_xhat = _channel_sums(x, dy, c, np.float64(mean[c]), inv)
    _affine(dy, c, gamma[c] * inv, 0.0, 0.0, dx)
    dgamma[c] = sum_dy_xhat
    dbeta[c] = sum_dy
    dmean[c] = -gamma[c] * inv * sum_dy
    dvar[c] = -0.5 * gamma[c] * inv * inv * sum_dy_xhat


BODIES = (_channel_stats, _channel_sums, _affine, _train, _evaluate, _train_vjp, _evaluate_vjp)


def drivers(run):
    """The kernels of :data:`__all__`, in that order, running the bodies with ``run``."""

    def batchnorm(x, gamma, beta, y, mean, var, eps=EPS):
        """Training form; arguments as :func:`refode.kernels.reference.batchnorm.batchnorm`."""
        run("train", x.shape[1], x, gamma, beta, eps, y, mean, var, n_out=3)

    def batchnorm_eval(x, gamma, beta, mean, var, y, eps=EPS):
        """Evaluation form; arguments as the reference ``batchnorm_eval``."""
        run("evaluate", x.shape[1], x, gamma, beta, mean, var, eps, y)

    def batchnorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
        """VJP of the training form; arguments as the reference ``batchnorm_vjp``."""
        run("train_vjp", x.shape[1], x, gamma, dy, eps, dx, dgamma, dbeta, n_out=3)

    def batchnorm_eval_vjp(x, gamma, mean, var, dy, dx, dgamma, dbeta, dmean, dvar, eps=EPS):
        """VJP of the evaluation form; arguments as the reference ``batchnorm_eval_vjp``."""
        run("evaluate_vjp", x.shape[1], x, gamma, mean, var, dy, eps, dx, dgamma, dbeta, dmean,
            dvar, n_out=5)

    return batchnorm, batchnorm_eval, batchnorm_vjp, batchnorm_eval_vjp


batchnorm, batchnorm_eval, batchnorm_vjp, batchnorm_eval_vjp = drivers(Runner(BODIES))
