"""L2 projection, interpolation and refinement of coefficient arrays."""
import itertools
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refode
from refode.errors import BasisError, RefodeError, ShapeError
from refode.kernels import BACKENDS
from refode.projection.mass import mass
from refode.projection.project import projection_operator

from ..bases.test_families import REFINABLE, SIZES
from .naive import brute_mass, brute_project

PAIRS = list(itertools.product(sorted(SIZES), repeat=2))
#: (A, B) with span(A) inside span(B): projecting A -> B is exact.
NESTED = [
    (("piecewise_constant", 4), ("piecewise_constant", 8)),
    (("piecewise_constant", 4), ("piecewise_linear", 8)),
    (("piecewise_constant", 3), ("piecewise_constant", 6)),
    (("fem_linear", 3), ("piecewise_linear", 4)),
    (("fem_linear", 4), ("fem_linear", 7)),
    (("poly_linear", 2), ("fem_linear", 3)),
    (("poly_linear", 2), ("piecewise_linear", 6)),
    (("poly_linear", 2), ("legendre", 3)),
    (("poly_linear", 2), ("chebyshev", 2)),
    (("legendre", 4), ("chebyshev", 5)),
    (("chebyshev", 3), ("legendre", 3)),
    (("fourier", 3), ("fourier", 7)),
    (("legendre", 1), ("fourier", 3)),
]
INTERVAL = (-1.0, 2.5)


def _bases(pair, interval=INTERVAL):
    return tuple(refode.basis(f, n, interval) for f, n in pair)


@pytest.mark.parametrize("fa, fb", PAIRS)
def test_every_ordered_pair_matches_brute_force(fa, fb, rng):
    a = refode.basis(fa, SIZES[fa], interval=INTERVAL)
    b = refode.basis(fb, SIZES[fb], interval=INTERVAL)
    c = rng.standard_normal((a.n, 3))
    got = refode.project(c, a, b)
    expected = brute_project(c, a, b)
    assert got.shape == (b.n, 3) and got.dtype == np.float64
    np.testing.assert_allclose(got, expected, rtol=1e-11, atol=1e-11 * np.abs(expected).max())


@pytest.mark.parametrize("fa, fb", PAIRS)
def test_residual_is_orthogonal_to_target(fa, fb, rng):
    a = refode.basis(fa, SIZES[fa] + 2 * (fa != "poly_linear"))
    b = refode.basis(fb, SIZES[fb])
    c = rng.standard_normal(a.n)
    cb = refode.project(c, a, b)
    # <phi^B_j, theta^A - theta^B> by adaptive quadrature
    residual = brute_mass(b, a) @ c - brute_mass(b, b) @ cb
    assert np.abs(residual).max() < 1e-12 * max(1.0, np.abs(c).max())


@pytest.mark.parametrize("pair", NESTED, ids=lambda p: f"{p[0][0]}{p[0][1]}-{p[1][0]}{p[1][1]}")
def test_exact_on_functions_in_target_space(pair, rng):
    a, b = _bases(pair)
    c = rng.standard_normal((a.n, 2))
    cb = refode.project(c, a, b)
    t = np.linspace(*INTERVAL, 41)
    # theta^B equals theta^A pointwise, and projecting back returns c (1e-13 relative)
    np.testing.assert_allclose(b.evaluate(t) @ cb, a.evaluate(t) @ c, rtol=1e-13,
                               atol=1e-13 * np.abs(c).max())
    np.testing.assert_allclose(refode.project(cb, b, a), c, rtol=1e-13,
                               atol=1e-13 * np.abs(c).max())
    # interpolation is exact on the target space as well
    np.testing.assert_allclose(refode.interpolate(c, a, b), cb, rtol=1e-12,
                               atol=1e-12 * np.abs(c).max())


