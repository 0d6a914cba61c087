"""Running statistics known to be invalid: a variance ``<= -eps`` at a stage.

Evaluation normalises stage ``(n, i)`` of an ODE-block with ``1 / sqrt(var(t_{n,i}) +
eps)``; where that is not positive the model gives NaN. :func:`refode.load` warns about
such a file (naming the block, the array and the stage) and ``refode info`` prints it,
so that it is found when the file is read, not later as a non-finite output.

The stage values are computed by evaluation's own combination
(:func:`refode.integrate.weights.theta_at_support`: ``w_0 c[k_0] + w_1 c[k_1] + ...``
in that order, in the state's dtype), called once per group of stages with supports
of the same size (the gathered coefficients and a column of weights per term), so that
checking ``N = 100,000`` steps takes well under a second.
"""
import warnings

import numpy as np

from ..errors import RefodeWarning
from ..constants import BN_EPS as EPS
from ..integrate.grid import stage_grid
from ..integrate.tableau import tableau
from ..integrate.weights import theta_at_support
from ..models import Model
from ..models.stateful import StatefulODEBlock

#: the running variances of a stateful ODE-block.
VARIANCES = ("bn1.var", "bn2.var")
#: stages named in a warning.
LISTED = 3


def _groups(supports):
    """The flat list of stage supports grouped by size: ``[(rows, indices, weights)]``."""
    by_size = {}
    for r, (idx, weights) in enumerate(supports):
        by_size.setdefault(len(idx), []).append(r)
    out = []
    for size, rows in by_size.items():
        chosen = [supports[r] for r in rows]
        out.append((np.asarray(rows), np.array([c[0] for c in chosen], dtype=np.int64)
                    .reshape(len(rows), size),
                    np.array([c[1] for c in chosen], dtype=np.float64).reshape(len(rows), size)))
    return out


def _stage_values(coefficients, groups, n_stages):
    """``(stages, C)`` values of ``coefficients (K, C)`` at the grouped supports."""
    out = np.zeros((n_stages, coefficients.shape[1]), dtype=coefficients.dtype)
    for rows, idx, weights in groups:
        if idx.shape[1] == 0:
            continue   # every phi_k vanishes: the value is 0
        weights = weights.astype(coefficients.dtype)
        terms = range(idx.shape[1])
        gathered = {"v": np.moveaxis(coefficients[idx], 1, 0)}  # term q: (rows, C)
        out[rows] = theta_at_support(gathered, (tuple(terms), tuple(
            weights[:, q:q + 1] for q in terms)))["v"]
    return out


def nonpositive_stages(model):
    """Every stage where a running variance of an ODE-block is ``<= -eps``.

    Parameters
    ----------
    model : ContinuousNet or ContinuousTagger (the tagger has no statistics)

    Returns
    -------
    list of ``(block, array, n, i, position, channels)``: the layer name, the variance
    (``"bn1.var"``), the step ``n`` and stage ``i``, the exact unit position
    (Fraction) and the number of failing channels; in block and stage order.
    """
    out = []
    layers = model.ode_blocks() if isinstance(model, Model) else {}
    for block, layer in layers.items():
        if not isinstance(layer, StatefulODEBlock):
            continue
        grid = stage_grid(layer.basis, tableau(layer.scheme), layer.n_steps)
        supports = [sup for row in grid.supports for sup in row]
        groups, s = _groups(supports), len(grid.sides[0])
        for name in VARIANCES:
            values = _stage_values(np.asarray(layer.state[name]), groups, len(supports))
            bad = np.count_nonzero(~(values + EPS > 0), axis=1)
            for r in np.flatnonzero(bad).tolist():
                n, i = divmod(r, s)
                out.append((block, name, n, i, grid.positions[n][i], int(bad[r])))
    out.sort(key=lambda e: (list(layers).index(e[0]), e[2], e[3], e[1]))
    return out


def describe_nonpositive(found, where=""):
    """One sentence about the result of :func:`nonpositive_stages` (non-empty)."""
    listed = "; ".join(f"{block}.{name} at step {n} stage {i} (t = {float(p):.6g}, "
                       f"{count} channel(s))" for block, name, n, i, p, count in found[:LISTED])
    more = f" and {len(found) - LISTED} more" if len(found) > LISTED else ""
    return (f"{where + ': ' if where else ''}running variance + eps <= 0 at {len(found)} "
            f"stage(s): "
            f"{listed}{more}; evaluation gives NaN there: re-estimate the statistics on "
            "data (ContinuousNet.recalibrate, refode compress --stats recalibrate) or "
            "retrain")


def warn_nonpositive(model, where=""):
    """Warn (RefodeWarning) when :func:`nonpositive_stages` finds any stage."""
    found = nonpositive_stages(model)
    if found:
        warnings.warn(describe_nonpositive(found, where), RefodeWarning, stacklevel=3)
    return found
