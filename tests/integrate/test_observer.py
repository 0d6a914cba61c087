"""The integrator's object API: checkpoint strategies as objects, the stage observer
(forward sweep only, with the rate's ``forward_stats``), and the argument names
``adjoint=`` (alias ``method=``) and ``t0=``/``t1=``."""
from fractions import Fraction

import numpy as np
import pytest

import refode
from refode.errors import RefodeError
from refode.integrate import All, Binomial, Steps, vjp

from .problems import CountingTanh, dense_problem, small_basis

#: (checkpoint, slots) pairs, and the strategy objects they mean.
NAMED = [("all", None), ("steps", None), ("binomial", 1), ("binomial", 2)]
OBJECTS = [All(), Steps(), Binomial(1), Binomial(2)]
N_STEPS = 6


class StatsTanh(CountingTanh):
    """:class:`CountingTanh` reporting ``sum(h)`` at each stage through ``forward_stats``."""

    def __init__(self):
        super().__init__()
        self.stats_calls = 0

    def forward_stats(self, t, h, theta, save=False):
        self.stats_calls += 1
        k = self.forward(t, h, theta)
        return k, float(h.sum()), None


def _stages(scheme, n):
    c = refode.tableau(scheme).c
    return [((step + ci) / Fraction(n), "left" if ci == 1 else "right")
            for step in range(n) for ci in c]


@pytest.mark.parametrize("scheme", ["euler", "midpoint", "rk4"])
@pytest.mark.parametrize("named, plan", list(zip(NAMED, OBJECTS)))
def test_a_strategy_object_is_bitwise_its_name_and_the_observer_sees_one_sweep(
        scheme, named, plan, rng):
    basis = small_basis("fem_linear")
    rate, c, h0, w = dense_problem(rng, basis)
    checkpoint, slots = named
    kw = {"scheme": scheme, "n_steps": N_STEPS}
    dh0, dc = refode.gradient(rate, h0, c, basis, w, checkpoint=checkpoint, slots=slots, **kw)
    seen = {"gradient": [], "vjp": []}
    gh0, gc = refode.gradient(rate, h0, c, basis, w, checkpoint=plan,
                              observer=seen["gradient"].append, **kw)
    hT, backward = vjp(rate, h0, c, basis, checkpoint=plan, observer=seen["vjp"].append, **kw)
    after_forward = len(seen["vjp"])
    vh0, vc = backward(w)
    assert len(seen["vjp"]) == after_forward   # the reverse pass reports nothing
    np.testing.assert_array_equal(hT, refode.odeint(rate, h0, c, basis, **kw))
    for got_h0, got_c in ((gh0, gc), (vh0, vc)):
        np.testing.assert_array_equal(got_h0, dh0)
        for k in dc:
            np.testing.assert_array_equal(got_c[k], dc[k])
    want = _stages(scheme, N_STEPS)
    for observed in seen.values():
        assert [(s.position, s.side) for s in observed] == want
        assert [(s.step, s.index) for s in observed] == [
            (n, i) for n in range(N_STEPS) for i in range(refode.tableau(scheme).stages)]


@pytest.mark.parametrize("checkpoint,slots", NAMED)
def test_forward_stats_runs_in_the_observed_sweep_only(checkpoint, slots, rng):
    basis = small_basis("piecewise_constant")
    c = {"W": rng.standard_normal((basis.n, 4, 2)), "b": rng.standard_normal((basis.n, 4, 2))}
    h0, w = rng.standard_normal((4, 2)), rng.standard_normal((4, 2))
    kw = {"scheme": "rk4", "n_steps": N_STEPS, "checkpoint": checkpoint, "slots": slots}
    plain_h, plain_backward = vjp(CountingTanh(), h0, c, basis, **kw)
    rate, observed = StatsTanh(), []
    h, backward = vjp(rate, h0, c, basis, observer=observed.append, **kw)
    backward(w)
    assert rate.stats_calls == N_STEPS * 4 == len(observed)
    np.testing.assert_array_equal(h, plain_h)
    np.testing.assert_array_equal(backward(w)[0], plain_backward(w)[0])
    assert observed[0].stats == float(h0.sum())   # the stage state Y_0 = h0
    assert all(isinstance(s.stats, float) for s in observed)
    silent = StatsTanh()
    vjp(silent, h0, c, basis, **kw)
    assert silent.stats_calls == 0   # no observer: plain forward


def test_odeint_observer_and_depths(rng):
    basis = refode.basis("piecewise_constant", 2, (1.0, 3.0))
    rate, c, h0, _ = dense_problem(rng, basis)
    observed = []
    refode.odeint(rate, h0, c, basis, scheme="heun", n_steps=2, observer=observed.append)
    assert [s.depth for s in observed] == [1, 2, 2, 3]
    assert [s.side for s in observed] == ["right", "left", "right", "left"]
    assert [s.t for s in observed] == [1.0, 2.0, 2.0, 3.0]
    assert [s.support[0] for s in observed] == [(0,), (0,), (1,), (1,)]
    assert all(s.interval == (1.0, 3.0) for s in observed)
    listed = refode.integrate.stages(basis, "heun", 2)
    assert [(s.position, s.side, s.support) for s in listed] == [
        (s.position, s.side, s.support) for s in observed]
    with pytest.raises(RefodeError, match="`observer` must be a callable"):
        refode.odeint(rate, h0, c, basis, n_steps=2, observer=[])


