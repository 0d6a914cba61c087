"""The ``dense`` kernel and its VJP: definition vs Numba CPU vs CUDA (simulator), vs torch.

Reference vs CPU is bitwise: both make the same BLAS calls and add the bias, and sum the
bias cotangent, in the same order. CUDA sums in the input dtype in increasing inner index: within
1e-12 (float64) / 1e-5 (float32), relative to the array's size.
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
    vdot_all,
)

DTYPES = (np.float64, np.float32)


def _data(rng, m, n_in, n_out, dtype=np.float64):
    """``x (m, n_in)``, ``w (n_out, n_in)``, ``b (n_out,)``, ``g (m, n_out)``."""
    shapes = ((m, n_in), (n_out, n_in), (n_out,), (m, n_out))
    return [rng.standard_normal(s).astype(dtype) for s in shapes]


def _run(backend, x, w, b, g):
    """Forward output and the three cotangents (``db`` is None without bias)."""
    out = np.full((x.shape[0], w.shape[0]), np.nan, dtype=x.dtype)
    get("dense", backend)(x, w, b, out)
    dx, dw = np.full_like(x, np.nan), np.full_like(w, np.nan)
    db = None if b is None else np.full_like(b, np.nan)
    get("dense.dense_vjp", backend)(x, w, g, dx, dw, db)
    return out, dx, dw, db


def _compile_cpu():
    for dtype in DTYPES:
        _run("cpu", *_data(np.random.default_rng(0), 2, 3, 4, dtype))


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    warmup("dense", _compile_cpu)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("bias", [True, False])
def test_dense_backends_agree_with_definition(backend, dtype, bias, rng):
    x, w, b, g = _data(rng, 5, 7, 3, dtype)
    b = b if bias else None
    expected = _run("reference", x, w, b, g)
    actual = _run(backend, x, w, b, g)
    for a, e in zip(actual, expected):
        if e is None:
            assert a is None
        elif backend == "cuda":
            assert_close(a, e)
        else:
            np.testing.assert_array_equal(a, e)
    # the definition is what it claims to be
    exact = x.astype(np.float64) @ w.T.astype(np.float64) + (b if bias else 0)
    assert_close(expected[0], exact.astype(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_cpu_bias_cotangent_over_several_lane_blocks_is_the_definition_bitwise(dtype, rng):
    from refode.kernels._compile import Runner

    n_out = 2 * Runner.LANES + 5  # three column tasks, the last one partial
    x, w, b, g = _data(rng, 9, 4, n_out, dtype)
    db_cpu = _run("cpu", x, w, b, g)[3]
    np.testing.assert_array_equal(db_cpu, _run("reference", x, w, b, g)[3])
    want = np.zeros(n_out, dtype)  # rows added in order in the output dtype
    for row in g:
        want += row
    np.testing.assert_array_equal(db_cpu, want)


@given(
    m=st.integers(1, 6),
    n_in=st.integers(1, 6),
    n_out=st.integers(1, 6),
    seed=st.integers(0, 2**32 - 1),
)
def test_dense_vjp_dot_product_identity_and_finite_differences(m, n_in, n_out, seed):
    rng = np.random.default_rng(seed)
    x, w, b, g = _data(rng, m, n_in, n_out)
    vx, vw, vb, _ = _data(rng, m, n_in, n_out)
    dense = get("dense")
    _, dx, dw, db = _run("cpu", x, w, b, g)
    vjp_side = vdot_all((vx, vw, vb), (dx, dw, db))

    # exact JVP by bilinearity: J (vx, vw, vb) = dense(vx, w, vb) + dense(x, vw, None)
    jv, jv2 = np.empty_like(g), np.empty_like(g)
    dense(vx, w, vb, jv)
    dense(x, vw, None, jv2)
    assert relative_gap(float(np.vdot(jv + jv2, g)), vjp_side) <= DOT_RTOL

    def forward(x, w, b):
        out = np.empty_like(g)
        dense(x, w, b, out)
        return out

    fd = central_difference(forward, (x, w, b), (vx, vw, vb))
    assert relative_gap(float(np.vdot(fd, g)), vjp_side) <= FD_RTOL


def test_dense_cpu_is_bitwise_identical_across_thread_counts(rng):
    x, w, b, g = _data(rng, 64, 33, 17)
    results = []
    for n in THREAD_COUNTS:
        with numba_threads(n):
            results.append(_run("cpu", x, w, b, g))
    for a, e in zip(*results):
        np.testing.assert_array_equal(a, e)


def test_dense_matches_torch_linear(rng):
    torch = pytest.importorskip("torch")
    x, w, b, g = _data(rng, 6, 5, 4)
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = torch.nn.functional.linear(tx, tw, tb)
    grads = torch.autograd.grad(y, (tx, tw, tb), torch.tensor(g))
    out, dx, dw, db = _run("cpu", x, w, b, g)
    assert_close(out, y.detach().numpy())
    for a, t in zip((dx, dw, db), grads):
        assert_close(a, t.numpy())
