"""Mass matrices against adaptive quadrature, for every pair of families."""
import itertools
from fractions import Fraction

import numpy as np
import pytest

import refode
from refode.errors import BasisError
from refode.projection.mass import gauss_points, mass, union_breakpoints

from ..bases.test_families import SIZES
from .naive import brute_mass

PAIRS = list(itertools.product(sorted(SIZES), repeat=2))


@pytest.mark.parametrize("fa, fb", PAIRS)
def test_mass_matches_adaptive_quadrature(fa, fb):
    a = refode.basis(fa, SIZES[fa], interval=(-0.5, 1.25))
    b = refode.basis(fb, SIZES[fb] + 2 * (fb not in ("poly_linear",)), interval=(-0.5, 1.25))
    m = mass(a, b)
    assert m.shape == (a.n, b.n) and m.dtype == np.float64
    np.testing.assert_allclose(m, brute_mass(a, b), rtol=0, atol=1e-13)
    np.testing.assert_allclose(mass(b, a), m.T, rtol=0, atol=1e-15)


def test_high_frequency_fourier_against_legendre():
    a = refode.basis("fourier", 21)
    b = refode.basis("legendre", 12)
    np.testing.assert_allclose(mass(a, b), brute_mass(a, b), rtol=0, atol=1e-13)
    np.testing.assert_allclose(mass(a), np.diag([1.0] + [0.5] * 20), atol=1e-14)


def test_legendre_mass_is_identity_and_pc_is_diagonal():
    np.testing.assert_allclose(mass(refode.basis("legendre", 7, (2.0, 5.0))), np.eye(7),
                               atol=1e-14)
    m = mass(refode.basis("piecewise_constant", 6, (0.0, 3.0)))
    np.testing.assert_array_equal(m, np.diag(np.full(6, 0.5)))


def test_union_breakpoints_are_exact_and_rule_is_exact_for_product_degree():
    a, b = refode.basis("piecewise_constant", 16), refode.basis("piecewise_constant", 6)
    edges = union_breakpoints(a, b)
    # 15 + 5 interior edges, 1/2 shared, plus both ends
    assert len(edges) == 15 + 5 - 1 + 2
    assert edges == tuple(sorted({Fraction(k, 16) for k in range(17)}
                                 | {Fraction(k, 6) for k in range(7)}))
    assert gauss_points(refode.basis("legendre", 4), refode.basis("fem_linear", 3)) == 3
    assert gauss_points(a, b) == 1


def test_mass_is_cached_and_read_only():
    a = refode.basis("fem_linear", 5)
    m = mass(a)
    assert mass(refode.basis("fem_linear", 5)) is m
    with pytest.raises(ValueError):
        m[0, 0] = 1.0


def test_mass_refuses_different_intervals_and_non_bases():
    with pytest.raises(BasisError, match=r"`a` is on the interval \(0.0, 1.0\) but `b` is on"):
        mass(refode.basis("legendre", 2), refode.basis("legendre", 2, (0.0, 2.0)))
    with pytest.raises(BasisError, match="`b` must be a refode.Basis"):
        mass(refode.basis("legendre", 2), ("legendre", 2))


def _dense_assembly(a, b):
    """The definition term by term: every subinterval adds a dense (a.n, b.n) product."""
    from refode.bases._gauss import leggauss

    g, w = leggauss(gauss_points(a, b))
    nodes, weights = 0.5 * (g + 1.0), 0.5 * w
    out = np.zeros((a.n, b.n))
    edges = union_breakpoints(a, b)
    for lo, hi in zip(edges[:-1], edges[1:]):
        values = []
        for basis in (a, b):
            piece = basis.piece_at((lo + hi) / 2)
            left, right = basis.unit_breakpoints[piece], basis.unit_breakpoints[piece + 1]
            xi_lo, xi_hi = (float((v - left) / (right - left)) for v in (lo, hi))
            values.append(basis._eval_piece(piece, xi_lo + (xi_hi - xi_lo) * nodes))
        out += (values[0] * (weights * float(hi - lo))[:, None]).T @ values[1]
    return out * a.length


@pytest.mark.parametrize("fa, fb", [("piecewise_constant", "fem_linear"),
                                    ("fem_linear", "piecewise_linear"),
                                    ("piecewise_linear", "piecewise_constant"),
                                    ("fem_linear", "fem_linear")])
def test_block_assembly_equals_the_dense_assembly_bitwise(fa, fb):
    a, b = refode.basis(fa, SIZES[fa] + 4), refode.basis(fb, SIZES[fb] + 2)
    np.testing.assert_array_equal(mass(a, b), _dense_assembly(a, b))


def test_union_breakpoints_is_the_sorted_union():
    a, b = refode.basis("piecewise_constant", 6), refode.basis("fem_linear", 5)
    assert union_breakpoints(a, b) == tuple(sorted(set(a.unit_breakpoints)
                                                   | set(b.unit_breakpoints)))
    assert union_breakpoints(a, a) == a.unit_breakpoints


def test_large_k_mass_matrices_are_exact_and_banded():
    k = 2048
    for family, width in (("piecewise_constant", 0), ("fem_linear", 1),
                          ("piecewise_linear", 1)):
        m = mass(refode.basis(family, k))
        rows, cols = np.nonzero(m)
        assert np.abs(rows - cols).max() == width
        np.testing.assert_allclose(m.sum(), 1.0, rtol=1e-13)   # sum of all phi_i phi_j
