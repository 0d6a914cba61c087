"""Numba CPU kernels of ``cross_entropy`` (see :mod:`refode.kernels.reference.cross_entropy`).

Rows are handled in parallel (each writes its own loss term or gradient row); the
mean is then summed serially in row order. Bitwise identical for any thread count.
"""
import numba
import numpy as np

from ... import config

from ...constants import IGNORE_INDEX


@numba.njit(**config.njit_options())
def _log_normaliser(z, r):
    """``max`` and ``log(sum(exp(z[r] - max)))`` of row ``r``."""
    top = -np.inf
    for j in range(z.shape[1]):
        top = max(top, np.float64(z[r, j]))
    total = 0.0
    for j in range(z.shape[1]):
        total += np.exp(z[r, j] - top)
    return top, np.log(total)


@numba.njit(**config.njit_options())
def _count(targets, ignore_index):
    count = 0
    for r in range(targets.shape[0]):
        if targets[r] != ignore_index:
            count += 1
    return max(count, 1)


@numba.njit(**config.njit_options(parallel=True))
def _loss_kernel(z, targets, ignore_index):
    nll = np.zeros(z.shape[0])
    for r in numba.prange(z.shape[0]):
        t = targets[r]
        if t != ignore_index:
            top, log_total = _log_normaliser(z, r)
            nll[r] = -((z[r, t] - top) - log_total)
    total = 0.0
    for r in range(z.shape[0]):
        total += nll[r]
    return total / _count(targets, ignore_index)


@numba.njit(**config.njit_options(parallel=True))
def _vjp_kernel(z, targets, dloss, ignore_index, dz):
    scale = dloss / _count(targets, ignore_index)
    for r in numba.prange(z.shape[0]):
        t = targets[r]
        if t == ignore_index:
            dz[r, :] = 0.0
            continue
        top, log_total = _log_normaliser(z, r)
        for j in range(z.shape[1]):
            g = np.exp((z[r, j] - top) - log_total)
            if j == t:
                g -= 1.0
            dz[r, j] = g * scale


def _rows(a):
    return a.reshape(-1, a.shape[-1])


def cross_entropy(logits, targets, loss, ignore_index=IGNORE_INDEX):
    """Arguments as :func:`refode.kernels.reference.cross_entropy.cross_entropy`."""
    loss[...] = _loss_kernel(_rows(logits), targets.reshape(-1), ignore_index)


def cross_entropy_vjp(logits, targets, dloss, dlogits, ignore_index=IGNORE_INDEX):
    """Arguments as :func:`refode.kernels.reference.cross_entropy.cross_entropy_vjp`."""
    _vjp_kernel(_rows(logits), targets.reshape(-1), float(dloss), ignore_index, _rows(dlogits))
