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


class SavingTanh(CountingTanh):
    """:class:`CountingTanh` with the ``forward_save`` / ``vjp_saved`` extension."""

    def __init__(self):
        super().__init__()
        self.saved_vjps = 0
        self.plain_vjps = 0

    def forward_save(self, t, h, theta):
        self.calls += 1
        y = np.tanh(theta["W"] * h + theta["b"])
        return y + t, y

    def vjp(self, t, h, theta, a):
        self.plain_vjps += 1
        return super().vjp(t, h, theta, a)

    def vjp_saved(self, t, h, theta, a, saved):
        self.saved_vjps += 1
        g = a * (1 - saved * saved)
        return g * theta["W"], {"W": g * h, "b": g}


@pytest.mark.parametrize("checkpoint,slots", STRATEGIES)
@pytest.mark.parametrize("scheme", SCHEMES)
def test_saving_rate_is_bitwise_plain_rate(scheme, checkpoint, slots, rng):
    basis = small_basis("fem_linear")
    c = {"W": rng.standard_normal((basis.n, 4, 2)), "b": rng.standard_normal((basis.n, 4, 2))}
    h0, w = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    kw = {"scheme": scheme, "n_steps": N_STEPS, "checkpoint": checkpoint, "slots": slots}
    dh0, dc = refode.gradient(CountingTanh(), h0, c, basis, w, **kw)
    for run in ("gradient", "vjp"):
        rate = SavingTanh()
        if run == "gradient":
            gh0, gc = refode.gradient(rate, h0, c, basis, w, **kw)
        else:
            hT, backward = vjp(rate, h0, c, basis, **kw)
            np.testing.assert_array_equal(
                hT, refode.odeint(CountingTanh(), h0, c, basis, scheme=scheme, n_steps=N_STEPS))
            gh0, gc = backward(w)
        assert rate.plain_vjps == 0 and rate.saved_vjps > 0
        np.testing.assert_array_equal(gh0, dh0)
        for k in dc:
            np.testing.assert_array_equal(gc[k], dc[k])


def _traced_peak(fn):
    """Peak bytes NumPy allocates during ``fn()`` (traced by tracemalloc), after a warm run."""
    import tracemalloc

    fn()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        fn()
        return tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("scheme", ["euler", "rk4"])
def test_released_binomial_backward_holds_no_more_than_gradient(scheme, rng):
    basis = small_basis("fem_linear")
    shape = (40, 250)  # one state: 80 kB, far above the bookkeeping
    state = np.zeros(shape).nbytes
    c = {"W": 0.1 * rng.standard_normal((basis.n, *shape)),
         "b": 0.1 * rng.standard_normal((basis.n, *shape))}
    h0, w = rng.standard_normal(shape), rng.standard_normal(shape)
    kw = {"scheme": scheme, "n_steps": 40, "checkpoint": "binomial", "slots": 6}

    def run(release):
        _, backward = vjp(CountingTanh(), h0, c, basis, **kw)
        return backward(w, release=release)

    gradient_peak = _traced_peak(lambda: refode.gradient(CountingTanh(), h0, c, basis, w, **kw))
    released, kept = _traced_peak(lambda: run(True)), _traced_peak(lambda: run(False))
    assert released <= gradient_peak + state / 2
    assert kept >= released + 3 * state  # the forward's checkpoints stay alive beside
    want, got = run(False), run(True)
    np.testing.assert_array_equal(got[0], want[0])
    for name in c:
        np.testing.assert_array_equal(got[1][name], want[1][name])


def test_a_released_backward_cannot_run_again(rng):
    basis = small_basis("fem_linear")
    c = {"W": rng.standard_normal((basis.n, 3)), "b": rng.standard_normal((basis.n, 3))}
    h0 = rng.standard_normal(3)
    _, backward = vjp(CountingTanh(), h0, c, basis, n_steps=5, checkpoint="binomial", slots=2)
    with pytest.raises(refode.ShapeError):  # a bad cotangent releases nothing
        backward(np.ones(4), release=True)
    first = backward(np.ones(3))
    second = backward(np.ones(3), release=True)
    np.testing.assert_array_equal(first[0], second[0])
    with pytest.raises(RefodeError, match="released"):
        backward(np.ones(3))
