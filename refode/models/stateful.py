"""The stateful ODE-block: conv rate with weights *and* batch-norm statistics in a basis.

``h(t1) = h(t0) + integral R(theta(t), h) dt`` with :class:`~refode.models.conv.ConvRate`.
Every weight is ``theta(t) = sum_k phi_k(t) theta_k`` (``params``, ``(K, ...)``) and the
running statistics of the rate's two batch norms are expansions in the same basis
(``state``: ``"bn1.mean", "bn1.var", "bn2.mean", "bn2.var"``, each ``(K, C)``;
initialised to mean 0, variance 1).

Training (paper, section 3)
    Every stage normalises with batch statistics. The integrator's forward sweep (and
    only it; the recomputations of the reverse pass report nothing) reports every stage
    to the block's observer (:mod:`refode.integrate.odeint`): its exact ``(position,
    side)`` on the stage grid and the batch statistics ``b_i`` the rate computed there
    (:meth:`~refode.models.conv.ConvRate.forward_stats`), with
    ``s_i = m * s(t_i) + (1 - m) * b_i``, ``m = 0.9`` (computed as PyTorch does:
    ``0.1 * b_i + 0.9 * s(t_i)``), ``s(t_i)`` the old statistics at the stage with its
    exact support weights, and ``b_i`` the **unbiased** batch variance for the
    variance (as PyTorch's ``BatchNorm2d`` feeds into its running variance; the
    normalisation itself uses the biased one). After the pass the samples are fitted
    onto the ``K`` coefficients by least squares (:func:`refode.fit`); basis
    functions without samples (``N < K``, ``N`` not a multiple of ``K``) keep their
    previous coefficients. With Euler, ``piecewise_constant`` and ``N = K`` this is
    exactly ``K`` independent ``BatchNorm2d(momentum=0.1)`` layers.
Evaluation
    Every stage normalises with ``s(t_stage)`` from the state coefficients (exact
    support weights of the stage, the same one-sided rule as the weights).

The backward pass is the discrete adjoint of :func:`refode.integrate.vjp` (exact
gradient of the computed output). The policies that move statistics between bases are
in :mod:`refode.models._statistics`.
"""
import warnings

import numpy as np

from .. import projection
from ..constants import BN_EPS as EPS
from ..errors import RefodeError, RefodeWarning
from ..integrate.adjoint import gradient, vjp
from ..integrate.odeint import host_stats, odeint
from ..integrate.grid import stages as grid_stages
from ..integrate.tableau import tableau
from . import _ops
from ._layers import Layer
from ._statistics import constant, positive_variance  # noqa: F401  (re-exported)
from .conv import STATS, ConvRate, weight_shapes
from .layers import he_normal
from .rediscretize import CHANGES


#: the running variances among the statistics.
VARIANCES = tuple(name for name in STATS if name.endswith("var"))
#: stages named in the warning about non-positive variances (the rest are counted).
MAX_LISTED = 3


def init_params(basis, channels, rng, dtype):
    """Independent random coefficients for every basis function (He init), and the
    coefficients of the constants gamma(t) = 1, beta(t) = 0.

    Returns
    -------
    dict name -> ``(K, ...)`` array (see :func:`refode.models.conv.weight_shapes`)
    """
    params = {}
    for name, shape in weight_shapes(channels).items():
        full = (basis.n, *shape)
        if name.endswith("weight"):
            params[name] = he_normal(rng, full, dtype)
        else:
            params[name] = constant(basis, shape, 1.0 if name.endswith("gamma") else 0.0, dtype)
    return params


def init_state(basis, channels, dtype):
    """Running statistics ``(K, C)``: the constants mean(t) = 0, var(t) = 1."""
    return {name: constant(basis, (channels,), 1.0 if name.endswith("var") else 0.0, dtype)
            for name in STATS}


def _recomputing(rate, x, coefficients, basis, options):
    """A single-use backward ``(dy, release=False) -> (dx, dcoefficients)`` that
    recomputes the forward with :func:`refode.gradient` (nothing kept from the forward);
    a call after one with ``release=True`` raises, as :func:`refode.integrate.vjp`'s."""
    used = []

    def backward(dy, release=False):
        if used:
            raise RefodeError("this backward was used up (release=True); run the forward again")
        out = gradient(rate, x, coefficients, basis, dy, **options)
        if release:
            used.append(True)
        return out

    return backward


