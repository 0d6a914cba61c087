"""Gradients of ``L(h(t1))`` with respect to ``h0`` and the weight coefficients.

``adjoint="discrete"`` is the exact gradient of the computed ``h(t1)`` (reverse-mode
through every Runge-Kutta step, :func:`refode.integrate._step.rk_step_vjp`); the
coefficient gradient collects ``dL/dtheta_k += phi_k(t_i) * thetabar_i`` at every
stage, since ``theta(t) = sum_k phi_k(t) theta_k``. Its memory strategies are in
:mod:`refode.integrate.checkpoint`.

``adjoint="continuous"`` is the backsolve adjoint: it integrates the augmented system

    dh/dt = R(theta(t), h),   da/dt = -a^T dR/dh,   dg_k/dt = -phi_k(t) a^T dR/dtheta

backwards from ``(h(t1), dL/dh(t1), 0)`` to ``t0`` with the same tableau and ``N``
steps on the backward grid (:mod:`refode.integrate.grid`), and returns
``(a(t0), g(t0))``. It approximates the gradient of the exact flow and converges to
it at the order of the tableau; it is not the gradient of the computed ``h(t1)``.

``method=`` is the older name of ``adjoint=`` and is still accepted.
"""
import numpy as np

from .. import _validate
from ..backend import add_scaled, concatenate, get as get_backend, on_device, scale
from ..backend import zeros_like
from ..errors import RefodeError, ShapeError
from ._step import rk_step, rk_step_vjp
from .checkpoint import CheckpointStats, strategy
from .odeint import advance, check_observer, check_state, interval_of, prepare
from .weights import theta_at_support

#: adjoints accepted by :func:`gradient`.
METHODS = ("discrete", "continuous")
#: the default checkpoint strategy.
DEFAULT_CHECKPOINT = "all"


def gradient(
    rate, h0, coefficients, basis, dloss_dhT, *, scheme="euler", n_steps, interval=None,
    t0=None, t1=None, adjoint=None, method=None, checkpoint=DEFAULT_CHECKPOINT, slots=None,
    stats=None, observer=None, check_finite=True, backend="cpu",
):
    """Gradient of a loss of ``h(t1)`` with respect to ``h0`` and the coefficients.

    Parameters
    ----------
    rate : object with ``forward(t, h, theta)`` and ``vjp(t, h, theta, a)``
    h0, coefficients, basis, scheme, n_steps, interval, t0, t1
        As for :func:`refode.odeint`.
    dloss_dhT : ndarray, shape of ``h0``
        ``dL/dh(t1)``.
    adjoint : {"discrete", "continuous"}
        Exact gradient of the computed ``h(t1)`` (default), or the backsolve adjoint.
    method : {"discrete", "continuous"}, optional
        The older name of ``adjoint`` (give one of the two).
    checkpoint : {"all", "steps", "binomial"} or a strategy object
        Memory strategy of the discrete adjoint (bitwise identical results; see
        :mod:`refode.integrate.checkpoint`, e.g. ``Binomial(slots)``).
    slots : int, optional
        Step states held at once by ``checkpoint="binomial"`` (required there, >= 1).
    stats : CheckpointStats, optional
        Filled with what the discrete adjoint kept and recomputed.
    observer : callable, optional
        ``observer(stage)`` for every stage of the forward sweep (not of the
        recomputations or the reverse pass; :mod:`refode.integrate.odeint`).
    check_finite : bool
        As for :func:`refode.odeint`; also applies to ``dloss_dhT``.
    backend : {"cpu", "reference", "cuda"} or refode.backend.Backend
        As for :func:`refode.odeint`: with ``"cuda"`` the forward sweep, the stored
        stages and the whole reverse sweep stay on the device (``dloss_dhT`` is
        copied there once); the gradients come back once (stay there for a device
        ``h0``).

    Returns
    -------
    dh0 : ndarray, shape of ``h0``
        ``dL/dh0``.
    dcoefficients : dict name -> ndarray, shapes of ``coefficients``
        ``dL/dtheta_k`` for every weight.
    """
    kind, name = _adjoint(adjoint, method)
    problem = prepare(rate, h0, coefficients, basis, scheme, n_steps,
                      interval_of(interval, t0, t1), ("forward", "vjp"), check_finite,
                      backend)
    check_observer(observer)
    lam = _cotangent(dloss_dhT, problem.h0, check_finite)
    if kind == "continuous":
        if checkpoint != DEFAULT_CHECKPOINT or slots is not None:
            raise RefodeError(
                f"`checkpoint` and `slots` apply to {name}='discrete' only; leave them out "
                f"for {name}='continuous'")
        return _results(problem, *_continuous(problem, lam, observer))
    plan = strategy(checkpoint, slots)
    stats = CheckpointStats() if stats is None else stats
    stats.start(plan.name, problem.n_steps)
    sweep = _DiscreteSweep(problem, stats, observer)
    _, memory = plan.forward(sweep, problem.h0)
    dh0 = plan.reverse(sweep, memory, lam, consume=True)
    return _results(problem, check_state(dh0, problem.h0, "rate.vjp"), sweep.grads)


