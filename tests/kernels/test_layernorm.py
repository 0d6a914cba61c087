"""``layernorm`` and its VJP on every backend.

Backends are compared with the NumPy definition within 1e-12 (float64) / 1e-5
(float32), relative: the reference sums with NumPy's pairwise summation.
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

KERNELS = ("layernorm", "layernorm.layernorm_vjp")
#: (B, L, D) per backend: the CUDA simulator runs every thread in Python.
SHAPES = {"cpu": (3, 7, 33), "cuda": (2, 3, 5)}
#: enough rows and columns that both parallel loops are split between threads.
THREAD_SHAPE = (8, 32, 64)
NAMES = ("x", "gamma", "beta")


def _case(rng, shape, dtype=np.float64):
    x, dy = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    gamma, beta = (rng.standard_normal(shape[-1]).astype(dtype) for _ in range(2))
    return {
        "layernorm": ((x, gamma, beta), [x]),
        "layernorm.layernorm_vjp": ((x, gamma, dy), [x, gamma, gamma]),
    }


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    def compile_all():
        for dtype in (np.float64, np.float32):
            for kernel, (args, outs) in _case(np.random.default_rng(0), (1, 2, 3), dtype).items():
                run_outputs(get(kernel, "cpu"), args, outs)

    warmup("layernorm", compile_all)


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


def _op(backend):
    fwd, vjp = get("layernorm", "reference"), get("layernorm.layernorm_vjp", backend)

    def forward(inp):
        y = np.empty(inp["x"].shape, np.result_type(*inp.values()))
        fwd(inp["x"], inp["gamma"], inp["beta"], y)
        return [y]

    def gradient(inp, cot):
        grads = [np.empty_like(inp[k]) for k in NAMES]
        vjp(inp["x"], inp["gamma"], cot[0], *grads)
        return dict(zip(NAMES, grads))

    return forward, gradient


def _inputs(shape, rng):
    return {k: rng.standard_normal(shape if k == "x" else shape[-1]) for k in NAMES}


_shapes = st.tuples(st.integers(1, 3), st.integers(1, 3), st.integers(2, 5))


@settings(max_examples=examples(10))
@given(shape=_shapes, seed=st.integers(0, 2**32 - 1), backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_dot_product_identity(shape, seed, backend):
    rng = np.random.default_rng(seed)
    assert_dot_product_identity(*_op(backend), _inputs(shape, rng), rng)


@settings(max_examples=examples(6))
@given(shape=_shapes, seed=st.integers(0, 2**32 - 1), backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_matches_finite_differences(shape, seed, backend):
    rng = np.random.default_rng(seed)
    assert_finite_differences(*_op(backend), _inputs(shape, rng), rng)


def test_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    shape = (2, 5, 16)
    inp = _inputs(shape, rng)
    dy = rng.standard_normal(shape)
    t = {k: torch.tensor(v, requires_grad=True) for k, v in inp.items()}
    ty = torch.nn.functional.layer_norm(t["x"], (shape[-1],), t["gamma"], t["beta"], eps=1e-5)
    forward, gradient = _op("cpu")
    y = np.empty(shape)
    get("layernorm", "cpu")(inp["x"], inp["gamma"], inp["beta"], y)
    np.testing.assert_allclose(y, ty.detach().numpy(), rtol=1e-12, atol=1e-12)
    want = torch.autograd.grad(ty, [t[k] for k in NAMES], torch.tensor(dy))
    got = gradient(inp, [dy])
    for k, w in zip(NAMES, want):
        np.testing.assert_allclose(got[k], w.numpy(), rtol=1e-12, atol=1e-12, err_msg=k)
