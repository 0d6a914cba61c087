"""Argument handling shared by the projection functions, and the sparse change of basis.

A change of basis is a small float64 matrix ``(n_target, n_source)`` applied to the
leading axis of a coefficient array. It is stored in CSR form with only its
non-zero entries and applied by the ``combine`` kernel on the contiguous
``(n, prod(S))`` view of the coefficients.
"""
from dataclasses import dataclass

import numpy as np

from .. import _validate, limits
from ..bases import Basis, basis
from ..errors import BasisError, RefodeError
from ..kernels import get
from ._finite import all_finite
from .mass import check_same_interval

#: interval of a basis given as a (family, n) tuple when neither argument fixes one.
DEFAULT_INTERVAL = (0.0, 1.0)
#: tuple lengths accepted as a basis specification: (family, n) or (family, n, interval).
SPEC_LENGTHS = (2, 3)


@dataclass(frozen=True)
class SparseOperator:
    """A ``(n_out, n_in)`` float64 matrix in CSR form (exact zeros dropped).

    Attributes
    ----------
    indptr : (n_out + 1,) int64
    indices : (nnz,) int64
    data : (nnz,) float64
    n_in : int
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    n_in: int

    @classmethod
    def from_dense(cls, matrix):
        """Keep the non-zero entries of the ``(n_out, n_in)`` float64 ``matrix``, row by row."""
        matrix = np.asarray(matrix, dtype=np.float64)
        rows, cols = np.nonzero(matrix)
        indptr = np.zeros(matrix.shape[0] + 1, dtype=np.int64)
        np.cumsum(np.bincount(rows, minlength=matrix.shape[0]), out=indptr[1:])
        arrays = (indptr, cols.astype(np.int64), matrix[rows, cols].copy())
        for a in arrays:  # operators are cached and shared: keep them immutable
            a.setflags(write=False)
        return cls(*arrays, matrix.shape[1])

    @property
    def n_out(self):
        return self.indptr.size - 1

    @property
    def covers_inputs(self):
        """True if every input row has a stored (non-zero) weight in some output row."""
        return np.unique(self.indices).size == self.n_in

    def dense(self):
        """The ``(n_out, n_in)`` matrix."""
        out = np.zeros((self.n_out, self.n_in))
        rows = np.repeat(np.arange(self.n_out), np.diff(self.indptr))
        out[rows, self.indices] = self.data
        return out

    def apply(self, coefficients, backend="cpu"):
        """``(n_in, *S)`` -> ``(n_out, *S)`` in the dtype of ``coefficients`` (sums in float64)."""
        trailing = coefficients.shape[1:]
        src = np.ascontiguousarray(coefficients.reshape(self.n_in, -1))
        out = np.empty((self.n_out, src.shape[1]), dtype=coefficients.dtype)
        get("combine", backend)(self.indptr, self.indices, self.data, src, out)
        return out.reshape((self.n_out,) + trailing)


def _from_spec(spec, name, interval):
    if isinstance(spec, Basis):
        return spec
    if not isinstance(spec, tuple) or len(spec) not in SPEC_LENGTHS:
        raise BasisError(
            f"`{name}` must be a refode.Basis or a tuple (family, n) or (family, n, interval), "
            f"got {spec!r}: e.g. refode.basis('piecewise_constant', 8) or ('legendre', 4)"
        )
    family, n = spec[:2]
    return basis(family, n, spec[2] if len(spec) == 3 else interval)


def resolve_pair(source, target, names=("source", "target")):
    """Return two :class:`Basis` objects on the same interval.

    Each argument is a :class:`Basis`, a tuple ``(family, n, interval)``, or a tuple
    ``(family, n)``; the latter takes the interval of the other argument when that
    one carries an interval, else ``(0, 1)``.
    """
    def carried(spec):
        if isinstance(spec, Basis):
            return spec.interval
        if isinstance(spec, tuple) and len(spec) == 3:
            return spec[2]
        return None

    src_iv, tgt_iv = carried(source), carried(target)
    a = _from_spec(source, names[0], tgt_iv if tgt_iv is not None else DEFAULT_INTERVAL)
    b = _from_spec(target, names[1], src_iv if src_iv is not None else a.interval)
    check_same_interval(a, b, *names)
    return a, b


def resolve_one(spec, name="basis"):
    """A :class:`Basis` from a Basis or a ``(family, n[, interval])`` tuple."""
    return _from_spec(spec, name, DEFAULT_INTERVAL)


def check_result_size(coefficients, n_out, name="coefficients"):
    """Refuse, before anything is allocated, a change of basis whose ``(n_out, *S)`` result
    would hold more than :data:`refode.limits.MAX_SCALARS` scalars and more than the
    input ``coefficients`` (``(n_in, *S)``)."""
    arr = np.asarray(coefficients)
    if arr.ndim == 0 or arr.shape[0] == 0:
        return   # the leading-axis check names the problem
    out_size = n_out * (arr.size // arr.shape[0])
    if out_size > max(limits.MAX_SCALARS, arr.size):
        raise RefodeError(
            f"the change of basis of `{name}` {arr.shape} onto {n_out} functions would hold "
            f"{out_size:.3g} scalars, more than refode's cap of {limits.MAX_SCALARS:,} (and "
            "than the input); use a smaller target basis")


def change_basis(operator, coefficients, name="coefficients", backend="cpu"):
    """Validate ``coefficients`` of shape ``(operator.n_in, *S)`` and apply ``operator``.

    The dtype and the leading axis are checked first, then the size of the result (at
    most :data:`refode.limits.MAX_SCALARS` scalars, or the input's size if larger), before
    anything is allocated. Finiteness is checked on the
    *result* when every source row is used by the operator: a NaN or Inf in a used
    row always reaches the result (``w * x`` with ``w != 0`` stays non-finite, and a
    non-finite term makes the sum non-finite), and the result is usually smaller
    than the input. Only when the result is not finite is the input scanned again,
    to raise the error that names it (a result that overflowed from finite input is
    returned as it is). Otherwise the input is checked before.

    Returns
    -------
    (operator.n_out, *S) array of the dtype of ``coefficients``
    """
    arr = np.asarray(coefficients)
    if arr.dtype not in _validate.FLOAT_DTYPES:
        _validate.as_array(arr, name)  # raises, naming the dtype and the fix
    _validate.leading(arr, operator.n_in, name)
    check_result_size(arr, operator.n_out, name)
    if not operator.covers_inputs and not all_finite(arr):
        _validate.as_array(arr, name)  # raises, counting the non-finite values
    out = operator.apply(arr, backend)
    if operator.covers_inputs and not all_finite(out):
        _validate.as_array(arr, name)
    return out