def _results(problem, dh0, grads):
    """``(dh0, grads)`` where the caller's ``h0`` was (copied back from the device if it
    was on the host)."""
    return problem.result(dh0), {k: problem.result(v) for k, v in grads.items()}


def vjp(
    rate, h0, coefficients, basis, *, scheme="euler", n_steps, interval=None, t0=None,
    t1=None, checkpoint=DEFAULT_CHECKPOINT, slots=None, observer=None, check_finite=True,
    backend="cpu",
):
    """One forward pass now, the exact (discrete-adjoint) reverse pass on demand.

    The forward sweep runs inside this call and keeps what the ``checkpoint`` strategy
    keeps (:mod:`refode.integrate.checkpoint`): every stage state (``"all"``: the
    reverse pass recomputes no step), the state at every step start (``"steps"``) or
    revolve's checkpoints and the last step's stages (``"binomial"``, at most ``slots``
    states). ``backward`` then reverses with the same strategy object and the step
    functions of :func:`gradient`, so ``backward(w)`` is bitwise equal to
    ``gradient(rate, h0, coefficients, basis, w, ...)`` with the same options.
    ``observer`` sees the forward sweep only; the ``"steps"`` and ``"binomial"``
    strategies call ``rate.forward`` again inside ``backward``.

    Parameters
    ----------
    rate : object with ``forward(t, h, theta)`` and ``vjp(t, h, theta, a)``
    h0, coefficients, basis, scheme, n_steps, interval, t0, t1, observer, check_finite
        As for :func:`refode.odeint` (``check_finite`` also applies to the cotangent).
    checkpoint : {"all", "steps", "binomial"} or a strategy object
    slots : int, optional
        Required by (and only allowed with) ``checkpoint="binomial"``.
    backend : {"cpu", "reference", "cuda"} or refode.backend.Backend
        As for :func:`gradient`; ``backward``'s results are where ``h0`` was.

    Returns
    -------
    hT : ndarray, shape of ``h0``
        ``h(t1)``, bitwise equal to :func:`refode.odeint`.
    backward : callable ``(dloss_dhT, release=False) -> (dh0, dcoefficients)``
        ``dloss_dhT`` of the shape of ``h0``; returns ``dL/dh0`` (shape of ``h0``)
        and a dict ``name -> dL/dtheta`` of the shapes of ``coefficients``. It may
        be called several times (each call starts from zero gradients), unless
        ``release=True``: then what the forward sweep kept is freed as the reverse
        pass goes (``"binomial"`` then holds at most ``slots`` states at once, as
        :func:`gradient` does), and a later call raises RefodeError.
    """
    problem = prepare(rate, h0, coefficients, basis, scheme, n_steps,
                      interval_of(interval, t0, t1), ("forward", "vjp"), check_finite,
                      backend)
    check_observer(observer)
    plan = strategy(checkpoint, slots)
    stats = CheckpointStats()
    stats.start(plan.name, problem.n_steps)
    sweep = _DiscreteSweep(problem, stats, observer)
    h, memory = plan.forward(sweep, problem.h0)
    hT = check_state(h, problem.h0, "rate.forward")

    released = []

    def backward(dloss_dhT, release=False):
        if released:
            raise RefodeError("this backward released the forward sweep's memory on its "
                              "first call (release=True); run the forward (vjp) again")
        lam = _cotangent(dloss_dhT, problem.h0, check_finite)
        sweep.grads = {k: zeros_like(v) for k, v in problem.coefficients.items()}
        if release:
            released.append(True)
        dh0 = plan.reverse(sweep, memory, lam, consume=bool(release))
        return _results(problem, check_state(dh0, problem.h0, "rate.vjp"), sweep.grads)

    return problem.result(hT), backward


