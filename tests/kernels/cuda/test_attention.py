"""CUDA attention (batched tiled GEMMs, block softmax) against its NumPy definition.

``L = 9`` keys exceed the 7 threads of a softmax block; ``L``, ``D = 6`` and ``dh = 3`` are
not multiples of the tile side 4. The definition computes in float64; CUDA, like the
CPU, runs its GEMMs in the input dtype and its softmax sums in float64.
"""
import numpy as np
import pytest

from refode.kernels import get
from refode.kernels.cuda import attention as cuda_attention
from refode.kernels.cuda._reduce import run_blocks
from refode.kernels.reference.attention import masked_softmax

from .._checks import assert_close
from ..vjp_checks import run_outputs
from ._helpers import DTYPES, both, device_copies, device_outputs, host

pytestmark = pytest.mark.cuda

#: (B, L, D) and heads.
SHAPE, HEADS = (2, 9, 6), 2
#: (biases, padded keys) variants.
VARIANTS = [(True, True), (False, False)]


def _case(rng, dtype, biases=True, padded=True):
    """``kernel -> (args, output templates)`` for the forward and the VJP."""
    n_batch, length, d = SHAPE
    x, dout = (rng.standard_normal(SHAPE).astype(dtype) for _ in range(2))
    w = (rng.standard_normal((4, d, d)) / np.sqrt(d)).astype(dtype)
    b = rng.standard_normal((4, d)).astype(dtype) if biases else None
    mask = None
    if padded:
        mask = np.zeros((n_batch, length), dtype=bool)
        mask[1, 6:] = True
    return {
        "attention": ((x, w, b, mask, HEADS), [x]),
        "attention.attention_vjp": ((x, w, b, mask, HEADS, dout), [x, w, b]),
    }


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("kernel", ["attention", "attention.attention_vjp"])
def test_attention_matches_definition(kernel, variant, dtype, rng):
    args, templates = _case(rng, dtype, *variant)[kernel]
    actual, expected = both(kernel, args, templates)
    for a, e in zip(actual, expected):
        if e is None:
            assert a is None
            continue
        assert a.dtype == dtype
        assert_close(a, e)


@pytest.mark.parametrize("dtype", DTYPES)
def test_block_softmax_and_its_vjp_match_the_definition(dtype, rng):
    rows, length, per_batch = 6, 11, 3  # two "batches" of three score rows
    scores = (3 * rng.standard_normal((rows, length))).astype(dtype)
    dp = rng.standard_normal((rows, length)).astype(dtype)
    mask = rng.random((2, length)) < 0.4
    mask[1] = True  # every key padded: weights 0
    p, ds = np.full_like(scores, np.nan), np.full_like(scores, np.nan)
    functions = cuda_attention._FUNCTIONS
    run_blocks(functions, "softmax_kernel", rows, scores, 1, mask, per_batch, p)
    run_blocks(functions, "softmax_vjp_kernel", rows, p, dp, ds)
    keep = ~np.repeat(mask, per_batch, axis=0)
    assert_close(p, masked_softmax(scores.astype(np.float64), keep).astype(dtype))
    np.testing.assert_array_equal(p[3:], 0.0)
    p64 = p.astype(np.float64)
    assert_close(ds, (p64 * (dp - (dp * p64).sum(axis=-1, keepdims=True))).astype(dtype))


def test_attention_is_deterministic(rng):
    args, templates = _case(rng, np.float32)["attention.attention_vjp"]
    first = run_outputs(get("attention.attention_vjp", "cuda"), args, templates)
    for a, b in zip(first, run_outputs(get("attention.attention_vjp", "cuda"), args, templates)):
        np.testing.assert_array_equal(a, b)


def test_attention_vjp_on_device_arrays(cuda, no_transfers, rng):
    args, templates = _case(rng, np.float64)["attention.attention_vjp"]
    expected = run_outputs(get("attention.attention_vjp", "cuda"), args, templates)
    d_args, d_outs = device_copies(cuda, args), device_outputs(cuda, templates)
    with no_transfers():
        get("attention.attention_vjp", "cuda")(*d_args, *d_outs)
    for a, e in zip(host(d_outs), expected):
        np.testing.assert_array_equal(a, e)
