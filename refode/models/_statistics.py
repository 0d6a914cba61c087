"""Running statistics of a stateful ODE-block on a basis: :func:`constant` (the initial
statistics) and :func:`positive_variance` (``stats="positive"`` of
:meth:`refode.models.stateful.StatefulODEBlock.rebased`).
"""
import numpy as np
import scipy.linalg

from .. import projection
from ..bases import basis as make_basis
from ..constants import BN_EPS as EPS
from ..projection.fit import design_matrix
from ..projection.mass import union_breakpoints

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
        points = [(stage.position, stage.side) for stage in block.stages()]
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
