"""Least-squares fits of point samples (stateful batch norm statistics)."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refode
from refode.errors import RefodeError, ShapeError


def _step_starts(n_steps):
    """Euler stage positions of ``n_steps`` equal steps, exact, from the right."""
    return [(Fraction(k, n_steps), "right") for k in range(n_steps)]


@given(k=st.integers(1, 13), dtype=st.sampled_from([np.float32, np.float64]),
       seed=st.integers(0, 2**32 - 1))
def test_one_sample_per_piece_is_bitwise(k, dtype, seed):
    rng = np.random.default_rng(seed)
    values = (rng.standard_normal((k, 3, 2)) * 10.0 ** rng.integers(-5, 5)).astype(dtype)
    previous = rng.standard_normal((k, 3, 2)).astype(dtype)
    got = refode.fit(_step_starts(k), values, ("piecewise_constant", k), previous=previous)
    assert got.dtype == dtype
    np.testing.assert_array_equal(got, values)


def test_unsampled_pieces_keep_previous(rng):
    # N = 3 steps on K = 8 pieces: pieces 0, 2 (8/3 -> piece 2), 5 are sampled
    previous = rng.standard_normal((8, 2))
    values = rng.standard_normal((3, 2))
    got = refode.fit(_step_starts(3), values, ("piecewise_constant", 8), previous=previous)
    sampled = [0, 2, 5]
    np.testing.assert_array_equal(got[sampled], values)
    others = [i for i in range(8) if i not in sampled]
    np.testing.assert_array_equal(got[others], previous[others])
    zero = refode.fit(_step_starts(3), values, ("piecewise_constant", 8))
    np.testing.assert_array_equal(zero[others], 0.0)


def test_several_samples_per_piece_average(rng):
    points = [(Fraction(1, 8), "right"), (Fraction(1, 4), "right"), (Fraction(1, 2), "left"),
              (Fraction(3, 4), "right")]
    values = np.array([1.0, 2.0, 4.0, 7.0])
    got = refode.fit(points, values, ("piecewise_constant", 2))
    np.testing.assert_allclose(got, [7.0 / 3.0, 7.0], rtol=1e-15)


def test_rank_deficient_takes_solution_closest_to_previous():
    dg = refode.basis("piecewise_linear", 4)  # element 0 sampled once at its midpoint
    previous = np.array([1.0, 3.0, 5.0, 6.0])
    got = refode.fit([(Fraction(1, 4), "right")], np.array([10.0]), dg, previous=previous)
    # 0.5 c0 + 0.5 c1 = 10 with the smallest change: both move by the same amount
    np.testing.assert_allclose(got, [9.0, 11.0, 5.0, 6.0], rtol=1e-14)


def test_exact_fit_in_space_from_float_depths(rng):
    b = refode.basis("legendre", 4, (1.0, 2.0))
    c = rng.standard_normal((4, 2))
    t = rng.uniform(1.0, 2.0, 12)
    np.testing.assert_allclose(refode.fit(t, b.evaluate(t) @ c, b), c, rtol=1e-11, atol=1e-12)


def test_fit_on_stage_grid_of_rk4_for_fem(rng):
    fem = refode.basis("fem_linear", 3)
    c = rng.standard_normal(3)
    points = [(Fraction(k, 4) + h, side) for k in range(4)
              for h, side in ((0, "right"), (Fraction(1, 8), "right"), (Fraction(1, 4), "left"))]
    values = np.array([fem.evaluate_at(x, s) @ c for x, s in points])
    np.testing.assert_allclose(refode.fit(points, values, fem), c, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("call, error, message", [
    (lambda: refode.fit([0.1, 0.2], np.ones(3), ("legendre", 2)),
     ShapeError, r"`values` has shape \(3,\) but its leading axis must have one entry per "
                 r"point in `points` \(2\)"),
    (lambda: refode.fit([0.1], np.ones(1), ("legendre", 2), previous=np.ones((2, 3))),
     ShapeError, r"`previous` has shape \(2, 3\) but must be"),
    (lambda: refode.fit([0.1], np.ones(1), ("legendre", 2), previous=np.ones(3)),
     ShapeError, "`previous` has shape"),
    (lambda: refode.fit([0.1], np.array([np.inf]), ("legendre", 2)),
     RefodeError, "`values` contains 1 non-finite"),
    (lambda: refode.fit([0.1], np.ones(1, dtype=int), ("legendre", 2)),
     ShapeError, "`values` has dtype int"),
    (lambda: refode.fit([(Fraction(1, 2), "middle")], np.ones(1), ("legendre", 2)),
     RefodeError, "`points` mixes exact and float entries or has a malformed pair"),
    (lambda: refode.fit([1.5], np.ones(1), ("legendre", 2)),
     RefodeError, r"`t` must lie inside the interval \[0.0, 1.0\]"),
    (lambda: refode.fit(["start"], np.ones(1), ("legendre", 2)),
     RefodeError, r"`points` must be \(Fraction position, side\) pairs or float depths"),
    (lambda: refode.fit([0.5, np.nan], np.ones(2), ("legendre", 2)),
     RefodeError, "`points` contains 1 non-finite"),
    (lambda: refode.fit([0.5], np.ones(1), ("chebyshev", 0)),
     RefodeError, "`n` must be an integer >= 1"),
])
def test_bad_fit_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()
