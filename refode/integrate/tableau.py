"""Explicit Runge-Kutta methods as data: Butcher tableaus registered by name.

A tableau checks itself on construction (explicit, row sums equal ``c``, weights
sum to one). Coefficients are kept as exact fractions, so that stage positions on
the step grid are exact; float arrays are derived from them.
"""
from dataclasses import dataclass, field
from fractions import Fraction

import numpy as np

from ..errors import TableauError

#: absolute tolerance of the consistency checks for tableaus given as floats.
CONSISTENCY_ATOL = 1e-14

_REGISTRY = {}


def _fractions(values, name):
    try:
        return tuple(Fraction(v) for v in values)
    except (TypeError, ValueError):
        raise TableauError(f"tableau `{name}` must hold numbers, got {values!r}") from None


@dataclass(frozen=True)
class Tableau:
    """An explicit Runge-Kutta method ``(A, b, c)``.

    Stages: ``Y_i = h + dt * sum_{j<i} a_ij k_j``, ``k_i = R(t_n + c_i dt, Y_i)``;
    step: ``h_{n+1} = h_n + dt * sum_i b_i k_i``.

    Parameters
    ----------
    name : str
    a : sequence of sequences, strictly lower triangular ``(s, s)``
    b : sequence ``(s,)``
    c : sequence ``(s,)``, in ``[0, 1]``
    order : int
        Classical order of the method (checked by the convergence tests).
    """

    name: str
    a: tuple
    b: tuple
    c: tuple
    order: int
    A: np.ndarray = field(init=False, repr=False, compare=False)
    B: np.ndarray = field(init=False, repr=False, compare=False)
    C: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        a = tuple(_fractions(row, "a") for row in self.a)
        b = _fractions(self.b, "b")
        c = _fractions(self.c, "c")
        s = len(b)
        if s < 1:
            raise TableauError(f"tableau {self.name!r} has no stages")
        if len(c) != s or len(a) != s or any(len(row) != s for row in a):
            raise TableauError(
                f"tableau {self.name!r}: `a` must be ({s}, {s}) and `c` ({s},) to match `b`"
            )
        for i in range(s):
            if any(a[i][j] != 0 for j in range(i, s)):
                raise TableauError(
                    f"tableau {self.name!r} is not explicit: `a` must be strictly lower "
                    "triangular (zeros on and above the diagonal)"
                )
            if abs(float(sum(a[i]) - c[i])) > CONSISTENCY_ATOL:
                raise TableauError(
                    f"tableau {self.name!r}: row {i} of `a` sums to {float(sum(a[i]))} "
                    f"but c[{i}] = {float(c[i])}; each row of `a` must sum to its c"
                )
            if not 0 <= c[i] <= 1:
                raise TableauError(f"tableau {self.name!r}: c[{i}] = {float(c[i])} is outside [0, 1]")
        if abs(float(sum(b) - 1)) > CONSISTENCY_ATOL:
            raise TableauError(
                f"tableau {self.name!r}: the weights `b` sum to {float(sum(b))}; they must sum to 1"
            )
        if not isinstance(self.order, int) or self.order < 1:
            raise TableauError(f"tableau {self.name!r}: `order` must be a positive integer")
        object.__setattr__(self, "a", a)
        object.__setattr__(self, "b", b)
        object.__setattr__(self, "c", c)
        object.__setattr__(self, "A", np.array([[float(v) for v in row] for row in a]))
        object.__setattr__(self, "B", np.array([float(v) for v in b]))
        object.__setattr__(self, "C", np.array([float(v) for v in c]))

    @property
    def stages(self):
        """Number of stages ``s``."""
        return len(self.b)


def register(tab):
    """Register a :class:`Tableau` under its name (names are unique)."""
    if tab.name in _REGISTRY:
        raise TableauError(f"tableau {tab.name!r} is registered twice")
    _REGISTRY[tab.name] = tab
    return tab


def tableaus():
    """Names of the registered tableaus, sorted."""
    return tuple(sorted(_REGISTRY))


def tableau(name):
    """Return the registered tableau ``name``, or a :class:`Tableau` passed through."""
    if isinstance(name, Tableau):
        return name
    if name not in _REGISTRY:
        raise TableauError(
            f"unknown scheme {name!r}; choose one of {', '.join(tableaus())} "
            "or pass a refode.Tableau"
        )
    return _REGISTRY[name]


F = Fraction
register(Tableau("euler", a=[[0]], b=[1], c=[0], order=1))
register(Tableau("midpoint", a=[[0, 0], [F(1, 2), 0]], b=[0, 1], c=[0, F(1, 2)], order=2))
register(Tableau("heun", a=[[0, 0], [1, 0]], b=[F(1, 2), F(1, 2)], c=[0, 1], order=2))
register(Tableau("ralston", a=[[0, 0], [F(2, 3), 0]], b=[F(1, 4), F(3, 4)], c=[0, F(2, 3)], order=2))
register(Tableau(
    "kutta3",
    a=[[0, 0, 0], [F(1, 2), 0, 0], [-1, 2, 0]],
    b=[F(1, 6), F(2, 3), F(1, 6)], c=[0, F(1, 2), 1], order=3,
))
register(Tableau(
    "ssprk3",
    a=[[0, 0, 0], [1, 0, 0], [F(1, 4), F(1, 4), 0]],
    b=[F(1, 6), F(1, 6), F(2, 3)], c=[0, 1, F(1, 2)], order=3,
))
register(Tableau(
    "rk4",
    a=[[0, 0, 0, 0], [F(1, 2), 0, 0, 0], [0, F(1, 2), 0, 0], [0, 0, 1, 0]],
    b=[F(1, 6), F(1, 3), F(1, 3), F(1, 6)], c=[0, F(1, 2), F(1, 2), 1], order=4,
))
register(Tableau(
    "rk4_38",
    a=[[0, 0, 0, 0], [F(1, 3), 0, 0, 0], [F(-1, 3), 1, 0, 0], [1, -1, 1, 0]],
    b=[F(1, 8), F(3, 8), F(3, 8), F(1, 8)], c=[0, F(1, 3), F(2, 3), 1], order=4,
))
del F
