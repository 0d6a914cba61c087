"""The host ``axpy`` (``a + w * b`` in one pass): bitwise NumPy's expression, in place too,
for any thread count; :mod:`refode.backend` takes it for host arrays it fits and NumPy's
expression otherwise."""
import numpy as np
import pytest

from refode import backend
from refode.kernels.cpu import _elementwise

from ._checks import THREAD_COUNTS, numba_threads

WEIGHTS = (0.1, -1.0 / 3.0, 1.0, 2.5e-8)


@pytest.mark.parametrize("dtype", (np.float32, np.float64))
def test_axpy_is_bitwise_numpys_expression(dtype, rng):
    a = rng.standard_normal((3, 5, 7)).astype(dtype)
    b = rng.standard_normal((3, 5, 7)).astype(dtype)
    a[0, 0, :3] = (np.inf, np.nan, -0.0)
    for w in WEIGHTS:
        got = _elementwise.axpy(a, w, b)
        want = a + w * b
        assert got.dtype == want.dtype == dtype
        np.testing.assert_array_equal(got, want)
        assert got.tobytes() == want.tobytes()   # -0.0 and NaN bits too


def test_axpy_float32_multiplies_in_float32(rng):
    """The weight is cast to float32 first (NumPy's weak scalar), not the product widened:
    a weight whose float64 product differs from the float32 one tells them apart."""
    a = np.zeros(64, np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    w = 0.1
    got = _elementwise.axpy(a, w, b)
    np.testing.assert_array_equal(got, np.float32(w) * b)
    assert not np.array_equal(got, (w * b.astype(np.float64)).astype(np.float32))


def test_axpy_in_place_and_thread_counts(rng):
    a = rng.standard_normal(10_001)
    b = rng.standard_normal(10_001)
    want = a + 0.3 * b
    results = []
    for n in THREAD_COUNTS:
        with numba_threads(n):
            results.append(_elementwise.axpy(a, 0.3, b))
    for r in results:
        np.testing.assert_array_equal(r, want)
    inplace = a.copy()
    assert _elementwise.axpy(inplace, 0.3, b, out=inplace) is inplace
    np.testing.assert_array_equal(inplace, want)


def test_backend_axpy_and_add_scaled_use_it_where_it_fits(rng, monkeypatch):
    calls = []
    real = _elementwise.axpy
    monkeypatch.setattr(_elementwise, "axpy", lambda *a, **k: calls.append(1) or real(*a, **k))
    a, b = rng.standard_normal((4, 6)), rng.standard_normal((4, 6))
    np.testing.assert_array_equal(backend.axpy(a, 0.7, b), a + 0.7 * b)
    g = rng.standard_normal((3, 4, 6))
    want = g.copy()
    want[1] += 0.7 * b
    backend.add_scaled(g[1], 0.7, b)
    np.testing.assert_array_equal(g, want)
    assert len(calls) == 2
    # what it does not fit: NumPy's expression, the same numbers
    for x, y in ((a[:, ::2], b[:, ::2]), (a, b.astype(np.float32)), (a, b[0]), (a, 1.5)):
        np.testing.assert_array_equal(backend.axpy(x, 0.7, y), x + 0.7 * y)
    assert len(calls) == 2
    assert not _elementwise.fits(a, b.astype(np.float32))
    assert not _elementwise.fits(a.astype(np.int64), b.astype(np.int64))
