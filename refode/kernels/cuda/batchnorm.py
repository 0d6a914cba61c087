"""CUDA kernels of ``batchnorm`` (see :mod:`refode.kernels.reference.batchnorm`).

One block per channel (:mod:`._reduce`): the block's threads stride over the channel's
``N H W`` elements (``x`` viewed as (N, C, H W)), reduce the batch statistics and the
VJP sums in float64 as the definition does (two passes: mean, then centred squares),
then write the channel's outputs. Deterministic (fixed reduction order, no atomics).
"""
import math

import numpy as np
from numba import float64

from ...constants import BN_EPS as EPS
from ..cpu import batchnorm as host
from ._reduce import run_blocks, tree_sum

__all__ = host.__all__

#: bound by :func:`refode.kernels.cuda.specialise` when the kernels compile
#: (the numba.cuda module and compile-time constants).
cuda = TPB = None


def _stats(x, c, tid, buf):
    """Mean, biased variance and count of channel ``c`` of (N, C, S) ``x``."""
    n = x.shape[0] * x.shape[2]
    acc = 0.0
    for e in range(tid, n, TPB):
        acc += x[e // x.shape[2], c, e % x.shape[2]]
    buf[tid] = acc
    mu = tree_sum(buf, tid) / n
    acc = 0.0
    for e in range(tid, n, TPB):
        acc += (x[e // x.shape[2], c, e % x.shape[2]] - mu) ** 2
    buf[tid] = acc
    return mu, tree_sum(buf, tid) / n, n


def _sums(x, dy, c, mu, inv, tid, buf):
    """``sum(dy)`` and ``sum(dy * xhat)`` over channel ``c``."""
    n = x.shape[0] * x.shape[2]
    acc = 0.0
    acc_x = 0.0
    for e in range(tid, n, TPB):
        i, s = e // x.shape[2], e % x.shape[2]
        acc += dy[i, c, s]
        acc_x += dy[i, c, s] * ((x[i, c, s] - mu) * inv)
    buf[tid] = acc
    sum_dy = tree_sum(buf, tid)
    buf[tid] = acc_x
    return sum_dy, tree_sum(buf, tid)


def _train_kernel(x, gamma, beta, eps, y, mean, var):
    buf = cuda.shared.array(0, float64)
    c, tid = cuda.blockIdx.x, cuda.threadIdx.x
    mu, var_b, n = _stats(x, c, tid, buf)
    inv = 1.0 / math.sqrt(var_b + eps)
    scale, shift = gamma[c] * inv, beta[c]
    for e in range(tid, n, TPB):
        i, s = e // x.shape[2], e % x.shape[2]
        y[i, c, s] = scale * (x[i, c, s] - mu) + shift
    if tid == 0:
        mean[c] = mu
        var[c] = var_b * (n / (n - 1))


def _evaluate_kernel(x, gamma, beta, mean, var, eps, y):
    c, tid = cuda.blockIdx.x, cuda.threadIdx.x
    inv = 1.0 / math.sqrt(np.float64(var[c]) + eps)
    scale, mu, shift = gamma[c] * inv, np.float64(mean[c]), beta[c]
    for e in range(tid, x.shape[0] * x.shape[2], TPB):
        i, s = e // x.shape[2], e % x.shape[2]
        y[i, c, s] = scale * (x[i, c, s] - mu) + shift


def _train_vjp_kernel(x, gamma, dy, eps, dx, dgamma, dbeta):
    buf = cuda.shared.array(0, float64)
    c, tid = cuda.blockIdx.x, cuda.threadIdx.x
    mu, var_b, n = _stats(x, c, tid, buf)
    inv = 1.0 / math.sqrt(var_b + eps)
    sum_dy, sum_dy_xhat = _sums(x, dy, c, mu, inv, tid, buf)
    scale = gamma[c] * inv / n
    for e in range(tid, n, TPB):
        i, s = e // x.shape[2], e % x.shape[2]
        xhat = (x[i, c, s] - mu) * inv
        dx[i, c, s] = scale * (n * dy[i, c, s] - sum_dy - xhat * sum_dy_xhat)
    if tid == 0:
        dgamma[c] = sum_dy_xhat
        dbeta[c] = sum_dy


def _evaluate_vjp_kernel(x, gamma, mean, var, dy, eps, dx, dgamma, dbeta, dmean, dvar):
    buf = cuda.shared.array(0, float64)
    c, tid = cuda.blockIdx.x, cuda.threadIdx.x
    inv = 1.0 / math.sqrt(np.float64(var[c]) + eps)
    sum_dy, sum_dy_xhat = _sums(x, dy, c, np.float64(mean[c]), inv, tid, buf)
    scale = gamma[c] * inv
    for e in range(tid, x.shape[0] * x.shape[2], TPB):
        i, s = e // x.shape[2], e % x.shape[2]
        dx[i, c, s] = dy[i, c, s] * scale
    if tid == 0:
        dgamma[c] = sum_dy_xhat
        dbeta[c] = sum_dy
        dmean[c] = -gamma[c] * inv * sum_dy
        dvar[c] = -0.5 * gamma[c] * inv * inv * sum_dy_xhat


_FUNCTIONS = (_stats, _sums, _train_kernel, _evaluate_kernel, _train_vjp_kernel,
              _evaluate_vjp_kernel)


def _nc_s(a):
    """(N, C, H, W) as (N, C, H W), a view."""
    return a.reshape(a.shape[0], a.shape[1], a.shape[2] * a.shape[3])


def batchnorm(x, gamma, beta, y, mean, var, eps=EPS):
    """Training form; arguments as :func:`refode.kernels.reference.batchnorm.batchnorm`."""
    run_blocks(_FUNCTIONS, "train_kernel", x.shape[1], _nc_s(x), gamma, beta, eps, _nc_s(y),
               mean, var, n_out=3)


def batchnorm_eval(x, gamma, beta, mean, var, y, eps=EPS):
    """Evaluation form; arguments as the reference ``batchnorm_eval``."""
    run_blocks(_FUNCTIONS, "evaluate_kernel", x.shape[1], _nc_s(x), gamma, beta, mean, var, eps,
               _nc_s(y))


def batchnorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """VJP of the training form; arguments as the reference ``batchnorm_vjp``."""
    run_blocks(_FUNCTIONS, "train_vjp_kernel", x.shape[1], _nc_s(x), gamma, _nc_s(dy), eps,
               _nc_s(dx), dgamma, dbeta, n_out=3)


def batchnorm_eval_vjp(x, gamma, mean, var, dy, dx, dgamma, dbeta, dmean, dvar, eps=EPS):
    """VJP of the evaluation form; arguments as the reference ``batchnorm_eval_vjp``."""
    run_blocks(_FUNCTIONS, "evaluate_vjp_kernel", x.shape[1], _nc_s(x), gamma, mean, var,
               _nc_s(dy), eps, _nc_s(dx), dgamma, dbeta, dmean, dvar, n_out=5)
