"""Numba CPU kernels of ``bn_relu`` (see :mod:`refode.kernels.reference.bn_relu`).

One task per channel, as in :mod:`refode.kernels.cpu.batchnorm`, with the ReLU applied
while the normalised value is written (forward) or the cotangent read (VJP): one pass
and one temporary fewer than the two kernels in a row. The channel sums run in
float64 over *lanes*: element ``(i, h, j)`` of the channel is added to lane ``j`` (the
last axis, ``W`` lanes, so the inner loop vectorises), rows ``(i, h)`` in order, and
the lanes are added in order at the end. A fixed order: bitwise identical for any
thread count; it differs from the serial order of ``batchnorm`` by round-off (float64
sums of float32 or float64 terms, relative differences about 1e-16).
"""
import math

import numpy as np

from ...constants import BN_EPS as EPS
from .._compile import Runner

__all__ = ["bn_relu", "bn_relu_eval", "bn_relu_vjp"]


def _lane_mean_var(x, c):
    """Mean and biased variance (two passes, lane sums) of channel ``c``, and the count."""
    n_img, chans, height, width = x.shape
    n = n_img * height * width
    lanes = np.zeros(width, dtype=np.float64)
    for i in range(n_img):
        for h in range(height):
            row = x[i, c, h]
            for j in range(width):
                lanes[j] += row[j]
    mu = 0.0
    for j in range(width):
        mu += lanes[j]
    mu /= n
    lanes[:] = 0
    for i in range(n_img):
        for h in range(height):
            row = x[i, c, h]
            for j in range(width):
                lanes[j] += (row[j] - mu) ** 2
    sq = 0.0
    for j in range(width):
        sq += lanes[j]
    return mu, sq / n, n


def _affine_relu(x, c, scale, mu, shift, r):
    """``r[:, c] = max(scale * (x[:, c] - mu) + shift, 0)`` (rounding to ``r``'s dtype and the
    maximum commute: the same as batch norm, then ReLU)."""
    for i in range(x.shape[0]):
        for h in range(x.shape[2]):
            for w in range(x.shape[3]):
                y = scale * (x[i, c, h, w] - mu) + shift
                r[i, c, h, w] = 0 if y <= 0 else y  # relu(round(y)) == round(relu(y))


def _train(x, gamma, beta, eps, r, mean, var, c):
    """Task ``c`` of the training form."""
    mu, var_b, n = _lane_mean_var(x, c)
    inv = 1.0 / math.sqrt(var_b + eps)
    _affine_relu(x, c, gamma[c] * inv, mu, beta[c], r)
    mean[c] = mu
    var[c] = var_b * (n / (n - 1))


def _evaluate(x, gamma, beta, mean, var, eps, r, c):
    """Task ``c`` of the evaluation form."""
    inv = 1.0 / math.sqrt(np.float64(var[c]) + eps)
    _affine_relu(x, c, gamma[c] * inv, np.float64(mean[c]), beta[c], r)


def _train_vjp(x, gamma, r, dr, eps, dx, dgamma, dbeta, c):
    """Task ``c`` of the VJP: the ReLU mask of ``r`` on ``dr``, then the batch-norm VJP."""
    n_img, chans, height, width = x.shape
    mu, var_b, n = _lane_mean_var(x, c)
    inv = 1.0 / math.sqrt(var_b + eps)
    lane_dy = np.zeros(width, dtype=np.float64)
    lane_dyx = np.zeros(width, dtype=np.float64)
    for i in range(n_img):
        for h in range(height):
            for j in range(width):
                dy = 0 if r[i, c, h, j] <= 0 else dr[i, c, h, j]
                lane_dy[j] += dy
                lane_dyx[j] += dy * ((x[i, c, h, j] - mu) * inv)
    sum_dy = 0.0
    sum_dy_xhat = 0.0
    for j in range(width):
        sum_dy += lane_dy[j]
        sum_dy_xhat += lane_dyx[j]
    scale = gamma[c] * inv / n
    for i in range(n_img):
        for h in range(height):
            for j in range(width):
                dy = 0 if r[i, c, h, j] <= 0 else dr[i, c, h, j]
                xhat = (x[i, c, h, j] - mu) * inv
                dx[i, c, h, j] = scale * (n * dy - sum_dy - xhat * sum_dy_xhat)
    dgamma[c] = sum_dy_xhat
    dbeta[c] = sum_dy


BODIES = (_lane_mean_var, _affine_relu, _train, _evaluate, _train_vjp)


def drivers(run):
    """The kernels of :data:`__all__`, in that order, running the bodies with ``run``."""

    def bn_relu(x, gamma, beta, r, mean, var, eps=EPS):
        """Training form; arguments as :func:`refode.kernels.reference.bn_relu.bn_relu`."""
        run("train", x.shape[1], x, gamma, beta, eps, r, mean, var, n_out=3)

    def bn_relu_eval(x, gamma, beta, mean, var, r, eps=EPS):
        """Evaluation form; arguments as the reference ``bn_relu_eval``."""
        run("evaluate", x.shape[1], x, gamma, beta, mean, var, eps, r)

    def bn_relu_vjp(x, gamma, r, dr, dx, dgamma, dbeta, eps=EPS):
        """VJP of the training form; arguments as the reference ``bn_relu_vjp``."""
        run("train_vjp", x.shape[1], x, gamma, r, dr, eps, dx, dgamma, dbeta, n_out=3)

    return bn_relu, bn_relu_eval, bn_relu_vjp


bn_relu, bn_relu_eval, bn_relu_vjp = drivers(Runner(BODIES))
