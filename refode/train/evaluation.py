"""Batched evaluation: logits, correct predictions and accuracy of either model family.

The accuracy is top-1 over every prediction that counts: an image (logits
``(N, n_classes)``, labels ``(N,)``) or a token whose target is not ``-100``
(tagger: logits ``(B, L, n_tags)``, targets ``(B, L)``). It is accumulated batch by
batch as integer counts, so batches of different (trimmed) lengths never need to
be concatenated.

A prediction whose logits are not all finite (e.g. NaN from a running variance made
negative by a change of basis) counts as **wrong**, never as the class ``argmax``
happens to return for NaN (class 0); :func:`evaluate` reports how many there were.
"""
import warnings

import numpy as np

from .. import _validate
from ..errors import RefodeError, RefodeWarning, ShapeError
from ..constants import IGNORE_INDEX

#: images (or sentences) per forward pass of :func:`evaluate` (bounds the memory).
EVAL_BATCH = 256


def check_collate(collate):
    """Return ``collate`` if it is None or callable, or raise naming it."""
    if collate is not None and not callable(collate):
        raise RefodeError(f"`collate` must be None or a callable (x_batch, y_batch) -> (x, y), "
                          f"got {type(collate).__name__}")
    return collate


def count_correct(logits, y):
    """Correct top-1 predictions and the number of predictions that count.

    Parameters
    ----------
    logits : (*S, n_classes) array
        ``S = (N,)`` for images, ``(B, L)`` for the tagger.
    y : (*S,) int
        Targets; ``-100`` (tagger padding) does not count.

    Returns
    -------
    correct, counted : int
        Predictions with a non-finite logit are counted, never correct.
    """
    y = np.asarray(y)
    if logits.shape[:-1] != y.shape:
        raise ShapeError(f"`y` must have the shape of the logits without their last axis "
                         f"{logits.shape[:-1]}, got {y.shape}")
    counts = y != IGNORE_INDEX
    correct = (logits.argmax(axis=-1) == y) & counts & np.isfinite(logits).all(axis=-1)
    return int(np.count_nonzero(correct)), int(np.count_nonzero(counts))


def count_nonfinite(logits, y):
    """Predictions that count (target not ``-100``) and have a non-finite logit."""
    counts = np.asarray(y) != IGNORE_INDEX
    return int(np.count_nonzero(~np.isfinite(logits).all(axis=-1) & counts))


class Accuracy(float):
    """The accuracy of :func:`evaluate`: a float in [0, 1] with its counts.

    Attributes
    ----------
    correct, counted : int
        Correct predictions and predictions that count.
    nonfinite : int
        Counted predictions whose logits were not all finite (all counted as wrong).
    """

    def __new__(cls, correct, counted, nonfinite):
        value = super().__new__(cls, correct / counted)
        value.correct, value.counted, value.nonfinite = int(correct), int(counted), int(nonfinite)
        return value

    def __reduce__(self):
        return Accuracy, (self.correct, self.counted, self.nonfinite)


def _batches(x, y, batch_size, collate):
    batch_size = _validate.positive_int(batch_size, "batch_size")
    check_collate(collate)
    for i in range(0, len(x), batch_size):
        xb = x[i:i + batch_size]
        yb = None if y is None else y[i:i + batch_size]
        yield (xb, yb) if collate is None else collate(xb, yb)


def predict(model, x, batch_size=EVAL_BATCH, collate=None):
    """Evaluation-mode logits of ``x`` computed in batches of ``batch_size``.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
    x : (n, ...) model input
    batch_size : int
    collate : callable, optional
        Applied to every batch as ``collate(x_batch, None)`` (it must accept a missing
        ``y``), e.g. :func:`refode.train.trim_padding`. Token logits of positions it
        trimmed away are returned as zeros.

    Returns
    -------
    (n, n_classes) or (n, L, n_tags) array
    """
    parts = []
    for i, (xb, _) in enumerate(_batches(x, None, batch_size, collate)):
        logits = model.forward(xb, train=False)
        full = x[i * batch_size:(i + 1) * batch_size].shape
        if logits.ndim == len(full) + 1 and logits.shape[:-1] != full:
            padded = np.zeros((*full, logits.shape[-1]), dtype=logits.dtype)
            padded[tuple(slice(0, n) for n in logits.shape)] = logits
            logits = padded
        parts.append(logits)
    return np.concatenate(parts)


def evaluate(model, x, y, batch_size=EVAL_BATCH, collate=None):
    """Top-1 accuracy (a fraction in [0, 1]) of ``model`` on ``(x, y)``, batched.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger
    x : (n, C, H, W) images or (n, L) token ids
    y : (n,) labels or (n, L) tags (``-100`` does not count)
    batch_size : int
        Examples per forward pass. For padded sentences, pass them sorted by length
        with ``collate=trim_padding``: every batch is then barely padded.
    collate : callable, optional
        ``(x_batch, y_batch) -> (x, y)`` applied to every batch.

    Returns
    -------
    Accuracy
        A float (``correct / counted``) that also carries ``correct``, ``counted``
        and ``nonfinite`` (predictions with non-finite logits, counted as wrong).

    Warns
    -----
    RefodeWarning
        When some counted predictions have non-finite logits.
    """
    y = np.asarray(y)
    if len(x) != len(y) or len(y) == 0:
        raise RefodeError(f"`x` and `y` must be non-empty and of equal length, "
                          f"got {len(x)} and {len(y)}")
    correct = counted = nonfinite = 0
    for xb, yb in _batches(x, y, batch_size, collate):
        logits = model.forward(xb, train=False)
        c, n = count_correct(logits, yb)
        correct, counted = correct + c, counted + n
        nonfinite += count_nonfinite(logits, yb)
    if counted == 0:
        raise RefodeError(f"no target of `y` counts (all are {IGNORE_INDEX}); pass real "
                          "targets")
    if nonfinite:
        warnings.warn(
            f"{nonfinite} of {counted} predictions have non-finite logits (counted as "
            "wrong); the model is broken there, e.g. "
            "a running variance made negative by a change of basis (see "
            "StatefulODEBlock.nonpositive_variances)", RefodeWarning, stacklevel=2)
    return Accuracy(correct, counted, nonfinite)