def test_adjoint_is_the_name_and_method_its_alias(rng):
    basis = small_basis("legendre")
    rate, c, h0, w = dense_problem(rng, basis)
    kw = {"scheme": "rk4", "n_steps": 3}
    for kind in ("discrete", "continuous"):
        a = refode.gradient(rate, h0, c, basis, w, adjoint=kind, **kw)
        b = refode.gradient(rate, h0, c, basis, w, method=kind, **kw)
        np.testing.assert_array_equal(a[0], b[0])
    default = refode.gradient(rate, h0, c, basis, w, **kw)
    np.testing.assert_array_equal(default[0], refode.gradient(
        rate, h0, c, basis, w, adjoint="discrete", **kw)[0])
    with pytest.raises(RefodeError, match="not both"):
        refode.gradient(rate, h0, c, basis, w, adjoint="discrete", method="discrete", **kw)
    with pytest.raises(RefodeError, match="unknown `adjoint` 'backsolve'"):
        refode.gradient(rate, h0, c, basis, w, adjoint="backsolve", **kw)
    with pytest.raises(RefodeError, match="apply to adjoint='discrete' only"):
        refode.gradient(rate, h0, c, basis, w, adjoint="continuous", checkpoint=Steps(), **kw)


def test_t0_t1_are_the_interval(rng):
    basis = refode.basis("fem_linear", 3, (0.0, 2.0))
    rate, c, h0, w = dense_problem(rng, basis)
    kw = {"scheme": "midpoint", "n_steps": 4}
    want = refode.odeint(rate, h0, c, basis, interval=(0.0, 2.0), **kw)
    np.testing.assert_array_equal(refode.odeint(rate, h0, c, basis, t0=0.0, t1=2.0, **kw), want)
    np.testing.assert_array_equal(
        refode.odeint(rate, h0, c, ("fem_linear", 3), t0=0.0, t1=2.0, **kw), want)
    np.testing.assert_array_equal(vjp(rate, h0, c, basis, t0=0, t1=2, **kw)[0], want)
    np.testing.assert_array_equal(
        refode.gradient(rate, h0, c, basis, w, t0=0.0, t1=2.0, **kw)[0],
        refode.gradient(rate, h0, c, basis, w, **kw)[0])
    with pytest.raises(RefodeError, match="either `interval` or `t0`/`t1`"):
        refode.odeint(rate, h0, c, basis, interval=(0.0, 2.0), t0=0.0, t1=2.0, **kw)
    with pytest.raises(RefodeError, match="pass both `t0` and `t1`"):
        refode.odeint(rate, h0, c, basis, t1=2.0, **kw)
    with pytest.raises(refode.BasisError, match="differs from the basis interval"):
        refode.odeint(rate, h0, c, basis, t0=0.0, t1=1.0, **kw)


def test_bad_strategy_objects_are_refused(rng):
    basis = small_basis("fem_linear")
    rate, c, h0, w = dense_problem(rng, basis)
    with pytest.raises(RefodeError, match="leave `slots` out"):
        refode.gradient(rate, h0, c, basis, w, n_steps=2, checkpoint=Binomial(2), slots=2)
    with pytest.raises(RefodeError, match="or a strategy such as"):
        vjp(rate, h0, c, basis, n_steps=2, checkpoint=3)
    with pytest.raises(RefodeError, match="`slots` must be an integer >= 1"):
        Binomial(0)


@pytest.mark.parametrize("scheme", ["euler", "rk4", "kutta3"])
def test_trajectory_carries_the_states_and_the_stages(scheme, rng):
    basis = refode.basis("legendre", 3, (0.5, 2.0))
    rate, c, h0, _ = dense_problem(rng, basis)
    seen = []
    sol = refode.odeint(rate, h0, c, basis, scheme=scheme, n_steps=5, trajectory=True,
                        observer=seen.append)
    assert isinstance(sol, refode.integrate.Solution)
    assert sol.ys.shape == (6, *h0.shape) and sol.ts.shape == (6,)
    assert sol.ts[0] == 0.5 and sol.ts[-1] == 2.0 and np.all(np.diff(sol.ts) > 0)
    np.testing.assert_array_equal(sol.ys[0], h0)
    np.testing.assert_array_equal(sol.hT, refode.odeint(rate, h0, c, basis, scheme=scheme,
                                                        n_steps=5))
    assert sol.stages == seen and len(seen) == 5 * refode.tableau(scheme).stages


def test_trajectory_of_a_resnet_is_its_residual_blocks(rng):
    basis = refode.basis("piecewise_constant", 5)
    rate, c, h0, _ = dense_problem(rng, basis)
    sol = refode.odeint(rate, h0, c, basis, n_steps=5, trajectory=True)
    np.testing.assert_array_equal(sol.ts, [0.0, 0.2, 0.4, 0.6, 0.8, 1.0])
    for n in range(5):   # h_{n+1} = h_n + dt * R(c[n], h_n), bit for bit
        k = rate.forward(sol.ts[n], sol.ys[n], {name: v[n] for name, v in c.items()})
        np.testing.assert_array_equal(sol.ys[n + 1], sol.ys[n] + 0.2 * k)
