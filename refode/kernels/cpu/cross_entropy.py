"""Numba CPU kernels of ``cross_entropy`` (see :mod:`refode.kernels.reference.cross_entropy`).

Rows are handled in parallel (each writes its own loss term or gradient row); the
mean is then summed by one task in row order. Bitwise identical for any thread
count. CUDA has its own block-per-row kernels (refode/kernels/cuda/cross_entropy.py).
"""
import math

import numpy as np

from ...constants import IGNORE_INDEX
from .._compile import Runner, rows

__all__ = ["cross_entropy", "cross_entropy_vjp"]


def _log_normaliser(z, r):
    """``max`` and ``log(sum(exp(z[r] - max)))`` of row ``r``."""
    top = -math.inf
    for j in range(z.shape[1]):
        top = max(top, np.float64(z[r, j]))
    total = 0.0
    for j in range(z.shape[1]):
        total += math.exp(z[r, j] - top)
    return top, math.log(total)


def _count(targets, ignore_index):
    """Number of kept targets, at least 1."""
    count = 0
    for r in range(targets.shape[0]):
        if targets[r] != ignore_index:
            count += 1
    return max(count, 1)


def _nll(z, targets, ignore_index, nll, r):
    """Task ``r``: the loss term of row ``r`` (0 for an ignored target)."""
    t = targets[r]
    nll[r] = 0.0
    if t != ignore_index:
        top, log_total = _log_normaliser(z, r)
        nll[r] = -((z[r, t] - top) - log_total)


def _mean(nll, targets, ignore_index, loss, i):
    """Single task: ``loss[0]`` = the terms summed in row order over the kept count."""
    total = 0.0
    for r in range(nll.shape[0]):
        total += nll[r]
    loss[0] = total / _count(targets, ignore_index)


def _counted(targets, ignore_index, count, i):
    """Single task: ``count[0]`` = the kept count."""
    count[0] = _count(targets, ignore_index)


def _vjp_row(z, targets, dloss, count, ignore_index, dz, r):
    """Task ``r``: ``dz[r] = dloss / count * (softmax(z[r]) - onehot)`` (0 if ignored)."""
    scale = dloss / count[0]
    t = targets[r]
    if t == ignore_index:
        for j in range(z.shape[1]):
            dz[r, j] = 0.0
        return
    top, log_total = _log_normaliser(z, r)
    for j in range(z.shape[1]):
        g = math.exp((z[r, j] - top) - log_total)
        if j == t:
            g -= 1.0
        dz[r, j] = g * scale


BODIES = (_log_normaliser, _count, _nll, _mean, _counted, _vjp_row)


def drivers(run):
    """The kernels of :data:`__all__`, running the bodies with ``run``."""

    def cross_entropy(logits, targets, loss, ignore_index=IGNORE_INDEX):
        """Arguments as :func:`refode.kernels.reference.cross_entropy.cross_entropy`."""
        z, t = rows(logits), targets.reshape(-1)
        nll = run.empty(z.shape[0])
        run("nll", z.shape[0], z, t, ignore_index, nll)
        run("mean", 1, nll, t, ignore_index, loss.reshape(1))

    def cross_entropy_vjp(logits, targets, dloss, dlogits, ignore_index=IGNORE_INDEX):
        """Arguments as :func:`refode.kernels.reference.cross_entropy.cross_entropy_vjp`."""
        z, t = rows(logits), targets.reshape(-1)
        count = run.empty(1, dtype=np.int64)
        run("counted", 1, t, ignore_index, count)
        run("vjp_row", z.shape[0], z, t, float(dloss), count, ignore_index, rows(dlogits))

    return cross_entropy, cross_entropy_vjp


cross_entropy, cross_entropy_vjp = drivers(Runner(BODIES))
