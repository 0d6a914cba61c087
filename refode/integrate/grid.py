"""The fixed step grid over depth: exact stage positions, sides and sparse weights.

``N`` steps of a Runge-Kutta tableau ``(A, b, c)`` on ``[t0, t1]`` place stage ``i``
of step ``n`` at the *unit position*

    s_{n,i} = (n + c_i) / N          (an exact :class:`~fractions.Fraction`),

and the rate receives the float depth ``t = t0 + float(s) * (t1 - t0)``. There are
exactly ``N`` steps for every ``N`` (positions are built from integers, never from
a floating ``arange``, which yields ``N + 1`` steps for some ``N`` such as 49 or 98).

Which weights a stage sees (the one-sided convention)
-----------------------------------------------------
The weights ``theta(t) = sum_k phi_k(t) theta_k`` (paper, Eq. 3) of a discontinuous
basis have two values at a breakpoint. **Every stage uses the weights from inside
its step**: a stage at the end of its step (``c_i == 1``) takes the limit from the
left (``side="left"``); every other stage takes the limit from the right
(``side="right"``). The piece is decided by exact comparison of fractions
(:meth:`refode.Basis.support_at`). Consequences:

- Euler with a piecewise-constant basis and ``N = K`` uses piece ``n`` at step
  ``n`` for every ``K``: the block is a ResNet of ``K`` residual blocks, bit for
  bit. The original code used ``int(K * t)`` on a floating ``arange``, which picks
  the previous piece for ``N = K = 7, 9, 12, ...`` (for ``K = 7`` the fifth step
  starts at ``t = 0.7142857142857142`` below ``5/7``, so ``int(7 * t) = 4``);
- a midpoint stage on a breakpoint (``K = 2, N = 1, c = 1/2``) takes the right
  piece; a stage with ``c = 1`` (Heun, RK4, ...) takes the piece of its own step,
  the left one.

Reversed direction (the continuous adjoint)
-------------------------------------------
The backward sweep from ``t1`` to ``t0`` takes ``N`` steps of the same tableau
with ``dt < 0``: backward step ``m`` runs from unit position ``(N - m) / N`` down to
``(N - m - 1) / N`` and its stage ``i`` sits at ``(N - m - c_i) / N``. The same rule
(weights from inside the step) now reads: a stage at the end of the backward step
(``c_i == 1``, the step's left end) takes ``side="right"``; every other stage takes
``side="left"``.
"""
import functools
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from .. import limits
from ..errors import RefodeError
from . import _stages
from .tableau import tableau
from .weights import support, theta_at_support

#: side of a stage at the end of its step, and of every other stage, per direction.
END_SIDE = {"forward": "left", "backward": "right"}
INNER_SIDE = {"forward": "right", "backward": "left"}
#: directions a grid can run in.
DIRECTIONS = tuple(END_SIDE)
#: size of the per-process cache of grids (one entry per basis, tableau, N, direction).
GRID_CACHE_SIZE = 512


def stage_positions(n_steps, tab, direction="forward"):
    """Exact unit positions and sides of every stage.

    Parameters
    ----------
    n_steps : int
        Number of steps ``N >= 1``.
    tab : refode.Tableau
    direction : {"forward", "backward"}

    Returns
    -------
    positions : tuple of ``N`` tuples of ``s`` Fractions
        ``(n + c_i) / N`` forward, ``1 - (m + c_i) / N`` backward.
    sides : tuple of ``N`` tuples of ``s`` str
        ``"left"`` or ``"right"`` (see the module docstring).
    """
    n_steps = limits.n_steps(n_steps)
    sides = tuple(END_SIDE[direction] if c == 1 else INNER_SIDE[direction] for c in tab.c)
    positions = []
    for n in range(n_steps):
        forward = tuple((n + c) / Fraction(n_steps) for c in tab.c)
        positions.append(forward if direction == "forward" else tuple(1 - p for p in forward))
    return tuple(positions), (sides,) * n_steps


@dataclass(frozen=True)
class StageGrid:
    """Stages of ``N`` steps of one tableau on one basis, with their sparse weights.

    Attributes
    ----------
    n_steps : int
    dt : float
        Signed step ``(t1 - t0) / N`` (negative backward).
    positions, sides : see :func:`stage_positions` (``positions`` is a sequence of rows
        built on first access)
    times : (N, s) float64
        Stage depths ``t0 + float(position) * (t1 - t0)``, what the rate receives.
    supports : sequence of ``N`` tuples of ``s`` pairs ``(indices, weights)``
        The non-zero ``phi_k`` at each stage: ``indices`` a tuple of int, ``weights``
        a tuple of Python floats (so they do not promote float32 arrays).
    """

    n_steps: int
    dt: float
    positions: tuple
    sides: tuple
    times: np.ndarray
    supports: tuple