def _adjoint(adjoint, method):
    """``(kind, the argument's name)`` from ``adjoint=`` or its alias ``method=``."""
    if adjoint is not None and method is not None:
        raise RefodeError(f"pass `adjoint` or its older name `method`, not both (got "
                          f"adjoint={adjoint!r}, method={method!r})")
    name, kind = ("method", method) if method is not None else ("adjoint", adjoint)
    kind = "discrete" if kind is None else kind
    if kind not in METHODS:
        raise RefodeError(f"unknown `{name}` {kind!r}; choose one of {', '.join(METHODS)}")
    return kind, name


def _cotangent(dloss_dhT, h0, check_finite=True):
    """``dL/dh(t1)`` validated against ``h0`` and cast to the problem's dtype (copied to
    the device once for a device ``h0``; a device cotangent is checked for its shape and
    dtype only)."""
    if on_device(dloss_dhT):
        return _device_cotangent(dloss_dhT, h0)
    lam = _validate.as_array(dloss_dhT, "dloss_dhT", allow_complex=True,
                             check_finite=check_finite)
    if lam.shape != h0.shape:
        raise ShapeError(
            f"`dloss_dhT` has shape {lam.shape} but h0 has shape {h0.shape}; "
            "pass dL/dh(t1), which has the shape of h0"
        )
    if np.iscomplexobj(lam) and not np.iscomplexobj(h0):
        raise ShapeError(
            f"`dloss_dhT` has dtype {lam.dtype} but h0 and the coefficients compute in "
            f"{h0.dtype}; pass dL/dh(t1) in that dtype (or cast h0 to {lam.dtype})"
        )
    lam = lam.astype(h0.dtype, copy=False)
    return get_backend("cuda").to_device(lam) if on_device(h0) else lam


def _device_cotangent(dloss_dhT, h0):
    """A device ``dL/dh(t1)``, checked against ``h0`` for its shape and dtype."""
    if tuple(dloss_dhT.shape) != tuple(h0.shape) or dloss_dhT.dtype != h0.dtype:
        raise ShapeError(f"`dloss_dhT` on the device has shape {tuple(dloss_dhT.shape)} and "
                         f"dtype {dloss_dhT.dtype}; pass dL/dh(t1) like h0: shape "
                         f"{tuple(h0.shape)}, dtype {h0.dtype}")
    return dloss_dhT


