"""Elementwise arithmetic between the kernels on host arrays: ``a + w * b`` in one pass.

The integrator's stage and step updates (``h + dt * k``, :mod:`refode.integrate._step`)
and the adjoint's gradient sums are NumPy expressions on the host; ``a + w * b`` as NumPy
writes it makes a temporary for ``w * b`` and reads it back (two passes over the data, a
new array). :func:`axpy` does it in one pass with the same two roundings (the product in
the arrays' dtype, then the sum; no fused multiply-add, which LLVM forms only under
fastmath), so it is bitwise NumPy's expression. The CUDA backend has its own
(:mod:`refode.kernels.cuda._elementwise`); :mod:`refode.backend` picks one.
"""
import numpy as np

from .._compile import Runner

#: dtypes of the one-pass path (others take NumPy's expression).
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


def _axpy(a, w, b, out, i):
    """Task ``i``: ``out[i] = a[i] + w b[i]`` over 1-D arrays (``w`` of their dtype)."""
    out[i] = a[i] + w * b[i]


BODIES = (_axpy,)
_run = Runner(BODIES)


def fits(a, b):
    """Whether :func:`axpy` takes ``a`` and ``b``: NumPy arrays of one float dtype and one
    shape, both C-contiguous."""
    return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.shape == b.shape
            and a.dtype == b.dtype and a.dtype in DTYPES
            and a.flags.c_contiguous and b.flags.c_contiguous)


def axpy(a, w, b, out=None):
    """``a + w * b`` for a Python number ``w``, bitwise NumPy's expression.

    Parameters
    ----------
    a, b : ndarray, one shape and float dtype, C-contiguous (:func:`fits`)
    w : float
        Cast to the arrays' dtype first, as NumPy casts a Python scalar.
    out : ndarray or None
        Where to write (``a`` itself for ``a += w * b``); a new array if None.

    Returns
    -------
    ndarray, the shape and dtype of ``a``.
    """
    out = np.empty_like(a) if out is None else out
    _run("axpy", a.size, a.reshape(-1), a.dtype.type(w), b.reshape(-1), out.reshape(-1))
    return out