@pytest.mark.parametrize("fa, fb", PAIRS)
def test_idempotent(fa, fb, rng):
    a = refode.basis(fa, SIZES[fa])
    b = refode.basis(fb, SIZES[fb])
    cb = refode.project(rng.standard_normal(a.n), a, b)
    np.testing.assert_array_equal(refode.project(cb, b, b), cb)
    if fb in REFINABLE:  # theta^B written in a richer space, projected onto B again
        fine, cf = refode.refine(cb, b)
        np.testing.assert_allclose(refode.project(cf, fine, b), cb, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("family", REFINABLE)
@given(seed=st.integers(0, 2**32 - 1))
def test_refine_then_project_returns_original(family, seed):
    rng = np.random.default_rng(seed)
    b = refode.basis(family, SIZES[family], INTERVAL)
    c = rng.standard_normal((b.n, 2, 2))
    fine, cf = refode.refine(c, b)
    assert fine.same_as(b.refine()[0]) and cf.shape == (fine.n, 2, 2)
    np.testing.assert_allclose(refode.project(cf, fine, b), c, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("interval", [(0.0, 1.0), (-3.0, 7.0)])
def test_piecewise_constant_16_to_6_is_overlap_average(interval, rng):
    a = rng.standard_normal(16)
    expected = np.zeros(6)
    for j in range(6):
        lo_j, hi_j = Fraction(j, 6), Fraction(j + 1, 6)
        for i in range(16):
            overlap = min(hi_j, Fraction(i + 1, 16)) - max(lo_j, Fraction(i, 16))
            expected[j] += 6 * float(max(overlap, 0)) * a[i]
    got = refode.project(a, ("piecewise_constant", 16, interval), ("piecewise_constant", 6))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-14)
    halves = refode.project(a, ("piecewise_constant", 16), ("piecewise_constant", 8))
    np.testing.assert_array_equal(halves, 0.5 * a[0::2] + 0.5 * a[1::2])


def test_sparse_operator_keeps_only_non_zeros():
    op = projection_operator(refode.basis("piecewise_constant", 16),
                             refode.basis("piecewise_constant", 8))
    assert op.data.size == 16 and np.all(op.data == 0.5)
    op6 = projection_operator(refode.basis("piecewise_constant", 16),
                              refode.basis("piecewise_constant", 6))
    assert op6.data.size == 16 + 6 - 1 - 1  # 19 subintervals of the union


@pytest.mark.parametrize("fa, fb", [("fem_linear", "piecewise_constant"),
                                    ("fourier", "legendre"), ("piecewise_linear", "fem_linear")])
def test_float32_path(fa, fb, rng):
    a, b = refode.basis(fa, SIZES[fa]), refode.basis(fb, SIZES[fb])
    c = rng.standard_normal((a.n, 4)).astype(np.float32)
    got = refode.project(c, a, b)
    assert got.dtype == np.float32
    exact = refode.project(c.astype(np.float64), a, b)
    np.testing.assert_array_equal(got, exact.astype(np.float32))


@given(trailing=st.lists(st.integers(0, 3), min_size=0, max_size=3),
       dtype=st.sampled_from([np.float32, np.float64]))
def test_arbitrary_trailing_shapes(trailing, dtype):
    rng = np.random.default_rng(len(trailing))
    a, b = refode.basis("fem_linear", 5), refode.basis("legendre", 3)
    c = rng.standard_normal((5, *trailing)).astype(dtype)
    got = refode.project(c, a, b)
    assert got.shape == (3, *trailing) and got.dtype == dtype
    p = brute_project(c.astype(np.float64), a, b)
    np.testing.assert_allclose(got, p, rtol=1e-5 if dtype == np.float32 else 1e-12, atol=1e-6)
    # a non-contiguous input gives the same result
    cf = np.asfortranarray(c)
    np.testing.assert_array_equal(refode.project(cf, a, b), got)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backends_agree(backend, rng):
    c = rng.standard_normal((6, 9))
    a, b = refode.basis("piecewise_linear", 6), refode.basis("fem_linear", 3)
    expected = refode.project(c, a, b, backend="reference")
    np.testing.assert_array_equal(refode.project(c, a, b, backend=backend), expected)


@pytest.mark.parametrize("family", sorted(SIZES))
def test_interpolation_is_identity_on_own_basis(family, rng):
    b = refode.basis(family, SIZES[family], INTERVAL)
    c = rng.standard_normal((b.n, 2))
    np.testing.assert_allclose(refode.interpolate(c, b, b), c, rtol=1e-13, atol=1e-13)


def test_interpolation_samples_at_target_nodes(rng):
    a = refode.basis("legendre", 5)
    b = refode.basis("fem_linear", 4)
    c = rng.standard_normal(5)
    np.testing.assert_allclose(refode.interpolate(c, a, b),
                               a.evaluate(np.linspace(0, 1, 4)) @ c, rtol=1e-14, atol=1e-14)
    # DG nodes take one-sided values: a piecewise-constant source is reproduced exactly
    pc = rng.standard_normal(3)
    dg = refode.interpolate(pc, ("piecewise_constant", 3), ("piecewise_linear", 6))
    np.testing.assert_array_equal(dg, np.repeat(pc, 2))


def test_tuple_specs_take_the_other_interval():
    b = refode.basis("legendre", 3, (2.0, 4.0))
    c = np.ones(4)
    got = refode.project(c, ("piecewise_constant", 4), b)
    np.testing.assert_allclose(got, [np.sqrt(2.0), 0, 0], atol=1e-14)
    assert mass(b).shape == (3, 3)


def test_poly_linear_cannot_be_refined_with_hint():
    with pytest.raises(BasisError, match="no exact refinement; to add degrees, project onto"):
        refode.refine(np.ones(2), ("poly_linear", 2))


@pytest.mark.parametrize("call, error, message", [
    (lambda: refode.project(np.ones(5), ("piecewise_linear", 5), ("legendre", 2)),
     BasisError, "piecewise_linear basis needs an even n.*use n=4 or 6"),
    (lambda: refode.project(np.ones(4), ("fourier", 4), ("legendre", 2)),
     BasisError, "fourier basis needs an odd n.*use n=3 or 5"),
    (lambda: refode.project(np.ones((3, 2)), ("legendre", 4), ("legendre", 2)),
     ShapeError, r"`coefficients` has shape \(3, 2\) but its leading axis must have one entry "
                 r"per basis functions \(4\)"),
    (lambda: refode.project(np.ones(4), ("wavelet", 4), ("legendre", 2)),
     BasisError, "unknown basis family 'wavelet'"),
    (lambda: refode.project(np.array([1.0, np.nan]), ("legendre", 2), ("legendre", 1)),
     RefodeError, "`coefficients` contains 1 non-finite value"),
    (lambda: refode.project(np.ones(2, dtype=np.int64), ("legendre", 2), ("legendre", 1)),
     ShapeError, "`coefficients` has dtype int64.*np.asarray"),
    (lambda: refode.project(np.ones(2), refode.basis("legendre", 2),
                            refode.basis("legendre", 2, (0.0, 2.0))),
     BasisError, r"`source` is on the interval \(0.0, 1.0\) but `target` is on \(0.0, 2.0\)"),
    (lambda: refode.interpolate(np.ones(2), ("legendre", 2, (0, 1)), ("fem_linear", 2, (0, 3))),
     BasisError, "`source` is on the interval"),
    (lambda: refode.project(np.ones(2), "legendre", ("legendre", 1)),
     BasisError, "`source` must be a refode.Basis or a tuple"),
    (lambda: refode.project(np.ones(2), ("legendre", 2), ("legendre", 1), backend="tpu"),
     RefodeError, "unknown backend 'tpu'"),
])
def test_bad_input_is_named(call, error, message):
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_parallel_finiteness_check_on_large_arrays(dtype, bad):
    from refode.projection._finite import CHUNK, MIN_SIZE, all_finite

    width = MIN_SIZE // 4 + 3  # not a multiple of the chunk: the last chunk is short
    c = np.zeros((4, width), dtype=dtype)
    c[:, ::7] = -1.5
    assert all_finite(c)
    for where in (0, CHUNK + 1, c.size - 1):
        c.flat[where] = bad
        assert not all_finite(c)
        with pytest.raises(RefodeError, match="`coefficients` contains 1 non-finite value"):
            refode.project(c, ("piecewise_constant", 4), ("piecewise_constant", 2))
        c.flat[where] = 0.0


def test_block_diagonal_target_keeps_exact_zeros():
    op = projection_operator(refode.basis("piecewise_constant", 4),
                             refode.basis("piecewise_linear", 8))
    dense = op.dense()
    assert op.data.size == 8 and np.all(op.data != 0)
    np.testing.assert_allclose(dense, np.repeat(np.eye(4), 2, axis=0), rtol=1e-14)


def test_non_finite_input_is_refused_on_every_route():
    # legendre 4 -> 2 drops rows 2 and 3: the input itself is checked
    c = np.zeros(4)
    c[3] = np.nan
    with pytest.raises(RefodeError, match="`coefficients` contains 1 non-finite value"):
        refode.project(c, ("legendre", 4), ("legendre", 2))
    # +Inf and -Inf cancel into NaN in the result: the input is scanned and named
    with pytest.raises(RefodeError, match="`coefficients` contains 2 non-finite value"):
        refode.project(np.array([np.inf, -np.inf]), ("piecewise_constant", 2),
                       ("piecewise_constant", 1))
    with pytest.raises(RefodeError, match="`coefficients` contains 1 non-finite value"):
        refode.refine(np.array([1.0, np.inf]), ("fem_linear", 2))
    with pytest.raises(RefodeError, match="`coefficients` contains 1 non-finite value"):
        refode.interpolate(np.array([1.0, 0, 0, np.nan]), ("piecewise_constant", 4),
                           ("fem_linear", 2))


def test_overflow_from_finite_float32_input_is_returned():
    big = np.array([0.0, 3.0e38], dtype=np.float32)  # a step: the L2 line is steeper
    line = refode.project(big, ("piecewise_constant", 2), ("poly_linear", 2))
    assert line.dtype == np.float32 and np.isinf(line[1])


def test_public_exports():
    for name in ("project", "interpolate", "refine", "fit", "mass"):
        assert name in refode.__all__ and callable(getattr(refode, name))


def test_banded_solve_of_large_k_equals_the_dense_cholesky():
    import scipy.linalg

    from refode.projection.mass import mass
    from refode.projection.project import BANDED_MIN_N, projection_operator

    source = refode.basis("piecewise_constant", 3)
    for family in ("fem_linear", "piecewise_linear"):
        target = refode.basis(family, BANDED_MIN_N + 2 * (family == "piecewise_linear"))
        dense = scipy.linalg.cho_solve(scipy.linalg.cho_factor(mass(target)),
                                       mass(target, source))
        np.testing.assert_allclose(projection_operator(source, target).dense(), dense,
                                   rtol=1e-12, atol=1e-14)
