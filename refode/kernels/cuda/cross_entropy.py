"""CUDA kernels of ``cross_entropy`` (see :mod:`refode.kernels.reference.cross_entropy`).

One thread per row; the mean is summed by a single thread in row order. On the
device, ``loss`` must be a (1,) array.
"""
import math

import numpy as np

from . import blocks_for, cuda_module, on_device, require_gpu
from ._io import copy_back, inputs, rows, scratch

cuda = cuda_module()

from ...constants import IGNORE_INDEX


@cuda.jit(device=True)
def _log_normaliser(z, r):
    top = -math.inf
    for j in range(z.shape[1]):
        top = max(top, z[r, j])
    total = 0.0
    for j in range(z.shape[1]):
        total += math.exp(z[r, j] - top)
    return top, math.log(total)


@cuda.jit
def _nll_kernel(z, targets, ignore_index, nll):
    r = cuda.grid(1)
    if r < z.shape[0]:
        t = targets[r]
        nll[r] = 0.0
        if t != ignore_index:
            top, log_total = _log_normaliser(z, r)
            nll[r] = -((z[r, t] - top) - log_total)


@cuda.jit
def _mean_kernel(nll, targets, ignore_index, loss, count):
    """Single thread: ``count`` of kept rows (at least 1) and the mean loss, in row order."""
    if cuda.grid(1) == 0:
        n = 0
        total = 0.0
        for r in range(nll.shape[0]):
            total += nll[r]
            if targets[r] != ignore_index:
                n += 1
        n = max(n, 1)
        count[0] = n
        loss[0] = total / n


@cuda.jit
def _vjp_kernel(z, targets, dloss, ignore_index, count, dz):
    r = cuda.grid(1)
    if r < z.shape[0]:
        t = targets[r]
        scale = dloss / count[0]
        top, log_total = _log_normaliser(z, r)
        for j in range(z.shape[1]):
            g = math.exp((z[r, j] - top) - log_total)
            if j == t:
                g -= 1.0
            dz[r, j] = 0.0 if t == ignore_index else g * scale


def _rows_and_count(cuda_targets, z, ignore_index):
    nll, count, loss = scratch(cuda, z.shape[0]), scratch(cuda, 1, dtype=np.int64), scratch(cuda, 1)
    _nll_kernel[blocks_for(z.shape[0])](z, cuda_targets, ignore_index, nll)
    _mean_kernel[1, 1](nll, cuda_targets, ignore_index, loss, count)
    return loss, count


def cross_entropy(logits, targets, loss, ignore_index=IGNORE_INDEX):
    """Host driver; arguments as :func:`refode.kernels.reference.cross_entropy.cross_entropy`."""
    require_gpu(cuda)
    d_z, d_t = inputs(cuda, rows(logits), targets.reshape(-1))
    d_loss, _ = _rows_and_count(d_t, d_z, ignore_index)
    if on_device(loss):
        loss.copy_to_device(d_loss)
    else:
        loss[...] = d_loss.copy_to_host()[0]


def cross_entropy_vjp(logits, targets, dloss, dlogits, ignore_index=IGNORE_INDEX):
    """Host driver; arguments as the reference ``cross_entropy_vjp``."""
    require_gpu(cuda)
    d_z, d_t, d_dz = inputs(cuda, rows(logits), targets.reshape(-1), rows(dlogits))
    _, count = _rows_and_count(d_t, d_z, ignore_index)
    _vjp_kernel[blocks_for(d_z.shape[0])](d_z, d_t, float(dloss), ignore_index, count, d_dz)
    copy_back([(rows(dlogits), d_dz)])
