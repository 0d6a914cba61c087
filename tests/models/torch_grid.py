"""The stage grid of the PyTorch peers, written from docs/format.md 4.2-4.6 alone.

Nothing here imports refode: the peers (:mod:`.torch_continuousnet`, :mod:`.torch_tagger`)
compute every stage's exact position, its one-sided side and its basis weights with this
code, so a wrong piece choice in refode (``refode.integrate.grid``) makes them disagree.
Unlike the other two spec-written grids (``validation/torch_impl/grid.py`` and
``tests/spec/torch_from_spec.py``, which use the ``floor``/``ceil`` formula of 4.3 for
equal pieces), the piece is found here from the *definition* of 4.3, by exact comparison
of the position with the list of breakpoints, so the three do not share a mistake.

A basis is described by plain values ``(family, K, (t0, t1))``; :func:`describe` reads
them from a refode ``Basis`` (its ``family``, ``n`` and ``interval`` attributes) or
accepts the tuple itself.
"""
import math
from fractions import Fraction as Fr

#: explicit tableaus of format.md 4.4: ``(c, b, a rows below the diagonal)``, exact.
TABLEAUS = {
    "euler": ([0], [1], [[]]),
    "midpoint": ([0, Fr(1, 2)], [0, 1], [[], [Fr(1, 2)]]),
    "heun": ([0, 1], [Fr(1, 2), Fr(1, 2)], [[], [1]]),
    "ralston": ([0, Fr(2, 3)], [Fr(1, 4), Fr(3, 4)], [[], [Fr(2, 3)]]),
    "kutta3": ([0, Fr(1, 2), 1], [Fr(1, 6), Fr(2, 3), Fr(1, 6)], [[], [Fr(1, 2)], [-1, 2]]),
    "ssprk3": ([0, 1, Fr(1, 2)], [Fr(1, 6), Fr(1, 6), Fr(2, 3)], [[], [1], [Fr(1, 4), Fr(1, 4)]]),
    "rk4": ([0, Fr(1, 2), Fr(1, 2), 1], [Fr(1, 6), Fr(1, 3), Fr(1, 3), Fr(1, 6)],
            [[], [Fr(1, 2)], [0, Fr(1, 2)], [0, 0, 1]]),
    "rk4_38": ([0, Fr(1, 3), Fr(2, 3), 1], [Fr(1, 8), Fr(3, 8), Fr(3, 8), Fr(1, 8)],
               [[], [Fr(1, 3)], [Fr(-1, 3), 1], [1, -1, 1]]),
}
#: the side of a stage that ends its step (``c_i == 1``) and of every other stage (4.5).
END_SIDE, INNER_SIDE = "left", "right"


def describe(basis):
    """``(family, K, (t0, t1))`` of a refode ``Basis`` or of such a tuple."""
    if isinstance(basis, tuple):
        family, k, *rest = basis
        return family, int(k), tuple(float(v) for v in (rest[0] if rest else (0.0, 1.0)))
    return basis.family, int(basis.n), tuple(float(v) for v in basis.interval)


def breakpoints(family, k):
    """Unit breakpoints ``b_0 = 0 < ... < b_P = 1`` of 4.2, exact."""
    pieces = {"piecewise_constant": k, "piecewise_linear": k // 2, "fem_linear": k - 1}
    p_count = pieces.get(family, 1)
    return [Fr(p, p_count) for p in range(p_count + 1)]


def piece(edges, x, side):
    """4.3 from its definition: right, the largest ``p`` with ``b_p <= x``; left, the
    smallest ``j`` with ``b_j >= x``, minus one; clipped to ``[0, P - 1]``."""
    last = len(edges) - 2
    if side == "right":
        p = max(j for j, b in enumerate(edges) if b <= x)
    elif side == "left":
        p = min(j for j, b in enumerate(edges) if b >= x) - 1
    else:
        raise ValueError(f"side must be 'left' or 'right', got {side!r}")
    return min(max(p, 0), last)


def _recurrence(k, s, step):
    """``[f_0, ..., f_{k-1}]``: ``f_0 = 1``, ``f_1 = s``, ``f_{j+1} = step(j, f_j, f_{j-1})``."""
    vals = [1.0, s][:k]
    while len(vals) < k:
        j = len(vals) - 1
        vals.append(step(j, vals[j], vals[j - 1]))
    return vals


def basis_values(family, k, interval, x, side):
    """Non-zero ``(indices, weights)`` of the ``phi_k`` at exact unit position ``x`` (4.2).

    Weights are float64 (Python floats) from the float64 of the exact local coordinate;
    indices increase; exact zeros are dropped.
    """
    t0, t1 = interval
    length = t1 - t0
    edges = breakpoints(family, k)
    p = piece(edges, Fr(x), side)
    xi = float((Fr(x) - edges[p]) / (edges[p + 1] - edges[p]))
    if family == "piecewise_constant":
        pairs = [(p, 1.0)]
    elif family == "piecewise_linear":
        pairs = [(2 * p, 1.0 - xi), (2 * p + 1, xi)]
    elif family == "fem_linear":
        pairs = [(p, 1.0 - xi), (p + 1, xi)]
    elif family == "poly_linear":
        pairs = [(0, 1.0), (1, t0 + float(x) * length)]
    elif family == "legendre":
        s = 2.0 * xi - 1.0
        vals = _recurrence(k, s, lambda j, cur, prev: ((2 * j + 1) * s * cur - j * prev) / (j + 1))
        pairs = [(j, math.sqrt((2 * j + 1) / length) * v) for j, v in enumerate(vals)]
    elif family == "chebyshev":
        s = 2.0 * xi - 1.0
        pairs = list(enumerate(_recurrence(k, s, lambda j, cur, prev: 2 * s * cur - prev)))
    elif family == "fourier":
        pairs = [(0, 1.0)]
        for m in range(1, (k - 1) // 2 + 1):
            pairs += [(2 * m - 1, math.cos(2 * math.pi * m * xi)),
                      (2 * m, math.sin(2 * math.pi * m * xi))]
    else:
        raise ValueError(f"unknown basis family {family!r}")
    pairs = [(j, w) for j, w in pairs if w != 0.0]
    return tuple(j for j, _ in pairs), tuple(w for _, w in pairs)


def stages(scheme, n_steps):
    """Exact positions ``(n + c_i) / N`` and sides of every stage: ``N`` rows of pairs."""
    c, _, _ = TABLEAUS[scheme]
    return [[(Fr(n) / n_steps + Fr(ci) / n_steps, END_SIDE if ci == 1 else INNER_SIDE)
             for ci in c] for n in range(n_steps)]


def supports(basis, scheme, n_steps, flip=False):
    """``supports[n][i] = (indices, weights)`` at every stage of ``N`` steps (4.5, 4.6).

    ``flip=True`` swaps the two sides (a deliberately wrong grid, to show that the peer
    comparisons notice a wrong piece choice).
    """
    family, k, interval = describe(basis)
    swap = {"left": "right", "right": "left"}
    return [[basis_values(family, k, interval, x, swap[side] if flip else side)
             for x, side in row] for row in stages(scheme, n_steps)]


def float_tableau(scheme):
    """``(a rows, b)`` of ``scheme`` as Python floats."""
    _, b, a = TABLEAUS[scheme]
    return [[float(v) for v in row] for row in a], [float(v) for v in b]
