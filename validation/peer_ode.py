"""Shared set-up of check_torchdiffeq.py and check_diffrax.py (numpy + refode only).

The problem: ``dh/dt = tanh(h W(t)^T + b(t))`` (``refode.rates.DenseTanh``) on ``[0, 1]``,
``h`` of shape ``(3, 4)``, weights ``W(t) = sum_k phi_k(t) W_k``, loss ``sum(h(1) * w)``.
A peer evaluates the weights at **float** times as a user of that library would:
``weights_at(family, K, t)`` (right-continuous pieces, ``floor(K t)`` clipped).
"""
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import refode  # noqa: E402
from validation.torch_impl.grid import weights  # noqa: E402

#: state shape (batch, width).
BATCH, WIDTH = 3, 4
#: relative error under which a row counts as agreeing (float64).
AGREE = 1e-11


def problem(family, k, seed=0):
    """``(basis, coefficients {"W", "b"}, h0, cotangent w)`` in float64."""
    rng = np.random.default_rng(seed)
    basis = refode.basis(family, k)
    coefs = refode.rates.init_coefficients(basis, WIDTH, rng, scale=1.5)
    h0 = rng.standard_normal((BATCH, WIDTH))
    w = rng.standard_normal((BATCH, WIDTH))
    return basis, coefs, h0, w


def weights_at(family, k, t):
    """``(indices, weights)`` of the basis at float depth ``t`` (right-continuous)."""
    return weights(family, k, Fraction(min(max(float(t), 0.0), 1.0)), "right")


def refode_run(basis, coefs, h0, w, scheme, n, method="discrete"):
    """refode's ``h(1)`` and gradient ``(dh0, dW, db)`` of ``sum(h(1) * w)``."""
    rate = refode.rates.DenseTanh()
    h1 = refode.odeint(rate, h0, coefs, basis, scheme=scheme, n_steps=n)
    dh0, dc = refode.gradient(rate, h0, coefs, basis, w, scheme=scheme, n_steps=n,
                              method=method)
    return h1, (dh0, dc["W"], dc["b"])


def rel(a, b):
    """``max |a - b| / max |b|``."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.abs(a - b).max() / max(np.abs(b).max(), np.finfo(float).tiny))


def grad_rel(ga, gb):
    """Worst :func:`rel` over the gradient triple."""
    return max(rel(a, b) for a, b in zip(ga, gb))


def order(errors, ns):
    """Observed orders ``log(e_i / e_{i+1}) / log(n_{i+1} / n_i)``."""
    return [float(np.log(errors[i] / errors[i + 1]) / np.log(ns[i + 1] / ns[i]))
            if errors[i + 1] > 0 and errors[i] > 0 else float("nan")
            for i in range(len(errors) - 1)]


def fit_order(errors, ns):
    """Least-squares slope of ``-log(error)`` against ``log(N)``."""
    x, y = np.log(np.asarray(ns, float)), np.log(np.asarray(errors, float))
    return float(-np.polyfit(x, y, 1)[0])


def alignment(n, k):
    """"aligned" (every breakpoint is a step end), "partly aligned" or "unaligned"."""
    import math

    g = math.gcd(n, k)
    return "aligned" if n % k == 0 else ("partly aligned" if g > 1 else "unaligned")


class Table:
    """Rows ``(section, case, quantity, value, expectation, ok)``; exit code 1 on a failed row."""

    def __init__(self, title):
        self.title, self.rows = title, []

    def add(self, section, case, quantity, value, expect="info", ok=True):
        self.rows.append((section, case, quantity, value, expect, bool(ok)))

    def finish(self):
        print(self.title)
        head = f"{'section':10s} {'case':52s} {'quantity':30s} {'value':>10s}  expected"
        print(head)
        print("-" * len(head))
        bad = 0
        for sec, case, qty, val, exp, ok in self.rows:
            v = f"{val:10.2e}" if isinstance(val, float) else f"{val!s:>10s}"
            print(f"{sec:10s} {case:52s} {qty:30s} {v}  {exp}{'' if ok else '   <-- FAIL'}")
            bad += not ok
        print(f"{len(self.rows) - bad}/{len(self.rows)} rows as expected")
        return 0 if bad == 0 else 1
