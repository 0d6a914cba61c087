"""The example rate DenseTanh and its coefficient initialiser."""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refode
from refode.errors import RefodeError
from refode.rates import DenseTanh, init_coefficients

#: central finite-difference step and relative tolerance (float64).
FD_STEP, FD_RTOL = 1e-6, 1e-8


def _theta(rng, d, dtype=np.float64):
    return {
        "W": rng.standard_normal((d, d)).astype(dtype),
        "b": rng.standard_normal(d).astype(dtype),
    }


@given(seed=st.integers(0, 2**16), d=st.integers(1, 5), batch=st.sampled_from([None, 1, 3]))
def test_vjp_matches_finite_differences_of_forward(seed, d, batch):
    rng = np.random.default_rng(seed)
    rate = DenseTanh()
    shape = (d,) if batch is None else (batch, d)
    h, a = rng.standard_normal(shape), rng.standard_normal(shape)
    theta = _theta(rng, d)
    dir_h = rng.standard_normal(shape)
    dir_theta = {k: rng.standard_normal(v.shape) for k, v in theta.items()}

    def value(eps):
        moved = {k: theta[k] + eps * dir_theta[k] for k in theta}
        return np.sum(a * rate.forward(0.0, h + eps * dir_h, moved))

    fd = (value(FD_STEP) - value(-FD_STEP)) / (2 * FD_STEP)
    a_h, a_theta = rate.vjp(0.0, h, theta, a)
    exact = np.sum(a_h * dir_h) + sum(np.sum(a_theta[k] * dir_theta[k]) for k in theta)
    assert a_h.shape == shape and a_theta["W"].shape == (d, d) and a_theta["b"].shape == (d,)
    assert abs(fd - exact) <= FD_RTOL * max(1.0, abs(exact))


def test_vjp_is_holomorphic_for_complex_step(rng):
    rate, d = DenseTanh(), 3
    h, a, theta = rng.standard_normal((2, d)), rng.standard_normal((2, d)), _theta(rng, d)
    direction = rng.standard_normal((2, d))
    step = 1e-30
    cs = np.sum(a * rate.forward(0.0, h + 1j * step * direction, theta)).imag / step
    a_h, _ = rate.vjp(0.0, h, theta, a)
    assert np.isclose(cs, np.sum(a_h * direction), rtol=1e-12, atol=0)
    ch = {k: v.astype(np.complex128) for k, v in theta.items()}
    a_hc, a_thc = rate.vjp(0.0, h.astype(np.complex128), ch, a.astype(np.complex128))
    assert a_hc.dtype == np.complex128 and np.allclose(a_hc.real, a_h, rtol=1e-14, atol=1e-15)


def test_float32_stays_float32(rng):
    rate, d = DenseTanh(), 4
    h = rng.standard_normal((2, d)).astype(np.float32)
    theta = _theta(rng, d, np.float32)
    a_h, a_theta = rate.vjp(0.0, h, theta, h)
    assert rate.forward(0.0, h, theta).dtype == np.float32
    assert a_h.dtype == np.float32 and all(v.dtype == np.float32 for v in a_theta.values())


def test_init_coefficients_are_independent_per_basis_function():
    basis = refode.basis("piecewise_constant", 4)
    c = init_coefficients(basis, 3, np.random.default_rng(0), scale=2.0)
    again = init_coefficients(basis, 3, np.random.default_rng(0), scale=2.0)
    assert c["W"].shape == (4, 3, 3) and c["b"].shape == (4, 3)
    assert all(np.array_equal(c[k], again[k]) for k in c)
    for k in range(4):
        for j in range(k):
            assert not np.allclose(c["W"][k], c["W"][j])
    assert 0.5 < np.std(c["W"]) * np.sqrt(3) / 2.0 < 1.5


def test_init_coefficients_refuses_bad_arguments():
    basis = refode.basis("legendre", 2)
    with pytest.raises(RefodeError, match=r"`rng` must be a numpy.random.Generator"):
        init_coefficients(basis, 3, 0)
    with pytest.raises(RefodeError, match=r"`d` must be an integer >= 1"):
        init_coefficients(basis, 0, np.random.default_rng(0))
