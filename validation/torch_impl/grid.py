"""Depth discretisation written from docs/format.md section 4 alone (pure Python).

Basis functions (4.2), one-sided pieces (4.3), the registered tableaus (4.4) and the
stage grid (4.5) with exact rational positions. Nothing here imports refode, torch or
jax: both peer implementations (``validation.torch_impl``, ``validation.jax_impl``)
take their stage weights from :func:`stage_grid`.
"""
import math
from fractions import Fraction as Fr

#: explicit tableaus ``(c, b, a rows)`` of format.md 4.4, as exact fractions.
TABLEAUS = {
    "euler": ([0], [1], [[]]),
    "midpoint": ([0, Fr(1, 2)], [0, 1], [[], [Fr(1, 2)]]),
    "heun": ([0, 1], [Fr(1, 2), Fr(1, 2)], [[], [1]]),
    "ralston": ([0, Fr(2, 3)], [Fr(1, 4), Fr(3, 4)], [[], [Fr(2, 3)]]),
    "kutta3": ([0, Fr(1, 2), 1], [Fr(1, 6), Fr(2, 3), Fr(1, 6)], [[], [Fr(1, 2)], [-1, 2]]),
    "ssprk3": ([0, 1, Fr(1, 2)], [Fr(1, 6), Fr(1, 6), Fr(2, 3)],
               [[], [1], [Fr(1, 4), Fr(1, 4)]]),
    "rk4": ([0, Fr(1, 2), Fr(1, 2), 1], [Fr(1, 6), Fr(1, 3), Fr(1, 3), Fr(1, 6)],
            [[], [Fr(1, 2)], [0, Fr(1, 2)], [0, 0, 1]]),
    "rk4_38": ([0, Fr(1, 3), Fr(2, 3), 1], [Fr(1, 8), Fr(3, 8), Fr(3, 8), Fr(1, 8)],
               [[], [Fr(1, 3)], [Fr(-1, 3), 1], [1, -1, 1]]),
}
#: every basis family of format.md 4.2.
FAMILIES = ("piecewise_constant", "piecewise_linear", "fem_linear", "poly_linear",
            "legendre", "chebyshev", "fourier")


def n_pieces(family, k):
    """Number of pieces ``P`` of a family with ``k`` functions."""
    return {"piecewise_constant": k, "piecewise_linear": k // 2,
            "fem_linear": k - 1}.get(family, 1)


def _piece(p_count, x, side):
    """Piece of the exact unit position ``x`` (4.3)."""
    if side == "right":
        return min(math.floor(p_count * x), p_count - 1)
    return max(math.ceil(p_count * x) - 1, 0)


def _legendre(k, s):
    out, prev, cur = [1.0], 1.0, s
    if k > 1:
        out.append(s)
    for j in range(1, k - 1):
        prev, cur = cur, ((2 * j + 1) * s * cur - j * prev) / (j + 1)
        out.append(cur)
    return out[:k]


def _chebyshev(k, s):
    out = [1.0, s]
    while len(out) < k:
        out.append(2 * s * out[-1] - out[-2])
    return out[:k]


def weights(family, k, x, side, interval=(0.0, 1.0)):
    """Non-zero basis weights at exact unit position ``x``: ``(indices, weights)``.

    Parameters
    ----------
    family : str, one of :data:`FAMILIES`
    k : int, number of functions
    x : fractions.Fraction in ``[0, 1]``
    side : {"left", "right"}
    interval : (t0, t1), the depth interval (used by ``legendre`` and ``poly_linear``)

    Returns
    -------
    (tuple of int, tuple of float): increasing indices and their float64 weights
    """
    t0, t1 = float(interval[0]), float(interval[1])
    length = t1 - t0
    p_count = n_pieces(family, k)
    p = _piece(p_count, x, side)
    xi = float(p_count * x - p)
    if family == "piecewise_constant":
        pairs = [(p, 1.0)]
    elif family == "piecewise_linear":
        pairs = [(2 * p, 1.0 - xi), (2 * p + 1, xi)]
    elif family == "fem_linear":
        pairs = [(p, 1.0 - xi), (p + 1, xi)]
    elif family == "poly_linear":
        pairs = [(0, 1.0), (1, t0 + float(x) * length)]
    elif family == "legendre":
        vals = _legendre(k, 2.0 * xi - 1.0)
        pairs = [(j, math.sqrt((2.0 * j + 1.0) / length) * v) for j, v in enumerate(vals)]
    elif family == "chebyshev":
        pairs = list(enumerate(_chebyshev(k, 2.0 * xi - 1.0)))
    elif family == "fourier":
        pairs = [(0, 1.0)]
        for m in range(1, (k - 1) // 2 + 1):
            pairs += [(2 * m - 1, math.cos(2 * math.pi * m * xi)),
                      (2 * m, math.sin(2 * math.pi * m * xi))]
    else:
        raise ValueError(f"unknown basis family {family!r}; choose one of {FAMILIES}")
    pairs = [(j, w) for j, w in pairs if w != 0.0]
    return tuple(j for j, _ in pairs), tuple(w for _, w in pairs)


def stage_grid(family, k, scheme, n_steps, interval=(0.0, 1.0)):
    """Exact stage positions and weights of ``n_steps`` steps of ``scheme`` (4.5).

    Returns
    -------
    dt : float, ``(t1 - t0) / N``
    stages : list (steps) of lists (stages) of ``(indices, weights)``
    """
    c, _, _ = TABLEAUS[scheme]
    stages = []
    for n in range(n_steps):
        row = []
        for ci in c:
            x = Fr(n) / n_steps + Fr(ci) / n_steps
            row.append(weights(family, k, x, "left" if ci == 1 else "right", interval))
        stages.append(row)
    return (float(interval[1]) - float(interval[0])) / n_steps, stages


def float_tableau(scheme):
    """``(a rows, b)`` of ``scheme`` as floats."""
    _, b, a = TABLEAUS[scheme]
    return [[float(v) for v in row] for row in a], [float(v) for v in b]
