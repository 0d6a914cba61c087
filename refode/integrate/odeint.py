"""Fixed-step integration of an ODE-block over depth.

The block integrates (paper, Eq. 2-3)

    dh/dt = R(theta(t), h(t)),      theta(t) = sum_k phi_k(t) theta_k,

from ``h(t0) = h0`` to ``h(t1)`` with ``N`` steps of an explicit Runge-Kutta tableau
on the exact step grid of :mod:`refode.integrate.grid`.

A *rate* is any object with two methods:

- ``forward(t, h, theta) -> dh/dt`` (same shape as ``h``);
- ``vjp(t, h, theta, a) -> (a_h, a_theta)``: ``a_h = a^T dR/dh`` (shape of ``h``) and
  ``a_theta`` a dict ``name -> a^T dR/dtheta[name]`` (shape of ``theta[name]``);
- optionally ``theta_shapes(h_shape) -> {name: shape}``: the weights the rate reads for
  a state of shape ``h_shape`` (one basis function's shapes). When present,
  :func:`odeint` and :func:`refode.gradient` check the coefficients' names and shapes
  against it before any work (a missing weight or a wrong width is an error naming
  it, not a ``KeyError`` or a matmul error from inside the rate);

where ``theta`` is the dict of weights at the stage. :class:`refode.rates.DenseTanh`
is an example.

Optional extension (used by the discrete adjoint only): a rate may also implement

- ``forward_save(t, h, theta) -> (k, saved)``: ``k`` bitwise equal to ``forward``
  (with the same side effects), and ``saved`` any object holding intermediates;
- ``vjp_saved(t, h, theta, a, saved) -> (a_h, a_theta)``: bitwise equal to ``vjp``,
  using ``saved`` instead of recomputing the forward pass inside the VJP.

When both exist, the discrete adjoint (:func:`refode.gradient`,
:func:`refode.integrate.vjp`) calls ``forward_save`` wherever it keeps stage states
(every stage with ``checkpoint="all"``; the one step being reversed with ``"steps"``
and ``"binomial"``), keeps ``saved`` next to the stage state, and calls ``vjp_saved``
for it; steps whose stages are not kept call ``forward``. Gradients are bitwise
identical with and without the extension; it trades memory (``saved`` of every kept
stage) for the recomputation inside ``vjp``. :class:`refode.models.conv.ConvRate`
implements it.
"""
from dataclasses import dataclass

import numpy as np

from .. import _validate, limits
from ..bases import Basis, basis as make_basis
from ..errors import BasisError, RefodeError, ShapeError
from ._step import rk_step
from .grid import stage_grid
from .tableau import Tableau, tableau


@dataclass(frozen=True)
class Problem:
    """Validated inputs of :func:`odeint` and :func:`refode.gradient`.

    Attributes
    ----------
    rate : object with ``forward`` and ``vjp``
    h0 : ndarray, in the common dtype
    coefficients : dict name -> ``(K, *shape)`` ndarray, in the common dtype
    basis : refode.Basis
    tab : refode.Tableau
    n_steps : int
    """

    rate: object
    h0: np.ndarray
    coefficients: dict
    basis: Basis
    tab: Tableau
    n_steps: int

    def grid(self, direction="forward"):
        """The cached :class:`~refode.integrate.grid.StageGrid` of this problem."""
        return stage_grid(self.basis, self.tab, self.n_steps, direction)


def stage_theta(coefficients, support):
    """Weights at one stage: ``theta[name] = sum_q w_q * coefficients[name][k_q]``.

    Parameters
    ----------
    coefficients : dict name -> ``(K, *shape)`` ndarray
    support : ``(indices, weights)`` of the non-zero ``phi_k`` (Python floats)

    Returns
    -------
    dict name -> ``shape`` ndarray. A single term is ``w * c[k]``: the exact
    coefficient for a one-hot support of weight 1.
    """
    idx, weights = support
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


def forward_rate(problem, grid, n):
    """The rate at the stages of step ``n``: a callable ``(i, Y_i) -> k_i``."""
    times, supports = grid.times[n], grid.supports[n]

    def stage_rate(i, y):
        theta = stage_theta(problem.coefficients, supports[i])
        return problem.rate.forward(float(times[i]), y, theta)

    return stage_rate


def advance(problem, grid, n, h, stages=None):
    """State after step ``n`` from ``h``; appends the stage states to ``stages``."""
    return rk_step(forward_rate(problem, grid, n), h, grid.dt, problem.tab, stages)