class StatefulODEBlock(Layer):
    """ODE-block of :class:`ConvRate` with depth-dependent batch-norm statistics.

    Parameters
    ----------
    basis : refode.Basis
    scheme : str
        Runge-Kutta tableau name.
    n_steps : int
    params : dict name -> ``(K, ...)`` array
    state : dict name -> ``(K, C)`` array
    checkpoint : {"all", "steps", "binomial"}
        Memory strategy of the backward pass (``slots`` for ``"binomial"``).
    rate_scale : float
        ``dh/dt = rate_scale * R(theta(t), h)`` (the original code's ``epsilon``).
    backend : str or refode.backend.Backend
        Whose kernels the rate runs (default ``"cpu"``).
    """

    def __init__(self, basis, scheme, n_steps, params, state, checkpoint="all", slots=None,
                 rate_scale=1.0, backend="cpu"):
        super().__init__(backend, dict(params), dict(state))
        self.basis, self.scheme, self.n_steps = basis, scheme, n_steps
        self.checkpoint, self.slots = checkpoint, slots
        self.rate_scale = float(rate_scale)

    def stages(self):
        """The :class:`refode.integrate.Stage` records of the block's ``N * s`` stages."""
        return grid_stages(self.basis, self.scheme, self.n_steps)

    def _integrate(self, x, train):
        """``(h, backward, observed stages)`` of one forward sweep (stages: training).

        On the CUDA backend the sweep runs on the device; the stages' batch statistics
        come back to the host in one transfer per call (:func:`host_stats`), where the
        running statistics are refitted."""
        coefficients = dict(self.params) if train else {**self.params, **self.state}
        rate = ConvRate(train, self.rate_scale, self.backend)
        options = {"scheme": self.scheme, "n_steps": self.n_steps, "check_finite": False,
                   "backend": self.backend}
        memory = {"checkpoint": self.checkpoint, "slots": self.slots}
        if not train:  # evaluation keeps nothing; a backward recomputes (refode.gradient)
            h = odeint(rate, x, coefficients, self.basis, **options)
            return h, _recomputing(rate, x, coefficients, self.basis, {**options, **memory}), None
        observed = []
        h, backward = vjp(rate, x, coefficients, self.basis, observer=observed.append,
                          **options, **memory)
        return h, backward, host_stats(observed)

    def forward(self, x, train):
        h, backward, observed = self._integrate(x, train)
        if train:
            self.state = self.refitted(observed)
        return h, backward

    def backward(self, cache, dy):
        """``(dx, {name: dL/dparams[name]})``; uses ``cache`` up (the reverse pass frees
        the forward sweep's checkpoints as it goes; a second backward with the same
        cache raises RefodeError)."""
        dx, dc = cache(dy, release=True)
        return dx, {name: dc[name] for name in self.params}

    def refitted(self, observed):
        """New state coefficients from the stages of a training sweep (module docstring).

        ``observed``: the ``N * s`` :class:`refode.integrate.Stage` in stage order, with
        ``stats = (mean1, var1, mean2, var2)``. The samples ``0.1 * b_i + 0.9 * s(t_i)``
        ``(N * s, C)`` at the exact stage positions are fitted by least squares
        (:func:`refode.fit`); unsampled basis functions keep their coefficients.
        """
        expected = self.n_steps * tableau(self.scheme).stages
        if len(observed) != expected:
            raise RuntimeError(f"observed {len(observed)} stages, the grid has {expected}")
        values = {name: [] for name in STATS}
        for stage in observed:
            old = stage.theta(self.state)
            for name, batch in zip(STATS, stage.stats):
                values[name].append(_ops.running_update(old[name], batch))
        points = [(stage.position, stage.side) for stage in observed]
        return {name: projection.fit(points, np.stack(values[name]), self.basis,
                                     previous=self.state[name]) for name in STATS}

    def rebased(self, basis, scheme, n_steps, method, stats="project"):
        """A new block with every coefficient array moved onto ``basis`` by ``method``
        (a key of :data:`~refode.models.rediscretize.CHANGES`); ``stats`` is a policy of
        :func:`~refode.models.rediscretize.rediscretize`. Warns (RefodeWarning) where
        :meth:`nonpositive_variances` finds stages, except for ``"recalibrate"``."""
        move = CHANGES[method]
        block = StatefulODEBlock(
            basis, scheme, n_steps,
            {k: move(v, self.basis, basis) for k, v in self.params.items()},
            {k: move(v, self.basis, basis) for k, v in self.state.items()},
            self.checkpoint, self.slots, self.rate_scale, self.backend)
        if stats == "positive":
            for name in VARIANCES:
                block.state[name] = positive_variance(self.state[name], self.basis, block, method)
        if stats != "recalibrate":
            block.warn_nonpositive(f"the {method} onto {basis.family} with K = {basis.n}")
        return block

    def warn_nonpositive(self, what):
        """Warn (RefodeWarning) if :meth:`nonpositive_variances` finds stages; ``what``
        names the operation that made the statistics."""
        bad = self.nonpositive_variances()
        if bad:
            listed = ", ".join(f"{name} at t = {float(t):.4g} ({count} channels)"
                               for name, t, count in bad[:MAX_LISTED])
            warnings.warn(
                f"{what} makes a running "
                f"variance <= -eps at {len(bad)} stage(s): {listed}; evaluation of this "
                "model gives NaN there. Keep more basis functions, use a basis that "
                "preserves positivity (piecewise_constant, fem_linear with interpolation), "
                "or re-estimate the statistics on data (stats='recalibrate')",
                RefodeWarning, stacklevel=4)

    def batch_statistics(self, x):
        """Output and per-stage batch statistics of a training-mode forward of ``x``.

        The weights and the running statistics are not changed (nothing is refitted).

        Parameters
        ----------
        x : (B, C, H, W) block input

        Returns
        -------
        h : (B, C, H, W) training-mode output
        records : list of ``N * s`` tuples ``(mean1, var1, mean2, var2)``, each ``(C,)``
            (variances unbiased), in stage order: the ``stats`` of the observed stages
        """
        h, _, observed = self._integrate(x, True)
        return h, [stage.stats for stage in observed]

    def recalibrated(self, batches, sizes):
        """Running statistics re-estimated from the batch statistics of several batches.

        The stage sample of every statistic is the average of its batch statistics
        over the batches, weighted by the batch sizes (float64): ``b_i = sum_j n_j
        b_ij / sum_j n_j``; the samples are fitted onto the basis by the least squares
        of training (:func:`refode.fit` at the exact stage positions, unsampled
        functions keep their current coefficients). This is the value the training
        update ``s <- 0.9 s + 0.1 b`` converges to when every batch gives ``b_i``.

        Parameters
        ----------
        batches : list of records of :meth:`batch_statistics`, one per batch
        sizes : list of int, the batch sizes

        Returns
        -------
        dict name -> ``(K, C)`` array of the state's dtype
            A channel whose samples are not all finite (the block's input was not
            finite) keeps its current coefficients, with a RefodeWarning: the NaN
            computed upstream reaches the outputs, where evaluation counts it,
            rather than raising here.
        """
        points = [(stage.position, stage.side) for stage in self.stages()]
        total = float(sum(sizes))
        out = {}
        nonfinite = 0
        for i, name in enumerate(STATS):
            stages = np.stack([np.stack([np.asarray(rec[i], np.float64) for rec in records])
                               for records in batches])  # (batches, stages, C)
            weights = np.asarray(sizes, np.float64)[:, None, None] / total
            mean = np.sum(stages * weights, axis=0)
            bad = ~np.all(np.isfinite(mean), axis=0)  # (C,) channels with a non-finite sample
            nonfinite += int(np.count_nonzero(bad))
            fitted = projection.fit(points, np.where(bad, 0.0, mean), self.basis,
                                    previous=np.asarray(self.state[name], np.float64))
            fitted[:, bad] = np.asarray(self.state[name], np.float64)[:, bad]
            out[name] = fitted.astype(self.state[name].dtype)
        if nonfinite:
            warnings.warn(
                f"{nonfinite} statistic(s) (channels over the {len(STATS)} arrays) kept "
                "their previous coefficients: the block's batch statistics are not finite "
                "because its input is not (e.g. an earlier block's running variance is not "
                "positive), and evaluation gives NaN there. Use stats='positive' or "
                "another basis",
                RefodeWarning, stacklevel=3)
        return out

    def nonpositive_variances(self):
        """Stages where a running variance ``var(t) + eps`` is not positive.

        Projection onto (and interpolation by) polynomials or hat functions need not
        keep a positive function positive; evaluation normalises with
        ``1 / sqrt(var(t) + eps)`` and gives NaN there.

        Returns
        -------
        list of ``(name, position, channels)``
            ``name`` of the variance array, the exact stage ``position`` (Fraction)
            and the number of channels that fail; empty when all are positive.
        """
        out = []
        for stage in self.stages():
            values = stage.theta(self.state)
            for name in VARIANCES:
                count = int(np.count_nonzero(~(values[name] + EPS > 0)))
                if count:
                    out.append((name, stage.position, count))
        return out
