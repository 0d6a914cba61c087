"""CUDA kernels of ``layernorm`` (see :mod:`refode.kernels.reference.layernorm`).

One thread per row for the statistics, one per element for the outputs, one per
column for the parameter gradients; serial float64 sums in the Numba kernel's order.
"""
import math

from . import blocks_for, cuda_module, require_gpu
from ._io import copy_back, inputs, rows, scratch

cuda = cuda_module()

from ...constants import LN_EPS as EPS


@cuda.jit
def _stats_kernel(x, gamma, dy, eps, mean, rstd, sum_g, sum_gx):
    """Per row mean and rstd; when ``dy`` has as many rows as ``x`` (the VJP) also
    ``sum(dy * gamma)`` and ``sum(dy * gamma * xhat)``; the forward passes an empty ``dy``."""
    r = cuda.grid(1)
    if r < x.shape[0]:
        d = x.shape[1]
        mu = 0.0
        for j in range(d):
            mu += x[r, j]
        mu /= d
        sq = 0.0
        for j in range(d):
            sq += (x[r, j] - mu) ** 2
        rs = 1.0 / math.sqrt(sq / d + eps)
        mean[r] = mu
        rstd[r] = rs
        if dy.shape[0] == x.shape[0]:
            s = 0.0
            sx = 0.0
            for j in range(d):
                g = dy[r, j] * gamma[j]
                s += g
                sx += g * ((x[r, j] - mu) * rs)
            sum_g[r] = s
            sum_gx[r] = sx


@cuda.jit
def _forward_kernel(x, gamma, beta, mean, rstd, y):
    k = cuda.grid(1)
    if k < x.size:
        r = k // x.shape[1]
        j = k % x.shape[1]
        y[r, j] = gamma[j] * ((x[r, j] - mean[r]) * rstd[r]) + beta[j]


@cuda.jit
def _dx_kernel(x, gamma, dy, mean, rstd, sum_g, sum_gx, dx):
    k = cuda.grid(1)
    if k < x.size:
        d = x.shape[1]
        r = k // d
        j = k % d
        g = dy[r, j] * gamma[j]
        xhat = (x[r, j] - mean[r]) * rstd[r]
        dx[r, j] = rstd[r] * (g - sum_g[r] / d - xhat * (sum_gx[r] / d))


@cuda.jit
def _param_kernel(x, dy, mean, rstd, dgamma, dbeta):
    j = cuda.grid(1)
    if j < x.shape[1]:
        sg = 0.0
        sb = 0.0
        for r in range(x.shape[0]):
            sg += dy[r, j] * ((x[r, j] - mean[r]) * rstd[r])
            sb += dy[r, j]
        dgamma[j] = sg
        dbeta[j] = sb


def layernorm(x, gamma, beta, y, eps=EPS):
    """Host driver; arguments as :func:`refode.kernels.reference.layernorm.layernorm`."""
    require_gpu(cuda)
    d_x, d_g, d_b, d_y = inputs(cuda, rows(x), gamma, beta, rows(y))
    m = d_x.shape[0]
    mean, rstd, no_dy = scratch(cuda, m), scratch(cuda, m), scratch(cuda, 0, 0)
    _stats_kernel[blocks_for(m)](d_x, d_g, no_dy, eps, mean, rstd, mean, rstd)
    _forward_kernel[blocks_for(d_x.size)](d_x, d_g, d_b, mean, rstd, d_y)
    copy_back([(rows(y), d_y)])


def layernorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """Host driver; arguments as :func:`refode.kernels.reference.layernorm.layernorm_vjp`."""
    require_gpu(cuda)
    d_x, d_g, d_dy, d_dx, d_dg, d_db = inputs(cuda, rows(x), gamma, rows(dy), rows(dx),
                                              dgamma, dbeta)
    m = d_x.shape[0]
    mean, rstd, s, sx = (scratch(cuda, m) for _ in range(4))
    _stats_kernel[blocks_for(m)](d_x, d_g, d_dy, eps, mean, rstd, s, sx)
    _dx_kernel[blocks_for(d_x.size)](d_x, d_g, d_dy, mean, rstd, s, sx, d_dx)
    _param_kernel[blocks_for(d_x.shape[1])](d_x, d_dy, mean, rstd, d_dg, d_db)
    copy_back([(rows(dx), d_dx), (dgamma, d_dg), (dbeta, d_db)])
