"""``refode.integrate.vjp``: one forward pass, then the reverse pass bitwise equal to
``refode.gradient`` for every checkpoint strategy; no forward recomputation with "all"."""
import numpy as np
import pytest

import refode
from refode.errors import RefodeError
from refode.integrate import vjp

from .problems import CountingTanh, dense_problem, small_basis

#: (checkpoint, slots) pairs of the bitwise comparison.
STRATEGIES = [("all", None), ("steps", None), ("binomial", 1), ("binomial", 2)]
#: schemes and families of the comparison (stages on breakpoints from both sides).
SCHEMES = ("euler", "midpoint", "rk4")
FAMILIES = ("piecewise_constant", "fem_linear", "legendre")
N_STEPS = 5


@pytest.mark.parametrize("checkpoint,slots", STRATEGIES)
@pytest.mark.parametrize("scheme", SCHEMES)
@pytest.mark.parametrize("family", FAMILIES)
def test_vjp_is_bitwise_gradient(family, scheme, checkpoint, slots, rng):
    basis = small_basis(family)
    rate, c, h0, w = dense_problem(rng, basis)
    kw = {"scheme": scheme, "n_steps": N_STEPS, "checkpoint": checkpoint, "slots": slots}
    hT, backward = vjp(rate, h0, c, basis, **kw)
    np.testing.assert_array_equal(hT, refode.odeint(rate, h0, c, basis, scheme=scheme,
                                                    n_steps=N_STEPS))
    dh0, dc = refode.gradient(rate, h0, c, basis, w, **kw)
    for _ in range(2):  # backward may be called again, from zero gradients
        gh0, gc = backward(w)
        np.testing.assert_array_equal(gh0, dh0)
        assert gc.keys() == dc.keys()
        for k in dc:
            np.testing.assert_array_equal(gc[k], dc[k])


def test_all_does_not_recompute_forward(rng):
    basis = refode.basis("piecewise_constant", 3)
    rate = CountingTanh()
    c = {"W": rng.standard_normal((3, 4, 2)), "b": rng.standard_normal((3, 4, 2))}
    h0 = rng.standard_normal((4, 2))
    _, backward = vjp(rate, h0, c, basis, scheme="rk4", n_steps=4)
    assert rate.calls == 4 * 4
    backward(np.ones_like(h0))
    assert rate.calls == 4 * 4
    _, backward = vjp(rate, h0, c, basis, scheme="rk4", n_steps=4, checkpoint="steps")
    before = rate.calls
    backward(np.ones_like(h0))
    assert rate.calls == before + 4 * 4  # "steps" recomputes every step once


def test_vjp_rejects_bad_options(rng):
    basis = refode.basis("piecewise_constant", 2)
    rate, c, h0, _ = dense_problem(rng, basis)
    with pytest.raises(RefodeError, match="slots"):
        vjp(rate, h0, c, basis, n_steps=2, checkpoint="binomial")
    with pytest.raises(RefodeError, match="checkpoint"):
        vjp(rate, h0, c, basis, n_steps=2, checkpoint="nope")
    _, backward = vjp(rate, h0, c, basis, n_steps=2)
    with pytest.raises(refode.ShapeError, match="dloss_dhT"):
        backward(np.ones(3))
