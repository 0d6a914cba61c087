"""The stateful ODE-block: conv rate with weights *and* batch-norm statistics in a basis.

``h(t1) = h(t0) + integral R(theta(t), h) dt`` with :class:`~refode.models.conv.ConvRate`.
Every weight is ``theta(t) = sum_k phi_k(t) theta_k`` (``params``, ``(K, ...)``) and the
running statistics of the rate's two batch norms are expansions in the same basis
(``state``: ``"bn1.mean", "bn1.var", "bn2.mean", "bn2.var"``, each ``(K, C)``;
initialised to mean 0, variance 1).

Training (paper, section 3)
    Every stage normalises with batch statistics. The forward sweep (and only it; the
    recomputations of the reverse pass record nothing) records the batch statistics
    ``b_i`` of stage ``i`` at its exact ``(position, side)`` on the stage grid, with
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
gradient of the computed output).
"""
import warnings

import numpy as np
import scipy.linalg

from .. import projection
from ..errors import RefodeWarning
from ..bases import basis as make_basis
from ..integrate.adjoint import vjp
from ..integrate.grid import stage_grid
from ..integrate.odeint import stage_theta
from ..integrate.tableau import tableau
from ..projection.fit import design_matrix
from ..projection.mass import union_breakpoints
from . import _ops
from ..constants import BN_EPS as EPS
from ._layers import Layer
from .conv import STATS, ConvRate, weight_shapes
from .layers import he_normal


#: stages named in the warning about non-positive variances (the rest are counted).
MAX_LISTED = 3
#: unit positions where a basis is checked for being a partition of unity.
UNITY_PROBES = 17


def constant(basis, shape, value, dtype):
    """Coefficients ``(K, *shape)`` of the constant function ``value`` on ``basis``.

    All equal to ``value`` when the basis is a partition of unity (piecewise constant,
    FEM, DG linear: exact); otherwise the exact L2 projection of the constant
    (Legendre: ``value`` on the constant polynomial, 0 elsewhere).
    """
    probes = basis.evaluate(np.linspace(basis.t0, basis.t1, UNITY_PROBES))
    if np.allclose(probes.sum(axis=1), 1.0, rtol=0.0, atol=1e-12):
        return np.full((basis.n, *shape), value, dtype=dtype)
    one = make_basis("piecewise_constant", 1, basis.interval)
    return projection.project(np.full((1, *shape), value, dtype=dtype), one, basis)


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


def _nonnegative_unity(basis):
    """Whether ``basis`` is a nonnegative partition of unity (checked at probes)."""
    pieces = np.linspace(basis.t0, basis.t1, UNITY_PROBES * basis.n_pieces)
    values = basis.evaluate(pieces)
    return bool(np.allclose(values.sum(axis=1), 1.0, rtol=0.0, atol=1e-12)
                and values.min() >= -1e-15)


#: Gauss-Legendre points per piece of the log-variance projection (``stats="positive"``).
LOG_GAUSS_POINTS = 8


def _log_projected(var, source, target, method):
    """Coefficients on ``target`` of ``log(var(t) + eps)``: its L2 projection
    (Gauss-Legendre on every piece of both bases) or its interpolation at the nodes."""
    if method == "interpolation":
        nodes = target.nodes()
        values = np.array([source.evaluate_at(x, side) for x, side in nodes]) @ var
        nodal = np.array([target.evaluate_at(x, side) for x, side in nodes])
        return np.linalg.solve(nodal, np.log(np.maximum(values + EPS, np.finfo(float).tiny)))
    edges = np.array([float(e) for e in union_breakpoints(source, target)])
    g, w = np.polynomial.legendre.leggauss(LOG_GAUSS_POINTS)
    mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
    unit = (mid[:, None] + half[:, None] * g).ravel()
    weights = (half[:, None] * w).ravel() * source.length
    t = source.t0 + source.length * unit
    values = source.evaluate(t) @ var
    logs = np.log(np.maximum(values + EPS, np.finfo(float).tiny))
    phi = target.evaluate(t)
    return scipy.linalg.solve(projection.mass(target), phi.T @ (weights[:, None] * logs),
                              assume_a="pos")


