"""Exact, vectorised construction of the stage grid's rows, built lazily in chunks.

Stage ``i`` of step ``n`` sits at the unit position ``(n + c_i) / N``. With ``L`` the
least common multiple of the denominators of the tableau's ``c``, every position is
``P / D`` with the common denominator ``D = N L`` and the integer numerator
``P = n L + c_i L`` (``D - P`` backward). So the piece of a stage is found by integer
comparisons with per-breakpoint thresholds (exact, no float lookup), and its local
coordinate ``(P/D - lo) / (hi - lo)`` is the quotient of two integers below ``2**53``:
the float64 division of two exactly represented integers is correctly rounded, i.e.
bitwise ``float(Fraction(...))``, what :meth:`refode.Basis.evaluate_at` computes.
Where the integers could exceed ``2**53`` (exotic breakpoints or tableaus) or a basis
overrides the exact evaluation, the rows are built stage by stage with Fractions.

The rows (positions as Fractions, supports as tuples) are built on first access, a
chunk of steps at a time, and kept: integration starts at once for any ``N``, and a
sweep over every stage costs about a microsecond per stage.
"""
import gc
import math
from collections.abc import Sequence
from fractions import Fraction

import numpy as np

from ..bases import Basis

#: integers below this are exact in float64.
EXACT_INT = 2 ** 53
#: most stages per chunk, and most basis values (stages x K) evaluated at once.
CHUNK_STAGES, CHUNK_VALUES = 8192, 1 << 22
#: methods whose base-class versions the fast path reproduces.
EXACT_METHODS = ("piece_at", "evaluate_at", "support_at", "_local")


