"""The ``combine`` kernel: NumPy definition vs Numba CPU vs CUDA (simulator)."""
import numpy as np
import pytest
import scipy.sparse as sp

from refode.kernels import COMPILED, get


def _csr(rng, n_out, n_src, density):
    m = sp.random(n_out, n_src, density=density, random_state=rng, format="csr")
    return (m.indptr.astype(np.int64), m.indices.astype(np.int64), m.data.astype(np.float64)), m


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3, 5, 1), (8, 16, 37), (2, 4, 2049)])
def test_combine_backends_agree_with_definition(backend, dtype, shape, rng):
    n_out, n_src, width = shape
    if backend == "cuda":
        width = min(width, 40)  # the simulator runs every thread in Python
    csr, m = _csr(rng, n_out, n_src, 0.5)
    src = rng.standard_normal((n_src, width)).astype(dtype)
    expected = np.empty((n_out, width), dtype=dtype)
    get("combine", "reference")(*csr, src, expected)
    out = np.full((n_out, width), np.nan, dtype=dtype)
    get("combine", backend)(*csr, src, out)
    np.testing.assert_array_equal(out, expected)
    # and the definition is the matrix product it claims to be
    np.testing.assert_allclose(expected, (m @ src.astype(np.float64)).astype(dtype), rtol=1e-6)


def test_unknown_kernel_and_backend_are_named():
    from refode.errors import RefodeError

    with pytest.raises(RefodeError, match="unknown kernel 'nope'"):
        get("nope", "cpu")
    with pytest.raises(RefodeError, match="unknown backend"):
        get("combine", "tpu")
