"""Every basis family: values, one-sided limits, exact positions, nodes, refinement, sizes."""
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import refode
from refode.errors import BasisError, RefodeError

#: one representative size per family (the cross-family tests use these).
SIZES = {
    "piecewise_constant": 5, "piecewise_linear": 6, "fem_linear": 4, "poly_linear": 2,
    "legendre": 4, "chebyshev": 5, "fourier": 5,
}
#: families whose functions sum to one everywhere.
PARTITION_OF_UNITY = ("piecewise_constant", "piecewise_linear", "fem_linear")
#: families with exact refinement.
REFINABLE = ("piecewise_constant", "piecewise_linear", "fem_linear", "legendre", "chebyshev",
             "fourier")


def test_all_families_registered():
    assert set(refode.families()) == set(SIZES)


@pytest.mark.parametrize("family", PARTITION_OF_UNITY)
@pytest.mark.parametrize("n", [2, 4, 8])
def test_partition_of_unity(family, n, rng):
    b = refode.basis(family, n, interval=(-1.0, 3.0))
    t = np.concatenate([[-1.0, 3.0], rng.uniform(-1.0, 3.0, 50)])
    np.testing.assert_allclose(b.evaluate(t).sum(axis=1), 1.0, rtol=0, atol=1e-15)


@pytest.mark.parametrize("n", [2, 3, 6])
def test_fem_hats_are_one_at_their_node(n):
    b = refode.basis("fem_linear", n, interval=(0.5, 2.0))
    t = np.linspace(0.5, 2.0, n)
    np.testing.assert_allclose(b.evaluate(t), np.eye(n), atol=1e-15)
    assert b.evaluate([0.5 + 1.5 * 0.5 / (n - 1)])[0].max() == pytest.approx(0.5)


def test_legendre_orthonormal_by_dense_rule():
    b = refode.basis("legendre", 6, interval=(1.0, 3.5))
    x, w = np.polynomial.legendre.leggauss(40)
    t = 2.25 + 1.25 * x
    v = b.evaluate(t)
    np.testing.assert_allclose(v.T @ (v * (1.25 * w)[:, None]), np.eye(6), atol=1e-13)


def test_chebyshev_and_fourier_formulas(rng):
    x = rng.uniform(0, 1, 20)
    cheb = refode.basis("chebyshev", 5).evaluate(x)
    for k in range(5):
        np.testing.assert_allclose(cheb[:, k], np.cos(k * np.arccos(2 * x - 1)), atol=1e-13)
    four = refode.basis("fourier", 7, interval=(2.0, 4.0)).evaluate(2.0 + 2.0 * x)
    np.testing.assert_allclose(four[:, 0], 1.0)
    for m in (1, 2, 3):
        np.testing.assert_allclose(four[:, 2 * m - 1], np.cos(2 * np.pi * m * x), atol=1e-13)
        np.testing.assert_allclose(four[:, 2 * m], np.sin(2 * np.pi * m * x), atol=1e-13)


def test_poly_linear_uses_absolute_depth():
    b = refode.basis("poly_linear", 2, interval=(2.0, 5.0))
    np.testing.assert_allclose(b.evaluate([2.0, 3.5, 5.0]), [[1, 2.0], [1, 3.5], [1, 5.0]])


def test_piecewise_linear_layout_and_one_sided_limits():
    b = refode.basis("piecewise_linear", 6)  # 3 elements
    # left end of element 1 from the right: phi_2 = 1; from the left: phi_1 = 1 (element 0)
    np.testing.assert_array_equal(b.evaluate_at(Fraction(1, 3), "right"), [0, 0, 1, 0, 0, 0])
    np.testing.assert_array_equal(b.evaluate_at(Fraction(1, 3), "left"), [0, 1, 0, 0, 0, 0])
    np.testing.assert_allclose(b.evaluate_at(Fraction(1, 2)), [0, 0, 0.5, 0.5, 0, 0])
    np.testing.assert_array_equal(b.evaluate([1 / 3 + 1e-12]).round(9), [[0, 0, 1, 0, 0, 0]])


@pytest.mark.parametrize("family", ["piecewise_constant", "piecewise_linear", "fem_linear"])
def test_last_point_belongs_to_last_piece(family):
    b = refode.basis(family, 4, interval=(0.0, 2.0))
    last = b.n_pieces - 1
    assert b.piece_at(1, "right") == last and b.piece_at(1, "left") == last
    np.testing.assert_array_equal(b.evaluate([2.0])[0], b.evaluate_at(1, "left"))
    assert b.evaluate([2.0])[0][-1] == 1.0


@pytest.mark.parametrize("n", [3, 7, 9, 12])
def test_exact_positions_on_breakpoints(n):
    pc = refode.basis("piecewise_constant", n)
    for k in range(n):
        assert pc.piece_at(Fraction(k, n), "right") == k
        assert pc.piece_at(Fraction(k + 1, n), "left") == k
        expected = np.zeros(n)
        expected[k] = 1.0
        np.testing.assert_array_equal(pc.evaluate_at(Fraction(k, n), "right"), expected)
        # the step start k * (1/n) built as an exact fraction of the step grid
        assert pc.piece_at(k * Fraction(1, n)) == k
    dg = refode.basis("piecewise_linear", 2 * n)
    for e in range(n):
        assert dg.evaluate_at(Fraction(e, n), "right")[2 * e] == 1.0
        assert dg.evaluate_at(Fraction(e + 1, n), "left")[2 * e + 1] == 1.0


