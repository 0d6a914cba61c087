"""Fixed-step integration of an ODE-block over depth, and the rate protocol.

The block integrates (paper, Eq. 2-3)

    dh/dt = R(theta(t), h(t)),      theta(t) = sum_k phi_k(t) theta_k,

from ``h(t0) = h0`` to ``h(t1)`` with ``N`` steps of an explicit Runge-Kutta tableau
on the exact step grid of :mod:`refode.integrate.grid`. At stage ``i`` of step ``n``
the rate is handed ``t`` (the float depth of the stage) and ``theta``, the dict of
weights ``refode.theta(coefficients, basis, t_stage, side=stage_side)``, bit for bit
(:mod:`refode.integrate.weights`; the grid's one-sided rule gives the side).

The Rate protocol
-----------------
Required:

- ``forward(t, h, theta) -> dh/dt`` (same shape as ``h``);
- ``vjp(t, h, theta, a) -> (a_h, a_theta)`` (gradients only): ``a_h = a^T dR/dh``
  (shape of ``h``) and ``a_theta`` a dict ``name -> a^T dR/dtheta[name]`` (shape of
  ``theta[name]``).

Optional:

- ``theta_shapes(h_shape) -> {name: shape}``: the weights the rate reads for a state of
  shape ``h_shape`` (one basis function's shapes). :func:`odeint` and
  :func:`refode.gradient` then check the coefficients' names and shapes before any work
  (a missing weight or a wrong width is an error naming it, not a ``KeyError`` from
  inside the rate);
- ``forward_save(t, h, theta) -> (k, saved)`` and ``vjp_saved(t, h, theta, a, saved) ->
  (a_h, a_theta)``, bitwise equal to ``forward`` and ``vjp``: the discrete adjoint calls
  ``forward_save`` wherever it keeps stage states (every stage with ``checkpoint="all"``;
  the step being reversed with ``"steps"`` and ``"binomial"``), keeps ``saved`` next to
  the stage state and calls ``vjp_saved`` for it. It trades memory for the
  recomputation inside ``vjp``; gradients are bitwise those of the plain pair;
- ``forward_stats(t, h, theta, save=False) -> (k, stats, saved)``: ``k`` bitwise equal to
  ``forward``, ``stats`` what the rate reports about the stage (e.g. batch statistics),
  ``saved`` as ``forward_save`` gives it when ``save`` is true, else None. It is called
  only in an *observed* sweep (below).

Observing the forward sweep
---------------------------
:func:`odeint`, :func:`refode.gradient` and :func:`refode.integrate.vjp` take
``observer=f``: the forward sweep (and only it, never a recomputation of the
``"steps"`` or ``"binomial"`` strategies nor the reverse pass) calls ``f(stage)`` once
per stage, in order, with a :class:`refode.integrate.grid.Stage`: step and stage index,
exact unit position, side, depth ``t``, support and ``stats`` (from ``forward_stats``
when the rate has it, else None). ``stage.theta(c)`` evaluates coefficients ``c`` at
the stage as the rate's weights were. A rate with statistics needs no list of records
and a stateful layer learns every stage's position from the integrator.

:class:`refode.rates.DenseTanh` implements the required pair and ``theta_shapes``;
:class:`refode.models.conv.ConvRate` the extensions.
"""
from dataclasses import dataclass, replace
from fractions import Fraction

import numpy as np

from ..backend import concatenate, on_device, stack, to_host
from ._problem import check_observer, check_state, interval_of, prepare
from ._step import rk_step
from .grid import stage_at
from .weights import theta_at_support


@dataclass(frozen=True)
class Solution:
    """The trajectory of :func:`odeint` with ``trajectory=True``.

    Attributes
    ----------
    ts : (N + 1,) float64
        Depths of the step ends, ``ts[n] = t0 + float(n / N) * (t1 - t0)`` (``t0`` and
        ``t1`` included).
    ys : (N + 1, *h0.shape) ndarray
        The states ``h_n`` there; ``ys[-1]`` is bitwise ``odeint``'s ``h(t1)``.
    stages : list of :class:`~refode.integrate.grid.Stage`
        Every stage of the sweep, as an observer sees it (``stats`` from the rate's
        ``forward_stats`` where it has one).
    """

    ts: np.ndarray
    ys: np.ndarray
    stages: list

    @property
    def hT(self):
        """``h(t1)``: ``ys[-1]``."""
        return self.ys[-1]


def saves(rate):
    """Whether ``rate`` implements the optional ``forward_save`` / ``vjp_saved`` pair."""
    return callable(getattr(rate, "forward_save", None)) and callable(
        getattr(rate, "vjp_saved", None))


