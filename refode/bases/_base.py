"""The basis-function interface and the registry of families.

A basis expands a depth-dependent weight as ``theta(t) = sum_k phi_k(t) theta_k``
(paper, Eq. 3) on an interval ``[t0, t1]``. Positions inside the interval are
handled in *unit coordinates* ``x = (t - t0) / (t1 - t0)`` in ``[0, 1]``. Exact
positions (stage times of the integrator) are :class:`fractions.Fraction` in unit
coordinates, so that the piece a stage falls in is decided by exact arithmetic.

One-sided convention at breakpoints
-----------------------------------
A basis is a set of pieces ``[b_p, b_{p+1}]``; on each piece every ``phi_k`` is
smooth. At an interior breakpoint a discontinuous basis has two values:

- ``side="right"`` (the default, and what :meth:`Basis.evaluate` uses for float
  times) takes the limit from the right: pieces are ``[b_p, b_{p+1})``;
- ``side="left"`` takes the limit from the left: pieces are ``(b_p, b_{p+1}]``.

The end points belong to the first and last piece whatever the side (``t = t1``
is in the last piece). The integrator asks for ``side="left"`` exactly when a stage
sits at the end of its step, so every stage uses the weights from inside its step.
"""
import abc
import bisect
from fractions import Fraction

import numpy as np

from .. import _validate, limits
from ..errors import BasisError

_REGISTRY = {}

#: sides accepted by exact evaluation.
SIDES = ("right", "left")


def register(cls):
    """Class decorator: register a :class:`Basis` subclass under ``cls.family``."""
    if cls.family in _REGISTRY:
        raise BasisError(f"basis family {cls.family!r} is registered twice")
    _REGISTRY[cls.family] = cls
    return cls


def invalid_n(family, n, rule, nearest):
    """The :class:`BasisError` for a size ``n`` the family cannot have.

    Parameters
    ----------
    family : str
    n : int
    rule : str
        Which ``n`` are valid, e.g. ``"an even n >= 2"``.
    nearest : sequence of int
        The nearest valid sizes, suggested as the fix.
    """
    fix = " or ".join(str(k) for k in nearest)
    return BasisError(f"the {family} basis needs {rule}, got n={n}: use n={fix}")


def families():
    """Names of the registered basis families, sorted."""
    return tuple(sorted(_REGISTRY))


def basis(family, n, interval=(0.0, 1.0)):
    """Create a basis of ``n`` functions of the registered ``family`` on ``interval``.

    Parameters
    ----------
    family : str
        One of :func:`families` (``piecewise_constant``, ``piecewise_linear``,
        ``fem_linear``, ``poly_linear``, ``legendre``, ``chebyshev``, ``fourier``).
    n : int
        Number of basis functions ``K`` (the leading axis of coefficient arrays),
        ``1 <= K <=`` :data:`refode.limits.MAX_N_BASIS`.
    interval : (float, float)
        Depth interval ``[t0, t1]``, ``t0 < t1``.

    Returns
    -------
    Basis
    """
    if isinstance(family, Basis):
        raise BasisError("`family` is already a Basis; pass it directly instead of calling basis()")
    if family not in _REGISTRY:
        raise BasisError(
            f"unknown basis family {family!r}; choose one of {', '.join(families())}"
        )
    return _REGISTRY[family](n, interval)


