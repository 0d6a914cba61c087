"""The tiled shared-memory GEMM (``refode.kernels.cuda._gemm``) against NumPy's ``a @ b``.

Shapes are chosen so that no tile side used here divides them (edges in every
direction); each element is summed by one thread in increasing inner index in the
inputs' dtype, so it equals, bitwise, a serial loop in that dtype.
"""
import numpy as np
import pytest

from refode.kernels.cuda import _gemm

from .._checks import assert_close
from ._helpers import DTYPES, device_copies

pytestmark = pytest.mark.cuda

#: (M, K, N): spans 5 x 6 x 5 tiles of side 4.
SHAPE = (19, 23, 17)


def _operands(rng, dtype, ta=False, tb=False, shape=SHAPE):
    """``a`` (M, K), ``b`` (K, N) and their stored forms (transposed where asked)."""
    m, k, n = shape
    a, b = rng.standard_normal((m, k)).astype(dtype), rng.standard_normal((k, n)).astype(dtype)
    return a, b, np.ascontiguousarray(a.T) if ta else a, np.ascontiguousarray(b.T) if tb else b


def _matmul(a, b, ta=False, tb=False):
    """``op(a) @ op(b)`` by the CUDA GEMM, into a NaN-filled output."""
    out = np.full((a.shape[1] if ta else a.shape[0], b.shape[0] if tb else b.shape[1]), np.nan,
                  dtype=a.dtype)
    _gemm.matmul(a, b, out, ta, tb)
    return out


def _serial(a, b):
    """``a @ b`` summed serially in increasing inner index, in the inputs' dtype."""
    out = np.empty((a.shape[0], b.shape[1]), dtype=a.dtype)
    for i in range(a.shape[0]):
        for j in range(b.shape[1]):
            acc = a.dtype.type(0)
            for k in range(a.shape[1]):
                acc += a[i, k] * b[k, j]
            out[i, j] = acc
    return out


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("ta, tb", [(False, False), (True, False), (False, True), (True, True)])
def test_matmul_matches_numpy_with_transposes(dtype, ta, tb, rng):
    a, b, sa, sb = _operands(rng, dtype, ta, tb)
    out = _matmul(sa, sb, ta, tb)
    assert out.dtype == dtype
    assert_close(out, a @ b)
    np.testing.assert_array_equal(out, _serial(a, b))  # the documented order, bitwise


@pytest.mark.parametrize("side", [1, 3, 5, 16])
def test_matmul_is_the_same_serial_sum_for_every_tile_side(side, tile, rng):
    tile(side)
    a, b, _, _ = _operands(rng, np.float64, shape=(7, 9, 6))
    np.testing.assert_array_equal(_matmul(a, b), _serial(a, b))


def test_float32_accumulates_in_float32(rng):
    # 1 + 16 * 2**-26 in float32 stays 1 term by term; a float64 sum would round up
    a = np.full((3, 17), 2.0 ** -26, dtype=np.float32)
    a[:, 0] = 1.0
    b = np.ones((17, 5), dtype=np.float32)
    out = _matmul(a, b)
    np.testing.assert_array_equal(out, np.ones((3, 5), dtype=np.float32))
    assert np.all(a.astype(np.float64) @ b.astype(np.float64) > 1.0 + 2.0 ** -23)


def test_matmul_is_deterministic(rng):
    a, b, _, _ = _operands(rng, np.float32)
    np.testing.assert_array_equal(_matmul(a, b), _matmul(a, b))


def test_matmul_on_device_arrays_copies_nothing(cuda, no_transfers, rng):
    a, b, _, sb = _operands(rng, np.float64, tb=True)
    d_a, d_b, d_out = device_copies(cuda, [a, sb, np.zeros(a.shape[:1] + b.shape[1:])])
    with no_transfers():
        _gemm.matmul(d_a, d_b, d_out, tb=True)
    assert_close(d_out.copy_to_host(), a @ b)


def test_empty_inner_dimension_gives_zeros_and_empty_outputs_are_untouched():
    out = _matmul(np.ones((3, 0)), np.ones((0, 4)))
    np.testing.assert_array_equal(out, np.zeros((3, 4)))
    _gemm.matmul(np.ones((0, 2)), np.ones((2, 5)), np.empty((0, 5)))


def test_nan_reaches_only_its_row(rng):
    a, b, _, _ = _operands(rng, np.float64, shape=(6, 5, 7))
    a[4, 2] = np.nan
    out = _matmul(a, b)
    assert np.all(np.isnan(out[4])) and np.all(np.isfinite(np.delete(out, 4, axis=0)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_batched_products_over_heads_in_strided_views(dtype, rng):
    # x (B, L, 2D) holds two parts side by side; per (batch, head): x_h @ y_h^T * alpha
    n_batch, heads, length, dh = 2, 3, 5, 3
    d = heads * dh
    x = rng.standard_normal((n_batch, length, 2 * d)).astype(dtype)
    out = np.full((n_batch, heads, length, length), np.nan, dtype=dtype)
    part = _gemm.View(0, length * 2 * d, dh, 2 * d, 1)
    scores = _gemm.View(0, heads * length * length, length * length, length, 1)
    _gemm.batched(x, part, x, part._replace(offset=d).transposed(), out, scores,
                  (n_batch, heads, length, length, dh), alpha=0.5)
    q = x[..., :d].reshape(n_batch, length, heads, dh).transpose(0, 2, 1, 3)
    k = x[..., d:].reshape(n_batch, length, heads, dh).transpose(0, 2, 1, 3)
    assert_close(out, 0.5 * (q @ k.transpose(0, 1, 3, 2)))