@pytest.mark.parametrize("family", sorted(SIZES))
@pytest.mark.parametrize("scale", [1, 2])
def test_nodal_matrix_invertible(family, scale):
    n = SIZES[family] if family == "poly_linear" else scale * SIZES[family] + (scale - 1) * (
        family == "fourier")
    b = refode.basis(family, n)
    nodes = b.nodes()
    assert len(nodes) == n
    assert all(isinstance(x, Fraction) and side in refode.bases.SIDES for x, side in nodes)
    v = np.array([b.evaluate_at(x, side) for x, side in nodes])
    assert np.linalg.cond(v) < 1e6


def test_nodes_of_piecewise_families():
    dg = refode.basis("piecewise_linear", 4).nodes()
    assert dg == [(0, "right"), (Fraction(1, 2), "left"), (Fraction(1, 2), "right"), (1, "left")]
    assert refode.basis("piecewise_constant", 2).nodes() == [(Fraction(1, 4), "right"),
                                                              (Fraction(3, 4), "right")]
    assert [x for x, _ in refode.basis("fem_linear", 3).nodes()] == [0, Fraction(1, 2), 1]
    assert [x for x, _ in refode.basis("poly_linear", 2).nodes()] == [0, 1]


@pytest.mark.parametrize("family", REFINABLE)
@given(seed=st.integers(0, 2**32 - 1))
def test_refinement_is_exact(family, seed):
    rng = np.random.default_rng(seed)
    b = refode.basis(family, SIZES[family], interval=(-0.5, 1.5))
    fine, r = b.refine()
    expected_n = {"piecewise_constant": 2 * b.n, "piecewise_linear": 2 * b.n,
                  "fem_linear": 2 * b.n - 1, "fourier": b.n + 2}.get(family, b.n + 1)
    assert fine.n == expected_n and r.shape == (fine.n, b.n) and fine.interval == b.interval
    c = rng.standard_normal(b.n)
    t = np.concatenate([rng.uniform(-0.5, 1.5, 30), b.breakpoints])
    np.testing.assert_allclose(fine.evaluate(t) @ (r @ c), b.evaluate(t) @ c, atol=1e-12)


def test_poly_linear_refine_points_to_legendre():
    with pytest.raises(BasisError, match="no exact refinement.*legendre"):
        refode.basis("poly_linear", 2).refine()


@pytest.mark.parametrize("family, n, valid", [
    ("piecewise_linear", 7, "n=6 or 8"),
    ("piecewise_linear", 1, "n=2"),
    ("fourier", 4, "n=3 or 5"),
    ("poly_linear", 3, "n=2"),
    ("fem_linear", 1, "n=2"),
])
def test_wrong_n_names_valid_sizes(family, n, valid):
    with pytest.raises(BasisError, match=f"{family} basis needs .*got n={n}: use {valid}"):
        refode.basis(family, n)


def test_unknown_family_and_bad_n():
    with pytest.raises(BasisError, match="unknown basis family 'splines'; choose one of"):
        refode.basis("splines", 4)
    with pytest.raises(RefodeError, match="`n` must be an integer >= 1"):
        refode.basis("legendre", 0)


@pytest.mark.parametrize("family", sorted(SIZES))
def test_piece_support_is_the_non_zero_columns_of_eval_piece(family):
    basis = refode.basis(family, SIZES[family] + (4 if family != "poly_linear" else 0))
    xi = np.array([0.0, 0.25, 0.5, 1.0])
    for piece in range(basis.n_pieces):
        columns, values = basis._piece_support(piece, xi)
        dense = basis._eval_piece(piece, xi)
        np.testing.assert_array_equal(values, dense[:, columns])
        others = np.setdiff1d(np.arange(basis.n), columns)
        assert not dense[:, others].any()


def test_gauss_rules_are_numpys_below_128_points_and_exact_above():
    import scipy.special
    from numpy.polynomial import legendre

    from refode.bases._gauss import TRIDIAGONAL_FROM, leggauss

    for n in (1, 5, TRIDIAGONAL_FROM - 1):
        for ours, theirs in zip(leggauss(n), legendre.leggauss(n)):
            np.testing.assert_array_equal(ours, theirs)
    for n in (TRIDIAGONAL_FROM, 300):
        x, w = leggauss(n)
        xs, ws = legendre.leggauss(n)       # the dense eigenvalue solver (O(n^3))
        np.testing.assert_allclose(x, xs, rtol=0, atol=4e-16)
        np.testing.assert_allclose(w, ws, rtol=1e-11)
        np.testing.assert_allclose(x, scipy.special.roots_legendre(n)[0], rtol=0, atol=4e-16)
        for degree in (0, 2, 10):
            assert abs(np.sum(w * x ** degree) - 2.0 / (degree + 1)) < 1e-13
