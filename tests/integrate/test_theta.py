"""``refode.theta``: the one definition of the weights at a depth, and the integrator's
weights at every stage bitwise equal to it (float32 and float64, every family and tableau).

The expected stages are computed here from the tableau (``(n + c_i) / N``, the end of a
step from the left), not from refode's grid, so a wrong piece choice would show."""
from fractions import Fraction

import numpy as np
import pytest

import refode
from refode.errors import BasisError, RefodeError, ShapeError
from refode.integrate.weights import theta_at_support
from refode.rates import DenseTanh

from .problems import small_basis

#: step counts of the comparison (with K = 3: stages on breakpoints for N = 3).
N_STEPS = (1, 3, 7)
#: intervals of the comparison: the unit one and one whose ends are not 0 and 1.
INTERVALS = ((0.0, 1.0), (0.5, 2.0))
#: width and batch of the states.
WIDTH, BATCH = 2, 2


class RecordingTanh(DenseTanh):
    """:class:`DenseTanh` that records the ``(t, theta)`` of every call."""

    def __init__(self):
        self.forwards, self.vjps = [], []

    def forward(self, t, h, theta):
        self.forwards.append((t, theta))
        return super().forward(t, h, theta)

    def vjp(self, t, h, theta, a):
        self.vjps.append((t, theta))
        y = super().forward(t, h, theta)
        g = a * (1 - y * y)
        return g @ theta["W"], {"W": g.T @ h, "b": g.sum(axis=0)}


def expected_stages(tab, n_steps, direction="forward"):
    """``(unit position, side)`` of every stage in integration order, from the tableau."""
    out = []
    for n in range(n_steps):
        for c in tab.c:
            if direction == "forward":
                out.append(((n + c) / Fraction(n_steps), "left" if c == 1 else "right"))
            else:
                out.append((1 - (n + c) / Fraction(n_steps), "right" if c == 1 else "left"))
    return out


def exact_depth(basis, position):
    lo, hi = Fraction(basis.t0), Fraction(basis.t1)
    return lo + position * (hi - lo)


def assert_weights(calls, basis, coefficients, stages):
    assert len(calls) == len(stages)
    for (t, got), (position, side) in zip(calls, stages):
        want = refode.theta(coefficients, basis, exact_depth(basis, position), side=side)
        assert got.keys() == want.keys()
        for name in want:
            assert got[name].dtype == want[name].dtype == coefficients[name].dtype
            assert np.array_equal(got[name], want[name]), (name, position, side)
        assert t == basis.t0 + float(position) * basis.length


def problem(family, interval, dtype, seed=0):
    basis = small_basis(family, interval)
    rng = np.random.default_rng(seed)
    c = {name: rng.standard_normal((basis.n, *shape)).astype(dtype)
         for name, shape in DenseTanh.shapes(WIDTH).items()}
    h0 = rng.standard_normal((BATCH, WIDTH)).astype(dtype)
    return basis, c, h0, rng.standard_normal((BATCH, WIDTH)).astype(dtype)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("interval", INTERVALS)
@pytest.mark.parametrize("family", refode.families())
def test_the_integrator_hands_the_rate_refode_theta_at_every_stage(family, interval, dtype):
    basis, c, h0, w = problem(family, interval, dtype)
    for scheme in refode.tableaus():
        tab = refode.tableau(scheme)
        for n in N_STEPS:
            forward = expected_stages(tab, n)
            kw = {"scheme": scheme, "n_steps": n}
            rate = RecordingTanh()
            refode.odeint(rate, h0, c, basis, **kw)
            assert_weights(rate.forwards, basis, c, forward)
            rate = RecordingTanh()
            refode.gradient(rate, h0, c, basis, w, **kw)   # discrete, checkpoint="all"
            assert_weights(rate.forwards, basis, c, forward)
            assert_weights(rate.vjps, basis, c, forward[::-1])
            rate = RecordingTanh()
            refode.gradient(rate, h0, c, basis, w, adjoint="continuous", **kw)
            backward = expected_stages(tab, n, "backward")
            assert_weights(rate.forwards, basis, c, forward + backward)
            assert_weights(rate.vjps, basis, c, backward)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("family", refode.families())
