"""Gradients: discrete adjoint vs finite differences and complex step, memory
strategies bitwise equal, binomial bounds, continuous adjoint convergence, bad options."""
import zlib

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refode
from refode.errors import RefodeError, ShapeError
from refode.integrate.checkpoint import beta, repetitions_needed

from .problems import dense_problem, flatten, loss, small_basis

#: families registered when the tests are collected (others may be added later).
FAMILIES = refode.families()
#: schemes of the gradient checks (one per stage count, plus a c = 1 stage).
GRAD_SCHEMES = ("euler", "midpoint", "heun", "kutta3", "ssprk3", "rk4")
#: steps of the gradient checks: not a multiple of the basis sizes, so stages hit breakpoints
#: from both sides.
GRAD_STEPS = 5
#: central finite-difference step and its tolerance (relative, float64).
FD_STEP, FD_RTOL = 1e-6, 1e-6
#: complex step and its tolerance (relative, complex128).
CS_STEP, CS_RTOL = 1e-30, 1e-10
#: continuous adjoint: step counts, reference steps (discrete rk4), slope tolerance.
CONT_STEPS = np.array([16, 32, 64, 128])
CONT_REF_STEPS = 512
CONT_TOL = 0.3


def _perturbed(h0, c, target, index, delta):
    """Copies of ``(h0, c)`` with ``delta`` added to one entry of ``target``."""
    h0, c = h0.copy(), {k: v.copy() for k, v in c.items()}
    (h0 if target is None else c[target])[index] += delta
    return h0, c


def _entries(h0, c):
    yield from ((None, i) for i in np.ndindex(h0.shape))
    for name in sorted(c):
        yield from ((name, i) for i in np.ndindex(c[name].shape))


def _relative(a, b):
    return np.linalg.norm(a - b) / np.linalg.norm(b)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize("scheme", GRAD_SCHEMES)
def test_discrete_adjoint_matches_finite_differences(family, scheme):
    rng = np.random.default_rng(zlib.crc32(f"{family}/{scheme}".encode()))
    basis = small_basis(family)
    rate, c, h0, w = dense_problem(rng, basis)
    kw = {"scheme": scheme, "n_steps": GRAD_STEPS}
    dh0, dc = refode.gradient(rate, h0, c, basis, w, **kw)
    assert dh0.shape == h0.shape
    assert {k: v.shape for k, v in dc.items()} == {k: v.shape for k, v in c.items()}
    fd = []
    for target, index in _entries(h0, c):
        plus = loss(rate, *_perturbed(h0, c, target, index, FD_STEP), basis, w, **kw)
        minus = loss(rate, *_perturbed(h0, c, target, index, -FD_STEP), basis, w, **kw)
        fd.append((plus - minus) / (2 * FD_STEP))
    assert _relative(flatten(dh0, dc), np.array(fd)) < FD_RTOL


@pytest.mark.parametrize("family", ["piecewise_constant", "legendre"])
@pytest.mark.parametrize("scheme", ["midpoint", "rk4_38"])
def test_discrete_adjoint_matches_complex_step(family, scheme):
    rng = np.random.default_rng(7)
    basis = small_basis(family)
    rate, c, h0, w = dense_problem(rng, basis)
    kw = {"scheme": scheme, "n_steps": GRAD_STEPS}
    exact = flatten(*refode.gradient(rate, h0, c, basis, w, **kw))
    h0c, cc = h0.astype(np.complex128), {k: v.astype(np.complex128) for k, v in c.items()}
    cs = [
        loss(rate, *_perturbed(h0c, cc, target, index, 1j * CS_STEP), basis, w, **kw).imag / CS_STEP
        for target, index in _entries(h0, c)
    ]
    assert _relative(exact, np.array(cs)) < CS_RTOL


@given(
    seed=st.integers(0, 2**16),
    n_steps=st.integers(1, 20),
    slots=st.integers(1, 5),
    scheme=st.sampled_from(refode.tableaus()),
    family=st.sampled_from(FAMILIES),
)
def test_memory_strategies_agree_bitwise(seed, n_steps, slots, scheme, family):
    rng = np.random.default_rng(seed)
    basis = small_basis(family)
    rate, c, h0, w = dense_problem(rng, basis)
    kw = {"scheme": scheme, "n_steps": n_steps}
    results, stats = {}, {}
    for checkpoint, n_slots in [("all", None), ("steps", None), ("binomial", slots)]:
        stats[checkpoint] = refode.CheckpointStats()
        results[checkpoint] = refode.gradient(
            rate, h0, c, basis, w, checkpoint=checkpoint, slots=n_slots,
            stats=stats[checkpoint], **kw,
        )
    dh0, dc = results["all"]
    for checkpoint, (other_h0, other_c) in results.items():
        assert np.array_equal(other_h0, dh0), checkpoint
        assert all(np.array_equal(other_c[k], dc[k]) for k in dc), checkpoint
    stages = refode.tableau(scheme).stages
    assert stats["all"].peak_states == n_steps * stages and stats["all"].recomputed_steps == 0
    assert stats["steps"].peak_states == n_steps and np.all(stats["steps"].runs == 2)
    binomial = stats["binomial"]
    assert binomial.peak_states <= slots
    assert binomial.runs.max() <= repetitions_needed(slots, n_steps) + 1
    assert np.all(binomial.runs >= 1)


