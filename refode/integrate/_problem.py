"""Validated inputs of the integrator: the :class:`Problem` and its checks.

:func:`prepare` validates ``rate``, ``h0``, the coefficients, the basis, the scheme and
``N`` once, before any work, and casts the arrays to their common dtype; the
integration functions (:mod:`refode.integrate.odeint`, :mod:`refode.integrate.adjoint`)
only compute.
"""
from dataclasses import dataclass

import numpy as np

from .. import _validate, limits
from ..backend import get as get_backend, on_device, to_host
from ..bases import Basis, basis as make_basis
from ..errors import BasisError, RefodeError, ShapeError
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
    host : bool
        Whether results go back to the host (the caller passed a host ``h0``); with
        ``backend="cuda"`` ``h0`` and the coefficients are device arrays.
    """

    rate: object
    h0: np.ndarray
    coefficients: dict
    basis: Basis
    tab: Tableau
    n_steps: int
    host: bool = True

    def result(self, x):
        """``x`` where the caller's ``h0`` was: copied back to the host if it was there."""
        return to_host(x) if self.host and on_device(x) else x

    def grid(self, direction="forward"):
        """The cached :class:`~refode.integrate.grid.StageGrid` of this problem."""
        return stage_grid(self.basis, self.tab, self.n_steps, direction)


def prepare(rate, h0, coefficients, basis, scheme, n_steps, interval, needs=("forward",),
            check_finite=True, backend="cpu"):
    """Validate the common inputs and return a :class:`Problem`.

    ``check_finite=False`` lets NaN and Inf in ``h0`` and the coefficients through
    (they propagate): for states a model computed, never for what a caller passes.
    ``backend="cuda"``: :func:`on_the_device` moves the arrays to the device once.
    """
    backend = get_backend(backend)
    if backend.device:
        return on_the_device(rate, h0, coefficients, basis, scheme, n_steps, interval, needs,
                             check_finite, backend)
    for method in needs:
        if not callable(getattr(rate, method, None)):
            raise RefodeError(
                f"`rate` has no method `{method}`; pass an object with forward(t, h, theta)"
                " and vjp(t, h, theta, a), such as refode.rates.DenseTanh()"
            )
    tab = tableau(scheme)
    n_steps = limits.n_steps(n_steps)
    basis = _as_basis(basis, interval)
    h0 = _validate.as_array(h0, "h0", allow_complex=True, check_finite=check_finite)
    coefficients = _as_coefficients(coefficients, basis.n, check_finite)
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


def on_the_device(rate, h0, coefficients, basis, scheme, n_steps, interval, needs,
                  check_finite, backend):
    """The :class:`Problem` of ``backend="cuda"``: validated as on the host, then ``h0``
    and the coefficients copied to the device once (device arrays stay there).

    A device ``h0`` (a model's state between layers) is checked for its shape and
    dtype only (never for finiteness: that would copy it back); results then stay on
    the device. The rate must compute on the device (its ``backend`` is CUDA's).
    """
    if getattr(getattr(rate, "backend", None), "name", None) != backend.name:
        raise RefodeError(
            f"backend='cuda' integrates on the device, but the rate {type(rate).__name__} "
            "does not compute there; build it with backend='cuda' (ConvRate, the encoder "
            "rates of refode.models.transformer), or integrate with backend='cpu'")
    host = not on_device(h0)
    if host:
        problem = prepare(rate, h0, coefficients, basis, scheme, n_steps, interval, needs,
                          check_finite)
        h0, coefficients = problem.h0, problem.coefficients
    else:
        for method in needs:
            if not callable(getattr(rate, method, None)):
                raise RefodeError(f"`rate` has no method `{method}`")
        basis = _as_basis(basis, interval)
        problem = Problem(rate, h0, {}, basis, tableau(scheme), limits.n_steps(n_steps))
        coefficients = {k: v if on_device(v) else _validate.leading(
            _validate.as_array(v, f"coefficients[{k!r}]", check_finite=check_finite),
            basis.n, f"coefficients[{k!r}]") for k, v in _device_dict(coefficients).items()}
        _check_theta(rate, h0, coefficients)
        dtypes = {np.dtype(v.dtype) for v in coefficients.values()} | {np.dtype(h0.dtype)}
        if len(dtypes) != 1:
            raise ShapeError(f"`h0` on the device has dtype {h0.dtype} and the coefficients "
                             f"{sorted(map(str, dtypes))}; pass them in one dtype")
    return Problem(rate=rate, h0=backend.to_device(h0),
                   coefficients={k: backend.to_device(v) for k, v in coefficients.items()},
                   basis=problem.basis, tab=problem.tab, n_steps=problem.n_steps, host=host)


def _device_dict(coefficients):
    if not isinstance(coefficients, dict) or not coefficients:
        raise ShapeError("`coefficients` must be a non-empty dict name -> array of shape "
                         f"(K, ...), got {type(coefficients).__name__}")
    return coefficients


def interval_of(interval, t0, t1):
    """The ``interval`` argument from ``interval=`` or ``t0=``/``t1=`` (checked)."""
    if t0 is None and t1 is None:
        return interval
    if t0 is None or t1 is None:
        raise RefodeError("pass both `t0` and `t1` (or `interval=(t0, t1)`), not only "
                          f"`{'t0' if t1 is None else 't1'}`")
    if interval is not None:
        raise RefodeError(f"pass either `interval` or `t0`/`t1`, not both (got interval="
                          f"{interval!r}, t0={t0!r}, t1={t1!r})")
    return (t0, t1)


def check_observer(observer):
    if observer is not None and not callable(observer):
        raise RefodeError(f"`observer` must be a callable f(stage) or None, got "
                          f"{type(observer).__name__}")


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
    expected = shapes_of(tuple(h0.shape))
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


def _as_coefficients(coefficients, n, check_finite=True):
    if not isinstance(coefficients, dict) or not coefficients:
        raise ShapeError(
            "`coefficients` must be a non-empty dict name -> array of shape (K, ...), "
            f"got {type(coefficients).__name__}"
        )
    out = {}
    for name, value in coefficients.items():
        key = f"coefficients[{name!r}]"
        out[name] = _validate.leading(
            _validate.as_array(value, key, allow_complex=True, check_finite=check_finite), n, key)
    return out