class Basis(abc.ABC):
    """``n`` functions ``phi_k`` on ``[t0, t1]``, polynomial (or smooth) on each piece.

    Subclasses set ``family`` and implement :meth:`_check_n`, :meth:`_unit_breakpoints`,
    :meth:`_eval_piece`, :meth:`nodes` and, where refinement is exact, :meth:`refine`.
    """

    #: registered name of the family.
    family = None
    #: maximum polynomial degree on a piece; ``None`` for non-polynomial families.
    degree = None
    #: appended to the error of :meth:`refine` by families without exact refinement.
    refine_hint = ""

    def __init__(self, n, interval=(0.0, 1.0)):
        self.n = limits.n_basis(n, "n")  # before anything scales with n
        self._check_n(self.n)
        self.interval = _validate.interval(interval)
        self._breaks = tuple(Fraction(b) for b in self._unit_breakpoints())

    # ----------------------------------------------------------------- hooks
    @abc.abstractmethod
    def _check_n(self, n):
        """Raise :class:`BasisError` (saying which n are valid) if ``n`` is not."""

    @abc.abstractmethod
    def _unit_breakpoints(self):
        """Piece edges in unit coordinates, as exact fractions from 0 to 1 inclusive."""

    @abc.abstractmethod
    def _eval_piece(self, piece, xi):
        """Values of all ``n`` functions on ``piece`` at local coordinates ``xi``.

        Parameters
        ----------
        piece : int
        xi : (m,) float64, local coordinate in ``[0, 1]`` across the piece
            (``xi = 0`` at its left edge, ``1`` at its right edge).

        Returns
        -------
        (m, n) float64
        """

    def _piece_support(self, piece, xi):
        """The functions that can be non-zero on ``piece`` and their values at ``xi``.

        Returns ``(columns, values)``: ascending int indices ``(q,)`` and ``(m, q)``
        float64 values, bitwise ``_eval_piece(piece, xi)[:, columns]``; every other
        function is zero on the piece. The default is all ``n`` functions; local
        families return their few columns, so that stage grids and mass matrices on
        thousands of pieces never build ``(m, n)`` arrays that are almost all zeros.
        """
        return np.arange(self.n), self._eval_piece(piece, xi)

    @abc.abstractmethod
    def nodes(self):
        """Interpolation nodes: ``n`` pairs ``(position, side)`` (unit coordinates, exact).

        Sampling a function at the nodes determines its coefficients uniquely.
        """

    def refine(self):
        """Return ``(fine, R)``: a finer basis and ``R`` of shape ``(fine.n, n)`` with
        ``theta_fine = R @ theta`` representing the same function exactly."""
        raise BasisError(f"the {self.family} basis has no exact refinement{self.refine_hint}")

    def quadrature_points(self):
        """Gauss points per piece needed by a non-polynomial basis (``None`` if polynomial).

        The mass-matrix code adds them to the points needed by the polynomial degree of
        the other factor, so that integrals of products are exact to round-off.
        """
        return None

    # --------------------------------------------------------------- derived
    @property
    def t0(self):
        return self.interval[0]

    @property
    def t1(self):
        return self.interval[1]

    @property
    def length(self):
        return self.interval[1] - self.interval[0]

    @property
    def unit_breakpoints(self):
        """Piece edges in unit coordinates (tuple of :class:`~fractions.Fraction`)."""
        return self._breaks

    @property
    def n_pieces(self):
        return len(self._breaks) - 1

    @property
    def breakpoints(self):
        """Piece edges as absolute depths, shape ``(n_pieces + 1,)``."""
        return np.array([self.t0 + float(b) * self.length for b in self._breaks])

    def piece_at(self, position, side="right"):
        """Index of the piece containing the exact unit ``position`` from ``side``."""
        if side not in SIDES:
            raise BasisError(f"`side` must be 'right' or 'left', got {side!r}")
        position = Fraction(position)
        if not 0 <= position <= 1:
            raise BasisError(f"position {position} is outside the unit interval [0, 1]")
        if side == "right":
            p = bisect.bisect_right(self._breaks, position) - 1
        else:
            p = bisect.bisect_left(self._breaks, position) - 1
        return min(max(p, 0), self.n_pieces - 1)

    def _local(self, piece, position):
        lo, hi = self._breaks[piece], self._breaks[piece + 1]
        return float((Fraction(position) - lo) / (hi - lo))

    def evaluate_at(self, position, side="right"):
        """All ``phi_k`` at one exact unit position, shape ``(n,)``.

        Parameters
        ----------
        position : Fraction or int
            Unit coordinate in ``[0, 1]`` (``0`` is ``t0``, ``1`` is ``t1``).
        side : {"right", "left"}
            One-sided limit taken at a breakpoint (see the module docstring).
        """
        piece = self.piece_at(position, side)
        return self._eval_piece(piece, np.array([self._local(piece, position)]))[0]

    def support_at(self, position, side="right"):
        """Sparse :meth:`evaluate_at`: ``(indices, values)`` of the non-zero ``phi_k``."""
        values = self.evaluate_at(position, side)
        idx = np.flatnonzero(values)
        return idx, values[idx]

    def evaluate(self, t):
        """All ``phi_k`` at float depths ``t``, right-continuous, shape ``(len(t), n)``.

        Parameters
        ----------
        t : (m,) array_like of float, inside ``[t0, t1]``
        """
        t = np.atleast_1d(np.asarray(t, dtype=np.float64))
        if t.ndim != 1:
            raise BasisError(f"`t` must be one-dimensional, got shape {t.shape}")
        _validate.finite(t, "t", BasisError)
        if np.any(~np.isfinite(t)) or np.any(t < self.t0) or np.any(t > self.t1):
            raise BasisError(
                f"`t` must lie inside the interval [{self.t0}, {self.t1}] of the basis"
            )
        x = (t - self.t0) / self.length
        edges = np.array([float(b) for b in self._breaks])
        pieces = np.clip(np.searchsorted(edges, x, side="right") - 1, 0, self.n_pieces - 1)
        out = np.empty((t.size, self.n))
        for p in np.unique(pieces):
            sel = pieces == p
            xi = (x[sel] - edges[p]) / (edges[p + 1] - edges[p])
            out[sel] = self._eval_piece(int(p), np.clip(xi, 0.0, 1.0))
        return out

    def same_as(self, other):
        """True if ``other`` is the same family, size and interval."""
        return (
            isinstance(other, Basis)
            and other.family == self.family
            and other.n == self.n
            and other.interval == self.interval
        )

    def __eq__(self, other):
        return self.same_as(other)

    def __hash__(self):
        return hash((self.family, self.n, self.interval))

    def __repr__(self):
        return f"refode.basis({self.family!r}, {self.n}, interval={self.interval})"
