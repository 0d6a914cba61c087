"""Integration over depth: tableaus, the exact step grid, ``odeint`` and its gradients.

- :mod:`.tableau`: explicit Runge-Kutta methods as data;
- :mod:`.grid`: exact stage positions, one-sided sides and sparse basis weights; the
  :class:`~.grid.Stage` records an observer receives;
- :mod:`.weights`: ``theta(t) = sum_k phi_k(t) theta_k``, the one definition of the weights
  at a depth (public as :func:`refode.theta`);
- :mod:`.odeint`: the rate protocol and fixed-step integration of ``dh/dt = R(theta(t), h)``
  (``trajectory=True``: a :class:`~.odeint.Solution`); :mod:`._problem` validates its inputs;
- :mod:`.adjoint`: discrete (exact) and continuous (backsolve) gradients, and ``vjp``
  (one forward pass, the discrete reverse pass on demand);
- :mod:`.checkpoint`: memory strategies of the discrete adjoint (``All``, ``Steps``,
  ``Binomial``), shared by ``gradient`` and ``vjp``.
"""
from .. import rates
from .adjoint import gradient, vjp
from .checkpoint import All, Binomial, CheckpointStats, Steps
from .grid import Stage, stages
from .odeint import Solution, odeint
from .weights import theta

__all__ = ["odeint", "gradient", "vjp", "theta", "Solution", "CheckpointStats", "All",
           "Steps", "Binomial", "Stage", "stages", "rates"]
