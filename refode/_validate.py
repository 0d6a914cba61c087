"""Small validators shared by the public functions (they raise, the kernels compute)."""
import numbers

import numpy as np

from .errors import RefodeError, ShapeError

#: dtypes accepted for coefficients and states (complex only for complex-step checks).
FLOAT_DTYPES = (np.dtype(np.float32), np.dtype(np.float64))
COMPLEX_DTYPES = (np.dtype(np.complex64), np.dtype(np.complex128))


def as_array(x, name, *, allow_complex=False, check_finite=True):
    """Return ``x`` as a floating ndarray, or raise naming ``name``.

    Integer and boolean input is refused (cast it explicitly to float64 or float32);
    non-finite values are refused because they poison every sum they enter
    (:func:`finite` words the message: count, kind and index of the first), unless
    ``check_finite=False`` (scipy's convention: for values a computation produced).
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
    return finite(arr, name) if check_finite else arr


# --------------------------------------------------------------------------------------
# Non-finite values (the policy, docs/developing.md "NaN and Inf")
# --------------------------------------------------------------------------------------
# refode is an oracle: a NaN or Inf in what the caller passes (inputs, coefficients,
# weights, running statistics, data, cotangents) is a caller error and raises a
# RefodeError that names the array, the first bad index and its kind. A NaN the
# computation produces itself from finite input (e.g. the square root of a compressed
# running variance that went negative) is not an input error: it is propagated, warned
# about where refode can tell (``warn_nonpositive``) and counted (``evaluate`` and
# ``refode eval`` count non-finite logits as wrong predictions).

def first_nonfinite(arr):
    """``None`` if every entry of ``arr`` is finite, else ``(count, index, kind)``.

    ``index`` is the tuple index of the first non-finite entry in C order and ``kind``
    one of ``"NaN"``, ``"+Inf"``, ``"-Inf"`` (``"Inf"`` for a complex entry).
    """
    ok = np.isfinite(arr)
    if ok.all():
        return None
    bad = ~ok
    index = tuple(int(i) for i in np.unravel_index(int(np.argmax(bad)), arr.shape))
    value = arr[index]
    if np.isnan(value):
        kind = "NaN"
    elif np.iscomplexobj(value):
        kind = "Inf"
    else:
        kind = "+Inf" if value > 0 else "-Inf"
    return int(np.count_nonzero(bad)), index, kind


def nonfinite_message(name, count, index, kind):
    """The sentence of :func:`finite`: ``"`h0` contains 1 non-finite value(s), the first
    NaN at index (0, 3); ..."``."""
    where = f", the first {kind} at index {index}" if index else f": the scalar is {kind}"
    return (f"`{name}` contains {count} non-finite value(s){where}; "
            "refode refuses NaN and Inf in what it is given (they poison every sum they "
            "enter): remove or replace them before calling refode")


def finite(arr, name, error=RefodeError):
    """Return the ndarray ``arr`` if every entry is finite, else raise ``error``.

    Parameters
    ----------
    arr : ndarray of a float or complex dtype, any shape
    name : str
        The array as the message names it (e.g. ``"h0"``, ``"params['dense.bias']"``).
    error : type
        The :class:`~refode.errors.RefodeError` subclass raised (default RefodeError).
    """
    found = first_nonfinite(arr)
    if found is not None:
        raise error(nonfinite_message(name, *found))
    return arr


def finite_arrays(arrays, name):
    """Check every array of the dict ``arrays`` with :func:`finite` as ``name[key]``."""
    for key, value in arrays.items():
        finite(np.asarray(value), f"{name}[{key!r}]")
    return arrays


def model_arrays(model):
    """Check a model's ``params`` and ``state`` (its public dicts) for NaN and Inf.

    Called by the models before they compute, so that a poisoned weight is reported
    by its name (``params['stem_conv.weight']``) instead of as the state of some
    ODE-block it reaches later.
    """
    finite_arrays(model.params, "params")
    finite_arrays(model.state, "state")
    return model


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
