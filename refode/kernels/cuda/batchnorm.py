"""CUDA kernels of ``batchnorm`` (see :mod:`refode.kernels.reference.batchnorm`).

One thread per channel for the statistics and sums (serial, in the order of the
Numba kernel, float64), one thread per element for the outputs.
"""
import math

import numpy as np

from . import blocks_for, cuda_module, require_gpu
from ._io import copy_back, inputs, scratch

cuda = cuda_module()

from ...constants import BN_EPS as EPS


@cuda.jit
def _stats_kernel(x, mu, var_b, mean, var):
    """Batch mean and biased variance per channel; ``mean``/``var`` get mean and unbiased var."""
    c = cuda.grid(1)
    if c < x.shape[1]:
        n = x.shape[0] * x.shape[2] * x.shape[3]
        total = 0.0
        for i in range(x.shape[0]):
            for h in range(x.shape[2]):
                for w in range(x.shape[3]):
                    total += x[i, c, h, w]
        m = total / n
        sq = 0.0
        for i in range(x.shape[0]):
            for h in range(x.shape[2]):
                for w in range(x.shape[3]):
                    sq += (x[i, c, h, w] - m) ** 2
        mu[c] = m
        var_b[c] = sq / n
        mean[c] = m
        var[c] = (sq / n) * (n / (n - 1))


@cuda.jit
def _normalise_kernel(x, gamma, beta, mu, var, eps, y):
    """``y = gamma * inv * (x - mu) + beta`` with ``inv = 1 / sqrt(var + eps)``; per element."""
    k = cuda.grid(1)
    n_batch, channels, height, width = x.shape
    if k < x.size:
        w = k % width
        h = (k // width) % height
        c = (k // (width * height)) % channels
        i = k // (width * height * channels)
        inv = 1.0 / math.sqrt(var[c] + eps)
        y[i, c, h, w] = gamma[c] * inv * (x[i, c, h, w] - mu[c]) + beta[c]


@cuda.jit
def _sums_kernel(x, dy, mu, var, eps, sum_dy, sum_dy_xhat):
    """Per channel ``sum(dy)`` and ``sum(dy * xhat)``."""
    c = cuda.grid(1)
    if c < x.shape[1]:
        inv = 1.0 / math.sqrt(var[c] + eps)
        s = 0.0
        sx = 0.0
        for i in range(x.shape[0]):
            for h in range(x.shape[2]):
                for w in range(x.shape[3]):
                    s += dy[i, c, h, w]
                    sx += dy[i, c, h, w] * ((x[i, c, h, w] - mu[c]) * inv)
        sum_dy[c] = s
        sum_dy_xhat[c] = sx


@cuda.jit
def _train_dx_kernel(x, gamma, dy, mu, var, eps, sum_dy, sum_dy_xhat, dx):
    k = cuda.grid(1)
    n_batch, channels, height, width = x.shape
    if k < x.size:
        w = k % width
        h = (k // width) % height
        c = (k // (width * height)) % channels
        i = k // (width * height * channels)
        n = n_batch * height * width
        inv = 1.0 / math.sqrt(var[c] + eps)
        xhat = (x[i, c, h, w] - mu[c]) * inv
        scale = gamma[c] * inv / n
        dx[i, c, h, w] = scale * (n * dy[i, c, h, w] - sum_dy[c] - xhat * sum_dy_xhat[c])


@cuda.jit
def _params_kernel(gamma, var, eps, sum_dy, sum_dy_xhat, dgamma, dbeta, dmean, dvar):
    """Per channel parameter gradients (``dmean``/``dvar`` only of the evaluation form)."""
    c = cuda.grid(1)
    if c < gamma.size:
        inv = 1.0 / math.sqrt(var[c] + eps)
        dgamma[c] = sum_dy_xhat[c]
        dbeta[c] = sum_dy[c]
        dmean[c] = -gamma[c] * inv * sum_dy[c]
        dvar[c] = -0.5 * gamma[c] * inv * inv * sum_dy_xhat[c]


def _moments(d_x):
    channels = d_x.shape[1]
    return scratch(cuda, channels), scratch(cuda, channels)


def batchnorm(x, gamma, beta, y, mean, var, eps=EPS):
    """Host driver of the training form; arguments as the reference ``batchnorm``."""
    require_gpu(cuda)
    d_x, d_g, d_b, d_y, d_mean, d_var = inputs(cuda, x, gamma, beta, y, mean, var)
    mu, var_b = _moments(d_x)
    _stats_kernel[blocks_for(x.shape[1])](d_x, mu, var_b, d_mean, d_var)
    _normalise_kernel[blocks_for(x.size)](d_x, d_g, d_b, mu, var_b, eps, d_y)
    copy_back([(y, d_y), (mean, d_mean), (var, d_var)])


def batchnorm_eval(x, gamma, beta, mean, var, y, eps=EPS):
    """Host driver of the evaluation form; arguments as the reference ``batchnorm_eval``."""
    require_gpu(cuda)
    d_x, d_g, d_b, d_mean, d_var, d_y = inputs(cuda, x, gamma, beta, mean, var, y)
    _normalise_kernel[blocks_for(x.size)](d_x, d_g, d_b, d_mean, d_var, eps, d_y)
    copy_back([(y, d_y)])


def batchnorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """Host driver of the training VJP; arguments as the reference ``batchnorm_vjp``."""
    require_gpu(cuda)
    d_x, d_g, d_dy, d_dx, d_dg, d_db = inputs(cuda, x, gamma, dy, dx, dgamma, dbeta)
    channels = x.shape[1]
    mu, var_b = _moments(d_x)
    unused_mean, unused_var, s, sx = (scratch(cuda, channels) for _ in range(4))
    _stats_kernel[blocks_for(channels)](d_x, mu, var_b, unused_mean, unused_var)
    _sums_kernel[blocks_for(channels)](d_x, d_dy, mu, var_b, eps, s, sx)
    _train_dx_kernel[blocks_for(x.size)](d_x, d_g, d_dy, mu, var_b, eps, s, sx, d_dx)
    _params_kernel[blocks_for(channels)](d_g, var_b, eps, s, sx, d_dg, d_db,
                                         unused_mean, unused_var)
    copy_back([(dx, d_dx), (dgamma, d_dg), (dbeta, d_db)])


def batchnorm_eval_vjp(x, gamma, mean, var, dy, dx, dgamma, dbeta, dmean, dvar, eps=EPS):
    """Host driver of the evaluation VJP; arguments as the reference ``batchnorm_eval_vjp``."""
    require_gpu(cuda)
    d_x, d_g, d_mean, d_var, d_dy = inputs(cuda, x, gamma, mean, var, dy)
    d_dx, d_dg, d_db, d_dm, d_dv = inputs(cuda, dx, dgamma, dbeta, dmean, dvar)
    channels = x.shape[1]
    s, sx = scratch(cuda, channels), scratch(cuda, channels)
    zero = cuda.to_device(np.zeros(channels))
    _sums_kernel[blocks_for(channels)](d_x, d_dy, d_mean, d_var, eps, s, sx)
    # dx = gamma * inv * dy: the normalisation of dy with mean 0 and shift 0
    _normalise_kernel[blocks_for(x.size)](d_dy, d_g, zero, zero, d_var, eps, d_dx)
    _params_kernel[blocks_for(channels)](d_g, d_var, eps, s, sx, d_dg, d_db, d_dm, d_dv)
    copy_back([(dx, d_dx), (dgamma, d_dg), (dbeta, d_db), (dmean, d_dm), (dvar, d_dv)])
