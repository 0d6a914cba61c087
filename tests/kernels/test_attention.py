"""``attention`` (multi-head self-attention with key padding) and its VJP on every backend.

Backends are compared with the NumPy definition within 1e-12 (float64) / 1e-5
(float32), relative: GEMMs and softmax sums run in a different order.
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refode.kernels import BACKENDS, COMPILED, get

from .vjp_checks import (
    assert_close,
    assert_dot_product_identity,
    assert_finite_differences,
    assert_thread_count_invariant,
    run_outputs,
)
from tests.profiles import examples

KERNELS = ("attention", "attention.attention_vjp")
#: (B, L, D) per backend: the CUDA simulator runs every thread in Python.
SHAPES = {"cpu": (3, 6, 8), "cuda": (2, 3, 4)}
#: enough score rows that the softmax loops are split between threads.
THREAD_SHAPE = (4, 16, 16)
#: (heads, with biases, with padding) variants of the backend comparison.
VARIANTS = [(1, True, False), (2, False, True)]


def _padding(rng, b, length):
    """Random key padding with the last sequence padded from its second position on."""
    mask = rng.random((b, length)) < 0.3
    mask[-1, 1:] = True
    mask[-1, 0] = False
    return mask


def _case(rng, shape, dtype=np.float64, heads=2, biases=True, padded=True):
    b, length, d = shape
    x, dout = (rng.standard_normal(shape).astype(dtype) for _ in range(2))
    w = (rng.standard_normal((4, d, d)) / np.sqrt(d)).astype(dtype)
    bias = rng.standard_normal((4, d)).astype(dtype) if biases else None
    mask = _padding(rng, b, length) if padded else None
    return {
        "attention": ((x, w, bias, mask, heads), [x]),
        "attention.attention_vjp": ((x, w, bias, mask, heads, dout), [x, w, bias]),
    }


@pytest.fixture(scope="module", autouse=True)
def _compiled(warmup):
    def compile_all():
        for dtype in (np.float64, np.float32):
            for kernel, (args, outs) in _case(np.random.default_rng(0), (1, 2, 2), dtype).items():
                run_outputs(get(kernel, "cpu"), args, outs)

    warmup("attention", compile_all)


@pytest.mark.parametrize("backend", COMPILED)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_backends_agree_with_definition(backend, dtype, variant, kernel, rng):
    heads, biases, padded = variant
    args, outs = _case(rng, SHAPES[backend], dtype, heads, biases, padded)[kernel]
    expected = run_outputs(get(kernel, "reference"), args, outs)
    for actual, want in zip(run_outputs(get(kernel, backend), args, outs), expected):
        if want is not None:
            assert actual.dtype == dtype
            assert_close(actual, want)


@pytest.mark.parametrize("kernel", KERNELS)
def test_cpu_is_bitwise_independent_of_thread_count(kernel, rng):
    args, outs = _case(rng, THREAD_SHAPE, heads=2)[kernel]
    assert_thread_count_invariant(get(kernel, "cpu"), args, outs)


@pytest.mark.parametrize("backend", BACKENDS)
def test_padded_keys_get_no_weight_and_empty_sequences_give_the_bias(backend, rng):
    args, _ = _case(rng, (2, 3, 4), heads=2)["attention"]
    x, w, bias, mask, heads = args
    mask[-1, :] = True  # the last sequence is all padding
    out = run_outputs(get("attention", backend), args, [x])[0]
    moved = x.copy()
    moved[mask] += 10.0  # padded positions change: no query of the same sequence may notice
    out_moved = run_outputs(get("attention", backend), (moved, w, bias, mask, heads), [x])[0]
    np.testing.assert_allclose(out_moved[~mask], out[~mask], rtol=1e-14, atol=1e-14)
    np.testing.assert_array_equal(out[-1], np.broadcast_to(bias[3], out[-1].shape))
    grads = run_outputs(get("attention.attention_vjp", backend), args + (x,), [x, w, bias])
    assert all(np.isfinite(g).all() for g in grads)


def _op(backend, heads, mask, names):
    fwd, vjp = get("attention", "reference"), get("attention.attention_vjp", backend)

    def forward(inp):
        out = np.empty(inp["x"].shape, np.result_type(*inp.values()))
        fwd(inp["x"], inp["weights"], inp.get("biases"), mask, heads, out)
        return [out]

    def gradient(inp, cot):
        grads = [np.empty_like(inp[k]) for k in names]
        vjp(inp["x"], inp["weights"], inp.get("biases"), mask, heads, cot[0],
            *grads, *([None] if len(names) == 2 else []))
        return dict(zip(names, grads))

    return forward, gradient


@st.composite
def _problems(draw):
    """(shape, heads, with biases, with padding, seed) of a small attention problem."""
    heads = draw(st.sampled_from([1, 2]))
    shape = (draw(st.integers(1, 2)), draw(st.integers(1, 4)), heads * draw(st.integers(1, 2)))
    return shape, heads, draw(st.booleans()), draw(st.booleans()), draw(st.integers(0, 2**32 - 1))


def _setup(problem, backend):
    shape, heads, biases, padded, seed = problem
    rng = np.random.default_rng(seed)
    names = ("x", "weights") + (("biases",) if biases else ())
    inp = {"x": rng.standard_normal(shape),
           "weights": rng.standard_normal((4, shape[2], shape[2])) / np.sqrt(shape[2])}
    if biases:
        inp["biases"] = rng.standard_normal((4, shape[2]))
    mask = rng.random(shape[:2]) < 0.4 if padded else None
    return _op(backend, heads, mask, names), inp, rng


@settings(max_examples=examples(12))
@given(problem=_problems(), backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_dot_product_identity(problem, backend):
    (forward, gradient), inp, rng = _setup(problem, backend)
    assert_dot_product_identity(forward, gradient, inp, rng)


@settings(max_examples=examples(6))
@given(problem=_problems(), backend=st.sampled_from(["reference", "cpu"]))
def test_vjp_matches_finite_differences(problem, backend):
    (forward, gradient), inp, rng = _setup(problem, backend)
    assert_finite_differences(forward, gradient, inp, rng)


@pytest.mark.parametrize("heads", [1, 2])
@pytest.mark.parametrize("biases", [True, False])
def test_agrees_with_torch_multihead_attention(heads, biases, rng):
    torch = pytest.importorskip("torch")
    shape = (3, 5, 8)
    d = shape[2]
    args, _ = _case(rng, shape, heads=heads, biases=biases)["attention.attention_vjp"]
    x, w, bias, mask, _, dout = args
    mha = torch.nn.MultiheadAttention(d, heads, bias=biases, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.tensor(w[:3].reshape(3 * d, d)))
        mha.out_proj.weight.copy_(torch.tensor(w[3]))
        if biases:
            mha.in_proj_bias.copy_(torch.tensor(bias[:3].reshape(-1)))
            mha.out_proj.bias.copy_(torch.tensor(bias[3]))
    mha.train()  # dropout is 0; training mode keeps torch off its nested-tensor fast path
    tx = torch.tensor(x, requires_grad=True)
    tout, _ = mha(tx, tx, tx, key_padding_mask=torch.tensor(mask), need_weights=False)
    tout.backward(torch.tensor(dout))
    out = run_outputs(get("attention", "cpu"), args[:5], [x])[0]
    np.testing.assert_allclose(out, tout.detach().numpy(), rtol=1e-12, atol=1e-12)
    dx, dw, db = run_outputs(get("attention.attention_vjp", "cpu"), args, [x, w, bias])
    np.testing.assert_allclose(dx, tx.grad.numpy(), rtol=1e-12, atol=1e-12)
    want_w = np.concatenate([mha.in_proj_weight.grad.numpy().reshape(3, d, d),
                             mha.out_proj.weight.grad.numpy()[None]])
    np.testing.assert_allclose(dw, want_w, rtol=1e-12, atol=1e-12)
    if biases:
        want_b = np.concatenate([mha.in_proj_bias.grad.numpy().reshape(3, d),
                                 mha.out_proj.bias.grad.numpy()[None]])
        np.testing.assert_allclose(db, want_b, rtol=1e-12, atol=1e-12)


#: which intermediates a forward writes and the VJP then reads instead of recomputing.
SAVED_SETS = [("probs",), ("qkv",), ("ctx",), ("probs", "qkv", "ctx")]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("names", SAVED_SETS)
def test_saved_intermediates_give_the_recomputing_vjp(backend, dtype, names, rng):
    from refode.kernels.reference.attention import _keep, masked_softmax, merge_heads, split_heads

    args, _ = _case(rng, SHAPES.get(backend, SHAPES["cpu"]), dtype, heads=2)["attention"]
    x, w, bias, mask, heads = args
    b, length, d = x.shape
    shapes = {"probs": (b, heads, length, length), "qkv": (b, length, 3 * d), "ctx": x.shape}
    buffers = {n: np.full(shapes[n], np.nan, dtype) for n in names}
    out = np.empty_like(x)
    get("attention", backend)(x, w, bias, mask, heads, out, **buffers)
    # what the forward wrote is the definition's intermediate
    x64 = x.astype(np.float64)
    proj = [x64 @ w[i].T.astype(np.float64) + bias[i] for i in (0, 1, 2)]
    q, k, v = (split_heads(t, heads) for t in proj)
    p = masked_softmax((q @ k.transpose(0, 1, 3, 2)) / np.sqrt(d // heads), _keep(mask, x.shape))
    want = {"probs": p, "qkv": np.concatenate(proj, axis=-1), "ctx": merge_heads(p @ v)}
    for n in names:
        assert_close(buffers[n], want[n].astype(dtype))
    plain_out = np.empty_like(x)
    get("attention", backend)(x, w, bias, mask, heads, plain_out)
    np.testing.assert_array_equal(out, plain_out)  # saving changes nothing it computes
    dout = rng.standard_normal(x.shape).astype(dtype)
    vjp = get("attention.attention_vjp", backend)
    grads = [np.full_like(a, np.nan) for a in (x, w, bias)]
    vjp(*args, dout, *grads, **buffers)
    plain = run_outputs(vjp, args + (dout,), [x, w, bias])
    for s, e in zip(grads, plain):
        if backend == "reference" and dtype == np.float32:  # weights rounded to float32
            assert_close(s, e)
        else:
            np.testing.assert_array_equal(s, e)
    # the VJP reads what it is given: a corrupted context changes the weight gradient
    if "ctx" in names:
        buffers["ctx"] += 1
        wrong = [np.full_like(a, np.nan) for a in (x, w, bias)]
        vjp(*args, dout, *wrong, **buffers)
        assert not np.allclose(wrong[1][3], grads[1][3])


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_strided_output_buffers_are_written(backend, rng):
    # the CPU kernel writes out and qkv by one GEMM over all rows: a strided buffer must
    # still receive the result (through a temporary), not a discarded reshaped copy
    args, _ = _case(rng, SHAPES["cpu"], np.float64, heads=2)["attention"]
    x = args[0]
    b, length, d = x.shape
    out, qkv = np.empty_like(x), np.empty((b, length, 3 * d))
    get("attention", backend)(*args, out, None, qkv)
    wide_out, wide_qkv = np.zeros((b, length, 2 * d)), np.zeros((b, length, 6 * d))
    get("attention", backend)(*args, wide_out[..., ::2], None, wide_qkv[..., ::2])
    np.testing.assert_array_equal(wide_out[..., ::2], out)
    np.testing.assert_array_equal(wide_qkv[..., ::2], qkv)
