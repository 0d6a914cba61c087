"""``embedding`` and its scatter-add VJP on every backend.

All backends copy rows and add cotangents in the same (row-major) order, so they
agree bitwise with the NumPy definition, float64 and float32.
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

KERNELS = ("embedding", "embedding.embedding_vjp")
#: (B, L, vocabulary, D) per backend: the CUDA simulator runs every thread in Python.
SHAPES = {"cpu": (3, 7, 5, 130), "cuda": (2, 3, 4, 5)}
#: enough columns (several chunks of the VJP) and positions to split between threads.
THREAD_SHAPE = (8, 32, 11, 300)


def _case(rng, shape, dtype=np.float64):
    b, length, vocab, d = shape
    ids = rng.integers(0, vocab - 1, (b, length))  # the last token never occurs: its row is 0
    ids[0, :2] = 0  # a repeated token: its gradient is a sum
    weight = rng.standard_normal((vocab, d)).astype(dtype)
    dout = rng.standard_normal((b, length, d)).astype(dtype)
    return {
        "embedding": ((ids, weight), [dout]),
        "embedding.embedding_vjp": ((ids, dout), [weight]),
    }


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    def compile_all():
        for dtype in (np.float64, np.float32):
            cases = _case(np.random.default_rng(0), (1, 2, 3, 2), dtype)
            for kernel, (args, outs) in cases.items():
                run_outputs(get(kernel, "cpu"), args, outs)

    warmup("embedding", compile_all)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kernel", KERNELS)
def test_backends_agree_bitwise_with_definition(backend, dtype, kernel, rng):
    args, outs = _case(rng, SHAPES[backend], dtype)[kernel]
    expected = run_outputs(get(kernel, "reference"), args, outs)
    for actual, want in zip(run_outputs(get(kernel, backend), args, outs), expected):
        assert actual.dtype == dtype
        assert_close(actual, want, bitwise=True)


def test_vjp_is_the_scatter_add(rng):
    args, outs = _case(rng, SHAPES["cpu"])["embedding.embedding_vjp"]
    ids, dout = args
    dweight = run_outputs(get("embedding.embedding_vjp", "cpu"), args, outs)[0]
    np.testing.assert_allclose(dweight[0], dout[ids == 0].sum(axis=0), rtol=1e-13)
    np.testing.assert_array_equal(dweight[-1], 0.0)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cpu_is_bitwise_independent_of_thread_count(kernel, rng):
    args, outs = _case(rng, THREAD_SHAPE)[kernel]
    assert_thread_count_invariant(get(kernel, "cpu"), args, outs)


def _op(ids, backend):
    fwd, vjp = get("embedding", "reference"), get("embedding.embedding_vjp", backend)

    def forward(inp):
        out = np.empty(ids.shape + inp["weight"].shape[1:], inp["weight"].dtype)
        fwd(ids, inp["weight"], out)
        return [out]

    def gradient(inp, cot):
        dweight = np.empty_like(inp["weight"])
        vjp(ids, cot[0], dweight)
        return {"weight": dweight}

    return forward, gradient


_shapes = st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))


@settings(max_examples=examples(10))
@given(shape=_shapes, seed=st.integers(0, 2**32 - 1), backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_dot_product_identity_and_finite_differences(shape, seed, backend):
    b, length, vocab, d = shape
    rng = np.random.default_rng(seed)
    ids = rng.integers(0, vocab, (b, length))
    inp = {"weight": rng.standard_normal((vocab, d))}
    assert_dot_product_identity(*_op(ids, backend), inp, rng)
    assert_finite_differences(*_op(ids, backend), inp, rng)


def test_agrees_with_torch(rng):
    torch = pytest.importorskip("torch")
    (ids, weight), _ = _case(rng, SHAPES["cpu"])["embedding"]
    dout = rng.standard_normal(ids.shape + weight.shape[1:])
    tw = torch.tensor(weight, requires_grad=True)
    tout = torch.nn.functional.embedding(torch.tensor(ids), tw)
    tout.backward(torch.tensor(dout))
    out = run_outputs(get("embedding", "cpu"), (ids, weight), [dout])[0]
    np.testing.assert_array_equal(out, tout.detach().numpy())
    dweight = run_outputs(get("embedding.embedding_vjp", "cpu"), (ids, dout), [weight])[0]
    np.testing.assert_allclose(dweight, tw.grad.numpy(), rtol=1e-12, atol=1e-12)