def test_binomial_schedule_meets_the_revolve_bound():
    rng = np.random.default_rng(3)
    basis = refode.basis("piecewise_constant", 4)
    rate, c, h0, w = dense_problem(rng, basis)
    for slots, reps in [(1, 5), (2, 3), (3, 2), (4, 3)]:
        n_steps = beta(slots, reps)
        stats = refode.CheckpointStats()
        refode.gradient(
            rate, h0, c, basis, w, n_steps=n_steps, checkpoint="binomial", slots=slots, stats=stats
        )
        assert stats.peak_states == slots, (slots, reps)
        assert stats.runs.max() == reps + 1, (slots, reps)
    assert beta(2, 3) == 10 and repetitions_needed(2, 10) == 3 and repetitions_needed(2, 11) == 4


def test_float32_gradient_keeps_the_dtype(rng):
    basis = refode.basis("legendre", 2)
    rate, c, h0, w = dense_problem(rng, basis)
    c32 = {k: v.astype(np.float32) for k, v in c.items()}
    h32, w32 = h0.astype(np.float32), w.astype(np.float32)
    dh0, dc = refode.gradient(rate, h32, c32, basis, w32, scheme="rk4", n_steps=4)
    ref = refode.gradient(rate, h0, c, basis, w, scheme="rk4", n_steps=4)
    assert dh0.dtype == np.float32 and all(v.dtype == np.float32 for v in dc.values())
    assert _relative(flatten(dh0, dc), flatten(*ref)) < 1e-5


def _continuous_slope(rate, h0, c, basis, w, scheme, steps, ref):
    """Fitted log-log slope of the continuous adjoint's relative error against ``ref``."""
    errors = []
    for n in steps:
        grad = refode.gradient(rate, h0, c, basis, w, scheme=scheme, n_steps=n, method="continuous")
        errors.append(_relative(flatten(*grad), ref))
    return np.polyfit(np.log(1.0 / steps), np.log(errors), 1)[0], errors


@pytest.fixture(scope="module")
def continuous_problem():
    rng = np.random.default_rng(1)
    basis = refode.basis("legendre", 3)
    rate, c, h0, w = dense_problem(rng, basis, d=4, scale=0.5)
    ref = flatten(*refode.gradient(rate, h0, c, basis, w, scheme="rk4", n_steps=CONT_REF_STEPS))
    return rate, h0, c, basis, w, ref


@pytest.mark.parametrize("scheme", ["euler", "midpoint", "rk4"])
def test_continuous_adjoint_converges_at_the_scheme_order(continuous_problem, scheme):
    rate, h0, c, basis, w, ref = continuous_problem
    slope, errors = _continuous_slope(rate, h0, c, basis, w, scheme, CONT_STEPS, ref)
    assert abs(slope - refode.tableau(scheme).order) < CONT_TOL, (slope, errors)


def test_continuous_adjoint_uses_the_pieces_inside_each_backward_step():
    # rk4 with steps aligned to the pieces keeps order 4 only if every backward stage on a
    # breakpoint takes the weights of its own step.
    rng = np.random.default_rng(5)
    basis = refode.basis("piecewise_constant", 4)
    rate, c, h0, w = dense_problem(rng, basis, d=3, scale=0.5)
    ref = flatten(*refode.gradient(rate, h0, c, basis, w, scheme="rk4", n_steps=CONT_REF_STEPS))
    steps = np.array([8, 16, 32, 64])
    slope, errors = _continuous_slope(rate, h0, c, basis, w, "rk4", steps, ref)
    assert abs(slope - 4) < CONT_TOL, (slope, errors)


@pytest.fixture
def inputs(rng):
    basis = refode.basis("legendre", 3)
    rate, c, h0, w = dense_problem(rng, basis)
    return rate, h0, c, basis, w


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"method": "backsolve"}, RefodeError,
         r"unknown `method` 'backsolve'; choose one of discrete, continuous"),
        ({"checkpoint": "some"}, RefodeError,
         r"unknown `checkpoint` 'some'; choose one of all, steps, binomial"),
        ({"checkpoint": "binomial"}, RefodeError, r"checkpoint='binomial' needs `slots`"),
        ({"checkpoint": "binomial", "slots": 0}, RefodeError,
         r"`slots` must be an integer >= 1, got 0"),
        ({"checkpoint": "binomial", "slots": 1.5}, RefodeError, r"`slots` must be an integer >= 1"),
        ({"checkpoint": "steps", "slots": 2}, RefodeError,
         r"`slots` applies to checkpoint='binomial' only"),
        ({"method": "continuous", "checkpoint": "steps"}, RefodeError,
         r"apply to method='discrete' only"),
        ({"n_steps": -1}, RefodeError, r"`n_steps` must be an integer >= 1, got -1"),
        ({"scheme": "rk5"}, RefodeError, r"unknown scheme 'rk5'"),
        ({"dloss_dhT": np.ones(3)}, ShapeError,
         r"`dloss_dhT` has shape \(3,\) but h0 has shape \(2, 2\)"),
        ({"dloss_dhT": np.full((2, 2), np.nan)}, RefodeError, r"`dloss_dhT` contains 4 non-finite"),
        ({"dloss_dhT": np.ones((2, 2), np.complex128)}, ShapeError,
         r"`dloss_dhT` has dtype complex128 but h0 and the coefficients compute in float64"),
    ],
)
def test_bad_gradient_options_are_refused(inputs, change, error, match):
    rate, h0, c, basis, w = inputs
    kw = {"dloss_dhT": w, "n_steps": 3}
    kw.update(change)
    with pytest.raises(error, match=match):
        refode.gradient(rate, h0, c, basis, kw.pop("dloss_dhT"), **kw)


def test_a_rate_without_vjp_is_refused(inputs):
    _, h0, c, basis, w = inputs

    class ForwardOnly:
        def forward(self, t, h, theta):
            return h

    with pytest.raises(RefodeError, match=r"`rate` has no method `vjp`"):
        refode.gradient(ForwardOnly(), h0, c, basis, w, n_steps=2)