def stage_rate(problem, grid, n, saved=None, observer=None):
    """The rate at the stages of step ``n``: a callable ``(i, Y_i) -> k_i``.

    Parameters
    ----------
    problem : Problem
    grid : StageGrid
    n : int
    saved : list or None
        If a list, what the rate saved at each stage is appended (``forward_save``'s
        ``saved``; None for a rate without the extension).
    observer : callable or None
        Called with the :class:`~refode.integrate.grid.Stage` of each stage after the
        rate (``forward_stats`` is used when the rate has it).
    """
    times, supports = grid.times[n], grid.supports[n]
    rate, coefficients = problem.rate, problem.coefficients
    save = saved is not None and saves(rate)
    with_stats = getattr(rate, "forward_stats", None) if observer is not None else None

    def call(i, y):
        theta = theta_at_support(coefficients, supports[i])
        t = float(times[i])
        stats = keep = None
        if callable(with_stats):
            k, stats, keep = with_stats(t, y, theta, save=save)
        elif save:
            k, keep = rate.forward_save(t, y, theta)
        else:
            k = rate.forward(t, y, theta)
        if saved is not None:
            saved.append(keep)
        if observer is not None:
            observer(stage_at(grid, problem.basis, n, i, stats))
        return k

    return call


def advance(problem, grid, n, h, stages=None, saved=None, observer=None):
    """State after step ``n`` from ``h``; appends the stage states to ``stages`` (and
    what the rate saved to ``saved``, see :func:`stage_rate`)."""
    return rk_step(stage_rate(problem, grid, n, saved, observer), h, grid.dt, problem.tab,
                   stages)


def odeint(rate, h0, coefficients, basis, *, scheme="euler", n_steps, interval=None,
           t0=None, t1=None, observer=None, trajectory=False, check_finite=True,
           backend="cpu"):
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
    t0, t1 : float, optional
        The interval as two numbers (torchdiffeq's and diffrax's spelling): both or
        neither, and not together with ``interval``.
    observer : callable, optional
        ``observer(stage)`` for every stage of the sweep (see the module docstring).
    trajectory : bool
        Return a :class:`Solution` (the states at every step end and the stages)
        instead of ``h(t1)`` alone.
    check_finite : bool
        Refuse NaN and Inf in ``h0`` and the coefficients (default; scipy's
        convention). The models pass False for the states between their layers, so
        that a NaN the network computed (a compressed variance that went negative)
        propagates to the logits, where it is counted, instead of stopping the run.
    backend : {"cpu", "reference", "cuda"} or refode.backend.Backend
        Where the integrator computes. ``"cpu"`` (and ``"reference"``): NumPy on the
        host, whatever kernels the rate runs. ``"cuda"``: ``h0`` and the coefficients
        are copied to the device once, every stage and step runs there (the rate must
        compute on the device: built with ``backend="cuda"``), and the result is
        copied back once; a device ``h0`` (checked for shape and dtype only) gives a
        device result. The observer then sees device arrays in ``stage.stats``.

    Returns
    -------
    ndarray, shape of ``h0``, in the common dtype of ``h0`` and the coefficients
    (a :class:`Solution` with ``trajectory=True``), on the host unless ``h0`` was a
    device array.

    Notes
    -----
    Euler with a ``piecewise_constant`` basis and ``N = K`` computes
    ``h = h + dt * R(t_k, h, {name: c[k]})`` for ``k = 0 .. K-1``: a ResNet, bit for bit.
    """
    problem = prepare(rate, h0, coefficients, basis, scheme, n_steps,
                      interval_of(interval, t0, t1), check_finite=check_finite,
                      backend=backend)
    check_observer(observer)
    grid = problem.grid()
    h, ys, seen = problem.h0, [problem.h0], []
    if trajectory:
        observer = _both(seen.append, observer)
    for n in range(problem.n_steps):
        h = check_state(advance(problem, grid, n, h, observer=observer), problem.h0,
                        "rate.forward")
        if trajectory:
            ys.append(h)
    if not trajectory:
        return problem.result(h)
    basis, n_steps = problem.basis, problem.n_steps
    ts = np.array([basis.t0 + float(Fraction(n, n_steps)) * basis.length
                   for n in range(n_steps + 1)])
    if problem.host:
        seen = host_stats(seen)
    return Solution(ts=ts, ys=problem.result(stack(ys)), stages=seen)


def host_stats(stages):
    """``stages`` with device arrays in their ``stats`` copied to the host in one
    transfer (the stats of every stage concatenated on the device); host stats as given."""
    arrays = [a for stage in stages for a in _parts(stage.stats) if on_device(a)]
    if not arrays:
        return stages
    flat, start, out = to_host(concatenate(arrays)), 0, []
    for stage in stages:
        if not _parts(stage.stats):
            out.append(stage)
            continue
        moved = []
        for a in stage.stats:
            if on_device(a):
                a, start = flat[start:start + a.size].reshape(a.shape), start + a.size
            moved.append(a)
        out.append(replace(stage, stats=type(stage.stats)(moved)))
    return out


def _both(first, second):
    """An observer calling ``first`` then ``second`` (if not None)."""
    if second is None:
        return first

    def observe(stage):
        first(stage)
        second(stage)

    return observe




def _parts(stats):
    """The arrays of a stage's ``stats`` when it is a tuple or list of them, else ()."""
    return tuple(stats) if isinstance(stats, (tuple, list)) else ()
