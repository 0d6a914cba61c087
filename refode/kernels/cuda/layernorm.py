"""CUDA kernels of ``layernorm`` (see :mod:`refode.kernels.reference.layernorm`).

The input is viewed as rows (M, D). One block per row (:mod:`._reduce`) reduces the
row's mean and centred squares (two passes) and, for the VJP, ``sum(g)`` and
``sum(g xhat)`` with ``g = dy gamma``, in float64 as the definition does, then writes the
row; the VJP row pass also stores each row's mean and ``rstd`` for the parameter pass,
where one block per column reduces ``dgamma`` and ``dbeta`` over the rows.
Deterministic (fixed reduction order, no atomics).
"""
import math

from numba import float64

from ...constants import LN_EPS as EPS
from .._compile import rows
from ..cpu import layernorm as host
from . import Runner
from ._reduce import run_blocks, tree_sum

__all__ = host.__all__

#: bound by :func:`refode.kernels.cuda.specialise` when the kernels compile
#: (the numba.cuda module and compile-time constants).
cuda = TPB = None


def _row_stats(x, r, eps, tid, buf):
    """Mean and ``1 / sqrt(var + eps)`` (biased variance, two passes) of row ``r``."""
    d = x.shape[1]
    acc = 0.0
    for j in range(tid, d, TPB):
        acc += x[r, j]
    buf[tid] = acc
    mu = tree_sum(buf, tid) / d
    acc = 0.0
    for j in range(tid, d, TPB):
        acc += (x[r, j] - mu) ** 2
    buf[tid] = acc
    return mu, 1.0 / math.sqrt(tree_sum(buf, tid) / d + eps)


def _forward_kernel(x, gamma, beta, eps, y):
    buf = cuda.shared.array(0, float64)
    r, tid = cuda.blockIdx.x, cuda.threadIdx.x
    mu, rstd = _row_stats(x, r, eps, tid, buf)
    for j in range(tid, x.shape[1], TPB):
        y[r, j] = gamma[j] * ((x[r, j] - mu) * rstd) + beta[j]


def _dx_kernel(x, gamma, dy, eps, dx, mean, rstd):
    buf = cuda.shared.array(0, float64)
    r, tid = cuda.blockIdx.x, cuda.threadIdx.x
    d = x.shape[1]
    mu, rs = _row_stats(x, r, eps, tid, buf)
    acc = 0.0
    acc_x = 0.0
    for j in range(tid, d, TPB):
        g = dy[r, j] * gamma[j]
        acc += g
        acc_x += g * ((x[r, j] - mu) * rs)
    buf[tid] = acc
    sum_g = tree_sum(buf, tid)
    buf[tid] = acc_x
    sum_gx = tree_sum(buf, tid)
    for j in range(tid, d, TPB):
        g = dy[r, j] * gamma[j]
        dx[r, j] = rs * (g - sum_g / d - ((x[r, j] - mu) * rs) * (sum_gx / d))
    if tid == 0:
        mean[r] = mu
        rstd[r] = rs


def _param_kernel(x, dy, mean, rstd, dgamma, dbeta):
    buf = cuda.shared.array(0, float64)
    j, tid = cuda.blockIdx.x, cuda.threadIdx.x
    acc_g = 0.0
    acc_b = 0.0
    for r in range(tid, x.shape[0], TPB):
        acc_g += dy[r, j] * ((x[r, j] - mean[r]) * rstd[r])
        acc_b += dy[r, j]
    buf[tid] = acc_g
    sg = tree_sum(buf, tid)
    buf[tid] = acc_b
    sb = tree_sum(buf, tid)
    if tid == 0:
        dgamma[j] = sg
        dbeta[j] = sb


_FUNCTIONS = (_row_stats, _forward_kernel, _dx_kernel, _param_kernel)


def layernorm(x, gamma, beta, y, eps=EPS):
    """Arguments as :func:`refode.kernels.reference.layernorm.layernorm` (C-contiguous)."""
    x2 = rows(x)
    run_blocks(_FUNCTIONS, "forward_kernel", x2.shape[0], x2, gamma, beta, eps, rows(y))


def layernorm_vjp(x, gamma, dy, dx, dgamma, dbeta, eps=EPS):
    """Arguments as :func:`refode.kernels.reference.layernorm.layernorm_vjp` (C-contiguous)."""
    x2, dy2 = Runner.to_device(rows(x)), Runner.to_device(rows(dy))
    mean, rstd = Runner.empty(x2.shape[0]), Runner.empty(x2.shape[0])
    run_blocks(_FUNCTIONS, "dx_kernel", x2.shape[0], x2, gamma, dy2, eps, rows(dx), mean, rstd,
               n_out=3)
    run_blocks(_FUNCTIONS, "param_kernel", x2.shape[1], x2, dy2, mean, rstd, dgamma, dbeta,
               n_out=2)
