"""odeint: convergence order of every tableau, dtypes, and refused input."""
import numpy as np
import pytest
from scipy.integrate import solve_ivp

import refode
from refode.errors import BasisError, RefodeError, ShapeError, TableauError
from refode.rates import DenseTanh, init_coefficients

from .problems import dense_problem

#: step counts of the order fit: errors lie between ~1e-2 and ~1e-10 here, far above
#: the reference's error (~1e-13) and in the asymptotic range of every tableau.
ORDER_STEPS = np.array([32, 64, 128, 256])
#: tolerance of the fitted slope against the classical order.
ORDER_TOL = 0.2
#: tolerances of the DOP853 reference solution.
REF_TOL = 1e-13
WIDTH = 4


@pytest.fixture(scope="module")
def smooth_problem():
    """Legendre weights, DenseTanh, and a DOP853 reference h(T)."""
    rng = np.random.default_rng(1)
    basis = refode.basis("legendre", 3)
    rate = DenseTanh()
    c = init_coefficients(basis, WIDTH, rng, scale=0.5)
    h0 = rng.standard_normal((2, WIDTH))

    def f(t, y):
        phi = basis.evaluate([t])[0]
        theta = {k: np.tensordot(phi, v, axes=1) for k, v in c.items()}
        return rate.forward(t, y.reshape(h0.shape), theta).ravel()

    sol = solve_ivp(f, basis.interval, h0.ravel(), method="DOP853", rtol=REF_TOL, atol=REF_TOL)
    return rate, h0, c, basis, sol.y[:, -1].reshape(h0.shape)


@pytest.mark.parametrize("scheme", refode.tableaus())
def test_convergence_order(smooth_problem, scheme):
    rate, h0, c, basis, ref = smooth_problem
    errors = [
        np.linalg.norm(refode.odeint(rate, h0, c, basis, scheme=scheme, n_steps=n) - ref)
        for n in ORDER_STEPS
    ]
    slope = np.polyfit(np.log(1.0 / ORDER_STEPS), np.log(errors), 1)[0]
    assert abs(slope - refode.tableau(scheme).order) < ORDER_TOL, (slope, errors)


def test_dtypes_follow_the_inputs(rng):
    basis = refode.basis("fem_linear" if "fem_linear" in refode.families() else "legendre", 3)
    rate, c, h0, _ = dense_problem(rng, basis)
    c32 = {k: v.astype(np.float32) for k, v in c.items()}
    out = refode.odeint(rate, h0.astype(np.float32), c32, basis, scheme="rk4", n_steps=4)
    assert out.dtype == np.float32
    ref = refode.odeint(rate, h0, c, basis, scheme="rk4", n_steps=4)
    assert np.allclose(out, ref, rtol=1e-5, atol=1e-5)
    cc = {k: v.astype(np.complex128) for k, v in c.items()}
    out = refode.odeint(rate, h0, cc, basis, scheme="rk4", n_steps=4)
    assert out.dtype == np.complex128 and not out.imag.any()
    assert np.allclose(out.real, ref, rtol=1e-13, atol=1e-14)


def test_one_dimensional_state_and_tuple_basis(rng):
    basis = refode.basis("legendre", 2, (0.0, 2.0))
    rate, c, h0, _ = dense_problem(rng, basis)
    a = refode.odeint(rate, h0[0], c, basis, scheme="midpoint", n_steps=5)
    b = refode.odeint(
        rate, h0[0], c, ("legendre", 2), scheme="midpoint", n_steps=5, interval=(0.0, 2.0)
    )
    c2 = refode.odeint(rate, h0, c, basis, scheme="midpoint", n_steps=5)
    assert a.shape == (2,) and np.array_equal(a, b)
    assert np.allclose(a, c2[0], rtol=1e-14, atol=1e-15)


@pytest.fixture
def inputs(rng):
    basis = refode.basis("legendre", 3)
    rate, c, h0, _ = dense_problem(rng, basis)
    return rate, h0, c, basis


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"n_steps": 0}, RefodeError, r"`n_steps` must be an integer >= 1"),
        ({"n_steps": 2.5}, RefodeError, r"`n_steps` must be an integer"),
        ({"n_steps": True}, RefodeError, r"`n_steps` must be an integer"),
        ({"scheme": "rk45"}, TableauError, r"unknown scheme 'rk45'; choose one of"),
        ({"interval": (0.0, 2.0)}, BasisError, r"`interval` .* differs from the basis interval"),
        ({"basis": "legendre"}, BasisError, r"`basis` must be a refode.Basis or a \(family, n\)"),
        ({"basis": ("legendre", 4)}, ShapeError, r"`coefficients\['W'\]` has shape \(3, 2, 2\)"),
        ({"coefficients": []}, ShapeError, r"`coefficients` must be a non-empty dict"),
        ({"coefficients": {}}, ShapeError, r"`coefficients` must be a non-empty dict"),
        ({"rate": object()}, RefodeError, r"`rate` has no method `forward`"),
    ],
)
def test_bad_arguments_are_refused(inputs, change, error, match):
    rate, h0, c, basis = inputs
    kw = {"rate": rate, "h0": h0, "coefficients": c, "basis": basis, "n_steps": 3}
    kw.update(change)
    with pytest.raises(error, match=match):
        refode.odeint(kw.pop("rate"), kw.pop("h0"), kw.pop("coefficients"), kw.pop("basis"), **kw)


def _bad_coefficient(c, name, value):
    out = dict(c)
    out[name] = value
    return out


def test_bad_coefficients_name_the_key(inputs):
    rate, h0, c, basis = inputs
    short = r"`coefficients\['b'\]` has shape \(2, 2\) .* \(3, \.\.\.\)"
    with pytest.raises(ShapeError, match=short):
        refode.odeint(rate, h0, _bad_coefficient(c, "b", c["b"][:2]), basis, n_steps=2)
    nan = c["W"].copy()
    nan[1, 0, 0] = np.nan
    with pytest.raises(RefodeError, match=r"`coefficients\['W'\]` contains 1 non-finite"):
        refode.odeint(rate, h0, _bad_coefficient(c, "W", nan), basis, n_steps=2)
    with pytest.raises(ShapeError, match=r"`coefficients\['W'\]` has dtype int64"):
        refode.odeint(rate, h0, _bad_coefficient(c, "W", c["W"].astype(np.int64)), basis, n_steps=2)


def test_bad_initial_state(inputs):
    rate, h0, c, basis = inputs
    with pytest.raises(RefodeError, match=r"`h0` contains 1 non-finite"):
        inf = h0.copy()
        inf[0, 1] = np.inf
        refode.odeint(rate, inf, c, basis, n_steps=2)
    with pytest.raises(ShapeError, match=r"`h0` has dtype int64"):
        refode.odeint(rate, np.ones(h0.shape, dtype=np.int64), c, basis, n_steps=2)


def test_a_rate_that_changes_the_shape_is_reported(inputs):
    _, h0, c, basis = inputs

    class Broadcasting:
        def forward(self, t, h, theta):
            return np.zeros((3, *h.shape))

    with pytest.raises(ShapeError, match=r"`rate.forward` returned arrays of the wrong shape"):
        refode.odeint(Broadcasting(), h0, c, basis, n_steps=2)
