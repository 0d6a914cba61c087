"""Small validators shared by the public functions (they raise, the kernels compute)."""
import numbers

import numpy as np

from .errors import RefodeError, ShapeError

#: dtypes accepted for coefficients and states (complex only for complex-step checks).
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))


def as_array(x, name, *, allow_complex=False):
    """Return ``x`` as a floating ndarray, or raise naming ``name``.

    Integer and boolean input is refused (cast it explicitly to float64 or float32);
    non-finite values are refused because they poison every sum they enter.
    """
    arr = np.asarray(x)
    allowed = FLOAT_DTYPES + (COMPLEX_DTYPES if allow_complex else ())
    if arr.dtype in COMPLEX_DTYPES and not allow_complex:
        raise ShapeError(
            f"`{name}` has dtype {arr.dtype}; refode computes in real float32 or float64 "
            f"here and never drops an imaginary part: pass the real values (`{name}.real` "
            "if the imaginary part is zero)"
        )
    if arr.dtype not in allowed:
        names = ", ".join(str(d) for d in allowed)
        raise ShapeError(
            f"`{name}` has dtype {arr.dtype}; refode works in {names}: "
            f"convert it first, e.g. `np.asarray({name}, dtype=np.float64)`"
        )
    if not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise RefodeError(
            f"`{name}` contains {bad} non-finite value(s) (NaN or Inf); "
            "remove or replace them before calling refode"
        )
    return arr


def positive_int(x, name, minimum=1):
    """Return ``x`` as an int >= ``minimum`` or raise naming ``name``."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, numbers.Integral):
        raise RefodeError(f"`{name}` must be an integer >= {minimum}, got {x!r}")
    if int(x) < minimum:
        raise RefodeError(f"`{name}` must be an integer >= {minimum}, got {int(x)}")
    return int(x)


def interval(iv, name="interval"):
    """Return ``(t0, t1)`` as floats with finite ``t0 < t1``, or raise."""
    try:
        t0, t1 = (float(v) for v in iv)
    except (TypeError, ValueError):
        raise RefodeError(f"`{name}` must be a pair (t0, t1) of numbers, got {iv!r}") from None
    if not (np.isfinite(t0) and np.isfinite(t1) and t0 < t1):
        raise RefodeError(f"`{name}` must satisfy finite t0 < t1, got ({t0}, {t1})")
    return (t0, t1)


def leading(arr, n, name, what="basis functions"):
    """Check that ``arr`` has a leading axis of length ``n``."""
    if arr.ndim < 1 or arr.shape[0] != n:
        got = arr.shape[0] if arr.ndim else "a scalar"
        raise ShapeError(
            f"`{name}` has shape {arr.shape} but its leading axis must have one entry per "
            f"{what} ({n}); got {got}: pass an array of shape ({n}, ...)"
        )
    return arr


#: labels shown in the message about out-of-range labels.
SHOWN_LABELS = 3


def labels(y, shape, n_classes, name="y", ignore=None, what="class labels"):
    """Integer labels of exactly ``shape`` in ``[0, n_classes)`` (or ``ignore``), as int64.

    Parameters
    ----------
    y : array_like
    shape : tuple of int
        The required shape (e.g. ``(batch,)``).
    n_classes : int
    name : str
        The argument, as the message names it.
    ignore : int, optional
        A value allowed besides the classes (the tagger's ``-100``).
    what : str
        What the labels are, for the messages.

    Raises
    ------
    ShapeError
        Not an integer array (booleans and floats such as 1.0 are refused, not rounded)
        or not of ``shape``.
    RefodeError
        A label outside the classes (the cross-entropy would read past the logits).
    """
    try:
        arr = np.asarray(y)
    except (TypeError, ValueError) as exc:
        raise ShapeError(f"`{name}` is not an array of integer {what} ({exc}); pass an "
                         "integer array") from None
    if arr.dtype == np.bool_ or not np.issubdtype(arr.dtype, np.integer):
        raise ShapeError(f"`{name}` has dtype {arr.dtype}; {what} must be integers (not "
                         f"rounded from floats or booleans): pass an int64 array")
    if arr.shape != tuple(shape):
        raise ShapeError(f"`{name}` has shape {arr.shape}, but the inputs need {what} of "
                         f"shape {tuple(shape)}: one per "
                         f"{'image' if len(shape) == 1 else 'token'}")
    valid = (arr >= 0) & (arr < n_classes)
    if ignore is not None:
        valid |= arr == ignore
    if not valid.all():
        bad = arr[~valid]
        shown = ", ".join(str(v) for v in bad[:SHOWN_LABELS].tolist())
        allowed = f"[0, {n_classes})" + (f" or {ignore}" if ignore is not None else "")
        raise RefodeError(f"`{name}` holds {bad.size} label(s) outside {allowed} (e.g. "
                          f"{shown}); map them to the model's {n_classes} classes")
    return arr.astype(np.int64)
