"""The step grid: exact positions, one-sided pieces, exactly N steps, ResNet identity."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refode
from refode.integrate.grid import stage_grid, stage_positions

from .problems import CountingTanh

#: largest K = N of the ResNet identity and of the step count check.
MAX_STEPS = 256
#: pieces of the basis used when counting steps (N runs over all values).
COUNT_PIECES = 3
#: width of the cheap rate.
WIDTH = 3


def _pieces(basis, scheme, n_steps, direction="forward"):
    grid = stage_grid(basis, refode.tableau(scheme), n_steps, direction)
    return [[idx for idx, _ in row] for row in grid.supports]


def _coefficients(rng, k, dtype=np.float64):
    return {
        "W": rng.standard_normal((k, WIDTH)).astype(dtype),
        "b": rng.standard_normal((k, WIDTH)).astype(dtype),
    }


def test_euler_piecewise_constant_is_a_resnet_bitwise_for_every_k(rng):
    rate = CountingTanh()
    for k in range(1, MAX_STEPS + 1):
        c = _coefficients(rng, k)
        h0 = rng.standard_normal(WIDTH)
        h, dt = h0, 1.0 / k
        for n in range(k):
            h = h + dt * rate.forward(n / k, h, {"W": c["W"][n], "b": c["b"][n]})
        got = refode.odeint(rate, h0, c, refode.basis("piecewise_constant", k), n_steps=k)
        assert np.array_equal(got, h), f"K = N = {k}"


@pytest.mark.parametrize("k", [1, 7, 12, 33])
def test_resnet_identity_holds_in_float32(rng, k):
    rate = CountingTanh()
    c = _coefficients(rng, k, np.float32)
    h0 = rng.standard_normal(WIDTH).astype(np.float32)
    h = h0
    for n in range(k):
        h = h + (1.0 / k) * rate.forward(n / k, h, {"W": c["W"][n], "b": c["b"][n]})
    got = refode.odeint(rate, h0, c, ("piecewise_constant", k), n_steps=k)
    assert got.dtype == np.float32 and h.dtype == np.float32
    assert np.array_equal(got, h)


def test_exactly_n_steps_for_every_n(rng):
    basis = refode.basis("piecewise_constant", COUNT_PIECES)
    c = _coefficients(rng, COUNT_PIECES)
    h0 = rng.standard_normal(WIDTH)
    for n in range(1, MAX_STEPS + 1):
        rate = CountingTanh()
        refode.odeint(rate, h0, c, basis, n_steps=n)
        assert rate.calls == n, f"N = {n}"
    rate = CountingTanh()
    refode.odeint(rate, h0, c, basis, scheme="rk4", n_steps=49)
    assert rate.calls == 4 * 49


@pytest.mark.parametrize("k", [7, 9, 12, 14, 49, 98])
def test_step_n_uses_piece_n_when_n_equals_k(k):
    pieces = _pieces(refode.basis("piecewise_constant", k), "euler", k)
    assert pieces == [[(n,)] for n in range(k)]


def test_stage_on_a_breakpoint_takes_the_piece_inside_its_step():
    two = refode.basis("piecewise_constant", 2)
    # midpoint, K = 2, N = 1: c = 1/2 is on the breakpoint -> the right piece
    assert _pieces(two, "midpoint", 1) == [[(0,), (1,)]]
    # heun, K = N = 2: the c = 1 stage of step 0 sits at 1/2 -> the left piece (its own)
    assert _pieces(two, "heun", 2) == [[(0,), (0,)], [(1,), (1,)]]
    assert _pieces(two, "rk4", 2) == [[(0,), (0,), (0,), (0,)], [(1,), (1,), (1,), (1,)]]
    # rk4, K = 2, N = 1: c = 1/2 -> right piece; c = 1 at t1 -> the last piece
    assert _pieces(two, "rk4", 1) == [[(0,), (1,), (1,), (1,)]]


def test_n_not_a_multiple_of_k_and_n_below_k():
    three = refode.basis("piecewise_constant", 3)
    assert _pieces(three, "euler", 2) == [[(0,)], [(1,)]]  # 0 and 1/2
    assert _pieces(three, "euler", 4) == [[(0,)], [(0,)], [(1,)], [(2,)]]  # 0, 1/4, 1/2, 3/4
    five = refode.basis("piecewise_constant", 5)
    assert _pieces(five, "midpoint", 2) == [[(0,), (1,)], [(2,), (3,)]]  # 0, 1/4, 1/2, 3/4


def test_n_below_k_integrates_with_the_documented_pieces(rng):
    rate, c, h0 = CountingTanh(), _coefficients(rng, 3), rng.standard_normal(WIDTH)
    h1 = h0 + 0.5 * rate.forward(0.0, h0, {"W": c["W"][0], "b": c["b"][0]})
    h2 = h1 + 0.5 * rate.forward(0.5, h1, {"W": c["W"][1], "b": c["b"][1]})
    assert np.array_equal(refode.odeint(rate, h0, c, ("piecewise_constant", 3), n_steps=2), h2)


@given(
    k=st.integers(1, 40),
    n_steps=st.integers(1, 40),
    scheme=st.sampled_from(refode.tableaus()),
    direction=st.sampled_from(["forward", "backward"]),
)
def test_every_stage_uses_the_piece_inside_its_step(k, n_steps, scheme, direction):
    tab = refode.tableau(scheme)
    positions, _ = stage_positions(n_steps, tab, direction)
    pieces = _pieces(refode.basis("piecewise_constant", k), scheme, n_steps, direction)
    sign = 1 if direction == "forward" else -1
    for n, (row, piece_row) in enumerate(zip(positions, pieces)):
        start = Fraction(n, n_steps) if sign > 0 else 1 - Fraction(n, n_steps)
        for s, c, (p,) in zip(row, tab.c, piece_row):
            assert s == start + sign * c / n_steps
            lo, hi = Fraction(p, k), Fraction(p + 1, k)
            assert lo <= s <= hi
            inward = sign if c < 1 else -sign  # direction from s into the step
            assert (s < hi) if inward > 0 else (s > lo)


def test_backward_grid_of_a_resnet_reverses_the_pieces():
    k = 5
    grid = stage_grid(refode.basis("piecewise_constant", k), refode.tableau("heun"), k, "backward")
    assert grid.dt == -1.0 / k
    assert [row for row in grid.sides] == [("left", "right")] * k
    pieces = [[idx for idx, _ in row] for row in grid.supports]
    assert pieces == [[(k - 1 - m,)] * 2 for m in range(k)]


def test_stage_times_are_floats_of_exact_positions():
    basis = refode.basis("legendre", 2, (0.5, 2.0))
    grid = stage_grid(basis, refode.tableau("rk4_38"), 3)
    c = refode.tableau("rk4_38").c
    expected = [[0.5 + float(Fraction(n) / 3 + ci / 3) * 1.5 for ci in c] for n in range(3)]
    assert np.array_equal(grid.times, np.array(expected))
    assert grid.times[-1, -1] == 2.0


def test_grid_is_cached():
    basis, tab = refode.basis("legendre", 3), refode.tableau("rk4")
    assert stage_grid(basis, tab, 10) is stage_grid(refode.basis("legendre", 3), tab, 10)


#: bases of the comparison of the vectorised grid with the per-stage exact definition.
GRID_BASES = [("piecewise_constant", 7, (0.0, 1.0)), ("piecewise_linear", 6, (0.0, 1.0)),
              ("fem_linear", 5, (-1.0, 2.0)), ("legendre", 4, (0.5, 2.0)),
              ("chebyshev", 3, (0.0, 1.0)), ("fourier", 5, (0.0, 3.0)),
              ("poly_linear", 2, (1.0, 2.0)), ("fem_linear", 2, (0.0, 1.0))]


@pytest.mark.parametrize("family, k, interval", GRID_BASES)
def test_vectorised_grid_is_bitwise_the_per_stage_exact_definition(family, k, interval):
    from refode.integrate.weights import support as _sparse

    basis = refode.basis(family, k, interval)
    for scheme in refode.tableaus():
        for n_steps, direction in ((1, "forward"), (6, "forward"), (7, "backward")):
            tab = refode.tableau(scheme)
            grid = stage_grid(basis, tab, n_steps, direction)
            positions, sides = stage_positions(n_steps, tab, direction)
            times = [[basis.t0 + float(p) * basis.length for p in row] for row in positions]
            supports = tuple(tuple(_sparse(basis, p, s) for p, s in zip(row, srow))
                             for row, srow in zip(positions, sides))
            assert tuple(grid.positions) == positions and tuple(grid.sides) == sides
            assert np.array_equal(grid.times, np.array(times))
            assert tuple(grid.supports) == supports, (scheme, n_steps, direction)


def test_a_grid_of_the_largest_n_is_built_lazily_and_n_is_capped():
    from refode.integrate import _stages

    basis = refode.basis("fem_linear", 9)
    grid = stage_grid(basis, refode.tableau("rk4"), refode.limits.MAX_N_STEPS)
    assert grid.times.shape == (refode.limits.MAX_N_STEPS, 4) and grid.times[-1, -1] == 1.0
    assert isinstance(grid.supports, _stages.LazyRows) and not grid.supports._chunks
    last = grid.supports[-1]                       # builds one chunk of steps only
    assert last == tuple(refode.integrate.weights.support(basis, p, s) for p, s in
                         zip(grid.positions[-1], grid.sides[-1]))
    assert len(grid.supports._chunks) == 1
    with pytest.raises(refode.RefodeError, match="`n_steps` is 100,001"):
        stage_grid(basis, refode.tableau("rk4"), refode.limits.MAX_N_STEPS + 1)
