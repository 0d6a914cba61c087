"""The pieces of an architecture spec (:attr:`refode.models.protocol.Model.FIELDS`)."""
import collections

import numpy as np

from .. import _validate
from ..errors import RefodeError, ShapeError

#: a configuration key: its JSON type (``float`` admits integers), the default of the
#: constructor (:data:`REQUIRED` when there is none) and the allowed values (or None).
Field = collections.namedtuple("Field", "kind default choices", defaults=(None,))
#: default of a :class:`Field` that must be given.
REQUIRED = object()


def count(shapes):
    """Number of scalars in arrays of the given shapes (Python ints: never overflows)."""
    return sum(int(np.prod(s, dtype=object)) for s in shapes.values())


def check_dtype(dtype):
    """``np.dtype(dtype)`` if float32 or float64, else a ShapeError."""
    dtype = np.dtype(dtype)
    if dtype not in _validate.FLOAT_DTYPES:
        raise ShapeError(f"`dtype` must be float32 or float64, got {dtype}")
    return dtype


def real(value, name, positive=False):
    """A finite float (``> 0`` if ``positive``: a norm's regulariser; else a residual
    scale), or a RefodeError naming ``name``."""
    kind, bound = ("positive real number", " > 0") if positive else ("real number", "")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise RefodeError(f"`{name}` must be a {kind}, got {value!r:.40}") from None
    if isinstance(value, (bool, complex)) or not (np.isfinite(out) and (out > 0 or not positive)):
        raise RefodeError(f"`{name}` must be a finite real number{bound}, got {value!r:.40}")
    return out
