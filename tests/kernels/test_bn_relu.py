"""``bn_relu`` (batch norm then ReLU, fused) and its VJP on every backend.

The definition composes the reference batch norm and ReLU; the CPU kernel sums the
channel statistics over lanes (another order than the serial ``batchnorm`` kernel),
so backends agree with it within 1e-12 (float64) / 1e-5 (float32), relative.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refode.kernels import COMPILED, get

from .vjp_checks import (
    assert_close,
    assert_dot_product_identity,
    assert_finite_differences,
    assert_thread_count_invariant,
    run_outputs,
)
from tests.profiles import examples

KERNELS = ("bn_relu", "bn_relu.bn_relu_eval", "bn_relu.bn_relu_vjp")
#: (N, C, H, W) per backend: the CUDA simulator runs every thread in Python.
SHAPES = {"cpu": (4, 6, 5, 3), "cuda": (2, 3, 2, 2)}
#: large enough that the channel loop is split between threads.
THREAD_SHAPE = (8, 16, 6, 6)


def _case(rng, shape, dtype=np.float64):
    c = shape[1]
    x, dr = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma, beta, mean = (rng.standard_normal(c).astype(dtype) for _ in range(3))
    var = (rng.random(c) + 0.5).astype(dtype)
    r = np.empty_like(x)
    get("bn_relu", "reference")(x, gamma, beta, r, np.empty(c, dtype), np.empty(c, dtype))
    return {
        "bn_relu": ((x, gamma, beta), [x, gamma, gamma]),
        "bn_relu.bn_relu_eval": ((x, gamma, beta, mean, var), [x]),
        "bn_relu.bn_relu_vjp": ((x, gamma, r, dr), [x, gamma, gamma]),
    }


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    def compile_all():
        for dtype in (np.float64, np.float32):
            for kernel, (args, outs) in _case(np.random.default_rng(0), (2, 2, 1, 1),
                                              dtype).items():
                run_outputs(get(kernel, "cpu"), args, outs)

    warmup("bn_relu", compile_all)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", KERNELS)
def test_backends_agree_with_definition(backend, dtype, kernel, rng):
    args, outs = _case(rng, SHAPES[backend], dtype)[kernel]
    expected = run_outputs(get(kernel, "reference"), args, outs)
    for actual, want in zip(run_outputs(get(kernel, backend), args, outs), expected):
        assert actual.dtype == dtype
        assert_close(actual, want)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cpu_is_bitwise_independent_of_thread_count(kernel, rng):
    args, outs = _case(rng, THREAD_SHAPE)[kernel]
    assert_thread_count_invariant(get(kernel, "cpu"), args, outs)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_fused_equals_batchnorm_then_relu_on_the_cpu(dtype, rng):
    """The fused forward is the two CPU kernels in a row (statistics to round-off), its ReLU
    exactly zero where the normalised value is not positive, and NaN propagates."""
    x = rng.standard_normal((3, 4, 5, 6)).astype(dtype)
    x[1, 2, 3, 4] = np.nan
    gamma, beta = rng.standard_normal(4).astype(dtype), rng.standard_normal(4).astype(dtype)
    y, r = np.empty_like(x), np.empty_like(x)
    stats = [np.empty(4, dtype) for _ in range(4)]
    get("batchnorm", "cpu")(x, gamma, beta, y, *stats[:2])
    get("activation.relu", "cpu")(y, y)
    get("bn_relu", "cpu")(x, gamma, beta, r, *stats[2:])
    assert np.isnan(r[:, 2]).all() and np.isnan(stats[2][2]) and np.isnan(stats[3][2])
    keep = np.ones(4, dtype=bool)
    keep[2] = False
    assert_close(r[:, keep], y[:, keep])
    assert ((r[:, keep] == 0) == (y[:, keep] == 0)).mean() > 0.99
    assert (r[:, keep] >= 0).all()


def _op(backend):
    """(forward, vjp) of the training form over the inputs x, gamma, beta."""
    names = ("x", "gamma", "beta")
    fwd, vjp = get("bn_relu", "reference"), get("bn_relu.bn_relu_vjp", backend)

    def forward(inp):
        x = inp["x"]
        r = np.empty(x.shape, x.dtype)
        fwd(inp["x"], inp["gamma"], inp["beta"], r, *(np.empty(x.shape[1], x.dtype),) * 2)
        return [r]

    def gradient(inp, cot):
        x = inp["x"]
        r = forward(inp)[0]
        grads = [np.empty_like(x), np.empty(x.shape[1]), np.empty(x.shape[1])]
        vjp(x, inp["gamma"], r, cot[0], *grads)
        return dict(zip(names, grads))

    return names, forward, gradient


_shapes = st.tuples(st.integers(2, 3), st.integers(1, 3), st.integers(1, 2), st.integers(1, 3))


@settings(max_examples=examples(10))
@given(shape=_shapes, seed=st.integers(0, 2**32 - 1))
def test_cpu_vjp_dot_product_identity(shape, seed):
    rng = np.random.default_rng(seed)
    names, forward, gradient = _op("cpu")
    inp = {k: rng.standard_normal(shape if k == "x" else shape[1]) for k in names}
    assert_dot_product_identity(forward, gradient, inp, rng)


@settings(max_examples=examples(6))
@given(shape=_shapes, seed=st.integers(0, 2**32 - 1))
def test_cpu_vjp_matches_finite_differences(shape, seed):
    rng = np.random.default_rng(seed)
    names, forward, gradient = _op("cpu")
    inp = {k: rng.standard_normal(shape if k == "x" else shape[1]) for k in names}
    assert_finite_differences(forward, gradient, inp, rng)