@functools.lru_cache(maxsize=GRID_CACHE_SIZE)
def stage_grid(basis, tab, n_steps, direction="forward"):
    """The :class:`StageGrid` of ``n_steps`` steps of ``tab`` on ``basis`` (cached).

    ``n_steps`` is checked against :data:`refode.limits.MAX_N_STEPS` first. The times
    are computed at once (vectorised, exact); the rows of ``positions`` and
    ``supports`` are sequences built on first access, a chunk of steps at a time
    (:mod:`refode.integrate._stages`), so that integration starts immediately for
    any ``N`` and a sweep over all stages stays fast.

    Parameters
    ----------
    basis : refode.Basis
        Its interval ``[t0, t1]`` is the integration interval.
    tab : refode.Tableau
    n_steps : int
    direction : {"forward", "backward"}
    """
    n_steps = limits.n_steps(n_steps)
    if direction not in DIRECTIONS:
        raise RefodeError(f"unknown `direction` {direction!r}; use one of "
                          f"{', '.join(DIRECTIONS)}")
    sides = tuple(END_SIDE[direction] if c == 1 else INNER_SIDE[direction] for c in tab.c)
    stages = _stages.Stages(n_steps, tab, direction)
    supports = _stages.Supports(basis, stages, sides, support)
    dt = basis.length / n_steps
    return StageGrid(
        n_steps=n_steps,
        dt=dt if direction == "forward" else -dt,
        positions=_stages.LazyRows(n_steps, stages.chunk, stages.positions),
        sides=(sides,) * n_steps,
        times=basis.t0 + stages.unit() * basis.length,
        supports=_stages.LazyRows(n_steps, supports.chunk, supports.rows),
    )


@dataclass(frozen=True)
class Stage:
    """One stage of the step grid, as the integrator reports it to an observer.

    Attributes
    ----------
    step, index : int
        Step ``n`` and stage ``i`` of the tableau.
    position : Fraction
        Exact unit position ``(n + c_i) / N`` (see the module docstring).
    side : {"right", "left"}
        The one-sided limit the stage's weights take.
    t : float
        The depth the rate receives.
    support : ``(indices, weights)``
        The non-zero ``phi_k`` at the stage (ints, Python floats).
    interval : (float, float)
        The basis interval ``(t0, t1)``.
    stats : object or None
        What the rate reported at the stage (``forward_stats``), None for a rate
        without statistics or for a stage of :func:`stages`.
    """

    step: int
    index: int
    position: Fraction
    side: str
    t: float
    support: tuple
    interval: tuple
    stats: object = None

    @property
    def depth(self):
        """The exact depth ``t0 + position * (t1 - t0)`` (Fraction): ``refode.theta``
        at ``(depth, side)`` is the weights the rate was handed."""
        lo, hi = (Fraction(v) for v in self.interval)
        return lo + self.position * (hi - lo)

    def theta(self, coefficients):
        """``{name: sum_k phi_k(t) c[k]}`` at this stage, bitwise what the rate sees
        (:func:`refode.integrate.weights.theta_at_support`)."""
        return theta_at_support(coefficients, self.support)


def stage_at(grid, basis, n, i, stats=None):
    """The :class:`Stage` record of stage ``i`` of step ``n`` of ``grid``."""
    return Stage(n, i, grid.positions[n][i], grid.sides[n][i], float(grid.times[n][i]),
                 grid.supports[n][i], basis.interval, stats)


def stages(basis, scheme, n_steps, direction="forward"):
    """The stages of ``n_steps`` steps of ``scheme`` on ``basis``, in integration order.

    Parameters
    ----------
    basis : refode.Basis
    scheme : str or refode.Tableau
    n_steps : int
    direction : {"forward", "backward"}

    Returns
    -------
    list of :class:`Stage` (``N * s`` records, ``stats`` None)
    """
    grid = stage_grid(basis, tableau(scheme), n_steps, direction)
    return [Stage(n, i, p, side, t, sup, basis.interval)
            for n, (row, sides, times, sups) in enumerate(
                zip(grid.positions, grid.sides, grid.times.tolist(), grid.supports))
            for i, (p, side, t, sup) in enumerate(zip(row, sides, times, sups))]