def positive_variance(var, source, block, method):
    """A running variance moved onto ``block.basis`` positively (``stats="positive"``).

    A departure from the plain L2 projection: the function ``u(t) = log(var(t) + eps)``
    is projected (``method="projection"``: L2 by Gauss-Legendre quadrature on every
    piece; ``"interpolation"``: at the target's nodes) and mapped back by
    ``exp(u) - eps``:

    - on a nonnegative partition of unity (piecewise constant, FEM, DG linear) the
      coefficients are ``exp(u_k) - eps``, so ``var(t) + eps > 0`` everywhere;
    - otherwise (Legendre, Chebyshev, Fourier) the samples ``v_i = exp(u(t_i)) - eps``
      at the block's stage points are fitted onto the basis by the least squares of
      training (:func:`refode.fit`); where the fit ``f`` falls below the floor
      ``f_i + eps >= (min_i v_i + eps) / 2`` at a stage, it is blended per channel
      with the constant ``m`` (the mean of the samples, exactly representable):
      ``(1 - a) f + a m`` with the smallest ``a`` in ``[0, 1]`` that meets the floor
      at every stage. The variance is then positive at every stage of the block
      (where the model evaluates it), not necessarily between them.

    Parameters
    ----------
    var : (K_source, C) coefficients on ``source``
    source : Basis
    block : StatefulODEBlock on the target basis, scheme and N
    method : {"projection", "interpolation"}

    Returns
    -------
    (K_target, C) array of the dtype of ``var``
    """
    target = block.basis
    u = _log_projected(np.asarray(var, np.float64), source, target, method)
    if _nonnegative_unity(target):
        out = np.exp(u) - EPS
    else:
        grid = block._grid()
        points = [(p, side) for row, sides in zip(grid.positions, grid.sides)
                  for p, side in zip(row, sides)]
        phi = design_matrix(points, target)
        samples = np.exp(phi @ u) - EPS
        fitted = projection.fit(points, samples, target, previous=np.exp(u) - EPS)
        floor = (samples.min(axis=0) + EPS) / 2 - EPS
        mean = samples.mean(axis=0)
        values = phi @ fitted
        low = values < floor
        need = np.where(low, (floor - values) / np.where(low, mean - values, 1.0), 0.0)
        blend = np.clip(need.max(axis=0), 0.0, 1.0)
        out = (1 - blend) * fitted + blend * (constant(target, mean.shape, 1.0, np.float64)
                                              * mean)
    return out.astype(np.asarray(var).dtype)


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
    """

    def __init__(self, basis, scheme, n_steps, params, state, checkpoint="all", slots=None,
                 rate_scale=1.0):
        super().__init__()
        self.basis, self.scheme, self.n_steps = basis, scheme, n_steps
        self.params, self.state = dict(params), dict(state)
        self.checkpoint, self.slots = checkpoint, slots
        self.rate_scale = float(rate_scale)

    def _grid(self):
        return stage_grid(self.basis, tableau(self.scheme), self.n_steps)

    def forward(self, x, train):
        rate = ConvRate(train, self.rate_scale)
        coefficients = dict(self.params) if train else {**self.params, **self.state}
        rate.record = [] if train else None
        try:
            h, backward = vjp(rate, x, coefficients, self.basis, scheme=self.scheme,
                              n_steps=self.n_steps, checkpoint=self.checkpoint, slots=self.slots)
            records = rate.record
        finally:
            rate.record = None  # the reverse pass must not record
        if train:
            self.state = self.refitted(records)
        return h, backward

    def backward(self, cache, dy):
        dx, dc = cache(dy)
        return dx, {name: dc[name] for name in self.params}

    def samples(self, records):
        """Stage samples ``s_i`` of the running statistics from recorded batch statistics.

        Parameters
        ----------
        records : list of ``N * s`` tuples ``(mean1, var1, mean2, var2)`` in stage order

        Returns
        -------
        points : list of ``(Fraction, side)``, the exact stage positions
        values : dict name -> ``(N * s, C)`` array, ``0.1 * b_i + 0.9 * s(t_i)``
        """
        grid = self._grid()
        points = [(p, side) for row, sides in zip(grid.positions, grid.sides)
                  for p, side in zip(row, sides)]
        supports = [sup for row in grid.supports for sup in row]
        if len(records) != len(points):
            raise RuntimeError(f"recorded {len(records)} stages, the grid has {len(points)}")
        values = {name: [] for name in STATS}
        for support, stats in zip(supports, records):
            old = stage_theta(self.state, support)
            for name, batch in zip(STATS, stats):
                values[name].append(_ops.running_update(old[name], batch))
        return points, {name: np.stack(v) for name, v in values.items()}

    def refitted(self, records):
        """New state coefficients: least-squares fit of :meth:`samples`, previous kept."""
        points, values = self.samples(records)
        return {name: projection.fit(points, values[name], self.basis, previous=self.state[name])
                for name in STATS}

    def rebased(self, basis, scheme, n_steps, method, stats="project"):
        """A new block with every coefficient array moved onto ``basis`` by ``method``.

        ``method`` is ``"projection"`` (exact L2 projection) or ``"interpolation"``.
        ``stats`` is ``"project"`` (the running statistics move like the weights) or
        ``"positive"`` (the variances move by :meth:`positive_variance`). Warns
        (:class:`~refode.errors.RefodeWarning`) when a moved running variance
        is not positive at a stage of the new grid (see :meth:`nonpositive_variances`);
        ``stats="recalibrate"`` moves them like the weights without warning (the
        caller re-estimates them, :meth:`recalibrated`).
        """
        change = {"projection": projection.project, "interpolation": projection.interpolate}
        move = change[method]
        block = StatefulODEBlock(
            basis, scheme, n_steps,
            {k: move(v, self.basis, basis) for k, v in self.params.items()},
            {k: move(v, self.basis, basis) for k, v in self.state.items()},
            self.checkpoint, self.slots, self.rate_scale)
        if stats == "positive":
            for name in STATS:
                if name.endswith("var"):
                    block.state[name] = positive_variance(self.state[name], self.basis, block,
                                                          method)
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
            (variances unbiased, as :meth:`samples` takes them), in stage order
        """
        rate = ConvRate(True, self.rate_scale)
        rate.record = []
        try:
            h, _ = vjp(rate, x, dict(self.params), self.basis, scheme=self.scheme,
                       n_steps=self.n_steps, checkpoint=self.checkpoint, slots=self.slots)
            records = rate.record
        finally:
            rate.record = None
        return h, records

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
        """
        points, _ = self.samples(batches[0])
        total = float(sum(sizes))
        out = {}
        for i, name in enumerate(STATS):
            stages = np.stack([np.stack([np.asarray(rec[i], np.float64) for rec in records])
                               for records in batches])  # (batches, stages, C)
            weights = np.asarray(sizes, np.float64)[:, None, None] / total
            mean = np.sum(stages * weights, axis=0)
            fitted = projection.fit(points, mean, self.basis,
                                    previous=np.asarray(self.state[name], np.float64))
            out[name] = fitted.astype(self.state[name].dtype)
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
        grid = self._grid()
        out = []
        for row, supports in zip(grid.positions, grid.supports):
            for position, support in zip(row, supports):
                values = stage_theta(self.state, support)
                for name in STATS:
                    if name.endswith("var"):
                        count = int(np.count_nonzero(~(values[name] + EPS > 0)))
                        if count:
                            out.append((name, position, count))
        return out
