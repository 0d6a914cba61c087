"""Global average pooling and its VJP: definition vs Numba CPU vs CUDA (simulator), vs torch.

The definition is NumPy's ``mean`` (pairwise summation in the array dtype), the CPU and
CUDA kernels sum in float64 in row order: within 1e-12 (float64) / 1e-5 (float32),
not bitwise. The VJP (a division and a broadcast) is bitwise between reference and CPU.
"""
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from refode.kernels import COMPILED, get

from ._checks import (
    DOT_RTOL,
    FD_RTOL,
    THREAD_COUNTS,
    assert_close,
    central_difference,
    numba_threads,
    relative_gap,
)

DTYPES = (np.float64, np.float32)


def _run(backend, x, g):
    """Pooled ``x`` and the cotangent of ``x`` for ``g``."""
    out, dx = np.full(x.shape[:2], np.nan, dtype=x.dtype), np.full_like(x, np.nan)
    get("avgpool", backend)(x, out)
    get("avgpool.avgpool_vjp", backend)(g, dx)
    return out, dx


def _compile_cpu():
    for dtype in DTYPES:
        _run("cpu", np.ones((1, 2, 3, 3), dtype), np.ones((1, 2), dtype))


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    warmup("avgpool", _compile_cpu)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
def test_avgpool_backends_agree_with_definition(backend, dtype, rng):
    x = rng.standard_normal((2, 3, 5, 4)).astype(dtype)
    g = rng.standard_normal((2, 3)).astype(dtype)
    expected = _run("reference", x, g)
    out, dx = _run(backend, x, g)
    assert_close(out, expected[0])
    if backend == "cuda":
        assert_close(dx, expected[1])
    else:
        np.testing.assert_array_equal(dx, expected[1])


@given(
    n=st.integers(1, 3),
    c=st.integers(1, 3),
    height=st.integers(1, 6),
    width=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_avgpool_vjp_dot_product_identity_and_finite_differences(n, c, height, width, seed):
    rng = np.random.default_rng(seed)
    x, v = rng.standard_normal((2, n, c, height, width))
    w = rng.standard_normal((n, c))
    pool = get("avgpool")

    def f(x):
        out = np.empty((n, c))
        pool(x, out)
        return out

    _, vjp = _run("cpu", x, w)
    # the op is linear: J v = f(v) exactly
    assert relative_gap(float(np.vdot(f(v), w)), float(np.vdot(v, vjp))) <= DOT_RTOL
    fd = central_difference(f, (x,), (v,))
    assert relative_gap(float(np.vdot(fd, w)), float(np.vdot(v, vjp))) <= FD_RTOL


def test_avgpool_cpu_is_bitwise_identical_across_thread_counts(rng):
    x = rng.standard_normal((8, 16, 7, 9))
    g = rng.standard_normal((8, 16))
    results = []
    for n in THREAD_COUNTS:
        with numba_threads(n):
            results.append(_run("cpu", x, g))
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


def test_avgpool_matches_torch(rng):
    torch = pytest.importorskip("torch")
    x = rng.standard_normal((3, 4, 6, 5))
    g = rng.standard_normal((3, 4))
    tx = torch.tensor(x, requires_grad=True)
    y = torch.nn.functional.adaptive_avg_pool2d(tx, 1).flatten(1)
    (dx,) = torch.autograd.grad(y, (tx,), torch.tensor(g))
    out, vjp = _run("cpu", x, g)
    assert_close(out, y.detach().numpy())
    assert_close(vjp, dx.numpy())
