"""Integration over depth: tableaus, the exact step grid, ``odeint`` and its gradients.

- :mod:`.tableau`: explicit Runge-Kutta methods as data;
- :mod:`.grid`: exact stage positions, one-sided sides and sparse basis weights;
- :mod:`.odeint`: fixed-step integration of ``dh/dt = R(theta(t), h)``;
- :mod:`.adjoint`: discrete (exact) and continuous (backsolve) gradients, and ``vjp``
  (one forward pass, the discrete reverse pass on demand);
- :mod:`.checkpoint`: memory strategies of the discrete adjoint.
"""
from .. import rates
from .adjoint import gradient, vjp
from .checkpoint import CheckpointStats
from .odeint import odeint

__all__ = ["odeint", "gradient", "vjp", "CheckpointStats", "rates"]