def test_observed_stages_evaluate_as_refode_theta(family, dtype):
    basis, c, h0, _ = problem(family, (0.5, 2.0), dtype)
    for scheme in ("rk4", "ralston", "kutta3", "ssprk3"):
        observed, rate = [], RecordingTanh()
        refode.odeint(rate, h0, c, basis, scheme=scheme, n_steps=3, observer=observed.append)
        stages = expected_stages(refode.tableau(scheme), 3)
        assert [(s.position, s.side) for s in observed] == stages
        for stage, (t, theta) in zip(observed, rate.forwards):
            assert stage.t == t and stage.stats is None
            want = refode.theta(c, basis, stage.depth, side=stage.side)
            for name in c:
                assert np.array_equal(stage.theta(c)[name], theta[name])
                assert np.array_equal(want[name], theta[name])


def test_a_breakpoint_takes_the_piece_of_its_side():
    basis = refode.basis("piecewise_constant", 3, (0.0, 3.0))
    c = np.array([10.0, 20.0, 30.0])
    assert refode.theta(c, basis, 1) == 20.0 and refode.theta(c, basis, 1, side="left") == 10.0
    assert refode.theta(c, basis, Fraction(3, 2), side="left") == 20.0   # inside: no side
    assert refode.theta(c, basis, 0.0) == 10.0 and refode.theta(c, basis, 3.0) == 30.0
    assert refode.theta(c, basis, np.float32(2.0)) == 30.0
    assert refode.theta(c, basis, np.array(2.0)) == refode.theta(c, basis, np.int64(2)) == 30.0
    one_third = refode.basis("piecewise_constant", 3)
    # the float 1/3 lies just below the breakpoint 1/3: it is in the first piece
    assert refode.theta(c, one_third, 1 / 3) == 10.0
    assert refode.theta(c, one_third, Fraction(1, 3)) == 20.0


def test_a_dict_a_single_array_and_the_dtypes():
    basis = refode.basis("fem_linear", 3)
    rng = np.random.default_rng(1)
    c = {"a": rng.standard_normal((3, 2, 2)).astype(np.float32), "b": rng.standard_normal(3)}
    out = refode.theta(c, basis, 0.25)
    assert out["a"].dtype == np.float32 and out["a"].shape == (2, 2)
    assert out["b"].dtype == np.float64 and out["b"].shape == ()
    assert np.array_equal(out["a"], 0.5 * c["a"][0] + 0.5 * c["a"][1])
    single = refode.theta(c["a"], basis, 0.25)
    assert isinstance(single, np.ndarray) and np.array_equal(single, out["a"])
    assert np.array_equal(refode.theta(c["a"], ("fem_linear", 3), 0.25), out["a"])
    zeros = theta_at_support({"a": c["a"]}, ((), ()))["a"]   # every phi_k vanishes
    assert zeros.dtype == np.float32 and not zeros.any() and zeros.shape == (2, 2)


@pytest.mark.parametrize("args, kw, error, match", [
    ((np.ones((2, 3)), 0.5), {}, ShapeError, r"leading axis .* \(3\)"),
    (({"W": np.ones((3, 2)), "b": np.ones(2)}, 0.5), {}, ShapeError, r"coefficients\['b'\]"),
    (({}, 0.5), {}, ShapeError, r"empty dict"),
    ((np.ones(3, dtype=np.int64), 0.5), {}, ShapeError, r"dtype int64"),
    ((np.full(3, np.nan), 0.5), {}, RefodeError, r"non-finite"),
    ((np.ones(3), 1.5), {}, BasisError, r"outside the interval \[0.0, 1.0\]"),
    ((np.ones(3), -1e-300), {}, BasisError, r"outside the interval"),
    ((np.ones(3), float("nan")), {}, BasisError, r"finite"),
    ((np.ones(3), "0.5"), {}, BasisError, r"real number"),
    ((np.ones(3), True), {}, BasisError, r"real number"),
    ((np.ones(3), np.ones(2)), {}, BasisError, r"real number"),
    ((np.ones(3), 0.5 + 0j), {}, BasisError, r"real number"),
    ((np.ones(3), 0.5), {"side": "up"}, RefodeError, r"`side` must be 'right' or 'left'"),
])
def test_bad_inputs_are_refused(args, kw, error, match):
    coefficients, t = args
    with pytest.raises(error, match=match):
        refode.theta(coefficients, refode.basis("piecewise_constant", 3), t, **kw)


def test_a_bad_basis_is_refused():
    with pytest.raises(BasisError, match="refode.Basis or a"):
        refode.theta(np.ones(3), "piecewise_constant", 0.5)
