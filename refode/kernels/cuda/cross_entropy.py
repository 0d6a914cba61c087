"""CUDA kernels of ``cross_entropy`` (see :mod:`refode.kernels.reference.cross_entropy`).

One block per row of logits (:mod:`._reduce`) reduces the row's maximum and
``sum(exp(z - max))`` in float64 as the definition does, and writes the row's loss term
or gradient row; a single block then sums the terms (and counts the kept targets) in a
fixed tree order. Whether a row's target is ignored is uniform over its block, so the
block skips the reductions as a whole. Deterministic (no atomics). On the device,
``loss`` must be a (1,) array.
"""
import math

import numpy as np
from numba import float64

from ...constants import IGNORE_INDEX
from .._compile import rows
from ..cpu import cross_entropy as host
from . import Runner
from ._reduce import run_blocks, tree_max, tree_sum

__all__ = host.__all__

#: bound by :func:`refode.kernels.cuda.specialise` when the kernels compile
#: (the numba.cuda module and compile-time constants).
cuda = TPB = None


def _log_normaliser(z, r, tid, buf):
    """``max`` and ``log(sum(exp(z[r] - max)))`` of row ``r`` (every thread gets both)."""
    top = -math.inf
    for j in range(tid, z.shape[1], TPB):
        if z[r, j] > top:
            top = np.float64(z[r, j])
    buf[tid] = top
    top = tree_max(buf, tid)
    acc = 0.0
    for j in range(tid, z.shape[1], TPB):
        acc += math.exp(z[r, j] - top)
    buf[tid] = acc
    return top, math.log(tree_sum(buf, tid))


def _kept(targets, ignore_index, tid, buf):
    """Number of targets other than ``ignore_index``, at least 1 (a float64)."""
    acc = 0.0
    for r in range(tid, targets.shape[0], TPB):
        if targets[r] != ignore_index:
            acc += 1.0
    buf[tid] = acc
    return max(tree_sum(buf, tid), 1.0)


def _nll_kernel(z, targets, ignore_index, nll):
    buf = cuda.shared.array(0, float64)
    r, tid = cuda.blockIdx.x, cuda.threadIdx.x
    t = targets[r]
    if t == ignore_index:
        if tid == 0:
            nll[r] = 0.0
    else:
        top, log_total = _log_normaliser(z, r, tid, buf)
        if tid == 0:
            nll[r] = -((z[r, t] - top) - log_total)


def _mean_kernel(nll, targets, ignore_index, loss):
    buf = cuda.shared.array(0, float64)
    tid = cuda.threadIdx.x
    acc = 0.0
    for r in range(tid, nll.shape[0], TPB):
        acc += nll[r]
    buf[tid] = acc
    total = tree_sum(buf, tid)
    count = _kept(targets, ignore_index, tid, buf)
    if tid == 0:
        loss[0] = total / count


def _count_kernel(targets, ignore_index, count):
    buf = cuda.shared.array(0, float64)
    tid = cuda.threadIdx.x
    kept = _kept(targets, ignore_index, tid, buf)
    if tid == 0:
        count[0] = kept


def _vjp_kernel(z, targets, dloss, count, ignore_index, dz):
    buf = cuda.shared.array(0, float64)
    r, tid = cuda.blockIdx.x, cuda.threadIdx.x
    t = targets[r]
    if t == ignore_index:
        for j in range(tid, z.shape[1], TPB):
            dz[r, j] = 0.0
    else:
        scale = dloss / count[0]
        top, log_total = _log_normaliser(z, r, tid, buf)
        for j in range(tid, z.shape[1], TPB):
            g = math.exp((z[r, j] - top) - log_total)
            if j == t:
                g -= 1.0
            dz[r, j] = g * scale


_FUNCTIONS = (_log_normaliser, _kept, _nll_kernel, _mean_kernel, _count_kernel, _vjp_kernel)


def cross_entropy(logits, targets, loss, ignore_index=IGNORE_INDEX):
    """Arguments as :func:`refode.kernels.reference.cross_entropy.cross_entropy`."""
    z, t = rows(logits), Runner.to_device(targets.reshape(-1))
    nll = Runner.empty(z.shape[0])
    run_blocks(_FUNCTIONS, "nll_kernel", z.shape[0], z, t, ignore_index, nll)
    run_blocks(_FUNCTIONS, "mean_kernel", 1, nll, t, ignore_index, loss.reshape(1))


def cross_entropy_vjp(logits, targets, dloss, dlogits, ignore_index=IGNORE_INDEX):
    """Arguments as :func:`refode.kernels.reference.cross_entropy.cross_entropy_vjp`."""
    z, t = rows(logits), Runner.to_device(targets.reshape(-1))
    count = Runner.empty(1)
    run_blocks(_FUNCTIONS, "count_kernel", 1, t, ignore_index, count)
    run_blocks(_FUNCTIONS, "vjp_kernel", z.shape[0], z, t, float(dloss), count, ignore_index,
               rows(dlogits))
