"""Mean cross-entropy of log-softmax logits over non-ignored targets: the ``cross_entropy`` meaning.

Logits are (..., C) with targets of shape (...) (so (B, L, C) with (B, L), or (N, C)
with (N,)). Targets equal to ``ignore_index`` do not count, as PyTorch's
``ignore_index``. When every target is ignored the loss and its gradient are 0
(PyTorch gives NaN). Computations run in float64 (complex128 for complex-step checks).
"""
import numpy as np

from ...constants import IGNORE_INDEX

__all__ = ["cross_entropy", "cross_entropy_vjp"]


def _work(x):
    return x.astype(np.promote_types(x.dtype, np.float64))


def log_softmax(z):
    """Log-softmax over the last axis of (N, C) ``z``."""
    top = z.real.max(axis=-1, keepdims=True)
    shifted = z - top
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def _rows(logits, targets, ignore_index):
    z = _work(logits).reshape(-1, logits.shape[-1])
    t = targets.reshape(-1)
    keep = t != ignore_index
    return z, np.where(keep, t, 0), keep, max(int(keep.sum()), 1)


def cross_entropy(logits, targets, loss, ignore_index=IGNORE_INDEX):
    """``loss = mean over kept rows r of -log_softmax(logits[r])[targets[r]]``.

    Parameters
    ----------
    logits : (..., C) float32 or float64
    targets : (...) int64, in ``[0, C)`` or equal to ``ignore_index``
    loss : () or (1,) array of the logits' dtype; overwritten
    ignore_index : int
    """
    z, t, keep, count = _rows(logits, targets, ignore_index)
    nll = -log_softmax(z)[np.arange(t.size), t]
    loss[...] = np.where(keep, nll, 0.0).sum() / count


def cross_entropy_vjp(logits, targets, dloss, dlogits, ignore_index=IGNORE_INDEX):
    """VJP: ``dlogits[r] = dloss / count * (softmax(logits[r]) - onehot(targets[r]))``.

    Rows of ignored targets get 0; ``count`` is the number of kept rows (at least 1).

    Parameters
    ----------
    logits : (..., C)
    targets : (...) int64
    dloss : float, cotangent of the loss
    dlogits : (..., C) overwritten
    ignore_index : int
    """
    z, t, keep, count = _rows(logits, targets, ignore_index)
    g = np.exp(log_softmax(z))
    g[np.arange(t.size), t] -= 1.0
    dlogits[...] = (np.where(keep[:, None], g, 0.0) * (dloss / count)).reshape(dlogits.shape)
