"""Memory strategies of the discrete adjoint: which states are kept, which recomputed.

A strategy is an object with two methods, shared by :func:`refode.gradient` (forward,
then reverse at once) and :func:`refode.integrate.vjp` (forward now, reverse later):

- ``forward(sweep, h0) -> (hT, memory)``: the one forward sweep; every step runs once,
  in order, and is reported to the sweep's observer; ``memory`` is what it kept;
- ``reverse(sweep, memory, lam, consume=False) -> dL/dh0``: reverses the steps
  ``N-1 .. 0`` from ``lam = dL/dh(t1)``, recomputing what was not kept (never
  observed). ``memory`` is left intact unless ``consume`` (so ``vjp``'s ``backward``
  can run again).

All strategies reverse with the same step functions, and every recomputed step repeats
the arithmetic of the first one, so their gradients are bitwise identical; they differ
only in memory and work:

:class:`All` (``"all"``)
    the forward sweep keeps every stage state (``N * s`` arrays);
:class:`Steps` (``"steps"``)
    the forward sweep keeps the state at each step start (``N`` arrays); a step's
    stages are recomputed just before it is reversed (every step runs twice);
:class:`Binomial` (``"binomial"``, ``slots``)
    Griewank's binomial checkpointing (the schedule of *revolve*) with at most
    ``slots`` step states held at once, ``h0`` included. With ``s`` slots and ``r``
    repetitions, ``beta(s, r) = C(s + r, s)`` steps can be reversed, each step run
    forward at most ``r`` times before the run that reverses it. The forward sweep is
    revolve's first descent: it places the checkpoints and keeps the stages of the
    last step, so the reverse pass runs no step beyond the schedule.

A :class:`CheckpointStats` passed to :func:`refode.gradient` records what a run held
and recomputed, so tests can check these bounds.
"""
from dataclasses import dataclass, field
from math import comb

import numpy as np

from .. import _validate
from ..errors import RefodeError


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


class All:
    """Keep every stage state of the forward sweep (``checkpoint="all"``)."""

    name = "all"

    def forward(self, sweep, h0):
        """``(h(t1), stage records of every step)``."""
        kept, h = [], h0
        for n in range(sweep.n_steps):
            stages = []
            h = sweep.advance(n, h, stages, observe=True)
            sweep.stats.hold(len(stages))
            kept.append(stages)
        return h, kept

    def reverse(self, sweep, kept, lam, consume=False):
        for n in reversed(range(sweep.n_steps)):
            lam = sweep.reverse(n, kept.pop() if consume else kept[n], lam)
        return lam


class Steps:
    """Keep each step's start state; recompute a step's stages before reversing it."""

    name = "steps"

    def forward(self, sweep, h0):
        """``(h(t1), the state at every step start)``."""
        starts, h = [], h0
        for n in range(sweep.n_steps):
            starts.append(h)
            sweep.stats.hold()
            h = sweep.advance(n, h, observe=True)
        return h, starts

    def reverse(self, sweep, starts, lam, consume=False):
        for n in reversed(range(sweep.n_steps)):
            lam = _reverse_one(sweep, n, starts.pop() if consume else starts[n], lam)
        return lam


class Binomial:
    """Binomial checkpointing with at most ``slots`` step states held at once.

    Parameters
    ----------
    slots : int >= 1
    """

    name = "binomial"

    def __init__(self, slots):
        self.slots = _validate.positive_int(slots, "slots")

    def forward(self, sweep, h0):
        """Revolve's first descent: ``(h(t1), (frames, leaf, stages of the last step))``.

        ``frames`` are the split points ``(first, h, m1, slots)`` whose left parts are
        reversed after their right parts; ``leaf = (first, h, m, slots)`` is the last
        part (``m == 1`` or ``slots == 1``).
        """
        sweep.stats.hold()   # h0
        frames, first, h, m, slots = [], 0, h0, sweep.n_steps, self.slots
        while m > 1 and slots > 1:
            m1 = max(1, m - beta(slots - 1, repetitions_needed(slots, m)))
            mid = _run(sweep, first, h, m1, observe=True)
            sweep.stats.hold()
            frames.append((first, h, m1, slots))
            first, h, m, slots = first + m1, mid, m - m1, slots - 1
        stages = []
        last = _run(sweep, first, h, m - 1, observe=True)
        hT = sweep.advance(first + m - 1, last, stages, observe=True)
        return hT, [frames, (first, h, m, slots), stages]

    def reverse(self, sweep, memory, lam, consume=False):
        """With ``consume``, ``memory`` is emptied first and each part is dropped once
        reversed, so at most ``slots`` step states are alive at any time (the count
        :class:`CheckpointStats` keeps); without it the forward's checkpoints stay
        alive beside the reverse pass's own."""
        frames, (first, h, m, slots), stages = memory
        frames = list(frames)
        if consume:
            memory.clear()
        lam = sweep.reverse(first + m - 1, stages, lam)
        del stages
        for j in reversed(range(m - 1)):   # slots == 1: the rest of the leaf from h
            lam = _reverse_one(sweep, first + j, _run(sweep, first, h, j), lam)
        del h
        while frames:
            first, h, m1, slots = frames.pop()
            sweep.stats.release()
            lam = _revolve(sweep, first, h, m1, slots, lam, sweep.stats)
            del h
        return lam


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
    del mid  # released: not alive during the left part
    stats.release()
    return _revolve(sweep, first, h, m1, slots, lam, stats)


def _run(sweep, first, h, count, observe=False):
    for n in range(first, first + count):
        h = sweep.advance(n, h, observe=observe)
    return h


#: strategy name -> class (``Binomial`` takes ``slots``).
STRATEGIES = {"all": All, "steps": Steps, "binomial": Binomial}


def strategy(checkpoint, slots=None):
    """The strategy object of ``checkpoint`` (a name of :data:`STRATEGIES` or a strategy).

    Raises
    ------
    RefodeError
        Unknown name; ``slots`` missing for ``"binomial"``, or given for another
        strategy or together with a strategy object.
    """
    if not isinstance(checkpoint, str):
        if not (callable(getattr(checkpoint, "forward", None))
                and callable(getattr(checkpoint, "reverse", None))):
            raise RefodeError(
                f"`checkpoint` must be one of {', '.join(STRATEGIES)} or a strategy such as "
                f"refode.integrate.checkpoint.Binomial(slots), got {type(checkpoint).__name__}")
        if slots is not None:
            raise RefodeError("`slots` goes into the strategy object (Binomial(slots)); "
                              "leave `slots` out when `checkpoint` is an object")
        return checkpoint
    if checkpoint not in STRATEGIES:
        raise RefodeError(
            f"unknown `checkpoint` {checkpoint!r}; choose one of {', '.join(STRATEGIES)}")
    if checkpoint == "binomial":
        if slots is None:
            raise RefodeError("checkpoint='binomial' needs `slots`: pass slots=<int >= 1>")
        return Binomial(slots)
    if slots is not None:
        raise RefodeError(
            f"`slots` applies to checkpoint='binomial' only; leave it out for {checkpoint!r}")
    return STRATEGIES[checkpoint]()
