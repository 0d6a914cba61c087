"""The weights at a depth, ``theta(t) = sum_k phi_k(t) theta_k`` (paper, Eq. 3): one definition.

:func:`theta` is the public function: it validates its inputs, finds the non-zero
``phi_k`` at the exact depth (:func:`support`) and combines the coefficients with
:func:`theta_at_support`. The integrator hands every rate call the weights of
:func:`theta_at_support` for the stage's support, so a rate sees, bit for bit,
``refode.theta(coefficients, basis, t_stage, side=stage_side)`` (the one-sided rule
of :mod:`refode.integrate.grid` gives ``stage_side``).

The arithmetic, in the coefficients' own dtype (no float64 accumulation)::

    acc = w_0 * c[k_0];  acc = acc + w_q * c[k_q]   for q = 1, 2, ...

over the support in increasing ``k``, the weights Python floats (they do not promote
float32). A one-hot support of weight 1 gives the coefficient itself; an empty
support (every ``phi_k`` vanishes) gives zeros. This is not the ``combine`` kernel
of :mod:`refode.kernels` (which changes basis and accumulates in float64).
"""
import numbers
from fractions import Fraction

import numpy as np

from .. import _validate
from ..backend import axpy, on_device, scale, zeros_like
from ..bases import Basis, basis as make_basis
from ..errors import BasisError, RefodeError, ShapeError

#: the one-sided limits a depth on a breakpoint can take.
SIDES = ("right", "left")


def support(basis, position, side="right"):
    """The non-zero ``phi_k`` at an exact unit position: ``(indices, weights)``.

    Parameters
    ----------
    basis : refode.Basis
    position : Fraction or int
        Unit coordinate in ``[0, 1]`` (``0`` is ``t0``).
    side : {"right", "left"}

    Returns
    -------
    indices : tuple of int, increasing
    weights : tuple of Python float (bitwise :meth:`refode.Basis.support_at`)
    """
    idx, values = basis.support_at(position, side)
    return tuple(int(k) for k in idx), tuple(float(v) for v in values)


def theta_at_support(coefficients, support):
    """Weights at one support: ``theta[name] = sum_q w_q * coefficients[name][k_q]``.

    The one implementation of the combination (see the module docstring); the
    integrator calls it at every stage.

    Parameters
    ----------
    coefficients : dict name -> ``(K, *shape)`` ndarray
    support : ``(indices, weights)`` of the non-zero ``phi_k`` (ints, Python floats)

    Returns
    -------
    dict name -> ``shape`` ndarray, in each coefficient array's dtype (device arrays
    for device coefficients: :func:`_on_device`).
    """
    idx, weights = support
    if any(on_device(c) for c in coefficients.values()):
        return _on_device(coefficients, idx, weights)
    theta = {}
    for name, c in coefficients.items():
        if not idx:  # every phi_k vanishes here
            theta[name] = np.zeros_like(c[0])
            continue
        acc = weights[0] * c[idx[0]]
        for k, w in zip(idx[1:], weights[1:]):
            acc = acc + w * c[k]
        theta[name] = acc
    return theta


def _on_device(coefficients, idx, weights):
    """:func:`theta_at_support` of device coefficients, on the device, the same
    arithmetic in the coefficients' dtype (the elementwise kernels of
    :mod:`refode.kernels.cuda._elementwise`)."""
    theta = {}
    for name, c in coefficients.items():
        if not idx:
            theta[name] = zeros_like(c[0])
            continue
        acc = scale(weights[0], c[idx[0]])
        for k, w in zip(idx[1:], weights[1:]):
            acc = axpy(acc, w, c[k])
        theta[name] = acc
    return theta


def theta(coefficients, basis, t, *, side="right"):
    """The weights ``theta(t) = sum_k phi_k(t) theta_k`` at the depth ``t``.

    Parameters
    ----------
    coefficients : dict name -> ``(K, *shape)`` array_like, or one ``(K, *shape)`` array
        Coefficients of every weight, leading axis ``K = basis.n``; float32, float64
        or complex. Each is combined in its own dtype.
    basis : refode.Basis or (family, n)
        A ``(family, n)`` pair means the basis on ``[0, 1]``.
    t : float, int or fractions.Fraction
        Depth in ``[t0, t1]``. It is taken exactly (a float as its binary value); pass
        a Fraction to land exactly on a breakpoint such as ``1/3``.
    side : {"right", "left"}
        At a breakpoint of a discontinuous basis: the limit from the right (the piece
        that starts at ``t``) or from the left (the piece that ends there). Away from
        breakpoints both give the same weights.

    Returns
    -------
    dict name -> ``shape`` ndarray (a dict of ``coefficients``), or one ``shape``
    ndarray (an array of ``coefficients``).

    Raises
    ------
    ShapeError
        A coefficient array's leading axis is not ``K``, or it is not a float array.
    BasisError
        ``t`` is outside the basis interval or not a finite real number.
    RefodeError
        ``side`` is neither ``"right"`` nor ``"left"``.
    """
    if side not in SIDES:
        raise RefodeError(f"`side` must be 'right' or 'left', got {side!r}")
    basis = _basis(basis)
    single = not isinstance(coefficients, dict)
    named = {None: coefficients} if single else coefficients
    if not named:
        raise ShapeError("`coefficients` is an empty dict; pass name -> (K, ...) arrays")
    checked = {}
    for name, value in named.items():
        key = "coefficients" if single else f"coefficients[{name!r}]"
        checked[name] = _validate.leading(
            _validate.as_array(value, key, allow_complex=True), basis.n, key)
    out = theta_at_support(checked, support(basis, unit_position(basis, t), side))
    return out[None] if single else out


def unit_position(basis, t):
    """The exact unit position ``(t - t0) / (t1 - t0)`` (Fraction) of the depth ``t``."""
    if isinstance(t, (np.ndarray, np.generic)) and np.ndim(t) == 0:
        t = t.item()   # NumPy scalars and 0-d arrays: the Python number (exact)
    if isinstance(t, bool) or not isinstance(t, numbers.Real):
        raise BasisError(f"`t` must be a real number (float, int or Fraction), got {t!r:.40}")
    if not isinstance(t, numbers.Rational) and not np.isfinite(float(t)):
        raise BasisError(f"`t` must be finite, got {t!r}")
    lo, hi = Fraction(basis.t0), Fraction(basis.t1)
    position = (Fraction(t) - lo) / (hi - lo)
    if not 0 <= position <= 1:
        raise BasisError(
            f"`t` = {t} is outside the interval [{basis.t0}, {basis.t1}] of the basis; "
            "pass a depth inside it")
    return position


def _basis(basis):
    if isinstance(basis, Basis):
        return basis
    if isinstance(basis, tuple) and len(basis) == 2:
        return make_basis(*basis)
    raise BasisError(
        f"`basis` must be a refode.Basis or a (family, n) tuple, got {type(basis).__name__}")
