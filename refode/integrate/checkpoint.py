"""Memory strategies of the discrete adjoint: which states are kept, which recomputed.

All strategies reverse the steps in the order ``N-1 .. 0`` with the same step
functions, and every recomputed step repeats the arithmetic of the first one, so
their gradients are bitwise identical; they differ only in memory and work:

``"all"``
    one forward sweep keeps every stage state (``N * s`` arrays);
``"steps"``
    one forward sweep keeps the state at each step start (``N`` arrays); a step's
    stages are recomputed just before it is reversed (every step runs twice);
``"binomial"``
    Griewank's binomial checkpointing (the schedule of *revolve*) with at most
    ``slots`` step states held at once, ``h0`` included. With ``s`` slots and ``r``
    repetitions, ``beta(s, r) = C(s + r, s)`` steps can be reversed, each step run
    forward at most ``r`` times before the run that reverses it.

A :class:`CheckpointStats` passed to :func:`refode.gradient` records what a run held
and recomputed, so tests can check these bounds.
"""
from dataclasses import dataclass, field
from math import comb

import numpy as np


def beta(slots, repetitions):
    """Steps reversible with ``slots`` checkpoints and ``repetitions``: ``C(s + r, s)``."""
    return comb(slots + repetitions, slots)


def repetitions_needed(slots, n_steps):
    """Smallest ``r`` with ``beta(slots, r) >= n_steps``."""
    r = 0
    while beta(slots, r) < n_steps:
        r += 1
    return r


@dataclass
class CheckpointStats:
    """What one discrete-adjoint run kept and recomputed (filled by :func:`refode.gradient`).

    Attributes
    ----------
    strategy : str
    peak_states : int
        Most checkpointed arrays held at once: step states (``"steps"``,
        ``"binomial"``) or stage states (``"all"``). The stage states of the one
        step being reversed are working memory and are not counted.
    runs : (N,) int ndarray
        How many times each step was run forward, the run that reverses it included.
    """

    strategy: str = ""
    peak_states: int = 0
    runs: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    _held: int = field(default=0, repr=False)

    def start(self, strategy, n_steps):
        self.strategy, self.peak_states, self._held = strategy, 0, 0
        self.runs = np.zeros(n_steps, dtype=np.int64)

    def hold(self, count=1):
        self._held += count
        self.peak_states = max(self.peak_states, self._held)

    def release(self, count=1):
        self._held -= count

    @property
    def recomputed_steps(self):
        """Step runs beyond one forward sweep: ``sum(runs) - N``."""
        return int(self.runs.sum()) - self.runs.size


def reverse_all(sweep, h0, lam, stats, slots):
    """Keep every stage state in one forward sweep, then reverse."""
    kept, h = [], h0
    for n in range(sweep.n_steps):
        stages = []
        h = sweep.advance(n, h, stages)
        stats.hold(len(stages))
        kept.append(stages)
    for n in reversed(range(sweep.n_steps)):
        lam = sweep.reverse(n, kept.pop(), lam)
    return lam


def reverse_steps(sweep, h0, lam, stats, slots):
    """Keep each step's start state; recompute a step's stages before reversing it."""
    starts, h = [], h0
    for n in range(sweep.n_steps):
        starts.append(h)
        stats.hold()
        h = sweep.advance(n, h)
    for n in reversed(range(sweep.n_steps)):
        lam = _reverse_one(sweep, n, starts.pop(), lam)
    return lam


def reverse_binomial(sweep, h0, lam, stats, slots):
    """Binomial checkpointing with at most ``slots`` step states held at once."""
    stats.hold()
    return _revolve(sweep, 0, h0, sweep.n_steps, slots, lam, stats)


def _reverse_one(sweep, n, h, lam):
    stages = []
    sweep.advance(n, h, stages)
    return sweep.reverse(n, stages, lam)


def _revolve(sweep, first, h, m, slots, lam, stats):
    """Reverse steps ``first .. first+m-1`` from the held state ``h`` at ``first``.

    ``slots`` counts the checkpoints this call may hold, ``h`` included. Splits at
    ``m1 = m - beta(slots-1, r)`` so that the right part fits ``slots-1`` slots and
    the left part ``r-1`` repetitions (``beta(s, r) = beta(s-1, r) + beta(s, r-1)``).
    """
    if m == 1:
        return _reverse_one(sweep, first, h, lam)
    if slots == 1:
        for j in reversed(range(m)):
            lam = _reverse_one(sweep, first + j, _run(sweep, first, h, j), lam)
        return lam
    r = repetitions_needed(slots, m)
    m1 = max(1, m - beta(slots - 1, r))
    mid = _run(sweep, first, h, m1)
    stats.hold()
    lam = _revolve(sweep, first + m1, mid, m - m1, slots - 1, lam, stats)
    stats.release()
    return _revolve(sweep, first, h, m1, slots, lam, stats)


def _run(sweep, first, h, count):
    for n in range(first, first + count):
        h = sweep.advance(n, h)
    return h


#: checkpoint strategy name -> function ``(sweep, h0, lam, stats, slots) -> dL/dh0``.
STRATEGIES = {"all": reverse_all, "steps": reverse_steps, "binomial": reverse_binomial}