class _DiscreteSweep:
    """Forward and reverse steps of one problem; accumulates the coefficient gradients."""

    def __init__(self, problem, stats, observer=None):
        self.problem = problem
        self.grid = problem.grid()
        self.n_steps = problem.n_steps
        self.stats = stats
        self.observer = observer
        self.grads = {k: zeros_like(v) for k, v in problem.coefficients.items()}

    def advance(self, n, h, stages=None, observe=False):
        """State after step ``n`` from ``h``.

        If ``stages`` is a list, the step's stage records are appended to it: pairs
        ``(Y_i, saved_i)`` of the stage state and what a rate with the ``forward_save``
        extension saved (None for a plain rate). ``observe`` reports the stages to the
        observer (the strategies' forward sweeps only).
        """
        self.stats.runs[n] += 1
        observer = self.observer if observe else None
        if stages is None:
            return advance(self.problem, self.grid, n, h, observer=observer)
        ys, saved = [], []
        h_next = advance(self.problem, self.grid, n, h, ys, saved, observer)
        stages.extend(zip(ys, saved))
        return h_next

    def reverse(self, n, stages, lam):
        """``dL/dh_n`` from ``dL/dh_{n+1}`` and the stage records of step ``n``."""
        times, supports = self.grid.times[n], self.grid.supports[n]
        coefficients, rate = self.problem.coefficients, self.problem.rate
        ys = [y for y, _ in stages]

        def stage_vjp(i, y, kbar):
            theta = theta_at_support(coefficients, supports[i])
            saved = stages[i][1]
            if saved is None:
                ybar, thetabar = rate.vjp(float(times[i]), y, theta, kbar)
            else:
                ybar, thetabar = rate.vjp_saved(float(times[i]), y, theta, kbar, saved)
            _accumulate(self.grads, supports[i], thetabar, 1.0)
            return ybar

        return rk_step_vjp(stage_vjp, ys, self.grid.dt, self.problem.tab, lam)


def _accumulate(grads, support, thetabar, sign):
    """``grads[name][k] += sign * phi_k * thetabar[name]`` over the support (on the
    device for device gradients: :func:`refode.backend.add_scaled`)."""
    for name, g in grads.items():
        if on_device(g):
            for k, w in zip(*support):
                add_scaled(g[k], sign * w, thetabar[name])
            continue
        for k, w in zip(*support):
            g[k] += (sign * w) * thetabar[name]


def _continuous(problem, lam, observer=None):
    """Backsolve adjoint: integrate ``(h, a, g)`` from ``t1`` back to ``t0``."""
    h_t1 = problem.h0
    grid = problem.grid()
    for n in range(problem.n_steps):
        h_t1 = advance(problem, grid, n, h_t1, observer=observer)
    layout = _Layout(problem)
    z = layout.pack(h_t1, lam, {k: zeros_like(v) for k, v in problem.coefficients.items()})
    back = problem.grid("backward")
    for m in range(problem.n_steps):
        z = rk_step(_augmented_rate(problem, back, m, layout), z, back.dt, problem.tab)
    _, a0, g0 = layout.unpack(z)
    return a0, g0


def _augmented_rate(problem, grid, m, layout):
    """Stage rate of the augmented system at backward step ``m``."""
    times, supports = grid.times[m], grid.supports[m]

    def stage_rate(i, z):
        h, a, _ = layout.unpack(z)
        theta = theta_at_support(problem.coefficients, supports[i])
        dh = problem.rate.forward(float(times[i]), h, theta)
        ah, atheta = problem.rate.vjp(float(times[i]), h, theta, a)
        dg = {k: zeros_like(v) for k, v in problem.coefficients.items()}
        _accumulate(dg, supports[i], atheta, -1.0)
        return layout.pack(dh, scale(-1.0, ah) if on_device(ah) else -ah, dg)

    return stage_rate


class _Layout:
    """Packs the augmented state ``(h, a, g)`` into one flat vector and back."""

    def __init__(self, problem):
        self.shape = problem.h0.shape
        self.names = list(problem.coefficients)
        self.shapes = [problem.coefficients[k].shape for k in self.names]
        sizes = [problem.h0.size, problem.h0.size] + [int(np.prod(s)) for s in self.shapes]
        self.offsets = np.cumsum([0] + sizes)

    def pack(self, h, a, g):
        if on_device(h):
            return concatenate([h, a] + [g[k] for k in self.names])
        return np.concatenate([h.ravel(), a.ravel()] + [g[k].ravel() for k in self.names])

    def unpack(self, z):
        parts = [z[lo:hi] for lo, hi in zip(self.offsets[:-1], self.offsets[1:])]
        g = {k: p.reshape(s) for k, p, s in zip(self.names, parts[2:], self.shapes)}
        return parts[0].reshape(self.shape), parts[1].reshape(self.shape), g