def odeint(rate, h0, coefficients, basis, *, scheme="euler", n_steps, interval=None):
    """Integrate the ODE-block ``dh/dt = R(theta(t), h)`` and return ``h(t1)``.

    Parameters
    ----------
    rate : object
        ``rate.forward(t, h, theta)`` returns ``dh/dt`` of the shape of ``h``.
    h0 : ndarray, any shape (e.g. ``(batch, d)``)
        Initial state ``h(t0)``; float32, float64, complex64 or complex128.
    coefficients : dict name -> ndarray ``(K, *shape)``
        Coefficients ``theta_k`` of every weight of the rate (leading axis ``K = basis.n``).
    basis : refode.Basis or (family, n)
        Basis of the weights; its interval is the integration interval.
    scheme : str or refode.Tableau
        One of :func:`refode.tableaus` (default ``"euler"``).
    n_steps : int
        Number of steps ``N >= 1``; exactly ``N`` steps are taken.
    interval : (float, float), optional
        Must equal the basis' interval if given (or sets it for a ``(family, n)`` basis).

    Returns
    -------
    ndarray, shape of ``h0``, in the common dtype of ``h0`` and the coefficients.

    Notes
    -----
    Euler with a ``piecewise_constant`` basis and ``N = K`` computes
    ``h = h + dt * R(t_k, h, {name: c[k]})`` for ``k = 0 .. K-1``: a ResNet, bit for bit.
    """
    problem = prepare(rate, h0, coefficients, basis, scheme, n_steps, interval)
    grid = problem.grid()
    h = problem.h0
    for n in range(problem.n_steps):
        h = advance(problem, grid, n, h)
    return check_state(h, problem.h0, "rate.forward")


def prepare(rate, h0, coefficients, basis, scheme, n_steps, interval, needs=("forward",)):
    """Validate the common inputs and return a :class:`Problem`."""
    for method in needs:
        if not callable(getattr(rate, method, None)):
            raise RefodeError(
                f"`rate` has no method `{method}`; pass an object with forward(t, h, theta)"
                " and vjp(t, h, theta, a), such as refode.rates.DenseTanh()"
            )
    tab = tableau(scheme)
    n_steps = limits.n_steps(n_steps)
    basis = _as_basis(basis, interval)
    h0 = _validate.as_array(h0, "h0", allow_complex=True)
    coefficients = _as_coefficients(coefficients, basis.n)
    _check_theta(rate, h0, coefficients)
    dtype = np.result_type(h0, *coefficients.values())
    return Problem(
        rate=rate,
        h0=h0.astype(dtype, copy=False),
        coefficients={k: v.astype(dtype, copy=False) for k, v in coefficients.items()},
        basis=basis,
        tab=tab,
        n_steps=n_steps,
    )


def check_state(h, like, source):
    """Raise if the rate changed the state's shape (it must return ``dh/dt`` like ``h``)."""
    if h.shape != like.shape:
        raise ShapeError(
            f"`{source}` returned arrays of the wrong shape: the state became {h.shape} "
            f"from {like.shape}; the rate must return dh/dt with the shape of h"
        )
    return h


def _as_basis(basis, interval):
    if isinstance(basis, Basis):
        if interval is not None and _validate.interval(interval) != basis.interval:
            raise BasisError(
                f"`interval` {tuple(interval)} differs from the basis interval {basis.interval}; "
                "leave `interval` out (the basis interval is integrated) or build the basis "
                "on the interval you want"
            )
        return basis
    if isinstance(basis, tuple) and len(basis) == 2:
        family, n = basis
        return make_basis(family, n, (0.0, 1.0) if interval is None else interval)
    raise BasisError(
        f"`basis` must be a refode.Basis or a (family, n) tuple, got {type(basis).__name__}"
    )


def _check_theta(rate, h0, coefficients):
    """Names and shapes of the coefficients against the rate's optional
    ``theta_shapes(h_shape) -> {name: shape}`` (the weights of one basis function)."""
    shapes_of = getattr(rate, "theta_shapes", None)
    if not callable(shapes_of):
        return
    expected = shapes_of(h0.shape)
    missing, extra = sorted(set(expected) - set(coefficients)), sorted(
        set(coefficients) - set(expected))
    if missing or extra:
        raise ShapeError(
            f"`coefficients` has the weights {sorted(coefficients)} but the rate "
            f"{type(rate).__name__} takes {sorted(expected)}"
            + (f" (missing {', '.join(map(repr, missing))})" if missing else "")
            + (f" (unknown {', '.join(map(repr, extra))})" if extra else "")
            + "; pass one array (K, ...) per weight, e.g. refode.rates.init_coefficients")
    for name, shape in expected.items():
        got = coefficients[name].shape[1:]
        if got != tuple(shape):
            raise ShapeError(
                f"`coefficients[{name!r}]` has shape {coefficients[name].shape} but `h0` of "
                f"shape {h0.shape} needs (K, {', '.join(map(str, shape))}) for the rate "
                f"{type(rate).__name__}; make the weights and the state the same width")


def _as_coefficients(coefficients, n):
    if not isinstance(coefficients, dict) or not coefficients:
        raise ShapeError(
            "`coefficients` must be a non-empty dict name -> array of shape (K, ...), "
            f"got {type(coefficients).__name__}"
        )
    out = {}
    for name, value in coefficients.items():
        key = f"coefficients[{name!r}]"
        out[name] = _validate.leading(_validate.as_array(value, key, allow_complex=True), n, key)
    return out
