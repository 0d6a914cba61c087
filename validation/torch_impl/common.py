"""Pieces shared by both torch models: weights at a stage, the Runge-Kutta loop."""
import torch

from .grid import float_tableau, stage_grid

DTYPES = {"float64": torch.float64, "float32": torch.float32}


def torch_dtype(dtype):
    """``torch.float64`` / ``torch.float32`` from a name, numpy dtype or torch dtype."""
    if isinstance(dtype, torch.dtype):
        return dtype
    return DTYPES[str(getattr(dtype, "name", dtype)).replace("torch.", "")]


def at(coefficients, support):
    """``theta = sum_q w_q theta[k_q]`` (increasing ``k``; a lone weight 1 is ``theta[k]``)."""
    idx, w = support
    if len(idx) == 1 and w[0] == 1.0:
        return coefficients[idx[0]]
    acc = None
    for k, wk in zip(idx, w):
        term = coefficients[k] if wk == 1.0 else wk * coefficients[k]
        acc = term if acc is None else acc + term
    return acc if acc is not None else torch.zeros_like(coefficients[0])


class RungeKutta:
    """An explicit RK loop over a stage grid: ``rate(y, support, record) -> k``."""

    def __init__(self, family, k, scheme, n_steps, interval=(0.0, 1.0)):
        self.dt, self.supports = stage_grid(family, k, scheme, n_steps, interval)
        self.a, self.b = float_tableau(scheme)

    def integrate(self, rate, h):
        """``h(t1)`` and the list of ``(support, record)`` of every stage in order."""
        visited = []
        for row in self.supports:
            ks = []
            for i, support in enumerate(row):
                terms = [a * ks[j] if a != 1.0 else ks[j]
                         for j, a in enumerate(self.a[i]) if a != 0.0]
                y = h if not terms else h + self.dt * _sum(terms)
                record = []
                ks.append(rate(y, support, record))
                visited.append((support, record))
            h = h + self.dt * _sum([bi * ki if bi != 1.0 else ki
                                    for bi, ki in zip(self.b, ks) if bi != 0.0])
        return h, visited


def _sum(terms):
    acc = terms[0]
    for t in terms[1:]:
        acc = acc + t
    return acc


def cross_entropy(logits, targets):
    """Mean cross-entropy over rows whose target is not -100 (0 if none), format.md 5.8."""
    z = logits.reshape(-1, logits.shape[-1])
    t = targets.reshape(-1)
    keep = t != -100
    total = torch.nn.functional.cross_entropy(z, t, ignore_index=-100, reduction="sum")
    return total / max(int(keep.sum()), 1)
