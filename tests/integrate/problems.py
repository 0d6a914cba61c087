"""Small seeded problems and rates shared by the integration tests."""
import numpy as np

import refode
from refode.errors import BasisError
from refode.rates import DenseTanh, init_coefficients

#: preferred basis sizes, tried in order until the family accepts one.
PREFERRED_SIZES = (3, 4, 2, 1)


def small_basis(family, interval=(0.0, 1.0)):
    """A basis of ``family`` with a small size it accepts (3 where possible)."""
    for n in PREFERRED_SIZES:
        try:
            return refode.basis(family, n, interval)
        except BasisError:
            continue
    raise AssertionError(f"no small size accepted by {family}")


def dense_problem(rng, basis, d=2, batch=2, scale=0.7):
    """DenseTanh rate, coefficients, ``h0`` and a loss weight ``w`` (L = <w, h(T)>)."""
    coefficients = init_coefficients(basis, d, rng, scale)
    h0 = rng.standard_normal((batch, d))
    w = rng.standard_normal((batch, d))
    return DenseTanh(), coefficients, h0, w


class CountingTanh:
    """A cheap elementwise rate ``tanh(W * h + b) + t`` that counts its calls."""

    def __init__(self):
        self.calls = 0

    def forward(self, t, h, theta):
        self.calls += 1
        return np.tanh(theta["W"] * h + theta["b"]) + t

    def vjp(self, t, h, theta, a):
        y = np.tanh(theta["W"] * h + theta["b"])
        g = a * (1 - y * y)
        return g * theta["W"], {"W": g * h, "b": g}


def flatten(dh0, dcoefficients):
    """One vector of a gradient ``(dL/dh0, {name: dL/dc})`` in sorted name order."""
    return np.concatenate([dh0.ravel()] + [dcoefficients[k].ravel() for k in sorted(dcoefficients)])


def loss(rate, h0, coefficients, basis, w, **kw):
    """``L = <w, h(T)>`` (no conjugate, so complex-step derivatives work)."""
    return np.sum(w * refode.odeint(rate, h0, coefficients, basis, **kw))
