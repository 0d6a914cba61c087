"""Low-level readers of the HDF5 layout: paths, attributes, groups, FormatError.

Every problem raises :class:`refode.errors.FormatError` ``"<path>: <problem>; <fix>"``
whose path is the one inside the file (``/params/x``, ``/@config`` for an attribute).
"""
import contextlib

import h5py
import numpy as np

from ..errors import FormatError

#: exceptions of h5py / numpy that mean a damaged or foreign file.
READ_ERRORS = (OSError, KeyError, ValueError, TypeError, RuntimeError, AttributeError)


def fail(path, problem, fix):
    """Raise the :class:`FormatError` ``"<path>: <problem>; <fix>"``."""
    raise FormatError(f"{path}: {problem}; {fix}")


@contextlib.contextmanager
def reading(path):
    """Turn a low-level read failure at ``path`` into a :class:`FormatError`."""
    try:
        yield
    except FormatError:
        raise
    except READ_ERRORS as exc:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        fail(path, f"cannot be read ({detail})",
             "the file is damaged or was not written following docs/format.md: re-export it")


def join(where, name):
    """HDF5 path of member ``name`` of the group at ``where``."""
    return f"{where.rstrip('/')}/{name}"


def attr(obj, name, where):
    """Attribute ``name`` of ``obj`` (raises naming ``where@name`` when missing)."""
    path = f"{where or '/'}@{name}"
    with reading(path):
        if name not in obj.attrs:
            fail(path, "attribute missing", "write it as docs/format.md describes")
        return obj.attrs[name]


def str_attr(obj, name, where):
    """A text attribute (variable- or fixed-length, UTF-8)."""
    value = attr(obj, name, where)
    if isinstance(value, (bytes, np.bytes_)):
        with reading(f"{where or '/'}@{name}"):
            value = bytes(value).decode("utf-8")
    if not isinstance(value, str):
        fail(f"{where or '/'}@{name}", f"must be a string, got {type(value).__name__}",
             "write it as a UTF-8 string attribute")
    return value


def int_attr(obj, name, where):
    """An integer attribute (an HDF5 integer scalar, not a boolean)."""
    value = attr(obj, name, where)
    if isinstance(value, np.ndarray) and value.shape == ():
        value = value[()]
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        fail(f"{where or '/'}@{name}", f"must be an integer scalar, got {value!r:.60}",
             "write it as an int64 attribute")
    return int(value)


def group(parent, name, where):
    """The sub-group ``name`` of ``parent``; raises when missing or not a group."""
    path = join(where, name)
    with reading(path):
        if name not in parent:
            fail(path, "group missing", "write it as docs/format.md describes")
        obj = parent[name]
    if not isinstance(obj, h5py.Group):
        fail(path, "must be a group, found a dataset", "write a group of that name")
    return obj
