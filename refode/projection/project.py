"""Change of basis of coefficient arrays: L2 projection, interpolation, refinement.

Every function takes coefficients of shape ``(n_source, *S)`` (any trailing shape
``S``: one coefficient tensor per basis function) in float32 or float64, builds the
``(n_target, n_source)`` operator once in float64 (cached per pair of bases), and
applies it with the ``combine`` kernel; the result has the dtype of the input.

Bases are given as :class:`refode.Basis` objects or as tuples ``(family, n)`` or
``(family, n, interval)``. A ``(family, n)`` tuple lives on the interval of the
other argument (or ``(0, 1)`` if neither carries one).
"""
import functools

import numpy as np
import scipy.linalg

from ._operator import (SparseOperator, change_basis, check_result_size, resolve_one,
                        resolve_pair)
from .mass import mass


#: from this many target functions on, a banded ``M_BB`` (piecewise linear families) is
#: solved by banded Cholesky (``O(K)``) instead of dense Cholesky (``O(K^3)``: 3 s at
#: K = 4096); both are exact to round-off, and smaller K keep the dense factorisation
#: (and so their results bit for bit).
BANDED_MIN_N = 512
#: widest band solved as banded.
MAX_BANDWIDTH = 16


def _is_diagonal(matrix):
    """True if every non-zero of the square ``matrix`` is on its diagonal (no copy)."""
    return np.count_nonzero(matrix) == np.count_nonzero(np.diagonal(matrix))


@functools.lru_cache(maxsize=256)
def projection_operator(source, target):
    """The L2 projection ``P = M_BB^{-1} M_BA`` as a :class:`SparseOperator`.

    ``P`` has shape ``(target.n, source.n)``; it is the identity when the bases are
    equal. An exactly diagonal ``M_BB`` (piecewise constant) is divided out, which
    keeps overlap weights such as 16 -> 8 at exactly 0.5 (a Cholesky factor would
    round them); otherwise ``M_BB`` is solved by Cholesky (``cho_solve``). Exact
    zeros of ``P`` are not stored.
    """
    if source == target:
        return SparseOperator.from_dense(np.eye(source.n))
    m_bb, m_ba = mass(target), mass(target, source)
    if _is_diagonal(m_bb):
        matrix = m_ba / np.diag(m_bb)[:, None]
    elif _banded(m_bb):
        matrix = scipy.linalg.solveh_banded(_upper_bands(m_bb, _bandwidth(m_bb)), m_ba)
    else:
        matrix = scipy.linalg.cho_solve(scipy.linalg.cho_factor(m_bb), m_ba)
    return SparseOperator.from_dense(matrix)


def _banded(matrix):
    """Whether the square ``matrix`` is large and banded enough for the banded solver."""
    n = matrix.shape[0]
    if n < BANDED_MIN_N or np.count_nonzero(matrix) > (2 * MAX_BANDWIDTH + 1) * n:
        return False   # the count is one cheap pass: dense matrices stop here
    return _bandwidth(matrix) <= MAX_BANDWIDTH


def _bandwidth(matrix):
    """Largest ``|i - j|`` of a non-zero ``matrix[i, j]``."""
    rows, cols = np.nonzero(matrix)
    return int(np.abs(rows - cols).max(initial=0))


def _upper_bands(matrix, u):
    """The upper form ``ab[u + i - j, j] = matrix[i, j]`` of a symmetric banded matrix."""
    n = matrix.shape[0]
    ab = np.zeros((u + 1, n))
    for d in range(u + 1):
        ab[u - d, d:] = np.diagonal(matrix, d)
    return ab


@functools.lru_cache(maxsize=256)
def interpolation_operator(source, target):
    """Sample ``source`` at the nodes of ``target`` and solve the nodal system.

    Returns a :class:`SparseOperator` of shape ``(target.n, source.n)``.
    """
    nodes = target.nodes()
    nodal = np.array([target.evaluate_at(x, side) for x, side in nodes])
    samples = np.array([source.evaluate_at(x, side) for x, side in nodes])
    return SparseOperator.from_dense(np.linalg.solve(nodal, samples))


def project(coefficients, source, target, *, backend="cpu"):
    """Exact L2 projection of ``theta(t) = sum_k phi^A_k(t) c_A[k]`` onto the basis ``B``.

    Solves ``M_BB c_B = M_BA c_A`` with exact mass matrices (see
    :func:`refode.projection.mass`): ``c_B`` minimises
    ``integral_{t0}^{t1} |theta^B(t) - theta^A(t)|^2 dt``.

    Parameters
    ----------
    coefficients : (source.n, *S) float32 or float64
        Coefficients ``c_A`` in the source basis.
    source, target : Basis or tuple
        The bases ``A`` and ``B`` (see the module docstring), on the same interval.
    backend : {"cpu", "reference", "cuda"}
        Kernel that applies the operator.

    Returns
    -------
    (target.n, *S) array of the dtype of ``coefficients``
    """
    a, b = resolve_pair(source, target)
    check_result_size(coefficients, b.n)   # before the operator and the result exist
    return change_basis(projection_operator(a, b), coefficients, backend=backend)


def interpolate(coefficients, source, target, *, backend="cpu"):
    """Interpolate ``theta^A`` in the basis ``B``: sample it at ``B``'s nodes and solve.

    The samples are taken at ``target.nodes()`` with their one-sided ``side``;
    ``c_B = V_B^{-1} S_A c_A`` with ``V_B`` the nodal matrix of ``B``.
    Exact (to round-off) when ``theta^A`` already lies in the span of ``B``.

    Parameters
    ----------
    coefficients : (source.n, *S) float32 or float64
    source, target : Basis or tuple
    backend : {"cpu", "reference", "cuda"}

    Returns
    -------
    (target.n, *S) array of the dtype of ``coefficients``
    """
    a, b = resolve_pair(source, target)
    check_result_size(coefficients, b.n)
    return change_basis(interpolation_operator(a, b), coefficients, backend=backend)


@functools.lru_cache(maxsize=256)
def _refinement(basis):
    fine, matrix = basis.refine()
    return fine, SparseOperator.from_dense(matrix)


def refine(coefficients, basis, *, backend="cpu"):
    """Exact refinement: the same ``theta(t)`` in the finer basis ``basis.refine()``.

    Parameters
    ----------
    coefficients : (basis.n, *S) float32 or float64
    basis : Basis or tuple
    backend : {"cpu", "reference", "cuda"}

    Returns
    -------
    fine : Basis
        E.g. piecewise constant ``K -> 2K``, FEM ``K -> 2K - 1``, Legendre ``K -> K + 1``.
    fine_coefficients : (fine.n, *S) array of the dtype of ``coefficients``

    Raises
    ------
    BasisError
        For families without exact refinement (``poly_linear``).
    """
    b = resolve_one(basis)
    fine, op = _refinement(b)
    return fine, change_basis(op, coefficients, backend=backend)


__all__ = ["project", "interpolate", "refine", "projection_operator", "interpolation_operator"]