class LazyRows(Sequence):
    """``n_rows`` rows built by ``build(lo, hi) -> list`` a chunk at a time, then kept."""

    def __init__(self, n_rows, chunk, build):
        self._n, self._chunk, self._build, self._chunks = n_rows, chunk, build, {}

    def __len__(self):
        return self._n

    def _rows(self, c):
        rows = self._chunks.get(c)
        if rows is None:
            enabled = gc.isenabled()
            gc.disable()   # the rows are many small acyclic tuples: no cycles to collect
            try:
                rows = self._build(c * self._chunk, min(self._n, (c + 1) * self._chunk))
            finally:
                if enabled:
                    gc.enable()
            self._chunks[c] = rows
        return rows

    def __getitem__(self, n):
        if isinstance(n, slice):
            return tuple(self[i] for i in range(*n.indices(self._n)))
        n = int(n) + (self._n if n < 0 else 0)
        if not 0 <= n < self._n:
            raise IndexError(f"row {n} of {self._n}")
        return self._rows(n // self._chunk)[n % self._chunk]

    def __iter__(self):
        for c in range(-(-self._n // self._chunk)):
            yield from self._rows(c)

    def __eq__(self, other):
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    def __hash__(self):
        return id(self)

    def __repr__(self):
        return f"<{self._n} stage rows>"


class Stages:
    """The integer numerators ``P`` over ``D`` of the stages of ``N`` steps of ``tab``."""

    def __init__(self, n_steps, tab, direction):
        self.n_steps, self.forward = n_steps, direction == "forward"
        self.lcm = math.lcm(*(Fraction(c).denominator for c in tab.c))
        self.denominator = n_steps * self.lcm
        self.offsets = [int(Fraction(c) * self.lcm) for c in tab.c]
        self.exact = self.denominator < EXACT_INT
        self.chunk = max(1, CHUNK_STAGES // len(self.offsets))

    def numerators(self, lo, hi):
        """``(hi - lo, s)`` int64 numerators of steps ``lo .. hi - 1``."""
        steps = np.arange(lo, hi, dtype=np.int64)[:, None] * self.lcm
        p = steps + np.asarray(self.offsets, dtype=np.int64)[None, :]
        return p if self.forward else self.denominator - p

    def positions(self, lo, hi):
        """Rows of exact positions (Fractions) of steps ``lo .. hi - 1``."""
        d = self.denominator
        return [tuple(Fraction(int(p), d) for p in row) for row in self.numerators(lo, hi)]

    def unit(self):
        """``(N, s)`` float64 positions, each the correctly rounded ``P / D``."""
        if self.exact:
            return self.numerators(0, self.n_steps).astype(np.float64) / self.denominator
        return np.array([[float(p) for p in row] for row in self.positions(0, self.n_steps)])


class Supports:
    """Builds the rows of sparse weights ``(indices, weights)`` of a basis at the stages."""

    def __init__(self, basis, stages, sides, sparse):
        self.basis, self.stages, self.sides, self.sparse = basis, stages, sides, sparse
        d, breaks = stages.denominator, basis.unit_breakpoints
        lo, width = breaks[:-1], [b - a for a, b in zip(breaks[:-1], breaks[1:])]
        self.lo_n, self.lo_d = _ints(f.numerator for f in lo), _ints(f.denominator for f in lo)
        self.w_n, self.w_d = (_ints(f.numerator for f in width),
                              _ints(f.denominator for f in width))
        bound = max(int(self.lo_d.max()) * d * 2 * int(self.w_d.max()),
                    d * int(self.lo_d.max()) * int(self.w_n.max()))
        overridden = any(getattr(type(basis), m) is not getattr(Basis, m) for m in EXACT_METHODS)
        self.fast = stages.exact and bound < EXACT_INT and not overridden
        # threshold numerators: position P/D >= b_j  <=>  P >= ceil(b_j D)   (side right)
        #                       position P/D >  b_j  <=>  P >= floor(b_j D) + 1 (side left)
        self.thresholds = {
            "right": _ints(-((-f.numerator * d) // f.denominator) for f in breaks),
            "left": _ints((f.numerator * d) // f.denominator + 1 for f in breaks)}
        per_stage = len(sides) * basis.n
        self.chunk = max(1, min(stages.chunk, CHUNK_VALUES // per_stage))

    def rows(self, lo, hi):
        """Rows of supports of steps ``lo .. hi - 1`` (tuples of ``(indices, weights)``)."""
        if not self.fast:
            d = self.stages.denominator
            return [tuple(self.sparse(self.basis, Fraction(int(p), d), side)
                          for p, side in zip(row, self.sides))
                    for row in self.stages.numerators(lo, hi)]
        p = self.stages.numerators(lo, hi)
        n_pieces = self.basis.n_pieces
        pieces = np.stack([np.searchsorted(self.thresholds[side], p[:, i], side="right") - 1
                           for i, side in enumerate(self.sides)], axis=1)
        pieces = np.clip(pieces, 0, n_pieces - 1).ravel()
        p, d = p.ravel(), self.stages.denominator
        num = (p * self.lo_d[pieces] - self.lo_n[pieces] * d) * self.w_d[pieces]
        xi = num.astype(np.float64) / (d * self.lo_d[pieces] * self.w_n[pieces]).astype(np.float64)
        flat = [None] * p.size
        order = np.argsort(pieces, kind="stable")
        found, starts = np.unique(pieces[order], return_index=True)
        for piece, where in zip(found.tolist(), np.split(order, starts[1:])):
            columns, values = self.basis._piece_support(piece, xi[where])
            columns = tuple(columns.tolist())
            dense = (values != 0.0).all(axis=1).tolist()
            for at, row, full in zip(where.tolist(), values.tolist(), dense):
                if full:   # the usual case: every column of the piece is non-zero here
                    flat[at] = (columns, tuple(row))
                else:      # drop exact zeros, as flatnonzero does in Basis.support_at
                    kept = [(k, v) for k, v in zip(columns, row) if v != 0.0]
                    flat[at] = (tuple(k for k, _ in kept), tuple(v for _, v in kept))
        s = len(self.sides)
        return [tuple(flat[j:j + s]) for j in range(0, len(flat), s)]


def _ints(values):
    """Python ints as an int64 array (object dtype if any does not fit)."""
    values = list(values)
    if all(abs(v) < EXACT_INT for v in values):
        return np.asarray(values, dtype=np.int64)
    return np.asarray(values, dtype=object)
